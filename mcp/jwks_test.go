package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// authServer stands in for an authorization server on loopback: it
// serves its metadata at metaPath and its current signing keys at /jwks,
// and counts the JWKS requests.
type authServer struct {
	srv    *httptest.Server
	issuer string
	hits   atomic.Int64

	mu    sync.Mutex
	keys  map[string]*ecdsa.PrivateKey // every key ever made, by kid
	pub   []string                     // kids published now
	extra []any                        // other JWKs published
}

func newAuthServer(t testing.TB, metaPath string) *authServer {
	t.Helper()
	a := &authServer{keys: map[string]*ecdsa.PrivateKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		a.mu.Lock()
		defer a.mu.Unlock()
		var keys []any
		for _, kid := range a.pub {
			pub, err := a.keys[kid].PublicKey.Bytes()
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			keys = append(keys, map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
				"x": b64u(pub[1:33]), "y": b64u(pub[33:])})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": append(keys, a.extra...)})
	})
	mux.HandleFunc(metaPath, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": a.issuer, "jwks_uri": a.srv.URL + "/jwks",
			"authorization_endpoint": a.srv.URL + "/authorize", "token_endpoint": a.srv.URL + "/token"})
	})
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.issuer = a.srv.URL
	return a
}

// publish makes the keys named the only ones published, creating new ones.
func (a *authServer) publish(t testing.TB, kids ...string) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, kid := range kids {
		if a.keys[kid] == nil {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			require.NoError(t, err)
			a.keys[kid] = k
		}
	}
	a.pub = kids
}

// token signs claims for sub with the key kid (which may be unpublished,
// or unknown: then a fresh key signs).
func (a *authServer) token(t testing.TB, kid, scopes string) string {
	t.Helper()
	a.mu.Lock()
	key := a.keys[kid]
	a.mu.Unlock()
	if key == nil {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"sub": "agent", "aud": "mcp", "iss": a.issuer, "scope": scopes,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// TestJWKSKeyRotation: keys come from the JWKS found through the issuer's
// metadata; after the server rotates its key, a token signed with the new
// key is accepted (its unknown kid refreshes the keys once), a token
// signed with the removed key is refused, and further unknown kids cause
// no request until the interval has passed.
func TestJWKSKeyRotation(t *testing.T) {
	for _, meta := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		t.Run(meta, func(t *testing.T) {
			a := newAuthServer(t, meta)
			a.publish(t, "k1")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v, err := guardmcp.NewJWKSVerifier(ctx, guardmcp.JWKSOptions{UnknownKIDInterval: time.Hour},
				guardmcp.JWTOptions{Audience: "mcp", Issuer: a.issuer})
			require.NoError(t, err)
			require.EqualValues(t, 1, a.hits.Load(), "the keys are fetched once at start")

			pr, err := v.Verify(a.token(t, "k1", "tools"))
			require.NoError(t, err)
			assert.Equal(t, "agent", pr.ID)
			assert.Equal(t, []string{"tools"}, pr.Scopes)
			assert.EqualValues(t, 1, a.hits.Load())

			a.publish(t, "k2") // rotation: k1 removed, k2 added
			_, err = v.Verify(a.token(t, "k2", "tools"))
			require.NoError(t, err, "the new key's unknown kid refreshes the keys")
			assert.EqualValues(t, 2, a.hits.Load())
			_, err = v.Verify(a.token(t, "k2", "tools"))
			require.NoError(t, err)
			assert.EqualValues(t, 2, a.hits.Load(), "a known kid needs no request")

			_, err = v.Verify(a.token(t, "k1", "tools"))
			require.Error(t, err, "the removed key verifies nothing")
			start := time.Now()
			var wg sync.WaitGroup
			var accepted atomic.Int64
			for i := range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := v.Verify(a.token(t, fmt.Sprintf("unknown-%d", i), "tools")); err == nil {
						accepted.Add(1)
					}
				}()
			}
			wg.Wait()
			assert.Zero(t, accepted.Load())
			assert.EqualValues(t, 2, a.hits.Load(), "unknown kids within the interval cause no request")
			assert.Less(t, time.Since(start), 5*time.Second, "and are refused without waiting for the interval")
		})
	}
}

