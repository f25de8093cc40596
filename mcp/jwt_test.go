package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

type jwtFixture struct {
	key      *ecdsa.PrivateKey
	other    *ecdsa.PrivateKey
	verifier *guardmcp.JWTVerifier
	jwks     []byte
}

func newJWTFixture(t testing.TB) *jwtFixture {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := key.PublicKey.Bytes()
	require.NoError(t, err)
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
		"x": b64u(pub[1:33]), "y": b64u(pub[33:]),
	}}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, jwks, 0o600))
	keys, err := guardmcp.LoadJWTKeys(path)
	require.NoError(t, err)
	v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: "mcp", Issuer: "https://idp.test"})
	require.NoError(t, err)
	return &jwtFixture{key: key, other: other, verifier: v, jwks: jwks}
}

func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": "reader", "aud": "mcp", "iss": "https://idp.test",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"scope":     "fs.read",
		"workspace": "/w",
	}
}

func (f *jwtFixture) sign(t testing.TB, claims jwt.MapClaims, mod func(c jwt.MapClaims)) string {
	t.Helper()
	if mod != nil {
		mod(claims)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(f.key)
	require.NoError(t, err)
	return s
}

func TestJWTVerify(t *testing.T) {
	f := newJWTFixture(t)
	otherSigned := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, validClaims())
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(f.other)
		require.NoError(t, err)
		return s
	}()
	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims())
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		return s
	}()
	// An HS256 token keyed with the public key's bytes: the classic
	// algorithm-confusion attack.
	confused := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims())
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(f.jwks)
		require.NoError(t, err)
		return s
	}()
	valid := f.sign(t, validClaims(), nil)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"valid", valid, true},
		{"expired", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), false},
		{"no exp", f.sign(t, validClaims(), func(c jwt.MapClaims) { delete(c, "exp") }), false},
		{"not yet valid", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), false},
		{"within leeway", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-5 * time.Second).Unix() }), true},
		{"wrong audience", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["aud"] = "other" }), false},
		{"no audience", f.sign(t, validClaims(), func(c jwt.MapClaims) { delete(c, "aud") }), false},
		{"wrong issuer", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), false},
		{"no subject", f.sign(t, validClaims(), func(c jwt.MapClaims) { delete(c, "sub") }), false},
		{"wrong signature", otherSigned, false},
		{"tampered payload", parts[0] + "." + b64u([]byte(`{"sub":"admin"}`)) + "." + parts[2], false},
		{"alg none", none, false},
		{"alg confusion HS256", confused, false},
		{"garbage", "not.a.token", false},
		{"empty", "", false},
		{"huge", strings.Repeat("a", 20000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := f.verifier.Verify(tt.token)
			if !tt.ok {
				require.Error(t, err)
				assert.Empty(t, pr.ID)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "reader", pr.ID)
			assert.Equal(t, []string{"fs.read"}, pr.Scopes)
			assert.Equal(t, "/w", pr.Attrs["workspace"])
			assert.NotContains(t, pr.Attrs, "sub")
		})
	}
}

func TestJWTScopes(t *testing.T) {
	f := newJWTFixture(t)
	tests := []struct {
		name  string
		mod   func(jwt.MapClaims)
		wants []string
	}{
		{"scope string", func(c jwt.MapClaims) { c["scope"] = "a b  c" }, []string{"a", "b", "c"}},
		{"scp array", func(c jwt.MapClaims) { delete(c, "scope"); c["scp"] = []string{"x", "y"} }, []string{"x", "y"}},
		{"scp string", func(c jwt.MapClaims) { delete(c, "scope"); c["scp"] = "x y" }, []string{"x", "y"}},
		{"none", func(c jwt.MapClaims) { delete(c, "scope") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := f.verifier.Verify(f.sign(t, validClaims(), tt.mod))
			require.NoError(t, err)
			assert.Equal(t, tt.wants, pr.Scopes)
		})
	}
}

func TestJWTKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	pemOf := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	_, err = guardmcp.ParsePEMKeys(pemOf(&rsaKey.PublicKey))
	require.NoError(t, err)
	_, err = guardmcp.ParsePEMKeys(pemOf(edPub))
	require.NoError(t, err)
	_, err = guardmcp.ParsePEMKeys(pemOf(&smallRSA.PublicKey))
	require.Error(t, err, "RSA under 2048 bits")
	_, err = guardmcp.ParsePEMKeys([]byte("nothing"))
	require.Error(t, err)

	bad := []string{
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"X25519","x":"AA"}]}`,
		`{"keys":[]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"` + b64u(edPub) + `"}]}`,
		`not json`,
	}
	for _, b := range bad {
		_, err := guardmcp.ParseJWKS([]byte(b))
		assert.Error(t, err, b)
	}
	keys, err := guardmcp.ParseJWKS([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64u(edPub) + `"}]}`))
	require.NoError(t, err)
	_, err = guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: "a"})
	require.Error(t, err, "an issuer is required")
	_, err = guardmcp.NewJWTVerifier(nil, guardmcp.JWTOptions{Audience: "a", Issuer: "i"})
	require.Error(t, err, "a key is required")
}

// TestJWTOverHTTP: bad tokens give no principal, so nothing is listed and
// calls are denied, with the reason, over streamable HTTP with mcp-go's
// client.
func TestJWTOverHTTP(t *testing.T) {
	f := newJWTFixture(t)
	sink := &memSink{}
	g := testGuard(t, sink)
	s := fileServer(t, g)
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s,
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(f.verifier.PrincipalFunc()))))
	defer ts.Close()

	none := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims())
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		require.NoError(t, err)
		return s
	}()
	wrongSig := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, validClaims())
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(f.other)
		require.NoError(t, err)
		return s
	}()
	tests := []struct {
		name   string
		token  string
		listed int
		denied bool
	}{
		{"valid", f.sign(t, validClaims(), nil), 2, false},
		{"expired", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 0, true},
		{"wrong audience", f.sign(t, validClaims(), func(c jwt.MapClaims) { c["aud"] = "other" }), 0, true},
		{"wrong signature", wrongSig, 0, true},
		{"alg none", none, 0, true},
		{"no token", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			hdr := map[string]string{}
			if tt.token != "" {
				hdr["Authorization"] = "Bearer " + tt.token
			}
			c, err := client.NewStreamableHttpClient(ts.URL, transport.WithHTTPHeaders(hdr))
			require.NoError(t, err)
			c = client.NewClient(c.GetTransport(), client.WithLegacyProtocolOnly())
			require.NoError(t, c.Start(ctx))
			defer c.Close()
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
			_, err = c.Initialize(ctx, init)
			require.NoError(t, err)

			tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
			require.NoError(t, err)
			assert.Len(t, tools.Tools, tt.listed)

			before := len(sink.decisions())
			req := mcp.CallToolRequest{}
			req.Params.Name = "read_text_file"
			req.Params.Arguments = map[string]any{"path": "/w/a.txt"}
			res, err := c.CallTool(ctx, req)
			require.NoError(t, err)
			assert.Equal(t, tt.denied, res.IsError)
			assert.Len(t, sink.decisions(), before+1)
			if tt.denied {
				text := res.Content[0].(mcp.TextContent).Text
				assert.Contains(t, text, "principal")
				if tt.token != "" {
					assert.NotContains(t, text, tt.token, "the token is not echoed")
				}
			}
		})
	}
	_ = http.StatusOK
}
