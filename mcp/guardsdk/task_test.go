package guardsdk_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// guardmcp's verifier serves the adapter.
var _ guardsdk.TaskVerifier = (*guardmcp.TaskVerifier)(nil)

// TestTaskConstantsAreGuardMCPs: a host signs one token for both.
func TestTaskConstantsAreGuardMCPs(t *testing.T) {
	assert.Equal(t, guardmcp.TaskMetaKey, guardsdk.TaskMetaKey)
	assert.Equal(t, guardmcp.TaskSessionPrefix, guardsdk.TaskSessionPrefix)
}

// taskKey is a host's task signing key and a verifier of it.
type taskKey struct {
	key ed25519.PrivateKey
	v   *guardmcp.TaskVerifier
}

func newTaskKey(t *testing.T) *taskKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "task-key.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	keys, err := guardmcp.LoadJWTKeys(path)
	require.NoError(t, err)
	v, err := guardmcp.NewTaskVerifier(keys, guardmcp.TaskOptions{})
	require.NoError(t, err)
	return &taskKey{key: key, v: v}
}

// sign returns a token for principal with task, and extra claims.
func (k *taskKey) sign(t *testing.T, principal string, task map[string]any, extra jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"sub": principal, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "task": task}
	for name, v := range extra {
		c[name] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(k.key)
	require.NoError(t, err)
	return tok
}

// meta is a request _meta carrying a task of alice's with scopes, signed
// with k.
func (k *taskKey) meta(t *testing.T, scopes ...any) mcp.Meta {
	return mcp.Meta{guardsdk.TaskMetaKey: k.sign(t, "alice", map[string]any{"id": "t1", "scopes": scopes}, nil)}
}

// newTaskFixture is a guarded files server, with no tools yet, whose
// middleware verifies tasks signed with k.
func newTaskFixture(t *testing.T, k *taskKey) *fixture {
	t.Helper()
	p, err := scope.Parse([]byte(policy))
	require.NoError(t, err)
	f := &fixture{records: &bytes.Buffer{}}
	f.guard, err = toolguard.New(p, toolguard.WithSink(audit.NewLog(f.records)))
	require.NoError(t, err)
	f.server = mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1.0.0"}, nil)
	f.server.AddReceivingMiddleware(guardsdk.Middleware(f.guard, guardsdk.Static(bot), guardsdk.WithTaskVerifier(k.v)))
	return f
}

// TestTaskRefusedWithoutVerifier: without WithTaskVerifier a tools/call,
// resources/read or prompts/get whose _meta carries a task — or a key
// that looks meant to — is denied and recorded, and its handler does not
// run: running it without its task would give it more than its sender
// asked for. Other _meta keys change nothing.
func TestTaskRefusedWithoutVerifier(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	f := newFixture(t, guardsdk.Static(bot))
	tools, finishTools := f.connect(t, nil)
	data, finishData := ds.connect(t, nil)
	ctx := context.Background()

	metas := []struct {
		meta mcp.Meta
		want string
	}{
		{mcp.Meta{guardsdk.TaskMetaKey: "eyJhbGciOiJFZERTQSJ9.e30.c2ln"}, "no key to verify tasks with"},
		{mcp.Meta{guardsdk.TaskMetaKey: map[string]any{"id": "t1"}}, "not a string"},
		{mcp.Meta{"io.agentguard/Task": "x"}, `"io.agentguard/Task", which is not one this server reads`},
		{mcp.Meta{"IO.AGENTGUARD/TASK": "x"}, "not one this server reads"},
		{mcp.Meta{"agentguard.io/task": "x"}, "not one this server reads"},
		{mcp.Meta{"io.example/trace": "abc", "AgentGuard": "x"}, `"AgentGuard"`},
		{mcp.Meta{"io.agentguard/taſk": "x"}, "not one this server reads"}, // a long s
	}
	for _, c := range metas {
		res, err := tools.CallTool(ctx, &mcp.CallToolParams{Meta: c.meta, Name: "write_file", Arguments: map[string]any{"path": "/w/a", "text": "x"}})
		require.NoError(t, err)
		assert.True(t, res.IsError, "%v", c.meta)
		assert.Contains(t, text(t, res), "the task sent with the call was refused", "%v", c.meta)
		assert.Contains(t, text(t, res), c.want, "%v", c.meta)
		assert.NotRegexp(t, `\b(toolguard|guardsdk|guardmcp|scope|audit): `, text(t, res))

		_, err = data.ReadResource(ctx, &mcp.ReadResourceParams{Meta: c.meta, URI: "file:///w/a.txt"})
		requireDenied(t, err, c.want)
		_, err = data.GetPrompt(ctx, &mcp.GetPromptParams{Meta: c.meta, Name: "summarize"})
		requireDenied(t, err, c.want)
	}
	assert.Zero(t, f.writes.Load(), "no refused call ran")
	assert.Empty(t, ds.seen(&ds.reads))
	assert.Empty(t, ds.seen(&ds.gets))

	other := mcp.Meta{"progressToken": "p1", "io.example/trace": "abc"}
	res, err := tools.CallTool(ctx, &mcp.CallToolParams{Meta: other, Name: "read_file", Arguments: map[string]any{"path": "/w/notes.txt"}})
	require.NoError(t, err)
	assert.False(t, res.IsError, "%s", text(t, res))
	_, err = data.ReadResource(ctx, &mcp.ReadResourceParams{Meta: other, URI: "file:///w/a.txt"})
	require.NoError(t, err)
	assert.Equal(t, []string{"file:///w/a.txt"}, ds.seen(&ds.reads))

	sum := finishTools()
	assert.Equal(t, len(metas)+1, sum.Decisions, "every refusal is recorded")
	assert.Equal(t, 1, sum.Allowed)
	sum = finishData()
	assert.Equal(t, 2*len(metas)+1, sum.Decisions)
}