// TestJWKSUnknownKIDInterval: unknown kids refresh the keys at most once
// per interval, however many arrive at once.
func TestJWKSUnknownKIDInterval(t *testing.T) {
	a := newAuthServer(t, "/.well-known/oauth-authorization-server")
	a.publish(t, "k1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const interval = 2 * time.Second
	v, err := guardmcp.NewJWKSVerifier(ctx, guardmcp.JWKSOptions{UnknownKIDInterval: interval},
		guardmcp.JWTOptions{Audience: "mcp", Issuer: a.issuer})
	require.NoError(t, err)
	burst := func() {
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := v.Verify(a.token(t, fmt.Sprintf("x-%d", i), "tools"))
				assert.Error(t, err)
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	burst()
	require.Less(t, time.Since(start), interval, "a burst is refused without waiting")
	assert.EqualValues(t, 2, a.hits.Load(), "one refresh for the burst")
	time.Sleep(interval + 200*time.Millisecond)
	burst()
	assert.EqualValues(t, 3, a.hits.Load(), "one more refresh once the interval has passed")
}

func TestDiscoverJWKSURL(t *testing.T) {
	ctx := context.Background()
	t.Run("issuer with a path: the well-known part goes before it", func(t *testing.T) {
		a := newAuthServer(t, "/.well-known/oauth-authorization-server/tenant1")
		a.issuer = a.srv.URL + "/tenant1"
		u, err := guardmcp.DiscoverJWKSURL(ctx, nil, a.issuer)
		require.NoError(t, err)
		assert.Equal(t, a.srv.URL+"/jwks", u)
	})
	t.Run("OpenID Connect discovery appended to the path", func(t *testing.T) {
		a := newAuthServer(t, "/realms/r1/.well-known/openid-configuration")
		a.issuer = a.srv.URL + "/realms/r1"
		u, err := guardmcp.DiscoverJWKSURL(ctx, nil, a.issuer)
		require.NoError(t, err)
		assert.Equal(t, a.srv.URL+"/jwks", u)
	})
	t.Run("metadata of another issuer", func(t *testing.T) {
		a := newAuthServer(t, "/.well-known/oauth-authorization-server")
		a.issuer = "https://idp.example"
		_, err := guardmcp.DiscoverJWKSURL(ctx, nil, a.srv.URL)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "issuer")
	})
	t.Run("no metadata", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, err := guardmcp.DiscoverJWKSURL(ctx, nil, srv.URL)
		require.Error(t, err)
	})
	t.Run("plain http off loopback", func(t *testing.T) {
		_, err := guardmcp.DiscoverJWKSURL(ctx, nil, "http://idp.example")
		require.Error(t, err)
	})
	t.Run("jwks_uri plain http off loopback", func(t *testing.T) {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		defer srv.Close()
		mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"http://keys.example/jwks"}`, srv.URL)
		})
		_, err := guardmcp.DiscoverJWKSURL(ctx, nil, srv.URL)
		require.Error(t, err)
	})
	t.Run("metadata over a megabyte", func(t *testing.T) {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		defer srv.Close()
		mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"issuer":%q,"x":"%s","jwks_uri":"%s/jwks"}`, srv.URL, strings.Repeat("a", 2<<20), srv.URL)
		})
		_, err := guardmcp.DiscoverJWKSURL(ctx, nil, srv.URL)
		require.Error(t, err)
	})
	t.Run("a JWKS that cannot be fetched stops the start", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		_, err := guardmcp.NewJWKSVerifier(ctx, guardmcp.JWKSOptions{URL: srv.URL + "/jwks"},
			guardmcp.JWTOptions{Audience: "mcp", Issuer: srv.URL})
		require.Error(t, err)
	})
}

// TestClaimMapping: the subject, scopes and attributes come from the
// claims the mapping names, nested ones by a dotted path.
func TestClaimMapping(t *testing.T) {
	a := newAuthServer(t, "/.well-known/oauth-authorization-server")
	a.publish(t, "k1")
	sign := func(claims jwt.MapClaims) string {
		now := time.Now()
		claims["aud"], claims["iss"], claims["exp"], claims["iat"] = "mcp", a.issuer, now.Add(time.Hour).Unix(), now.Unix()
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(a.keys["k1"])
		require.NoError(t, err)
		return s
	}
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "u-123", "azp": "support-bot", "scope": "openid tools",
			"realm_access": map[string]any{"roles": []any{"fs.read", "fs.write"}}, "ws": "/srv/w", "email": "a@b.example"}
	}
	tests := []struct {
		name   string
		cm     guardmcp.ClaimMapping
		id     string
		scopes []string
		attrs  map[string]any
	}{
		{"default", guardmcp.ClaimMapping{}, "u-123", []string{"openid", "tools"}, nil},
		{"client as subject, roles as scopes, named attributes",
			guardmcp.ClaimMapping{Subject: "azp", Scopes: []string{"realm_access.roles"}, Attrs: map[string]string{"workspace": "ws", "user": "sub"}},
			"support-bot", []string{"fs.read", "fs.write"}, map[string]any{"workspace": "/srv/w", "user": "u-123"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := guardmcp.NewJWKSVerifier(context.Background(), guardmcp.JWKSOptions{},
				guardmcp.JWTOptions{Audience: "mcp", Issuer: a.issuer, Claims: tt.cm})
			require.NoError(t, err)
			pr, err := v.Verify(sign(claims()))
			require.NoError(t, err)
			assert.Equal(t, tt.id, pr.ID)
			assert.Equal(t, tt.scopes, pr.Scopes)
			if tt.attrs == nil {
				assert.Equal(t, "/srv/w", pr.Attrs["ws"], "every other claim is an attribute")
				assert.NotContains(t, pr.Attrs, "sub")
				assert.NotContains(t, pr.Attrs, "scope")
			} else {
				assert.Equal(t, tt.attrs, pr.Attrs, "only the named claims")
			}
			c := claims()
			delete(c, "azp")
			delete(c, "sub")
			_, err = v.Verify(sign(c))
			require.Error(t, err, "no subject, no principal")
		})
	}
	attrs, err := guardmcp.ParseClaimAttrs([]string{"workspace=ws", "email"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"workspace": "ws", "email": "email"}, attrs)
	_, err = guardmcp.ParseClaimAttrs([]string{"=x"})
	require.Error(t, err)
}

