package guardmcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func TestCanonicalResourceURI(t *testing.T) {
	good := map[string]string{
		"https://mcp.example.com/mcp":          "https://mcp.example.com/mcp",
		"HTTPS://MCP.Example.COM/mcp":          "https://mcp.example.com/mcp",
		"https://mcp.example.com:443/mcp":      "https://mcp.example.com/mcp",
		"https://mcp.example.com:8443/mcp":     "https://mcp.example.com:8443/mcp",
		"https://mcp.example.com/mcp/":         "https://mcp.example.com/mcp",
		"https://mcp.example.com/mcp#frag":     "https://mcp.example.com/mcp",
		"https://mcp.example.com/":             "https://mcp.example.com",
		"https://mcp.example.com":              "https://mcp.example.com",
		"https://mcp.example.com/Server/MCP":   "https://mcp.example.com/Server/MCP",
		"http://127.0.0.1:8080/mcp":            "http://127.0.0.1:8080/mcp",
		"http://localhost:80/mcp":              "http://localhost/mcp",
		"http://[::1]:9000/mcp":                "http://[::1]:9000/mcp",
		"https://mcp.example.com/a%2Fb/mcp":    "https://mcp.example.com/a%2Fb/mcp",
		"https://xn--bcher-kva.example/mcp":    "https://xn--bcher-kva.example/mcp",
		"https://mcp.example.com/mcp/#section": "https://mcp.example.com/mcp",
	}
	for in, want := range good {
		got, err := guardmcp.CanonicalResourceURI(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{
		"", "mcp.example.com/mcp", "/mcp", "https:///mcp",
		"http://mcp.example.com/mcp",        // plain http off loopback
		"https://user:pw@mcp.example.com/x", // credentials in the URI
		"https://mcp.example.com/mcp?x=1",   // a query
		"https://mcp.example.com/mcp?",      // an empty query
		"ftp://mcp.example.com/mcp",
		"https://mcp.example.com/../mcp", // dot segments
		"https://mcp.example.com/a/./mcp",
		"https://mcp.example.com/a/..",
		"mailto:a@example.com",
	} {
		_, err := guardmcp.CanonicalResourceURI(in)
		assert.Error(t, err, in)
	}
}

// authFixture is a guarded in-process MCP server with tools, a resource,
// a prompt and completion, behind ProtectedResource.Require, with a count
// of the MCP sessions it created.
type authFixture struct {
	jf       *jwtFixture
	ts       *httptest.Server
	res      *guardmcp.ProtectedResource
	resource string
	sessions atomic.Int32
	sink     *memSink
	reached  atomic.Int32 // requests that got past Require
}

// authPolicy is testPolicy with the fixture's resource and prompt granted
// to fs.read, so a valid token reads and gets them.
var authPolicy = strings.Replace(testPolicy, "  fs.write:\n", `      - resources: ["file:///w/**"]
      - prompts: [p]
  fs.write:
`, 1)

func newAuthFixture(t *testing.T, required ...string) *authFixture {
	t.Helper()
	f := &authFixture{jf: newJWTFixture(t), sink: &memSink{}}
	p, err := scope.Parse([]byte(authPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(f.sink))
	require.NoError(t, err)
	hooks := &server.Hooks{}
	hooks.AddOnRegisterSession(func(context.Context, server.ClientSession) { f.sessions.Add(1) })
	s := server.NewMCPServer("files", "1", append(guardmcp.ServerOptions(g),
		server.WithHooks(hooks), server.WithResourceCapabilities(true, true), server.WithPromptCapabilities(true),
		server.WithCompletions())...)
	echo := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(req.Params.Name + " " + req.GetString("path", "")), nil
	}
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("read_text_file", "", json.RawMessage(pathSchema)), echo))
	s.AddResource(mcp.NewResource("file:///w/secret.txt", "secret"), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "file:///w/secret.txt", Text: "the secret"}}, nil
	})
	s.AddPrompt(mcp.NewPrompt("p", mcp.WithArgument("a")), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("p", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("the prompt"))}), nil
	})

	mux := http.NewServeMux()
	f.ts = httptest.NewUnstartedServer(mux)
	f.resource = "http://" + f.ts.Listener.Addr().String() + "/mcp"
	keys, err := guardmcp.ParseJWKS(f.jf.jwks)
	require.NoError(t, err)
	v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: f.resource, Issuer: "https://idp.test"})
	require.NoError(t, err)
	f.res, err = guardmcp.NewProtectedResource(guardmcp.ResourceOptions{
		Resource: f.resource, AuthorizationServers: []string{"https://idp.test"},
		ScopesSupported: []string{"fs.read", "fs.write"}, RequiredScopes: required, Verifier: v,
	})
	require.NoError(t, err)
	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(f.res.PrincipalFunc())),
		server.WithSessionIdManagerResolver(f.res.SessionIDs()))
	mux.Handle("/mcp", f.res.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.reached.Add(1)
		assert.Empty(t, r.Header.Values("Authorization"), "the token goes no further than Require")
		h.ServeHTTP(w, r)
	})))
	f.res.Mount(mux)
	f.ts.Start()
	t.Cleanup(f.ts.Close)
	return f
}

