package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// invalidParams is an upstream's own -32602.
type invalidParams struct{ msg string }

func (e invalidParams) Error() string { return e.msg }
func (e invalidParams) JSONRPCError() mcp.JSONRPCError {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, Error: mcp.JSONRPCErrorDetails{Code: mcp.INVALID_PARAMS, Message: e.msg, Data: map[string]any{"field": "n"}}}
}

// upstreamLog records what reached the upstream.
type upstreamLog struct {
	mu       sync.Mutex
	sessions map[string]bool
	reads    []string
	subs     []string
}

func (l *upstreamLog) add(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}

// poolUpstream is an mcp-go server over HTTP with a title, a task-optional
// tool, a tool that fails with -32602, a resource and subscriptions.
func poolUpstream(t *testing.T) (*httptest.Server, *upstreamLog) {
	t.Helper()
	log := &upstreamLog{sessions: map[string]bool{}}
	hooks := &server.Hooks{}
	hooks.AddBeforeReadResource(func(ctx context.Context, _ any, req *mcp.ReadResourceRequest) {
		log.add(func() { log.reads = append(log.reads, req.Params.URI) })
	})
	hooks.AddBeforeSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest) {
		log.add(func() { log.subs = append(log.subs, req.Params.URI) })
	})
	hooks.AddAfterInitialize(func(ctx context.Context, _ any, _ *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			log.add(func() { log.sessions[s.SessionID()] = true })
		}
	})
	up := server.NewMCPServer("pooled", "1", server.WithToolCapabilities(true), server.WithTitle("Pooled Upstream 3c1f"),
		server.WithResourceCapabilities(true, true), server.WithHooks(hooks))
	up.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res := mcp.NewToolResultText("echo " + req.GetString("text", ""))
		if m := req.Params.Meta; m != nil && m.AdditionalFields["note"] != nil {
			// The client's _meta reached the upstream; the result's goes back.
			res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"seen": m.AdditionalFields["note"]}}
		}
		return res, nil
	})
	strict := mcp.NewTool("strict", mcp.WithNumber("n"))
	up.AddTool(strict, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, server.NewHandlerError(invalidParams{"n must be prime"})
	})
	later := mcp.NewTool("later")
	later.Execution = &mcp.ToolExecution{TaskSupport: mcp.TaskSupportOptional}
	up.AddTool(later, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("done"), nil
	})
	up.AddResource(mcp.NewResource("test://listed", "listed"), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "listed"}}, nil
	})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(ts.Close)
	return ts, log
}

// whoFunc takes the principal from the X-Who header (a stand-in for a
// verified token).
func whoFunc(_ context.Context, r *http.Request) (scope.Principal, error) {
	who := r.Header.Get("X-Who")
	if who == "" {
		return scope.Principal{}, errors.New("no X-Who header")
	}
	return scope.Principal{ID: who, Scopes: []string{"all"}}, nil
}

func poolProxy(t *testing.T, ctx context.Context, upURL string, opts ...guardmcp.Option) (*guardmcp.Proxy, *httptest.Server) {
	t.Helper()
	pol, err := scope.Parse([]byte(allowAllPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(pol, toolguard.WithSink(&memSink{}))
	require.NoError(t, err)
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{URL: upURL,
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()}}, g, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(whoFunc))))
	t.Cleanup(front.Close)
	return px, front
}

func poolClient(t *testing.T, ctx context.Context, url, who string) (*client.Client, *mcp.InitializeResult) {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"X-Who": who}))
	require.NoError(t, err)
	c := client.NewClient(tr, client.WithLegacyProtocolOnly())
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "pool-test-" + who, Version: "1"}
	res, err := c.Initialize(ctx, init)
	require.NoError(t, err)
	return c, res
}

func poolCall(t *testing.T, ctx context.Context, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return c.CallTool(ctx, req)
}

