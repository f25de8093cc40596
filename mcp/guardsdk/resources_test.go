package guardsdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/mcp/guardsdk"
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
        when: '!has(args.style) || args.style in ["short", "long"]'
rules:
  - name: no-secrets
    effect: deny
    resources: ["file:///w/secret/**"]
`

var alice = scope.Principal{ID: "alice", Scopes: []string{"docs"}}

// dataServer is a go-sdk server with resources, templates, prompts,
// completions and subscriptions, guarded by Middleware. It remembers what
// its handlers were asked.
type dataServer struct {
	*fixture
	mu         sync.Mutex
	reads      []string
	gets       []string
	completed  []string
	subscribed []string
	subscribe  chan string
	metas      []mcp.Meta // the _meta of each read and get the handlers saw
}

func (ds *dataServer) note(l *[]string, s string) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	*l = append(*l, s)
}

func (ds *dataServer) noteMeta(m mcp.Meta) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	ds.metas = append(ds.metas, m)
}

func (ds *dataServer) seen(l *[]string) []string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return slices.Clone(*l)
}

func newDataServer(t *testing.T, policy string, pf guardsdk.PrincipalFunc, opts ...guardsdk.Option) *dataServer {
	return newDataServerSink(t, policy, pf, nil, opts...)
}

// newDataServerSink is newDataServer whose guard writes to sink, if not
// nil, instead of the records.
func newDataServerSink(t *testing.T, policy string, pf guardsdk.PrincipalFunc, sink audit.Sink, opts ...guardsdk.Option) *dataServer {
	t.Helper()
	p, err := scope.Parse([]byte(policy))
	require.NoError(t, err)
	ds := &dataServer{fixture: &fixture{records: &bytes.Buffer{}}, subscribe: make(chan string, 10)}
	if sink == nil {
		sink = audit.NewLog(ds.records)
	}
	ds.guard, err = toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	ds.server = mcp.NewServer(&mcp.Implementation{Name: "docs", Version: "1.0.0"}, &mcp.ServerOptions{
		CompletionHandler: func(_ context.Context, req *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			ref := req.Params.Ref
			ds.note(&ds.completed, ref.Type+" "+ref.Name+ref.URI)
			ds.noteMeta(req.Params.Meta)
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{"short", "long"}}}, nil
		},
		SubscribeHandler: func(_ context.Context, req *mcp.SubscribeRequest) error {
			ds.note(&ds.subscribed, req.Params.URI)
			ds.noteMeta(req.Params.Meta)
			ds.subscribe <- req.Params.URI
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, req *mcp.UnsubscribeRequest) error {
			ds.noteMeta(req.Params.Meta)
			return nil
		},
	})
	ds.server.AddReceivingMiddleware(guardsdk.Middleware(ds.guard, pf, opts...))
	read := func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
		ds.note(&ds.reads, req.Params.URI)
		ds.noteMeta(req.Params.Meta)
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "contents of " + req.Params.URI}}}, nil
	}
	for _, u := range []string{"file:///w/a.txt", "file:///w/secret/key", "file:///etc/passwd"} {
		ds.server.AddResource(&mcp.Resource{URI: u, Name: u}, read)
	}
	ds.server.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///w/{+path}", Name: "workspace files"}, read)
	ds.server.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///etc/{name}", Name: "system files"}, read)
	prompt := func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		ds.note(&ds.gets, req.Params.Name+" "+req.Params.Arguments["style"])
		ds.noteMeta(req.Params.Meta)
		return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: "summarize " + req.Params.Arguments["style"]}}}}, nil
	}
	ds.server.AddPrompt(&mcp.Prompt{Name: "summarize", Arguments: []*mcp.PromptArgument{{Name: "style"}}}, prompt)
	ds.server.AddPrompt(&mcp.Prompt{Name: "admin-report"}, prompt)
	return ds
}

// rpcError returns the JSON-RPC error err carries, failing the test if
// there is none.
func rpcError(t *testing.T, err error) *jsonrpc.Error {
	t.Helper()
	require.Error(t, err)
	var we *jsonrpc.Error
	require.True(t, errors.As(err, &we), "%v (%T) is not a JSON-RPC error", err, err)
	return we
}

// requireDenied checks that err is a denial as the client receives it:
// invalid params, a reason that names no Go package.
func requireDenied(t *testing.T, err error, want string) {
	t.Helper()
	we := rpcError(t, err)
	assert.EqualValues(t, jsonrpc.CodeInvalidParams, we.Code, "%s", we.Message)
	assert.Contains(t, we.Message, want)
	for _, pkg := range []string{"toolguard", "guardsdk", "scope:", "guardmcp"} {
		assert.NotContains(t, we.Message, pkg)
	}
}

type record struct {
	Kind, Tool, Effect, Session, Principal string
	Args                                   json.RawMessage
}

func records(t *testing.T, b *bytes.Buffer) []record {
	t.Helper()
	var out []record
	for line := range bytes.Lines(b.Bytes()) {
		var r record
		require.NoError(t, json.Unmarshal(line, &r))
		out = append(out, r)
	}
	return out
}

func decisions(t *testing.T, b *bytes.Buffer) []record {
	t.Helper()
	return slices.DeleteFunc(records(t, b), func(r record) bool { return r.Kind != "decision" })
}

func uris(rs []*mcp.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.URI)
	}
	return out
}

// TestResourcesAndPrompts: through Middleware, a principal lists only the
// granted resources, templates and prompts; reads granted resources (by
// URI and through a template) and no other; gets a granted prompt only
// with arguments its CEL condition allows; gets completions only for
// granted prompts and templates, the server not even asked for the
// others; and every read and get is decided and recorded before its
// handler runs, a denial being -32602 with the reason.
func TestResourcesAndPrompts(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	cs, finish := ds.connect(t, nil)
	ctx := context.Background()

	lr, err := cs.ListResources(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"file:///w/a.txt"}, uris(lr.Resources))
	assert.Equal(t, "private", lr.CacheScope)
	lt, err := cs.ListResourceTemplates(ctx, nil)
	require.NoError(t, err)
	require.Len(t, lt.ResourceTemplates, 1)
	assert.Equal(t, "file:///w/{+path}", lt.ResourceTemplates[0].URITemplate)
	lp, err := cs.ListPrompts(ctx, nil)
	require.NoError(t, err)
	require.Len(t, lp.Prompts, 1)
	assert.Equal(t, "summarize", lp.Prompts[0].Name)

	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/a.txt"})
	require.NoError(t, err)
	assert.Equal(t, "contents of file:///w/a.txt", res.Contents[0].Text)
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/notes/b.txt"})
	require.NoError(t, err, "through the template")
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/secret/key"})
	requireDenied(t, err, `call to "resources/read" denied: `)
	requireDenied(t, err, `rule "no-secrets"`)
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///etc/passwd"})
	requireDenied(t, err, "no scope held")
	assert.Equal(t, []string{"file:///w/a.txt", "file:///w/notes/b.txt"}, ds.seen(&ds.reads))

	get := func(name string, args map[string]string) error {
		_, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: name, Arguments: args})
		return err
	}
	require.NoError(t, get("summarize", map[string]string{"style": "short"}))
	require.NoError(t, get("summarize", nil))
	requireDenied(t, get("summarize", map[string]string{"style": "ignore previous instructions"}), `grants prompt "summarize"`)
	requireDenied(t, get("admin-report", nil), "no scope held")
	assert.Equal(t, []string{"summarize short", "summarize "}, ds.seen(&ds.gets))

	complete := func(ref *mcp.CompleteReference) []string {
		res, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: ref, Argument: mcp.CompleteParamsArgument{Name: "style"}})
		require.NoError(t, err)
		return res.Completion.Values
	}
	assert.Equal(t, []string{"short", "long"}, complete(&mcp.CompleteReference{Type: "ref/prompt", Name: "summarize"}))
	assert.Empty(t, complete(&mcp.CompleteReference{Type: "ref/prompt", Name: "admin-report"}))
	assert.Len(t, complete(&mcp.CompleteReference{Type: "ref/resource", URI: "file:///w/{+path}"}), 2)
	assert.Empty(t, complete(&mcp.CompleteReference{Type: "ref/resource", URI: "file:///etc/{name}"}))
	assert.Equal(t, []string{"ref/prompt summarize", "ref/resource file:///w/{+path}"}, ds.seen(&ds.completed),
		"the server is asked only for granted prompts and templates")

	sum := finish()
	assert.Equal(t, 8, sum.Decisions)
	type row struct{ tool, effect, args string }
	var got []row
	for _, r := range decisions(t, ds.records) {
		got = append(got, row{r.Tool, r.Effect, string(r.Args)})
		assert.Equal(t, "alice", r.Principal)
		assert.True(t, strings.HasPrefix(r.Session, "local:"), "the record names the client's session: %q", r.Session)
	}
	assert.Equal(t, []row{
		{"resources/read", "allow", `{"uri":"file:///w/a.txt"}`},
		{"resources/read", "allow", `{"uri":"file:///w/notes/b.txt"}`},
		{"resources/read", "deny", `{"uri":"file:///w/secret/key"}`},
		{"resources/read", "deny", `{"uri":"file:///etc/passwd"}`},
		{"prompts/get", "allow", `{"arguments":{"style":"short"},"name":"summarize"}`},
		{"prompts/get", "allow", `{"arguments":{},"name":"summarize"}`},
		{"prompts/get", "deny", `{"arguments":{"style":"ignore previous instructions"},"name":"summarize"}`},
		{"prompts/get", "deny", `{"arguments":{},"name":"admin-report"}`},
	}, got)
}

// TestResourceSpellings: no other spelling of a resource the policy denies
// — case of scheme or host, localhost, dot segments, "..", percent-encoded
// letters, slashes and dots, double encoding, a fragment — reaches the
// handler, although the server's template would serve most of them.
func TestResourceSpellings(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	cs, finish := ds.connect(t, nil)
	ctx := context.Background()
	spellings := []string{
		"file:///w/secret/key",
		"FILE:///w/secret/key",
		"File://LOCALHOST/w/secret/key",
		"file://localhost/w/secret/key",
		"file:///w/./secret/key",
		"file:///w/notes/../secret/key",
		"file:///w//secret/key",
		"file:///w/%73ecret/key",
		"file:///w/%73%65%63%72%65%74/%6B%65%79",
		"file:///w/secret%2Fkey",
		"file:///w/notes/%2E%2E/secret/key",
		"file:///w/notes/%2e%2e%2fsecret%2fkey",
		"file:///w/%252e%252e/secret/key",
		"file:///w/../etc/passwd",
		"file:///w/..%2F..%2Fetc%2Fpasswd",
		"file:///w/a.txt#/../../etc/passwd",
		"file:///w/a.txt?x=/../../etc/passwd",
		"file://evil.example/w/a.txt",
		"file:///w/secret\\key",
	}
	for _, uri := range spellings {
		_, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		we := rpcError(t, err)
		assert.EqualValues(t, jsonrpc.CodeInvalidParams, we.Code, "%s: %s", uri, we.Message)
		assert.Contains(t, we.Message, "denied", uri)
		require.NoError(t, cs.Ping(ctx, nil))
	}
	assert.Empty(t, ds.seen(&ds.reads), "no spelling reached the handler")
	sum := finish()
	assert.Equal(t, len(spellings), sum.Decisions)
	assert.Equal(t, len(spellings), sum.Denied)
}

// TestSubscribe: resources/subscribe (and, on protocol 2026-07-28,
// subscriptions/listen) reaches the server only for a resource the
// principal may read, under any spelling.
func TestSubscribe(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	ctx := context.Background()

	cs, _ := ds.connect(t, nil)
	require.NoError(t, cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///w/a.txt"}))
	for _, uri := range []string{"file:///w/secret/key", "FILE:///w/./secret/key", "file:///etc/passwd"} {
		requireDenied(t, cs.Subscribe(ctx, &mcp.SubscribeParams{URI: uri}), "subscription denied: ")
	}
	require.NoError(t, cs.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "file:///w/secret/key"}), "ending a subscription is always allowed")
	assert.Equal(t, []string{"file:///w/a.txt"}, ds.seen(&ds.subscribed))

	// Protocol 2026-07-28 subscribes through subscriptions/listen, which the
	// SDK's client sends without waiting for its answer: an outer
	// middleware sees the answer instead.
	listened := make(chan error, 10)
	ds.server.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method != "subscriptions/listen" {
				return next(ctx, method, req)
			}
			ps, _ := req.GetParams().(*mcp.SubscriptionsListenParams)
			if ps == nil || ps.Notifications == nil || len(ps.Notifications.ResourceSubscriptions) == 0 {
				return next(ctx, method, req)
			}
			res, err := next(ctx, method, req)
			listened <- err
			return res, err
		}
	})
	<-ds.subscribe // a.txt, from the first client
	cs2, _ := ds.connectVersion(t, nil, "2026-07-28")
	require.NoError(t, cs2.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///w/notes/../secret/key"}))
	select {
	case err := <-listened:
		requireDenied(t, err, `rule "no-secrets"`)
	case <-time.After(10 * time.Second):
		t.Fatal("the denied subscriptions/listen was not answered")
	}
	require.NoError(t, cs2.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///w/b.txt"}))
	select {
	case uri := <-ds.subscribe:
		assert.Equal(t, "file:///w/b.txt", uri)
	case <-time.After(10 * time.Second):
		t.Fatal("the granted subscription did not reach the server")
	}
	require.NoError(t, cs2.Unsubscribe(ctx, &mcp.UnsubscribeParams{URI: "file:///w/b.txt"}))
	assert.Equal(t, []string{"file:///w/a.txt", "file:///w/b.txt"}, ds.seen(&ds.subscribed))
	assert.Empty(t, decisions(t, ds.records), "subscriptions are decided, not recorded")
}

// TestDataNoPrincipal: without a principal nothing is listed, read, got,
// completed or subscribed to, and the reason says why.
func TestDataNoPrincipal(t *testing.T) {
	ds := newDataServer(t, dataPolicy, func(context.Context, mcp.Request) (scope.Principal, error) {
		return scope.Principal{}, errors.New("token expired")
	})
	cs, finish := ds.connect(t, nil)
	ctx := context.Background()
	lr, err := cs.ListResources(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, lr.Resources)
	lp, err := cs.ListPrompts(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, lp.Prompts)
	_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/a.txt"})
	requireDenied(t, err, "not identified")
	requireDenied(t, err, "(token expired)")
	_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize"})
	requireDenied(t, err, "not identified")
	requireDenied(t, cs.Subscribe(ctx, &mcp.SubscribeParams{URI: "file:///w/a.txt"}), "(token expired)")
	c, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "summarize"}, Argument: mcp.CompleteParamsArgument{Name: "style"}})
	require.NoError(t, err)
	assert.Empty(t, c.Completion.Values)
	assert.Empty(t, ds.seen(&ds.reads))
	assert.Empty(t, ds.seen(&ds.gets))
	assert.Empty(t, ds.seen(&ds.completed))
	assert.Empty(t, ds.seen(&ds.subscribed))
	sum := finish()
	assert.Equal(t, 2, sum.Decisions)
	assert.Equal(t, 2, sum.Denied)
}

// TestOldPolicyDeniesData: a policy written before resources and prompts
// were governed grants none, so a server's resources and prompts are
// neither listed nor served, and the middleware warns once that the server
// offers what the policy grants to no one. A policy that grants some does
// not warn.
func TestOldPolicyDeniesData(t *testing.T) {
	for _, tt := range []struct {
		name, policy string
		warn         bool
	}{{"old policy", policy, true}, {"data policy", dataPolicy, false}} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			ds := newDataServer(t, tt.policy, guardsdk.Static(scope.Principal{ID: "alice", Scopes: []string{"docs", "files.read"}}),
				guardsdk.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			cs, _ := ds.connect(t, nil)
			ds.connect(t, nil)
			assert.Equal(t, tt.warn, strings.Contains(logs.String(), "no grant of the policy names any"), logs.String())
			assert.Equal(t, tt.warn, strings.Count(logs.String(), "level=WARN") == 1, "one warning, not one a client: %s", logs.String())
			if !tt.warn {
				return
			}
			ctx := context.Background()
			lr, err := cs.ListResources(ctx, nil)
			require.NoError(t, err)
			assert.Empty(t, lr.Resources)
			lt, err := cs.ListResourceTemplates(ctx, nil)
			require.NoError(t, err)
			assert.Empty(t, lt.ResourceTemplates)
			lp, err := cs.ListPrompts(ctx, nil)
			require.NoError(t, err)
			assert.Empty(t, lp.Prompts)
			_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/a.txt"})
			requireDenied(t, err, "no scope held")
			_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize"})
			requireDenied(t, err, "no scope held")
			assert.Empty(t, ds.seen(&ds.reads))
			assert.Empty(t, ds.seen(&ds.gets))
		})
	}
}

// TestDataSessionPerClient: the records of two clients' reads and gets
// name each client's own session — in memory and over streamable HTTP,
// where it is the client's Mcp-Session-Id.
func TestDataSessionPerClient(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	ctx := context.Background()
	use := func(cs *mcp.ClientSession) {
		_, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/a.txt"})
		require.NoError(t, err)
		_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize"})
		require.NoError(t, err)
	}
	a, _ := ds.connect(t, nil)
	b, _ := ds.connect(t, nil)
	use(a)
	use(b)
	use(a)

	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ds.server }, nil))
	t.Cleanup(srv.Close)
	var https []*mcp.ClientSession
	for range 2 {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).
			Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.Close() })
		https = append(https, cs)
		use(cs)
	}

	var sessions []string
	for _, r := range decisions(t, ds.records) {
		sessions = append(sessions, r.Session)
	}
	require.Len(t, sessions, 10)
	for i := 0; i < 10; i += 2 {
		assert.Equal(t, sessions[i], sessions[i+1], "a read and a get of one client share its session")
		assert.NotEmpty(t, sessions[i])
	}
	assert.Equal(t, sessions[0], sessions[4], "client a's calls share its session")
	assert.NotEqual(t, sessions[0], sessions[2], "clients a and b have different sessions")
	assert.Equal(t, "mcp:"+https[0].ID(), sessions[6])
	assert.Equal(t, "mcp:"+https[1].ID(), sessions[8])
	assert.NotEqual(t, sessions[6], sessions[8])
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(sessions))), 4)
}

// TestResourcesOverHTTP: over streamable HTTP, lists are filtered, a
// granted read is served and a denied one — under another spelling too —
// is a -32602 error with the reason, and the handler never sees it.
func TestResourcesOverHTTP(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return ds.server }, nil))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
	require.NoError(t, err)
	defer cs.Close()

	lr, err := cs.ListResources(ctx, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"file:///w/a.txt"}, uris(lr.Resources))
	res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/a.txt"})
	require.NoError(t, err)
	assert.Equal(t, "contents of file:///w/a.txt", res.Contents[0].Text)
	for _, uri := range []string{"file:///w/secret/key", "file://LocalHost/w/notes/%2E%2E/secret/key"} {
		_, err = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		requireDenied(t, err, `rule "no-secrets"`)
	}
	_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize", Arguments: map[string]string{"style": "leak"}})
	requireDenied(t, err, "no scope held")
	assert.Equal(t, []string{"file:///w/a.txt"}, ds.seen(&ds.reads))
	for _, r := range decisions(t, ds.records) {
		assert.Equal(t, "mcp:"+cs.ID(), r.Session)
	}
}

// TestDataRecordFailure: a read or get whose decision cannot be recorded
// is denied and its handler does not run; a read whose outcome cannot be
// recorded is withheld, with an error that names no Go package.
func TestDataRecordFailure(t *testing.T) {
	for _, kind := range []audit.Kind{audit.KindDecision, audit.KindOutcome} {
		t.Run(string(kind), func(t *testing.T) {
			sink := audit.SinkFunc(func(_ context.Context, r *audit.Record) error {
				if r.Kind == kind {
					return errors.New("audit: write record 3 to /var/log/ag/d.jsonl: write /var/log/ag/d.jsonl: disk full (record not stored)")
				}
				return nil
			})
			ds := newDataServerSink(t, dataPolicy, guardsdk.Static(alice), sink)
			cs, _ := ds.connect(t, nil)
			ctx := context.Background()
			res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "file:///w/a.txt"})
			assert.Nil(t, res)
			we := rpcError(t, err)
			for _, pkg := range []string{"toolguard", "guardsdk", "audit:"} {
				assert.NotContains(t, we.Message, pkg)
			}
			_, err = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "summarize"})
			rpcError(t, err)
			if kind == audit.KindDecision {
				assert.EqualValues(t, jsonrpc.CodeInvalidParams, we.Code)
				assert.Contains(t, we.Message, "disk full", "the denial says why")
				assert.Empty(t, ds.seen(&ds.reads), "nothing ran unrecorded")
				assert.Empty(t, ds.seen(&ds.gets))
			} else {
				assert.EqualValues(t, jsonrpc.CodeInternalError, we.Code)
				assert.Contains(t, we.Message, "outcome could not be recorded")
				assert.NotContains(t, we.Message, "/var/log", "the client does not learn the server's files")
				assert.Len(t, ds.seen(&ds.reads), 1)
			}
		})
	}
}

type searchParams struct {
	mcp.ParamsBase
	Query string `json:"query"`
}

type searchResult struct {
	mcp.ResultBase
	Hits []string `json:"hits"`
}

// TestUnknownMethods: the middleware refuses a method it does not govern
// (a custom method, a method of a later SDK) unless AllowMethods names it;
// methods that carry no data pass.
func TestUnknownMethods(t *testing.T) {
	p, err := scope.Parse([]byte(dataPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var ran []string
	next := func(_ context.Context, method string, _ mcp.Request) (mcp.Result, error) {
		ran = append(ran, method)
		return &searchResult{Hits: []string{"x"}}, nil
	}
	req := &mcp.ServerRequest[*searchParams]{Params: &searchParams{Query: "q"}}
	ctx := context.Background()

	h := guardsdk.Middleware(g, guardsdk.Static(alice))(next)
	for _, method := range []string{"acme/search", "resources/search", "tasks/result"} {
		_, err := h(ctx, method, req)
		we := rpcError(t, err)
		assert.EqualValues(t, jsonrpc.CodeMethodNotFound, we.Code)
		assert.Contains(t, we.Message, "does not govern it")
	}
	for _, method := range []string{"ping", "logging/setLevel", "resources/unsubscribe", "notifications/initialized", "notifications/cancelled"} {
		_, err := h(ctx, method, req)
		require.NoError(t, err, method)
	}
	h = guardsdk.Middleware(g, guardsdk.Static(alice), guardsdk.AllowMethods("acme/search"))(next)
	_, err = h(ctx, "acme/search", req)
	require.NoError(t, err)
	_, err = h(ctx, "acme/other", req)
	rpcError(t, err)
	assert.Equal(t, []string{"ping", "logging/setLevel", "resources/unsubscribe", "notifications/initialized", "notifications/cancelled", "acme/search"}, ran)

	// A real server: the custom method is refused, then let through.
	for _, allow := range []bool{false, true} {
		s := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "1"}, nil)
		var opts []guardsdk.Option
		if allow {
			opts = append(opts, guardsdk.AllowMethods("acme/search"))
		}
		s.AddReceivingMiddleware(guardsdk.Middleware(g, guardsdk.Static(alice), opts...))
		require.NoError(t, mcp.AddReceivingCustomMethod(s, "acme/search", func(context.Context, *mcp.ServerSession, *searchParams) (*searchResult, error) {
			return &searchResult{Hits: []string{"secret"}}, nil
		}))
		c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
		require.NoError(t, mcp.AddSendingCustomMethod[*searchParams, *searchResult](c, "acme/search"))
		st, ct := mcp.NewInMemoryTransports()
		ss, err := s.Connect(ctx, st, nil)
		require.NoError(t, err)
		cs, err := c.Connect(ctx, ct, nil)
		require.NoError(t, err)
		res, err := mcp.CallCustomMethod[*searchParams, *searchResult](ctx, cs, "acme/search", &searchParams{Query: "q"})
		if allow {
			require.NoError(t, err)
			assert.Equal(t, []string{"secret"}, res.Hits)
		} else {
			assert.EqualValues(t, jsonrpc.CodeMethodNotFound, rpcError(t, err).Code)
		}
		require.NoError(t, cs.Close())
		_ = ss.Wait()
	}
}