// claims are valid claims for the fixture's resource.
func (f *authFixture) claims() jwt.MapClaims {
	c := validClaims()
	c["aud"] = f.resource
	return c
}

func (f *authFixture) token(t *testing.T, mod func(jwt.MapClaims)) string {
	return f.jf.sign(t, f.claims(), mod)
}

// send makes one HTTP request to the MCP endpoint.
func (f *authFixture) send(t *testing.T, method, body, session string, hdr http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+"/mcp", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set(server.HeaderKeySessionID, session)
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// everyMethod is a request of each MCP method, and the HTTP requests that
// are not JSON-RPC calls (the SSE stream and the session's end).
var everyMethod = []struct{ name, httpMethod, body string }{
	{"initialize", "POST", string(initializeMsg)},
	{"notifications/initialized", "POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
	{"ping", "POST", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
	{"tools/list", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
	{"tools/call", "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"/w/a"}}}`},
	{"resources/list", "POST", `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`},
	{"resources/templates/list", "POST", `{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`},
	{"resources/read", "POST", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///w/secret.txt"}}`},
	{"resources/subscribe", "POST", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///w/secret.txt"}}`},
	{"prompts/list", "POST", `{"jsonrpc":"2.0","id":1,"method":"prompts/list"}`},
	{"prompts/get", "POST", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"x"}}}`},
	{"completion/complete", "POST", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"x"}}}`},
	{"logging/setLevel", "POST", `{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"debug"}}`},
	{"a batch", "POST", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"resources/list"}]`},
	{"GET (the SSE stream)", "GET", ""},
	{"DELETE (end the session)", "DELETE", ""},
}

// TestProtectedResourceRefusesEveryMethod: without a token that verifies,
// every request — any MCP method, resources, prompts and completion
// included, with or without a live session id — is answered 401 with a
// challenge naming the metadata, before the MCP server sees it: no session
// is created, nothing is listed, read or recorded, and the answer does not
// echo the token.
func TestProtectedResourceRefusesEveryMethod(t *testing.T) {
	f := newAuthFixture(t)
	otherKey := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, f.claims())
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(f.jf.other)
		require.NoError(t, err)
		return s
	}()
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, f.claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	bad := []struct {
		name, token, desc string
	}{
		{"no token", "", ""},
		{"bad signature", otherKey, "signature"},
		{"unsigned", unsigned, ""},
		{"expired", f.token(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "expired"},
		{"not yet valid", f.token(t, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "not valid yet"},
		{"wrong audience", f.token(t, func(c jwt.MapClaims) { c["aud"] = "mcp" }), "not issued for this resource"},
		{"another path on the same host", f.token(t, func(c jwt.MapClaims) { c["aud"] = strings.TrimSuffix(f.resource, "/mcp") + "/other" }), "not issued for this resource"},
		{"the resource with a trailing slash", f.token(t, func(c jwt.MapClaims) { c["aud"] = f.resource + "/" }), "not issued for this resource"},
		{"another issuer", f.token(t, func(c jwt.MapClaims) { c["iss"] = "https://evil.test" }), "does not trust"},
		{"no subject", f.token(t, func(c jwt.MapClaims) { delete(c, "sub") }), ""},
		{"not a JWT", "not.a.jwt", ""},
	}

	// A valid token opens a session, whose id the bad requests carry.
	valid := f.token(t, nil)
	resp := f.send(t, "POST", string(initializeMsg), "", bearer(valid))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	session := resp.Header.Get(server.HeaderKeySessionID)
	require.NotEmpty(t, session)
	require.Equal(t, http.StatusAccepted, f.send(t, "POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session, bearer(valid)).StatusCode)
	body, _ := io.ReadAll(f.send(t, "POST", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///w/secret.txt"}}`, session, bearer(valid)).Body)
	require.Contains(t, string(body), "the secret", "with a valid token the resource is read: the refusals below are the token's doing")
	require.EqualValues(t, 1, f.sessions.Load())
	require.Len(t, f.sink.decisions(), 1, "the read was decided")
	assert.Equal(t, "resources/read", f.sink.decisions()[0].Tool)
	assert.NotEmpty(t, f.sink.decisions()[0].Session, "a read belongs to the client's session, as a tool call does")
	reached := f.reached.Load()

	for _, b := range bad {
		for _, m := range everyMethod {
			for _, sess := range []string{"", session} {
				t.Run(b.name+"/"+m.name+"/session="+sess, func(t *testing.T) {
					var hdr http.Header
					if b.token != "" {
						hdr = bearer(b.token)
					}
					resp := f.send(t, m.httpMethod, m.body, sess, hdr)
					body, _ := io.ReadAll(resp.Body)
					require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)
					ch := resp.Header.Get("WWW-Authenticate")
					assert.True(t, strings.HasPrefix(ch, "Bearer "), ch)
					assert.Contains(t, ch, `resource_metadata="`+f.res.MetadataURL()+`"`)
					if b.token == "" {
						assert.NotContains(t, ch, "error=", "no error code when no credential was sent (RFC 6750, 3.1)")
					} else {
						assert.Contains(t, ch, `error="invalid_token"`)
						assert.Contains(t, ch, b.desc)
						assert.NotContains(t, string(body)+ch, b.token)
					}
					assert.Empty(t, resp.Header.Get(server.HeaderKeySessionID), "no session")
					assert.NotContains(t, string(body), "the secret")
					assert.NotContains(t, string(body), "the prompt")
				})
			}
		}
	}
	assert.EqualValues(t, 1, f.sessions.Load(), "no refused request created a session")
	assert.Equal(t, reached, f.reached.Load(), "no refused request reached the MCP server")
	assert.Len(t, f.sink.decisions(), 1, "no refused request was decided: nothing more was recorded")

	// The valid token still works in the session the refusals named.
	body, _ = io.ReadAll(f.send(t, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"/w/a"}}}`, session, bearer(valid)).Body)
	assert.Contains(t, string(body), "read_text_file /w/a")
	require.Len(t, f.sink.decisions(), 2)
	assert.Equal(t, "reader", f.sink.decisions()[1].Principal, "the token's subject is the principal the guard decided for")
	assert.Equal(t, f.sink.decisions()[0].Session, f.sink.decisions()[1].Session, "the read and the call share the client's session")
}

// TestProtectedResourceInsufficientScope: a valid token without a
// required scope is answered 403 insufficient_scope, naming the scopes.
func TestProtectedResourceInsufficientScope(t *testing.T) {
	f := newAuthFixture(t, "mcp:use", "fs.read")
	for _, tc := range []struct {
		scope string
		want  int
	}{
		{"fs.read", http.StatusForbidden},
		{"mcp:use", http.StatusForbidden},
		{"MCP:USE fs.read", http.StatusForbidden}, // scopes are case-sensitive
		{"mcp:usefs.read", http.StatusForbidden},
		{"fs.read mcp:use", http.StatusOK},
	} {
		tok := f.token(t, func(c jwt.MapClaims) { c["scope"] = tc.scope })
		resp := f.send(t, "POST", string(initializeMsg), "", bearer(tok))
		assert.Equal(t, tc.want, resp.StatusCode, tc.scope)
		if tc.want == http.StatusForbidden {
			ch := resp.Header.Get("WWW-Authenticate")
			assert.Contains(t, ch, `error="insufficient_scope"`)
			assert.Contains(t, ch, `scope="mcp:use fs.read"`)
			assert.Contains(t, ch, `resource_metadata="`+f.res.MetadataURL()+`"`)
			assert.Empty(t, resp.Header.Get(server.HeaderKeySessionID))
		}
	}
	// Without a token the challenge names the required scopes too, so a
	// client asks for them (MCP authorization, scope selection).
	ch := f.send(t, "POST", string(initializeMsg), "", nil).Header.Get("WWW-Authenticate")
	assert.Contains(t, ch, `scope="mcp:use fs.read"`)
	assert.EqualValues(t, 1, f.sessions.Load(), "only the token with both scopes opened a session")
}

// TestProtectedResourceMetadata: RFC 9728 metadata at the path-suffixed
// and the root well-known URI, public, read-only.
func TestProtectedResourceMetadata(t *testing.T) {
	f := newAuthFixture(t, "mcp:use")
	assert.Equal(t, f.ts.URL+"/.well-known/oauth-protected-resource/mcp", f.res.MetadataURL())
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(f.ts.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		var meta map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
		assert.Equal(t, f.resource, meta["resource"])
		assert.Equal(t, []any{"https://idp.test"}, meta["authorization_servers"])
		assert.Equal(t, []any{"fs.read", "fs.write"}, meta["scopes_supported"])
		assert.Equal(t, []any{"header"}, meta["bearer_methods_supported"], "tokens only in the header")
	}
	resp, err := http.Post(f.ts.URL+"/.well-known/oauth-protected-resource/mcp", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	_, err = guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: f.resource, AuthorizationServers: []string{"https://idp.test"}})
	assert.Error(t, err, "a verifier is required")
	v := f.jf.verifier
	_, err = guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: f.resource, Verifier: v})
	assert.Error(t, err, "an authorization server is required")
	_, err = guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: f.resource, Verifier: v,
		AuthorizationServers: []string{"http://idp.example.com"}})
	assert.Error(t, err, "an authorization server over plain http off loopback")
	_, err = guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: f.resource, Verifier: v,
		AuthorizationServers: []string{"https://idp.test"}, RequiredScopes: []string{`a" error="x`}})
	assert.Error(t, err, "a scope that would break the challenge")
	var zero guardmcp.ProtectedResource
	rec := httptest.NewRecorder()
	zero.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the zero value let a request through") })).
		ServeHTTP(rec, httptest.NewRequest("POST", "/mcp", nil))
	assert.NotEqual(t, http.StatusOK, rec.Code)
}

// TestProtectedResourceCredentialAttacks: other spellings and placements
// of the credential. A token is accepted only in one Authorization
// header, scheme "Bearer" in any case; never in the query string.
func TestProtectedResourceCredentialAttacks(t *testing.T) {
	f := newAuthFixture(t)
	valid := f.token(t, nil)
	tests := []struct {
		name   string
		hdr    []string
		query  string
		status int
		code   string
	}{
		{"valid", []string{"Bearer " + valid}, "", 200, ""},
		{"scheme in lower case", []string{"bearer " + valid}, "", 200, ""},
		{"scheme in upper case", []string{"BEARER " + valid}, "", 200, ""},
		{"two spaces", []string{"Bearer  " + valid}, "", 200, ""},
		{"trailing space (trimmed by HTTP)", []string{"Bearer " + valid + " "}, "", 200, ""},
		{"misspelled scheme", []string{"Baerer " + valid}, "", 401, ""},
		{"scheme with a colon", []string{"Bearer: " + valid}, "", 401, ""},
		{"no space", []string{"Bearer" + valid}, "", 401, ""},
		{"tab", []string{"Bearer\t" + valid}, "", 401, ""},
		{"token alone", []string{valid}, "", 401, ""},
		{"Basic", []string{"Basic cmVhZGVyOnJlYWRlcg=="}, "", 401, ""},
		{"Bearer and nothing", []string{"Bearer"}, "", 400, "invalid_request"},
		{"Bearer and spaces", []string{"Bearer   "}, "", 400, "invalid_request"},
		{"two headers, both valid", []string{"Bearer " + valid, "Bearer " + valid}, "", 400, "invalid_request"},
		{"two headers, one bad", []string{"Bearer x", "Bearer " + valid}, "", 400, "invalid_request"},
		{"two tokens in one header", []string{"Bearer " + valid + ", Bearer " + valid}, "", 401, "invalid_token"},
		{"a space inside", []string{"Bearer " + valid[:10] + " " + valid[10:]}, "", 401, "invalid_token"},
		{"a quoted token", []string{`Bearer "` + valid + `"`}, "", 401, "invalid_token"},
		{"non-ASCII", []string{"Bearer " + valid + "é"}, "", 401, "invalid_token"},
		{"a 64 KiB token", []string{"Bearer " + strings.Repeat("a", 64<<10)}, "", 401, "invalid_token"},
		{"token in the query", nil, "access_token=" + valid, 400, "invalid_request"},
		{"token in the query and the header", []string{"Bearer " + valid}, "access_token=" + valid, 400, "invalid_request"},
		{"query name in upper case", []string{"Bearer " + valid}, "ACCESS_TOKEN=" + valid, 400, "invalid_request"},
		{"query name percent-encoded", []string{"Bearer " + valid}, "access%5Ftoken=" + valid, 400, "invalid_request"},
		{"query after another parameter", []string{"Bearer " + valid}, "a=1;access_token=" + valid, 400, "invalid_request"},
		{"an unrelated query", []string{"Bearer " + valid}, "x_access_token=1", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", f.ts.URL+"/mcp?"+tt.query, bytes.NewReader(initializeMsg))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header["Authorization"] = tt.hdr
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			require.Equal(t, tt.status, resp.StatusCode, "%s", body)
			if tt.status == 200 {
				assert.NotEmpty(t, resp.Header.Get(server.HeaderKeySessionID))
				return
			}
			ch := resp.Header.Get("WWW-Authenticate")
			assert.Contains(t, ch, `resource_metadata="`+f.res.MetadataURL()+`"`)
			if tt.code != "" {
				assert.Contains(t, ch, `error="`+tt.code+`"`)
			} else {
				assert.NotContains(t, ch, "error=")
			}
			assert.NotContains(t, ch+string(body), valid, "the token is not echoed")
			assert.Less(t, len(body), 512)
		})
	}

	// A header bigger than the HTTP server takes is refused by it.
	req, err := http.NewRequest("POST", f.ts.URL+"/mcp", bytes.NewReader(initializeMsg))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("a", 2<<20))
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	}
	assert.Empty(t, f.sink.decisions())
}

// TestProtectedResourceSessionBinding: a session belongs to the principal
// that opened it. Another principal's valid token with that session id —
// on a call, the GET stream (where the session's notifications and
// server requests go), a response, or the DELETE — gets 404, as does a
// session id this resource did not issue or whose MAC was altered; the
// owner's session goes on.
func TestProtectedResourceSessionBinding(t *testing.T) {
	f := newAuthFixture(t)
	alice := f.token(t, func(c jwt.MapClaims) { c["sub"] = "alice" })
	bob := f.token(t, func(c jwt.MapClaims) { c["sub"] = "bob" })
	resp := f.send(t, "POST", string(initializeMsg), "", bearer(alice))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	session := resp.Header.Get(server.HeaderKeySessionID)
	require.True(t, strings.HasPrefix(session, "mcp-session-b1."), session)
	require.Equal(t, http.StatusAccepted, f.send(t, "POST", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, session, bearer(alice)).StatusCode)

	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	forged := session[:len(session)-2] + "AA"
	if forged == session {
		forged = session[:len(session)-2] + "BB"
	}
	for _, tc := range []struct {
		name, method, body, session, token string
	}{
		{"another principal's call", "POST", list, session, bob},
		{"another principal's GET stream", "GET", "", session, bob},
		{"another principal's response", "POST", `{"jsonrpc":"2.0","id":7,"result":{"action":"accept"}}`, session, bob},
		{"another principal's DELETE", "DELETE", "", session, bob},
		{"an altered MAC", "POST", list, forged, alice},
		{"the nonce alone", "POST", list, strings.SplitN(session, ".", 3)[0] + "." + strings.SplitN(session, ".", 3)[1], alice},
		{"mcp-go's own format", "POST", list, "mcp-session-9b2e1f4c-3f5e-4a8e-9a4b-1d2c3b4a5f6e", alice},
		{"another principal's GET stream, mcp-go's format", "GET", "", "mcp-session-9b2e1f4c-3f5e-4a8e-9a4b-1d2c3b4a5f6e", bob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.send(t, tc.method, tc.body, tc.session, bearer(tc.token))
			assert.Equal(t, http.StatusNotFound, resp.StatusCode)
			assert.NotEqual(t, "text/event-stream", resp.Header.Get("Content-Type"), "no stream")
		})
	}
	body, _ := io.ReadAll(f.send(t, "POST", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"/w/a"}}}`, session, bearer(alice)).Body)
	assert.Contains(t, string(body), "read_text_file /w/a", "the owner's session goes on")
	require.Len(t, f.sink.decisions(), 1)
	assert.Equal(t, "alice", f.sink.decisions()[0].Principal)
	assert.Equal(t, http.StatusOK, f.send(t, "DELETE", "", session, bearer(alice)).StatusCode, "the owner may end it")
	assert.EqualValues(t, 1, f.sessions.Load(), "bob's GETs attached to no session and opened none")
}
