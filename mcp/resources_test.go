package guardmcp_test

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const dataPolicy = `
version: 1
scopes:
  docs:
    grants:
      - resources: ["file:///w/**"]
      - prompts: [summarize]
        when: '!has(args.style) || args.style != "leak"'
rules:
  - name: no-secrets
    effect: deny
    resources: ["file:///w/secret/**"]
`

// completions is a completion provider that records what it was asked.
type completions struct {
	mu    sync.Mutex
	asked []string
}

func (c *completions) CompletePromptArgument(_ context.Context, name string, _ mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, "prompt "+name)
	return &mcp.Completion{Values: []string{"short", "long"}}, nil
}

func (c *completions) CompleteResourceArgument(_ context.Context, uri string, _ mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, "resource "+uri)
	return &mcp.Completion{Values: []string{"a.txt"}}, nil
}

// dataServer is an mcp-go server with resources, templates and prompts,
// guarded by ServerOptions. reads records the URIs its handlers served.
type dataServer struct {
	s     *server.MCPServer
	mu    sync.Mutex
	reads []string
}

func newDataServer(t *testing.T, g *toolguard.Guard) *dataServer {
	t.Helper()
	ds := &dataServer{}
	cp := &completions{}
	opts := []server.ServerOption{server.WithResourceCapabilities(false, true), server.WithPromptCapabilities(true),
		server.WithCompletions(), server.WithPromptCompletionProvider(cp), server.WithResourceCompletionProvider(cp)}
	ds.s = server.NewMCPServer("docs", "1", append(opts, guardmcp.ServerOptions(g)...)...)
	read := func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		ds.mu.Lock()
		ds.reads = append(ds.reads, req.Params.URI)
		ds.mu.Unlock()
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "contents"}}, nil
	}
	for _, u := range []string{"file:///w/a.txt", "file:///w/secret/key", "file:///etc/passwd"} {
		ds.s.AddResource(mcp.NewResource(u, u), read)
	}
	ds.s.AddResourceTemplate(mcp.NewResourceTemplate("file:///w/{name}", "workspace files"), read)
	ds.s.AddResourceTemplate(mcp.NewResourceTemplate("file:///etc/{name}", "system files"), read)
	prompt := func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("p", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("summarize "+req.Params.Arguments["style"]))}), nil
	}
	ds.s.AddPrompt(mcp.NewPrompt("summarize", mcp.WithArgument("style")), prompt)
	ds.s.AddPrompt(mcp.NewPrompt("admin-report"), prompt)
	return ds
}

func rpcResult(t *testing.T, ctx context.Context, s *server.MCPServer, msg string) (map[string]any, string) {
	t.Helper()
	resp := rpc(t, ctx, s, msg)
	if e, ok := resp["error"].(map[string]any); ok {
		return nil, e["message"].(string)
	}
	res, ok := resp["result"].(map[string]any)
	require.True(t, ok, "%s: %v", msg, resp)
	return res, ""
}

func fieldList(res map[string]any, list, field string) []string {
	var out []string
	items, _ := res[list].([]any)
	for _, it := range items {
		out = append(out, it.(map[string]any)[field].(string))
	}
	sort.Strings(out)
	return out
}

