package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// fronted is a DialProxy proxy under the allow-all policy, served over
// streamable HTTP, with a client of it and a client of the upstream itself.
type fronted struct {
	c, direct        *client.Client
	init, directInit *mcp.InitializeResult
	sink             *memSink
}

func newFronted(t *testing.T, ctx context.Context, up guardmcp.Upstream) fronted {
	t.Helper()
	var f fronted
	var tr transport.Interface
	if len(up.Command) > 0 {
		tr = transport.NewStdio(up.Command[0], nil, up.Command[1:]...)
	} else {
		h, err := transport.NewStreamableHTTP(up.URL)
		require.NoError(t, err)
		tr = h
	}
	f.direct = client.NewClient(tr, client.WithLegacyProtocolOnly())
	require.NoError(t, f.direct.Start(ctx))
	t.Cleanup(func() { f.direct.Close() })
	var err error
	f.directInit, err = f.direct.Initialize(ctx, initRequest("direct"))
	require.NoError(t, err)

	pol, err := scope.Parse([]byte(allowAllPolicy))
	require.NoError(t, err)
	f.sink = &memSink{}
	g, err := toolguard.New(pol, toolguard.WithSink(f.sink))
	require.NoError(t, err)
	up.ClientOptions = []client.ClientOption{client.WithLegacyProtocolOnly()}
	px, err := guardmcp.DialProxy(ctx, up, g)
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	pr := scope.Principal{ID: "agent", Scopes: []string{"all"}}
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(guardmcp.Static(pr)))))
	t.Cleanup(front.Close)
	ftr, err := transport.NewStreamableHTTP(front.URL)
	require.NoError(t, err)
	f.c = client.NewClient(ftr, client.WithLegacyProtocolOnly())
	require.NoError(t, f.c.Start(ctx))
	t.Cleanup(func() { f.c.Close() })
	f.init, err = f.c.Initialize(ctx, initRequest("front"))
	require.NoError(t, err)
	return f
}

func initRequest(name string) mcp.InitializeRequest {
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "guardmcp-test-" + name, Version: "1"}
	return req
}

func names[T any](list []T, name func(T) string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		out = append(out, name(v))
	}
	return out
}