// TestMCPGuardFetchedKeysRotate: mcpguard -discover-keys in front of an
// upstream, with the authorization server stand-in: a token signed with
// its key is served; after the rotation a token signed with the new key is
// served and one signed with the removed key is not.
func TestMCPGuardFetchedKeysRotate(t *testing.T) {
	guard := buildBin(t, "mcpguard")
	a := newAuthServer(t, "/.well-known/openid-configuration")
	a.publish(t, "k1")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(misbehavingPolicy), 0o644))
	self, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(testUpstreamEnv, "1")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(guard, "-policy", policy, "-audit", filepath.Join(dir, "decisions.jsonl"),
		"-listen", addr, "-discover-keys", "-issuer", a.issuer, "-audience", "mcp", "-jwks-unknown-kid", "1h",
		"--", self, "-test.run=^$")
	stderr := startProcess(t, cmd)
	waitListening(t, addr, 30*time.Second)

	echo := func(token string) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := client.NewStreamableHttpClient("http://"+addr+"/mcp",
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		require.NoError(t, err)
		c = client.NewClient(c.GetTransport(), client.WithLegacyProtocolOnly())
		require.NoError(t, c.Start(ctx))
		defer c.Close()
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		if _, err := c.Initialize(ctx, init); err != nil {
			return false, err
		}
		req := mcp.CallToolRequest{}
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"text": "hi"}
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return false, err
		}
		return !res.IsError, nil
	}
	ok, err := echo(a.token(t, "k1", "tools"))
	require.NoError(t, err, "stderr: %s", stderr.String())
	assert.True(t, ok, "a token signed with the published key is served")

	a.publish(t, "k2")
	ok, err = echo(a.token(t, "k2", "tools"))
	require.NoError(t, err)
	assert.True(t, ok, "a token signed with the new key is served")
	ok, _ = echo(a.token(t, "k1", "tools"))
	assert.False(t, ok, "a token signed with the removed key is not")
	assert.EqualValues(t, 2, a.hits.Load(), "one fetch at start, one refresh for the new kid")
}

// TestJWKSRefusesForgeries: with fetched keys, as with fixed ones, a token
// is refused when it is unsigned, HMAC-signed (with the JWKS's bytes, or
// with a symmetric key the JWKS publishes), signed by a weak RSA key the
// JWKS publishes, or names its kid with something other than a string.
func TestJWKSRefusesForgeries(t *testing.T) {
	a := newAuthServer(t, "/.well-known/oauth-authorization-server")
	a.publish(t, "k1")
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	secret := []byte("0123456789abcdef0123456789abcdef")
	// The JWKS also carries a symmetric key and a weak RSA key.
	a.extra = []any{
		map[string]any{"kty": "oct", "kid": "sym", "k": b64u(secret)},
		map[string]any{"kty": "RSA", "kid": "weak", "alg": "RS256", "n": b64u(weak.N.Bytes()), "e": "AQAB"},
	}
	v, err := guardmcp.NewJWKSVerifier(context.Background(), guardmcp.JWKSOptions{UnknownKIDInterval: time.Hour},
		guardmcp.JWTOptions{Audience: "mcp", Issuer: a.issuer})
	require.NoError(t, err)
	claims := func() jwt.MapClaims {
		now := time.Now()
		return jwt.MapClaims{"sub": "agent", "aud": "mcp", "iss": a.issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	signed := func(m jwt.SigningMethod, kid any, key any) string {
		tok := jwt.NewWithClaims(m, claims())
		if kid != nil {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	_, err = v.Verify(signed(jwt.SigningMethodES256, nil, a.keys["k1"]))
	require.NoError(t, err, "a token without kid is checked against every key")
	forged := map[string]string{
		"alg none":              signed(jwt.SigningMethodNone, "k1", jwt.UnsafeAllowNoneSignatureType),
		"HS256 with a JWK":      signed(jwt.SigningMethodHS256, "sym", secret),
		"HS256 without kid":     signed(jwt.SigningMethodHS256, nil, secret),
		"weak RSA key":          signed(jwt.SigningMethodRS256, "weak", weak),
		"kid is not a string":   signed(jwt.SigningMethodES256, 7, a.keys["k1"]),
		"ES256 with wrong key":  signed(jwt.SigningMethodES256, "k1", otherKey(t)),
		"RS256 under an EC kid": signed(jwt.SigningMethodRS256, "k1", weak),
	}
	for name, tok := range forged {
		_, err := v.Verify(tok)
		assert.Error(t, err, name)
	}
}

func otherKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}