// TestTaskThroughGuardSDK: with WithTaskVerifier a valid task narrows the
// call — a tool or scope outside it is denied, and never runs — the
// handler never sees the token, and forged, expired, another principal's
// and session-claiming tokens (the in-memory client has a session) are
// refused.
func TestTaskThroughGuardSDK(t *testing.T) {
	k := newTaskKey(t)
	other := newTaskKey(t)
	f := newTaskFixture(t, k)
	var seen []mcp.Meta
	require.NoError(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "read_file"},
		func(_ context.Context, req *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
			seen = append(seen, req.Params.Meta)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "contents of " + in.Path}}}, nil, nil
		}))
	require.NoError(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "write_file"},
		func(_ context.Context, _ *mcp.CallToolRequest, in writeArgs) (*mcp.CallToolResult, any, error) {
			f.writes.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "wrote " + in.Path}}}, nil, nil
		}))
	cs, finish := f.connect(t, nil)
	ctx := context.Background()
	call := func(tool string, args map[string]any, tok string) (bool, string) {
		meta := mcp.Meta{"io.example/trace": "abc"}
		if tok != "" {
			meta[guardsdk.TaskMetaKey] = tok
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Meta: meta, Name: tool, Arguments: args})
		require.NoError(t, err)
		return res.IsError, text(t, res)
	}
	readTask := k.sign(t, "bot", map[string]any{"id": "t-read", "tools": []any{"read_file"}}, nil)
	isErr, got := call("read_file", map[string]any{"path": "/w/notes.txt"}, readTask)
	require.False(t, isErr, got)
	isErr, got = call("write_file", map[string]any{"path": "/w/x", "text": "x"}, readTask)
	assert.True(t, isErr)
	assert.Contains(t, got, `task "t-read" does not include tool "write_file"`)
	noWrite := k.sign(t, "bot", map[string]any{"id": "t-scopes", "scopes": []any{"files.read"}}, nil)
	isErr, _ = call("write_file", map[string]any{"path": "/w/x", "text": "x"}, noWrite)
	assert.True(t, isErr, "a task without the scope")

	refused := []struct{ name, tok, want string }{
		{"another key", other.sign(t, "bot", map[string]any{"id": "t1"}, nil), "not valid"},
		{"another principal", k.sign(t, "eve", map[string]any{"id": "t1"}, nil), "issued for another principal"},
		{"expired", k.sign(t, "bot", map[string]any{"id": "t1"}, jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}), "expired"},
		{"a session claim in a session", k.sign(t, "bot", map[string]any{"id": "t1"}, jwt.MapClaims{"session": "clean"}), "names a session"},
		{"another session's sid", k.sign(t, "bot", map[string]any{"id": "t1"}, jwt.MapClaims{"sid": "s-other"}), "session"},
	}
	for _, r := range refused {
		isErr, got := call("read_file", map[string]any{"path": "/w/notes.txt"}, r.tok)
		assert.True(t, isErr, r.name)
		assert.Contains(t, got, "the task sent with the call was refused", r.name)
		assert.Contains(t, got, r.want, r.name)
		assert.NotRegexp(t, `\b(toolguard|guardsdk|guardmcp|scope|audit): `, got, r.name)
	}
	assert.Zero(t, f.writes.Load(), "no write ran")
	require.Len(t, seen, 1, "only the allowed read ran")
	assert.Equal(t, mcp.Meta{"io.example/trace": "abc"}, seen[0], "the handler sees _meta without the token")

	sum := finish()
	assert.Equal(t, 3+len(refused), sum.Decisions)
	assert.Equal(t, 1, sum.Allowed)
}

