package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
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

// headerRecorder records the Authorization and Cookie headers of every
// request an upstream receives.
type headerRecorder struct {
	mu       sync.Mutex
	requests int
	seen     []string
}

func (h *headerRecorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.requests++
		h.seen = append(h.seen, r.Header.Values("Authorization")...)
		h.seen = append(h.seen, r.Header.Values("Cookie")...)
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// TestProxyNeverForwardsTheClientToken: the bearer token that authenticates
// a client to the proxy is checked there (audience, issuer, signature) and
// never reaches the upstream server, on any request — initialize, list or
// a call the policy allows — so the upstream cannot use it elsewhere
// (MCP "token passthrough").
//
// It runs with both ways of authenticating clients over HTTP: the context
// function alone, and ProtectedResource.Require (the MCP authorization
// specification) in front of it.
func TestProxyNeverForwardsTheClientToken(t *testing.T) {
	t.Run("context function", func(t *testing.T) { tokenNotForwarded(t, false) })
	t.Run("protected resource", func(t *testing.T) { tokenNotForwarded(t, true) })
}

func tokenNotForwarded(t *testing.T, protected bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The upstream: a streamable HTTP server that records the headers it gets.
	up := server.NewMCPServer("upstream", "1", server.WithToolCapabilities(true))
	called := make(chan string, 4)
	up.AddTool(mcp.NewToolWithRawSchema("read_text_file", "Read a file", json.RawMessage(pathSchema)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			called <- req.GetString("path", "")
			return mcp.NewToolResultText("contents"), nil
		})
	rec := &headerRecorder{}
	upTS := httptest.NewServer(rec.wrap(server.NewStreamableHTTPServer(up)))
	defer upTS.Close()

	// The proxy, authenticating its clients with bearer tokens.
	f := newJWTFixture(t)
	sink := &memSink{}
	g := testGuard(t, sink)
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{URL: upTS.URL,
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()}}, g)
	require.NoError(t, err)
	defer px.Close()
	var pxTS *httptest.Server
	if protected {
		res, err := guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: "http://127.0.0.1/mcp",
			AuthorizationServers: []string{"https://idp.test"}, Verifier: f.verifier})
		require.NoError(t, err)
		pxTS = httptest.NewServer(res.Require(server.NewStreamableHTTPServer(px.Server(),
			server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(res.PrincipalFunc())))))
	} else {
		pxTS = httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
			server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(f.verifier.PrincipalFunc()))))
	}
	defer pxTS.Close()

	token := f.sign(t, validClaims(), nil)
	c, err := client.NewStreamableHttpClient(pxTS.URL, transport.WithHTTPHeaders(map[string]string{
		"Authorization": "Bearer " + token, "Cookie": "session=" + token}))
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
	require.Len(t, tools.Tools, 1, "the token's principal sees the tool")

	req := mcp.CallToolRequest{}
	req.Params.Name = "read_text_file"
	req.Params.Arguments = map[string]any{"path": "/w/a.txt"}
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	require.False(t, res.IsError, "the policy allows the call")
	select {
	case p := <-called:
		assert.Equal(t, "/w/a.txt", p, "the call reached the upstream")
	case <-ctx.Done():
		t.Fatal("the call never reached the upstream")
	}
	require.Len(t, sink.decisions(), 1)
	assert.Equal(t, "reader", sink.decisions()[0].Principal, "the record names the token's subject")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Greater(t, rec.requests, 2, "initialize, list and call went upstream")
	assert.Empty(t, rec.seen, "no Authorization or Cookie header reached the upstream")
}

// TestSessionIDIsNotACredential: over streamable HTTP the principal comes
// from the bearer token of each request, never from the session. A request
// that carries another client's session id but no token is denied for want
// of a principal; one with a token of its own is decided, and recorded, as
// its own subject (MCP "session hijacking").
func TestSessionIDIsNotACredential(t *testing.T) {
	f := newJWTFixture(t)
	sink := &memSink{}
	g := testGuard(t, sink)
	ts := httptest.NewServer(server.NewStreamableHTTPServer(fileServer(t, g),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(f.verifier.PrincipalFunc()))))
	defer ts.Close()

	victim := &httpPeer{url: ts.URL, token: f.sign(t, validClaims(), nil), client: ts.Client()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, _ := victim.post(t, ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+
		mcp.LATEST_LEGACY_PROTOCOL_VERSION+`","capabilities":{},"clientInfo":{"name":"victim","version":"1"}}}`), nil)
	victim.session = resp.Header.Get(server.HeaderKeySessionID)
	require.NotEmpty(t, victim.session, "the server issued a session id")

	call := []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"/w/a.txt"}}}`)
	result := func(msg []byte) (isError bool, text string) {
		var r struct {
			Result struct {
				IsError bool `json:"isError"`
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal(msg, &r), "%s", msg)
		require.NotEmpty(t, r.Result.Content, "%s", msg)
		return r.Result.IsError, r.Result.Content[0].Text
	}
	isErr, text := result(victim.call(t, 2, call, nil))
	require.False(t, isErr, "the victim's own call is allowed: %s", text)

	// The session id alone: no principal, denied.
	thief := &httpPeer{url: ts.URL, session: victim.session, client: ts.Client()}
	isErr, text = result(thief.call(t, 2, call, nil))
	assert.True(t, isErr, "a stolen session id without a token is denied")
	assert.Contains(t, text, "principal")

	// The session id with the thief's own valid token: decided as the
	// thief, who holds no scope.
	thief.token = f.sign(t, validClaims(), func(c jwt.MapClaims) { c["sub"] = "mallory"; delete(c, "scope") })
	isErr, text = result(thief.call(t, 2, call, nil))
	assert.True(t, isErr, "the thief gets the thief's rights, not the victim's: %s", text)

	recs := sink.decisions()
	require.Len(t, recs, 3)
	assert.Equal(t, []string{"reader", "", "mallory"}, []string{recs[0].Principal, recs[1].Principal, recs[2].Principal})
	assert.Equal(t, []string{"allow", "deny", "deny"}, []string{recs[0].Effect, recs[1].Effect, recs[2].Effect})
}