// TestGuardMCPResourcesAndPrompts: on an mcp-go server guarded by
// ServerOptions, a principal lists only granted resources, templates and
// prompts; reads the granted and not the others, under no spelling; gets
// only granted prompts with allowed arguments; gets completions only for
// granted prompts and templates; and every read and get is recorded.
func TestGuardMCPResourcesAndPrompts(t *testing.T) {
	p, err := scope.Parse([]byte(dataPolicy))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	ds := newDataServer(t, g)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})

	res, _ := rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
	assert.Equal(t, []string{"file:///w/a.txt"}, fieldList(res, "resources", "uri"))
	res, _ = rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`)
	assert.Equal(t, []string{"file:///w/{name}"}, fieldList(res, "resourceTemplates", "uriTemplate"))
	res, _ = rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"prompts/list"}`)
	assert.Equal(t, []string{"summarize"}, fieldList(res, "prompts", "name"))

	read := func(uri string) string {
		_, msg := rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":`+mustJSON(uri)+`}}`)
		return msg
	}
	assert.Empty(t, read("file:///w/a.txt"))
	assert.Empty(t, read("file:///w/b.txt"), "through the template")
	for _, uri := range []string{"file:///w/secret/key", "file:///etc/passwd", "file:///w/..%2Fsecret%2Fkey",
		"file:///w/..%2F..%2Fetc%2Fpasswd", "file:///w/%2E%2E%2Fetc%2Fpasswd", "file:///etc/shadow", "FILE:///etc/passwd", "file:///w/a.txt#x"} {
		msg := read(uri)
		assert.NotEmpty(t, msg, "%s must not be readable", uri)
		for _, pkg := range []string{"guardmcp", "toolguard", "scope:"} {
			assert.NotContains(t, msg, pkg, "the reason names no Go package")
		}
	}
	assert.Contains(t, read("file:///w/secret/key"), `denied by rule "no-secrets"`)
	resp := rpc(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///w/secret/key"}}`)
	assert.EqualValues(t, mcp.INVALID_PARAMS, resp["error"].(map[string]any)["code"], "a denied read is invalid params, as an unknown resource")
	resp = rpc(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"admin-report"}}`)
	assert.EqualValues(t, mcp.INVALID_PARAMS, resp["error"].(map[string]any)["code"])
	ds.mu.Lock()
	assert.Equal(t, []string{"file:///w/a.txt", "file:///w/b.txt"}, ds.reads, "only granted resources were read")
	ds.mu.Unlock()

	get := func(name, args string) string {
		_, msg := rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":`+mustJSON(name)+`,"arguments":`+args+`}}`)
		return msg
	}
	assert.Empty(t, get("summarize", `{"style":"short"}`))
	assert.Contains(t, get("summarize", `{"style":"leak"}`), "no scope held")
	assert.Contains(t, get("admin-report", `{}`), "no scope held")

	complete := func(ref string) []any {
		res, msg := rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":`+ref+`,"argument":{"name":"x","value":""}}}`)
		require.Empty(t, msg)
		return res["completion"].(map[string]any)["values"].([]any)
	}
	assert.Len(t, complete(`{"type":"ref/prompt","name":"summarize"}`), 2)
	assert.Empty(t, complete(`{"type":"ref/prompt","name":"admin-report"}`))
	assert.Len(t, complete(`{"type":"ref/resource","uri":"file:///w/{name}"}`), 1)
	assert.Empty(t, complete(`{"type":"ref/resource","uri":"file:///etc/{name}"}`))

	// Records: every read and get that reached a handler's guard.
	type row struct{ tool, effect, args string }
	var got []row
	for _, r := range sink.decisions() {
		got = append(got, row{r.Tool, r.Effect, string(r.Args)})
	}
	assert.Contains(t, got, row{"resources/read", "allow", `{"uri":"file:///w/a.txt"}`})
	assert.Contains(t, got, row{"resources/read", "deny", `{"uri":"file:///w/secret/key"}`})
	assert.Contains(t, got, row{"resources/read", "deny", `{"uri":"file:///etc/passwd"}`})
	assert.Contains(t, got, row{"resources/read", "deny", `{"uri":"file:///w/..%2F..%2Fetc%2Fpasswd"}`})
	assert.Contains(t, got, row{"prompts/get", "allow", `{"arguments":{"style":"short"},"name":"summarize"}`})
	assert.Contains(t, got, row{"prompts/get", "deny", `{"arguments":{"style":"leak"},"name":"summarize"}`})
	assert.Contains(t, got, row{"prompts/get", "deny", `{"arguments":{},"name":"admin-report"}`})

	// Without a principal: nothing listed, nothing read.
	anon := context.Background()
	res, _ = rpcResult(t, anon, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
	assert.Empty(t, fieldList(res, "resources", "uri"))
	res, _ = rpcResult(t, anon, ds.s, `{"jsonrpc":"2.0","id":1,"method":"prompts/list"}`)
	assert.Empty(t, fieldList(res, "prompts", "name"))
	_, msg := rpcResult(t, anon, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///w/a.txt"}}`)
	assert.Contains(t, msg, "not identified")
}

// TestGuardMCPOldPolicyHidesResources: under a policy that grants no
// resources or prompts (every policy written before they were governed),
// an mcp-go server's resources and prompts are neither listed nor served.
func TestGuardMCPOldPolicyHidesResources(t *testing.T) {
	sink := &memSink{}
	g := testGuard(t, sink)
	ds := newDataServer(t, g)
	_, rw := principals("/w")
	ctx := toolguard.WithPrincipal(context.Background(), rw)
	res, _ := rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
	assert.Empty(t, fieldList(res, "resources", "uri"))
	_, msg := rpcResult(t, ctx, ds.s, `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///w/a.txt"}}`)
	assert.Contains(t, msg, "no scope held")
	assert.Empty(t, ds.reads)
	require.Len(t, sink.decisions(), 1)
	assert.Equal(t, "deny", sink.decisions()[0].Effect)
	assert.Equal(t, audit.KindDecision, sink.decisions()[0].Kind)
}

// TestProxyWarnsOfUngrantedResources: a proxy in front of a server that
// offers resources, under a policy that grants none, says so when it
// starts; under a policy that grants some, it does not.
func TestProxyWarnsOfUngrantedResources(t *testing.T) {
	up := server.NewMCPServer("up", "1", server.WithToolCapabilities(true), server.WithResourceCapabilities(false, true))
	up.AddResource(mcp.NewResource("file:///w/a.txt", "a"), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "file:///w/a.txt", Text: "a"}}, nil
	})
	for _, c := range []struct {
		policy string
		warns  bool
	}{{testPolicy, true}, {dataPolicy, false}} {
		p, err := scope.Parse([]byte(c.policy))
		require.NoError(t, err)
		g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
		require.NoError(t, err)
		var buf syncBuffer
		px := newTestProxy(t, up, g, guardmcp.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
		assert.Equal(t, c.warns, strings.Contains(buf.String(), "no grant of the policy names any"), buf.String())
		ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})
		res, _ := rpcResult(t, ctx, px.Server(), `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
		assert.Equal(t, !c.warns, len(fieldList(res, "resources", "uri")) == 1)
	}
}

// TestProxyAsksUpstreamOnlyForGranted: through the proxy, completions of
// a prompt or template the principal is not granted are empty and the
// upstream is never asked for them; reads and gets of ungranted ones never
// reach the upstream.
func TestProxyAsksUpstreamOnlyForGranted(t *testing.T) {
	cp := &completions{}
	up := server.NewMCPServer("up", "1", server.WithToolCapabilities(true), server.WithResourceCapabilities(false, true),
		server.WithPromptCapabilities(true), server.WithCompletions(),
		server.WithPromptCompletionProvider(cp), server.WithResourceCompletionProvider(cp))
	var mu sync.Mutex
	var served []string
	read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		mu.Lock()
		served = append(served, req.Params.URI)
		mu.Unlock()
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "x"}}, nil
	}
	up.AddResource(mcp.NewResource("file:///w/a.txt", "a"), read)
	up.AddResource(mcp.NewResource("file:///etc/passwd", "passwd"), read)
	up.AddResourceTemplate(mcp.NewResourceTemplate("file:///w/{name}", "w"), read)
	up.AddResourceTemplate(mcp.NewResourceTemplate("file:///etc/{name}", "etc"), read)
	prompt := func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		mu.Lock()
		served = append(served, "prompt "+req.Params.Name)
		mu.Unlock()
		return mcp.NewGetPromptResult("p", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("x"))}), nil
	}
	up.AddPrompt(mcp.NewPrompt("summarize"), prompt)
	up.AddPrompt(mcp.NewPrompt("admin-report"), prompt)

	p, err := scope.Parse([]byte(dataPolicy))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	px := newTestProxy(t, up, g)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})

	for _, ref := range []string{`{"type":"ref/prompt","name":"summarize"}`, `{"type":"ref/prompt","name":"admin-report"}`,
		`{"type":"ref/resource","uri":"file:///w/{name}"}`, `{"type":"ref/resource","uri":"file:///etc/{name}"}`} {
		_, msg := rpcResult(t, ctx, px.Server(), `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":`+ref+`,"argument":{"name":"x","value":""}}}`)
		require.Empty(t, msg)
	}
	cp.mu.Lock()
	assert.Equal(t, []string{"prompt summarize", "resource file:///w/{name}"}, cp.asked)
	cp.mu.Unlock()

	res, _ := rpcResult(t, ctx, px.Server(), `{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)
	assert.Equal(t, []string{"file:///w/a.txt"}, fieldList(res, "resources", "uri"))
	res, _ = rpcResult(t, ctx, px.Server(), `{"jsonrpc":"2.0","id":1,"method":"resources/templates/list"}`)
	assert.Equal(t, []string{"file:///w/{name}"}, fieldList(res, "resourceTemplates", "uriTemplate"))
	for _, uri := range []string{"file:///w/a.txt", "file:///etc/passwd", "file:///w/..%2F..%2Fetc%2Fpasswd", "file:///etc/shadow"} {
		rpcResult(t, ctx, px.Server(), `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":`+mustJSON(uri)+`}}`)
	}
	for _, name := range []string{"summarize", "admin-report"} {
		rpcResult(t, ctx, px.Server(), `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":`+mustJSON(name)+`}}`)
	}
	mu.Lock()
	assert.Equal(t, []string{"file:///w/a.txt", "prompt summarize"}, served)
	mu.Unlock()
	assert.Len(t, sink.decisions(), 6, "every read and get that reached the proxy's handlers is recorded")
}