// TestTaskSessionOverHTTP: over streamable HTTP a token's sid is checked
// against the Mcp-Session-Id the client knows: its own session's id is
// accepted, another's refused; a session claim is refused, since the
// request has a session of its own.
func TestTaskSessionOverHTTP(t *testing.T) {
	k := newTaskKey(t)
	f := newTaskFixture(t, k)
	require.NoError(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "read_file"},
		func(_ context.Context, _ *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "contents of " + in.Path}}}, nil, nil
		}))
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return f.server }, nil))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL}, nil)
	require.NoError(t, err)
	defer cs.Close()
	require.NotEmpty(t, cs.ID(), "streamable HTTP gives the session an id")

	call := func(extra jwt.MapClaims) (bool, string) {
		tok := k.sign(t, "bot", map[string]any{"id": "t1", "tools": []any{"read_file"}}, extra)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Meta: mcp.Meta{guardsdk.TaskMetaKey: tok}, Name: "read_file", Arguments: map[string]any{"path": "/w/a.txt"}})
		require.NoError(t, err)
		return res.IsError, text(t, res)
	}
	isErr, got := call(jwt.MapClaims{"sid": cs.ID()})
	assert.False(t, isErr, "bound to this session: %s", got)
	isErr, got = call(jwt.MapClaims{"sid": "mcp:" + cs.ID()})
	assert.True(t, isErr, "the guard's own spelling of the session is not the id the client knows")
	assert.Contains(t, got, "the task sent with the call was refused")
	isErr, got = call(jwt.MapClaims{"sid": "another"})
	assert.True(t, isErr, "another session's token")
	assert.Contains(t, got, "the task sent with the call was refused")
	isErr, got = call(jwt.MapClaims{"session": "clean"})
	assert.True(t, isErr, "a session claim in a session")
	assert.Contains(t, got, "names a session")
}

// TestTaskNarrowsResourcesAndPrompts: reads and gets are narrowed by a
// verified task as calls are — a task without the scope gets nothing —
// and their handlers see _meta without the token.
func TestTaskNarrowsResourcesAndPrompts(t *testing.T) {
	k := newTaskKey(t)
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice), guardsdk.WithTaskVerifier(k.v))
	data, finish := ds.connect(t, nil)
	ctx := context.Background()
	meta := func(scopes ...any) mcp.Meta {
		return mcp.Meta{"io.example/trace": "abc",
			guardsdk.TaskMetaKey: k.sign(t, "alice", map[string]any{"id": "t1", "scopes": scopes}, nil)}
	}
	_, err := data.ReadResource(ctx, &mcp.ReadResourceParams{Meta: meta("docs"), URI: "file:///w/a.txt"})
	require.NoError(t, err)
	_, err = data.GetPrompt(ctx, &mcp.GetPromptParams{Meta: meta("docs"), Name: "summarize"})
	require.NoError(t, err)
	_, err = data.ReadResource(ctx, &mcp.ReadResourceParams{Meta: meta(), URI: "file:///w/a.txt"})
	requireDenied(t, err, `call to "resources/read" denied`)
	_, err = data.GetPrompt(ctx, &mcp.GetPromptParams{Meta: meta(), Name: "summarize"})
	requireDenied(t, err, `call to "prompts/get" denied`)

	assert.Equal(t, []string{"file:///w/a.txt"}, ds.seen(&ds.reads))
	assert.Len(t, ds.seen(&ds.gets), 1)
	ds.mu.Lock()
	assert.Equal(t, []mcp.Meta{{"io.example/trace": "abc"}, {"io.example/trace": "abc"}}, ds.metas, "no handler saw the token")
	ds.mu.Unlock()
	assert.Equal(t, 4, finish().Decisions)
}