func everythingStdio(mods string) guardmcp.Upstream {
	return guardmcp.Upstream{Command: []string{"node",
		filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio"}}
}

// TestProxyKeepsUpstreamListOrder: tools, prompts and resource templates
// of server-everything, and the resources of a TypeScript SDK server, come
// through the proxy in the upstream's order (mcp-go sorts what it lists by
// name), with the server's title and each tool's execution settings.
func TestProxyKeepsUpstreamListOrder(t *testing.T) {
	mods := requireExternal(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFronted(t, ctx, everythingStdio(mods))
	require.NotEmpty(t, f.directInit.ServerInfo.Title)
	assert.Equal(t, f.directInit.ServerInfo.Title, f.init.ServerInfo.Title)

	tools, err := f.c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	want, err := f.direct.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	toolName := func(t mcp.Tool) string { return t.Name }
	require.Equal(t, names(want.Tools, toolName), names(tools.Tools, toolName))
	for i := range want.Tools {
		assert.Equal(t, want.Tools[i].Execution, tools.Tools[i].Execution, want.Tools[i].Name)
	}

	prompts, err := f.c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	require.NoError(t, err)
	wantPrompts, err := f.direct.ListPrompts(ctx, mcp.ListPromptsRequest{})
	require.NoError(t, err)
	promptName := func(p mcp.Prompt) string { return p.Name }
	require.NotEqual(t, "args-prompt", wantPrompts.Prompts[0].Name, "the upstream's prompts are not in name order")
	assert.Equal(t, names(wantPrompts.Prompts, promptName), names(prompts.Prompts, promptName))

	templates, err := f.c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	wantTemplates, err := f.direct.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	templateName := func(t mcp.ResourceTemplate) string { return t.Name }
	require.Equal(t, "Dynamic Text Resource", wantTemplates.ResourceTemplates[0].Name, "the upstream's templates are not in name order")
	assert.Equal(t, names(wantTemplates.ResourceTemplates, templateName), names(templates.ResourceTemplates, templateName))

	// Resources, of a server that lists them out of name order.
	port := freePort(t)
	srv := exec.Command("node", filepath.Join(mods, "..", "session-requests.mjs"))
	srv.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	startProcess(t, srv)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, 20*time.Second)
	r := newFronted(t, ctx, guardmcp.Upstream{URL: "http://" + addr + "/mcp"})
	res, err := r.c.ListResources(ctx, mcp.ListResourcesRequest{})
	require.NoError(t, err)
	assert.Equal(t, []string{"zeta", "alpha"}, names(res.Resources, func(r mcp.Resource) string { return r.Name }))
}

// TestProxyTaskParamsAreGuarded: the proxy does not announce the tasks
// capability that server-everything announces, and a tools/call that asks
// for task-augmented execution anyway is decided and recorded by the guard
// like any other and forwarded synchronously: the client gets the tool's
// result, or for a tool that requires a task the upstream's refusal.
func TestProxyTaskParamsAreGuarded(t *testing.T) {
	mods := requireExternal(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newFronted(t, ctx, everythingStdio(mods))
	require.NotNil(t, f.directInit.Capabilities.Tasks, "server-everything announces tasks")
	assert.Nil(t, f.init.Capabilities.Tasks, "the proxy does not")

	call := func(id int64, name string, args map[string]any) *transport.JSONRPCResponse {
		t.Helper()
		resp, err := f.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(id),
			Method: "tools/call", Params: map[string]any{"name": name, "arguments": args, "task": map[string]any{"ttl": 60000}}})
		require.NoError(t, err)
		return resp
	}
	resp := call(1, "echo", map[string]any{"message": "t-41"})
	require.Nil(t, resp.Error)
	var res struct {
		Content []mcp.TextContent `json:"content"`
		Task    any               `json:"task"`
	}
	require.NoError(t, json.Unmarshal(resp.Result, &res), "%s", resp.Result)
	assert.Nil(t, res.Task, "a tool result, not a task: %s", resp.Result)
	require.Len(t, res.Content, 1)
	assert.Equal(t, "Echo: t-41", res.Content[0].Text)

	resp = call(2, "simulate-research-query", map[string]any{"topic": "t-42"})
	refused := string(resp.Result)
	if resp.Error != nil {
		refused = resp.Error.Message
	}
	assert.Contains(t, refused, "requires task augmentation", "the upstream was called without a task")

	// tasks/list is not forwarded: mcp-go refuses it.
	resp, err := f.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(3)),
		Method: "tasks/list", Params: map[string]any{}})
	require.NoError(t, err)
	assert.NotNil(t, resp.Error, "tasks/list: %s", resp.Result)

	var decided []string
	for _, r := range f.sink.decisions() {
		decided = append(decided, r.Tool+" "+r.Effect)
	}
	assert.Equal(t, []string{"echo allow", "simulate-research-query allow"}, decided, "both calls were decided and recorded")
}

// completionsFunc adapts a function to server.PromptCompletionProvider.
type completionsFunc func(ctx context.Context, prompt string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error)

func (f completionsFunc) CompletePromptArgument(ctx context.Context, prompt string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return f(ctx, prompt, arg, cc)
}

// TestProxyCompletionKeepsHasMore: a completion's values, total and
// hasMore come through the proxy as the upstream sent them.
func TestProxyCompletionKeepsHasMore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	up := server.NewMCPServer("completer", "1", server.WithToolCapabilities(false), server.WithPromptCapabilities(true), server.WithCompletions(),
		server.WithPromptCompletionProvider(completionsFunc(func(context.Context, string, mcp.CompleteArgument, mcp.CompleteContext) (*mcp.Completion, error) {
			return &mcp.Completion{Values: []string{"c-1", "c-2"}, Total: 57, HasMore: true}, nil
		})))
	up.AddPrompt(mcp.NewPrompt("pick", mcp.WithArgument("which")), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("pick", nil), nil
	})
	upTS := httptest.NewServer(server.NewStreamableHTTPServer(up))
	t.Cleanup(upTS.Close)
	f := newFronted(t, ctx, guardmcp.Upstream{URL: upTS.URL})

	resp, err := f.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(1)),
		Method: "completion/complete", Params: map[string]any{
			"ref": map[string]any{"type": "ref/prompt", "name": "pick"}, "argument": map[string]any{"name": "which", "value": "c"}}})
	require.NoError(t, err)
	require.Nil(t, resp.Error)
	assert.JSONEq(t, `{"completion":{"values":["c-1","c-2"],"total":57,"hasMore":true}}`, string(resp.Result))
}
