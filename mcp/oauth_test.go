package guardmcp_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// oauthServer stands in for an OAuth 2.1 authorization server on
// loopback: RFC 8414 metadata, a JWKS, dynamic client registration, and
// the authorization code flow with PKCE (S256) and resource indicators
// (RFC 8707). It grants the scopes asked for and issues JWTs whose
// audience is the resource asked for.
type oauthServer struct {
	srv    *httptest.Server
	issuer string
	key    *ecdsa.PrivateKey

	mu        sync.Mutex
	clients   map[string][]string // client_id → redirect URIs
	codes     map[string]oauthCode
	authorize []url.Values // the authorization requests
	tokenReqs []url.Values // the token requests
}

type oauthCode struct{ clientID, challenge, redirect, resource, scope string }

func newOAuthServer(t *testing.T) *oauthServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	a := &oauthServer{key: key, clients: map[string][]string{}, codes: map[string]oauthCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": a.issuer, "jwks_uri": a.issuer + "/jwks",
			"authorization_endpoint": a.issuer + "/authorize", "token_endpoint": a.issuer + "/token",
			"registration_endpoint":    a.issuer + "/register",
			"response_types_supported": []string{"code"}, "grant_types_supported": []string{"authorization_code"},
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"none"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		pub, err := a.key.PublicKey.Bytes()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"keys": []any{map[string]any{"kty": "EC", "crv": "P-256", "kid": "as1",
			"use": "sig", "alg": "ES256", "x": b64u(pub[1:33]), "y": b64u(pub[33:])}}})
	})
	mux.HandleFunc("POST /register", a.register)
	mux.HandleFunc("GET /authorize", a.authorizeHandler)
	mux.HandleFunc("POST /token", a.token)
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.issuer = a.srv.URL
	return a
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *oauthServer) register(w http.ResponseWriter, r *http.Request) {
	var meta map[string]any
	if err := json.NewDecoder(r.Body).Decode(&meta); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client_metadata"})
		return
	}
	var uris []string
	list, _ := meta["redirect_uris"].([]any)
	for _, u := range list {
		if s, ok := u.(string); ok {
			uris = append(uris, s)
		}
	}
	a.mu.Lock()
	id := fmt.Sprintf("client-%d", len(a.clients)+1)
	a.clients[id] = uris
	a.mu.Unlock()
	meta["client_id"] = id
	meta["client_id_issued_at"] = time.Now().Unix()
	writeJSON(w, http.StatusCreated, meta)
}