// TestDialProxyFaithfulPassthrough: the upstream's title and a tool's
// execution settings are served as the upstream has them; _meta goes both
// ways; the upstream's
// -32602 reaches the client with its code, message and data and no
// prefix; resources/read of a URI the upstream does not list is forwarded
// to the upstream (whose not-found error comes back), and subscriptions
// are forwarded; each client has an upstream session of its own.
func TestDialProxyFaithfulPassthrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	upTS, log := poolUpstream(t)
	px, front := poolProxy(t, ctx, upTS.URL)
	c, init := poolClient(t, ctx, front.URL, "alice")
	assert.Equal(t, "Pooled Upstream 3c1f", init.ServerInfo.Title)

	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	var later *mcp.Tool
	for i := range tools.Tools {
		if tools.Tools[i].Name == "later" {
			later = &tools.Tools[i]
		}
	}
	require.NotNil(t, later)
	require.NotNil(t, later.Execution, "the tool's execution settings are kept")
	assert.Equal(t, mcp.TaskSupportOptional, later.Execution.TaskSupport)

	// The upstream's JSON-RPC error, unchanged. Read raw, to see the code.
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(900)),
		Method: "tools/call", Params: map[string]any{"name": "strict", "arguments": map[string]any{"n": 4}}})
	require.NoError(t, err)
	require.NotNil(t, resp.Error, "a JSON-RPC error, not a result: %s", resp.Result)
	assert.Equal(t, mcp.INVALID_PARAMS, resp.Error.Code)
	assert.Equal(t, "n must be prime", resp.Error.Message)
	assert.Equal(t, map[string]any{"field": "n"}, resp.Error.Data)

	// An unlisted URI is asked of the upstream.
	resp, err = c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(901)),
		Method: "resources/read", Params: map[string]any{"uri": "test://unlisted-77"}})
	require.NoError(t, err)
	require.NotNil(t, resp.Error)
	assert.Equal(t, mcp.RESOURCE_NOT_FOUND, resp.Error.Code, resp.Error.Message)
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "test://listed"
	got, err := c.ReadResource(ctx, rr)
	require.NoError(t, err)
	require.Len(t, got.Contents, 1)
	templates, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	assert.Empty(t, templates.ResourceTemplates, "the catch-all route is never listed")

	meta := mcp.CallToolRequest{}
	meta.Params.Name = "echo"
	meta.Params.Arguments = map[string]any{"text": "m"}
	meta.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{"note": "n-5e"}}
	mres, err := c.CallTool(ctx, meta)
	require.NoError(t, err)
	require.NotNil(t, mres.Meta, "the result's _meta is kept")
	assert.Equal(t, "n-5e", mres.Meta.AdditionalFields["seen"], "the call's _meta reached the upstream")

	sr := mcp.SubscribeRequest{}
	sr.Params.URI = "test://listed"
	require.NoError(t, c.Subscribe(ctx, sr))

	log.mu.Lock()
	assert.Equal(t, []string{"test://unlisted-77", "test://listed"}, log.reads)
	assert.Equal(t, []string{"test://listed"}, log.subs)
	log.mu.Unlock()

	b, _ := poolClient(t, ctx, front.URL, "bob")
	res, err := poolCall(t, ctx, b, "echo", map[string]any{"text": "hi"})
	require.NoError(t, err)
	assert.Equal(t, "echo hi", resultText(res))
	assert.Equal(t, 2, px.UpstreamSessions(), "alice and bob each have an upstream session")
	log.mu.Lock()
	assert.Len(t, log.sessions, 3, "the listing session and one per client")
	log.mu.Unlock()
}

// TestDialProxySessionBounds: beyond WithMaxSessions a client gets an
// error result that says why; an idle upstream session is closed and a
// new one opened when its client comes back; a request that carries
// another principal's session id is refused.
func TestDialProxySessionBounds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	upTS, _ := poolUpstream(t)
	px, front := poolProxy(t, ctx, upTS.URL, guardmcp.WithMaxSessions(1), guardmcp.WithSessionIdle(300*time.Millisecond))

	a, _ := poolClient(t, ctx, front.URL, "alice")
	res, err := poolCall(t, ctx, a, "echo", map[string]any{"text": "one"})
	require.NoError(t, err)
	assert.Equal(t, "echo one", resultText(res))

	b, _ := poolClient(t, ctx, front.URL, "bob")
	res, err = poolCall(t, ctx, b, "echo", map[string]any{"text": "two"})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, resultText(res), "too many client sessions")
	assert.NotContains(t, resultText(res), "guardmcp")

	// Idle: alice's upstream session is closed, then bob gets one.
	require.Eventually(t, func() bool { return px.UpstreamSessions() == 0 }, 5*time.Second, 50*time.Millisecond)
	res, err = poolCall(t, ctx, b, "echo", map[string]any{"text": "three"})
	require.NoError(t, err)
	assert.Equal(t, "echo three", resultText(res))

	// Mallory replays bob's session id with her own identity.
	bobSession := b.GetSessionId()
	require.NotEmpty(t, bobSession)
	peer := &httpPeer{url: front.URL, session: bobSession, client: front.Client()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, peer.url, strings.NewReader(
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"stolen"}}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(server.HeaderKeySessionID, bobSession)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_LEGACY_PROTOCOL_VERSION)
	req.Header.Set("X-Who", "mallory")
	httpResp, err := front.Client().Do(req)
	require.NoError(t, err)
	defer httpResp.Body.Close()
	var out struct {
		Result mcp.CallToolResult `json:"result"`
	}
	body := readSSEOrJSON(t, httpResp)
	require.NoError(t, json.Unmarshal(body, &out), "%s", body)
	assert.True(t, out.Result.IsError, "%s", body)
	assert.Contains(t, string(body), "belongs to another principal")
	assert.NotContains(t, string(body), "echo stolen")
}

// readSSEOrJSON returns the JSON-RPC message of a response, plain or in an
// SSE event.
func readSSEOrJSON(t *testing.T, r *http.Response) []byte {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	s := sb.String()
	for _, line := range strings.Split(s, "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(d, `"id"`) {
			return []byte(d)
		}
	}
	return []byte(s)
}