// TestTaskNarrowsSubscriptions: a subscription's _meta task narrows it as
// it narrows a read; a forged task, or any task without a verifier,
// denies it in words without the crypto package's; the subscribe handler
// never sees the token.
func TestTaskNarrowsSubscriptions(t *testing.T) {
	k, forger := newTaskKey(t), newTaskKey(t)
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice), guardsdk.WithTaskVerifier(k.v))
	data, _ := ds.connect(t, nil)
	ctx := context.Background()
	meta := func(k *taskKey, scopes ...any) mcp.Meta {
		return mcp.Meta{"io.example/trace": "abc",
			guardsdk.TaskMetaKey: k.sign(t, "alice", map[string]any{"id": "t1", "scopes": scopes}, nil)}
	}
	require.NoError(t, data.Subscribe(ctx, &mcp.SubscribeParams{Meta: meta(k, "docs"), URI: "file:///w/a.txt"}))
	requireDenied(t, data.Subscribe(ctx, &mcp.SubscribeParams{Meta: meta(k), URI: "file:///w/b.txt"}), "subscription denied: ")
	err := data.Subscribe(ctx, &mcp.SubscribeParams{Meta: meta(forger, "docs"), URI: "file:///w/c.txt"})
	requireDenied(t, err, "signature is not valid")
	assert.NotContains(t, err.Error(), "ed25519")

	assert.Equal(t, []string{"file:///w/a.txt"}, ds.seen(&ds.subscribed))
	ds.mu.Lock()
	assert.Equal(t, []mcp.Meta{{"io.example/trace": "abc"}}, ds.metas, "the handler did not see the token")
	ds.mu.Unlock()

	plain := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	data, _ = plain.connect(t, nil)
	requireDenied(t, data.Subscribe(ctx, &mcp.SubscribeParams{Meta: meta(k, "docs"), URI: "file:///w/a.txt"}), "no key to verify tasks with")
	assert.Empty(t, plain.seen(&plain.subscribed))
}

// TestTaskNarrowsCompletions: a completion is given under the request's
// task — none for a prompt the task's scopes do not reach, none under a
// forged task — and no handler passed a request undecided (completion,
// unsubscribe) sees the token.
func TestTaskNarrowsCompletions(t *testing.T) {
	k, forger := newTaskKey(t), newTaskKey(t)
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice), guardsdk.WithTaskVerifier(k.v))
	data, _ := ds.connect(t, nil)
	ctx := context.Background()
	complete := func(m mcp.Meta) []string {
		t.Helper()
		res, err := data.Complete(ctx, &mcp.CompleteParams{Meta: m, Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "summarize"},
			Argument: mcp.CompleteParamsArgument{Name: "style"}})
		require.NoError(t, err)
		return res.Completion.Values
	}
	assert.NotEmpty(t, complete(k.meta(t, "docs")), "a task whose scopes reach the prompt")
	assert.Empty(t, complete(k.meta(t)), "a task with no scopes")
	assert.Empty(t, complete(forger.meta(t, "docs")), "a forged task")
	require.NoError(t, data.Unsubscribe(ctx, &mcp.UnsubscribeParams{Meta: k.meta(t, "docs"), URI: "file:///w/a.txt"}))
	ds.mu.Lock()
	assert.Len(t, ds.metas, 2, "the completion and the unsubscribe handler ran")
	for _, m := range ds.metas {
		assert.NotContains(t, m, guardsdk.TaskMetaKey, "a handler saw the token")
	}
	ds.mu.Unlock()
	assert.Len(t, ds.seen(&ds.completed), 1, "the completion handler ran once")
}

// TestTaskNarrowsLists: resources, templates and prompts are listed under
// the request's task: those its scopes reach, nothing under a task with
// no scopes or a forged one.
func TestTaskNarrowsLists(t *testing.T) {
	k, forger := newTaskKey(t), newTaskKey(t)
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice), guardsdk.WithTaskVerifier(k.v))
	data, _ := ds.connect(t, nil)
	ctx := context.Background()
	count := func(m mcp.Meta) (n int) {
		t.Helper()
		rl, err := data.ListResources(ctx, &mcp.ListResourcesParams{Meta: m})
		require.NoError(t, err)
		tl, err := data.ListResourceTemplates(ctx, &mcp.ListResourceTemplatesParams{Meta: m})
		require.NoError(t, err)
		pl, err := data.ListPrompts(ctx, &mcp.ListPromptsParams{Meta: m})
		require.NoError(t, err)
		return len(rl.Resources) + len(tl.ResourceTemplates) + len(pl.Prompts)
	}
	all := count(nil)
	require.Positive(t, all)
	assert.Equal(t, all, count(k.meta(t, "docs")), "a task whose scopes reach them")
	assert.Zero(t, count(k.meta(t)), "a task with no scopes")
	assert.Zero(t, count(forger.meta(t, "docs")), "a forged task")
}