func (a *oauthServer) authorizeHandler(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.authorize = append(a.authorize, q)
	uris, known := a.clients[q.Get("client_id")]
	switch {
	case !known || !containsStr(uris, q.Get("redirect_uri")):
		http.Error(w, "unknown client or redirect URI", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "":
		http.Error(w, "the code flow with PKCE S256 is required", http.StatusBadRequest)
		return
	case q.Get("resource") == "":
		http.Error(w, "a resource indicator is required", http.StatusBadRequest)
		return
	}
	code := fmt.Sprintf("code-%d", len(a.codes)+1)
	a.codes[code] = oauthCode{q.Get("client_id"), q.Get("code_challenge"), q.Get("redirect_uri"), q.Get("resource"), q.Get("scope")}
	back, _ := url.Parse(q.Get("redirect_uri"))
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (a *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	f := r.PostForm
	a.mu.Lock()
	a.tokenReqs = append(a.tokenReqs, f)
	c, ok := a.codes[f.Get("code")]
	delete(a.codes, f.Get("code"))
	a.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case f.Get("grant_type") != "authorization_code" || !ok || c.clientID != f.Get("client_id") || c.redirect != f.Get("redirect_uri"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verification failed"})
		return
	case f.Get("resource") != c.resource:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_target"})
		return
	}
	tok, err := a.mint(jwt.MapClaims{"aud": c.resource, "scope": c.scope, "client_id": c.clientID}, nil)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": c.scope})
}

// mint signs a token for the subject "agent" with the server's key (or
// with key), over the given claims.
func (a *oauthServer) mint(claims jwt.MapClaims, key *ecdsa.PrivateKey) (string, error) {
	now := time.Now()
	c := jwt.MapClaims{"sub": "agent", "iss": a.issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	if key == nil {
		key = a.key
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = "as1"
	return tok.SignedString(key)
}

func containsStr(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

const oauthPolicy = `
version: 1
scopes:
  tools:
    grants:
      - tools: [echo]
`

// TestMCPGuardOAuth runs mcpguard with bearer tokens (keys discovered from
// the authorization server stand-in) in front of the reference
// server-everything, and checks the MCP authorization specification with
// real peers: the official TypeScript SDK client completes its OAuth flow
// from the 401 alone; tokens with a bad signature, the wrong audience, an
// expiry in the past, or none are refused with 401 on every method,
// resources, prompts and completion included; a token without the
// required scope gets 403; a foreign Origin gets 403.
func TestMCPGuardOAuth(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	as := newOAuthServer(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(oauthPolicy), 0o644))
	logPath := filepath.Join(dir, "decisions.jsonl")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	resource := "http://" + addr + "/mcp"
	cmd := exec.Command(guard, "-policy", policy, "-audit", logPath, "-listen", addr,
		"-discover-keys", "-issuer", as.issuer, "-require-scopes", "tools", "-allow-origin", "https://app.example.com",
		"--", "node", filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio")
	out := startProcess(t, cmd)
	waitListening(t, addr, 30*time.Second)

	t.Run("TypeScript SDK OAuth flow", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		node := exec.CommandContext(ctx, "node", filepath.Join("testdata", "node", "oauth.mjs"), resource)
		var stderr bytes.Buffer
		node.Stderr = &stderr
		raw, err := node.Output()
		require.NoError(t, err, "oauth.mjs: %s\nmcpguard: %s", stderr.String(), out.String())
		var res struct {
			Requests []struct {
				Method, URL, WWWAuthenticate string
				Status                       int
			}
			First, AuthorizationURL, ReturnedState, TokenScope string
			Tools                                              []string
			Call                                               struct {
				IsError bool
				Text    string
			}
		}
		require.NoError(t, json.Unmarshal(raw, &res), "%s", raw)
		t.Logf("the SDK's requests: %+v", res.Requests)

		assert.Equal(t, "unauthorized", res.First, "the first connect is refused")
		require.NotEmpty(t, res.Requests)
		first := res.Requests[0]
		assert.Equal(t, "POST", first.Method)
		assert.Equal(t, resource, first.URL)
		assert.Equal(t, http.StatusUnauthorized, first.Status)
		metaURL := "http://" + addr + "/.well-known/oauth-protected-resource/mcp"
		assert.Contains(t, first.WWWAuthenticate, `resource_metadata="`+metaURL+`"`)
		assert.Contains(t, first.WWWAuthenticate, `scope="tools"`)
		// The SDK found the authorization server through the metadata the
		// challenge named, then the server's own RFC 8414 metadata.
		var got []string
		for _, r := range res.Requests {
			got = append(got, fmt.Sprintf("%s %s %d", r.Method, r.URL, r.Status))
		}
		assert.Subset(t, got, []string{
			"GET " + metaURL + " 200",
			"GET " + as.issuer + "/.well-known/oauth-authorization-server 200",
			"POST " + as.issuer + "/register 201",
			"POST " + as.issuer + "/token 200",
		})
		au, err := url.Parse(res.AuthorizationURL)
		require.NoError(t, err)
		assert.Equal(t, as.issuer+"/authorize", au.Scheme+"://"+au.Host+au.Path)
		q := au.Query()
		assert.Equal(t, resource, q.Get("resource"), "the resource indicator is mcpguard's canonical URI")
		assert.Equal(t, "tools", q.Get("scope"), "the scope the challenge named")
		assert.Equal(t, "S256", q.Get("code_challenge_method"))
		assert.Equal(t, "test-state", res.ReturnedState)
		as.mu.Lock()
		require.Len(t, as.tokenReqs, 1)
		assert.Equal(t, resource, as.tokenReqs[0].Get("resource"))
		as.mu.Unlock()

		// Authorized: the token's principal is served and decided for.
		assert.Equal(t, "tools", res.TokenScope)
		assert.Equal(t, []string{"echo"}, res.Tools, "the policy grants echo only")
		assert.False(t, res.Call.IsError, res.Call.Text)
		assert.Contains(t, res.Call.Text, "hello through OAuth")
		recs := readDecisions(t, logPath)
		require.NotEmpty(t, recs)
		last := recs[len(recs)-1]
		assert.Equal(t, "agent", last.Principal, "the token's subject")
		assert.Equal(t, "echo", last.Tool)
		assert.Equal(t, "allow", last.Effect)
	})

	mint := func(claims jwt.MapClaims, key *ecdsa.PrivateKey) string {
		base := jwt.MapClaims{"aud": resource, "scope": "tools"}
		for k, v := range claims {
			base[k] = v
		}
		tok, err := as.mint(base, key)
		require.NoError(t, err)
		return tok
	}
	valid := mint(nil, nil)
	p := &httpPeer{url: resource, client: &http.Client{}}
	post := func(method, body, session string, hdr http.Header) *http.Response {
		req, err := http.NewRequest(method, resource, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set(server.HeaderKeySessionID, session)
			req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := p.client.Do(req)
		require.NoError(t, err)
		if method == http.MethodPost {
			// A call's stream ends with its response (or, polled, after
			// a few seconds): read it, so the call is over when post is.
			io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close() // the status and headers are what count (a GET is an endless stream)
		return resp
	}
	open := func() string {
		resp := post("POST", string(initializeMsg), "", bearer(valid))
		require.Equal(t, http.StatusOK, resp.StatusCode, "mcpguard: %s", out.String())
		s := resp.Header.Get(server.HeaderKeySessionID)
		require.NotEmpty(t, s)
		require.Equal(t, http.StatusAccepted, post("POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, s, bearer(valid)).StatusCode)
		return s
	}

	t.Run("every method refused without a valid token", func(t *testing.T) {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		bad := map[string]string{
			"no token":       "",
			"bad signature":  mint(nil, other),
			"wrong audience": mint(jwt.MapClaims{"aud": "http://" + addr + "/other"}, nil),
			"expired":        mint(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}, nil),
			"another issuer": mint(jwt.MapClaims{"iss": "https://evil.test"}, nil),
		}
		session := open()
		before := len(readDecisions(t, logPath))
		for _, m := range everyMethod {
			if m.httpMethod == "DELETE" {
				continue // with a valid token it would end the session the others use
			}
			// With a valid token each request is answered (whatever the
			// answer): the refusals below are the token's doing.
			resp := post(m.httpMethod, m.body, session, bearer(valid))
			// (mcp-go refuses a batch under the negotiated version: 400.)
			assert.Contains(t, []int{http.StatusOK, http.StatusAccepted, http.StatusBadRequest}, resp.StatusCode, "%s with a valid token", m.name)
			for name, tok := range bad {
				var hdr http.Header
				if tok != "" {
					hdr = bearer(tok)
				}
				for _, sess := range []string{"", session} {
					resp := post(m.httpMethod, m.body, sess, hdr)
					assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s, %s, session %q", m.name, name, sess)
					ch := resp.Header.Get("WWW-Authenticate")
					assert.Contains(t, ch, `resource_metadata="http://`+addr+`/.well-known/oauth-protected-resource/mcp"`, m.name)
					if tok != "" {
						assert.Contains(t, ch, `error="invalid_token"`, "%s, %s", m.name, name)
					}
					assert.Empty(t, resp.Header.Get(server.HeaderKeySessionID), "no session for %s, %s", m.name, name)
				}
			}
		}
		// The DELETE last: refused without a valid token, then honoured.
		for _, tok := range bad {
			var hdr http.Header
			if tok != "" {
				hdr = bearer(tok)
			}
			assert.Equal(t, http.StatusUnauthorized, post("DELETE", "", session, hdr).StatusCode)
		}
		assert.Equal(t, http.StatusOK, post("DELETE", "", session, bearer(valid)).StatusCode)
		after := readDecisions(t, logPath)
		var decided []string
		for _, r := range after[before:] {
			assert.Equal(t, "agent", r.Principal, "only the valid token's calls were decided")
			decided = append(decided, r.Tool)
		}
		assert.Equal(t, []string{"read_text_file", "resources/read", "resources/subscribe"}, decided,
			"the valid token's tools/call, resources/read and resources/subscribe, nothing else")
	})

	t.Run("insufficient scope", func(t *testing.T) {
		for _, scopes := range []string{"", "other", "Tools", "tools2"} {
			resp := post("POST", string(initializeMsg), "", bearer(mint(jwt.MapClaims{"scope": scopes}, nil)))
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, scopes)
			ch := resp.Header.Get("WWW-Authenticate")
			assert.Contains(t, ch, `error="insufficient_scope"`)
			assert.Contains(t, ch, `scope="tools"`)
		}
	})

	t.Run("Origin", func(t *testing.T) {
		for origin, want := range map[string]int{
			"https://evil.test":         http.StatusForbidden,
			"http://evil.test:80":       http.StatusForbidden,
			"null":                      http.StatusForbidden,
			"https://app.example.com":   http.StatusOK,
			"http://localhost:6274":     http.StatusOK, // a loopback page, to a loopback address
			"http://" + addr:            http.StatusOK, // the resource's own origin
			"https://app.example.com.x": http.StatusForbidden,
		} {
			resp := post("POST", string(initializeMsg), "", http.Header{"Authorization": {"Bearer " + valid}, "Origin": {origin}})
			assert.Equal(t, want, resp.StatusCode, origin)
			// The Origin is checked before the token.
			resp = post("POST", string(initializeMsg), "", http.Header{"Origin": {origin}})
			if want == http.StatusForbidden {
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
			} else {
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, origin)
			}
		}
		// DNS rebinding: a foreign name that resolves to the loopback address.
		req, err := http.NewRequest("POST", resource, bytes.NewReader(initializeMsg))
		require.NoError(t, err)
		req.Host = "rebind.evil.test:" + strings.Split(addr, ":")[1]
		req.Header.Set("Authorization", "Bearer "+valid)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := p.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})

	t.Run("credential placement", func(t *testing.T) {
		req, err := http.NewRequest("POST", resource+"?access_token="+valid, bytes.NewReader(initializeMsg))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := p.client.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a token in the query string is refused")
		assert.NotContains(t, string(body), valid)
		assert.Equal(t, http.StatusBadRequest, post("POST", string(initializeMsg), "", http.Header{"Authorization": {"Bearer " + valid, "Bearer " + valid}}).StatusCode)
		assert.Equal(t, http.StatusOK, post("POST", string(initializeMsg), "", http.Header{"Authorization": {"bearer " + valid}}).StatusCode)
	})

	t.Run("session bound to its principal", func(t *testing.T) {
		session := open()
		other := mint(jwt.MapClaims{"sub": "someone-else"}, nil)
		for _, m := range []string{"GET", "POST", "DELETE"} {
			body := ""
			if m == "POST" {
				body = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
			}
			assert.Equal(t, http.StatusNotFound, post(m, body, session, bearer(other)).StatusCode, m)
		}
		assert.Equal(t, http.StatusOK, post("POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, session, bearer(valid)).StatusCode)
	})

	assert.NotContains(t, out.String(), valid, "mcpguard does not log tokens")
}

// readDecisions reads the decision records of an audit log.
func readDecisions(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []audit.Record
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r audit.Record
		require.NoError(t, json.Unmarshal(line, &r))
		if r.Kind == audit.KindDecision {
			out = append(out, r)
		}
	}
	return out
}