// TestCompletionsUnderATask: mcp-go drops a completion's _meta, so the
// guard reads the task from the raw request: a forged task, a task sent
// to a server with no verifier, and a task whose scopes do not reach the
// prompt are refused before any provider runs, in the server and through
// the proxy; a task that reaches it, and no task, complete as before.
func TestCompletionsUnderATask(t *testing.T) {
	s := newTaskSigner(t)
	v, err := guardmcp.NewTaskVerifier(s.keys, guardmcp.TaskOptions{})
	require.NoError(t, err)
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  docs:
    grants:
      - prompts: [summarize]
  other:
    grants:
      - prompts: [public]
`))
	require.NoError(t, err)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs", "other"}})
	forged, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, taskClaims("alice", map[string]any{"id": "t1", "scopes": []any{"docs"}})).SignedString(s.other)
	require.NoError(t, err)
	complete := func(srv *server.MCPServer, token string) (int, string) {
		meta := ""
		if token != "" {
			meta = `"_meta":{"` + guardmcp.TaskMetaKey + `":` + mustJSON(token) + `},`
		}
		res, msg := rpcResult(t, ctx, srv, `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{`+meta+`"ref":{"type":"ref/prompt","name":"summarize"},"argument":{"name":"x","value":""}}}`)
		if msg != "" {
			return 0, msg
		}
		return len(res["completion"].(map[string]any)["values"].([]any)), ""
	}
	for _, withVerifier := range []bool{true, false} {
		var opts []guardmcp.Option
		if withVerifier {
			opts = append(opts, guardmcp.WithTaskVerifier(v))
		}
		g, err := toolguard.New(p, toolguard.WithSink(&memSink{}))
		require.NoError(t, err)
		cp := &completions{}
		srv := server.NewMCPServer("docs", "1", append([]server.ServerOption{server.WithPromptCapabilities(true), server.WithCompletions(),
			server.WithPromptCompletionProvider(cp), server.WithResourceCompletionProvider(cp)}, guardmcp.ServerOptions(g, opts...)...)...)
		for _, name := range []string{"summarize", "public"} {
			srv.AddPrompt(mcp.NewPrompt(name, mcp.WithArgument("style")), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				return mcp.NewGetPromptResult("p", nil), nil
			})
		}
		n, msg := complete(srv, "")
		assert.Equal(t, 2, n, msg)
		_, msg = complete(srv, forged)
		assert.Contains(t, msg, "task", "a forged task")
		assert.NotContains(t, msg, "ed25519")
		if withVerifier {
			n, msg = complete(srv, s.sign(t, taskClaims("alice", map[string]any{"id": "t2", "scopes": []any{"docs"}})))
			assert.Equal(t, 2, n, msg)
			narrow := s.sign(t, taskClaims("alice", map[string]any{"id": "t3", "scopes": []any{"other"}}))
			_, msg = complete(srv, narrow)
			assert.Contains(t, msg, "does not reach", "a task whose scopes do not reach the prompt")
			// A ref or _meta shaped so that a strict decoder of the whole
			// request fails still has its task checked.
			for _, tok := range []string{narrow, forged} {
				for _, ref := range []string{`{"type":"ref/prompt","name":"summarize","uri":5}`, `{"type":"ref/prompt","name":"summarize","uri":{}}`,
					// Keys in other letter case: mcp-go's decoder reads the
					// last of them, and so does the check.
					`{"type":"ref/prompt","name":"public","Name":"summarize"}`,
					`{"type":"ref/resource","uri":"file:///w/{name}","Type":"ref/prompt","NAME":"summarize"}`} {
					_, msg = rpcResult(t, ctx, srv, `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"_meta":{"`+guardmcp.TaskMetaKey+`":`+mustJSON(tok)+`,"progressToken":{}},"ref":`+ref+`,"argument":{"name":"x","value":""}}}`)
					assert.Contains(t, msg, "denied", ref)
				}
			}
		}
		cp.mu.Lock()
		asked := len(cp.asked)
		cp.mu.Unlock()
		if withVerifier {
			assert.Equal(t, 2, asked, "only the allowed completions reached the provider")
		} else {
			assert.Equal(t, 1, asked)
		}
	}
}
