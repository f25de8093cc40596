package guardmcp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
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

// taskSigner is the application's task key, and another key.
type taskSigner struct {
	key, other ed25519.PrivateKey
	pemPath    string // the public key, PEM
	keys       []guardmcp.JWTKey
}

func newTaskSigner(t testing.TB) *taskSigner {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	_, other, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "task-key.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	keys, err := guardmcp.LoadJWTKeys(path)
	require.NoError(t, err)
	return &taskSigner{key: key, other: other, pemPath: path, keys: keys}
}

// claims are valid task claims for principal, with task.
func taskClaims(principal string, task map[string]any) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": principal, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "task": task}
}

func (s *taskSigner) sign(t testing.TB, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(s.key)
	require.NoError(t, err)
	return tok
}

// signRaw signs payload as it is, so that it may hold what a claims map
// cannot (duplicate or folded claims).
func (s *taskSigner) signRaw(t testing.TB, payload string) string {
	t.Helper()
	input := b64u([]byte(`{"alg":"EdDSA","typ":"JWT"}`)) + "." + b64u([]byte(payload))
	sig, err := jwt.SigningMethodEdDSA.Sign(input, s.key)
	require.NoError(t, err)
	return input + "." + b64u(sig)
}

// taskAttacks are tokens that must be refused for principal "alice" in
// session "s1", with what the refusal says.
func taskAttacks(t testing.TB, s *taskSigner) []struct{ name, token, want string } {
	t.Helper()
	task := func() map[string]any { return map[string]any{"id": "t1", "tools": []any{"send_email"}} }
	mod := func(f func(c jwt.MapClaims)) string {
		c := taskClaims("alice", task())
		f(c)
		return s.sign(t, c)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, taskClaims("alice", task())).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	otherKey, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, taskClaims("alice", task())).SignedString(s.other)
	require.NoError(t, err)
	hmac, err := jwt.NewWithClaims(jwt.SigningMethodHS256, taskClaims("alice", task())).SignedString([]byte("secret"))
	require.NoError(t, err)
	valid := s.sign(t, taskClaims("alice", task()))
	exp := time.Now().Add(5 * time.Minute).Unix()
	return []struct{ name, token, want string }{
		{"alg none", none, "not valid"},
		{"no signature", strings.Join(strings.Split(valid, ".")[:2], ".") + ".", "not valid"},
		{"a signature by another key", otherKey, "not valid"},
		{"HMAC", hmac, "not valid"},
		{"a tampered payload", strings.Split(valid, ".")[0] + "." + b64u([]byte(`{"sub":"alice","exp":`+jsonNum(exp)+`,"task":{"id":"t1"}}`)) + "." + strings.Split(valid, ".")[2], "not valid"},
		{"expired", mod(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "expired"},
		{"no exp", mod(func(c jwt.MapClaims) { delete(c, "exp") }), "not valid"},
		{"not yet valid", mod(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(5 * time.Minute).Unix() }), "not valid"},
		{"issued in the future", mod(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(5 * time.Minute).Unix() }), "not valid"},
		{"valid too long", mod(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(3 * time.Hour).Unix() }), "longer than"},
		{"issued too long before exp", mod(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(-2 * time.Hour).Unix() }), "longer than"},
		{"another principal", mod(func(c jwt.MapClaims) { c["sub"] = "mallory" }), "another principal"},
		{"no sub", mod(func(c jwt.MapClaims) { delete(c, "sub") }), "no sub"},
		{"sub not a string", mod(func(c jwt.MapClaims) { c["sub"] = 7 }), "no sub"},
		{"another session", mod(func(c jwt.MapClaims) { c["sid"] = "s2" }), "another MCP session"},
		{"sid not a string", mod(func(c jwt.MapClaims) { c["sid"] = 1 }), "not a session id"},
		{"an audience, none configured", mod(func(c jwt.MapClaims) { c["aud"] = "elsewhere" }), "audience"},
		{"no task", mod(func(c jwt.MapClaims) { delete(c, "task") }), "no task claim"},
		{"task not an object", mod(func(c jwt.MapClaims) { c["task"] = "t1" }), "is not an object"},
		{"task with an unknown member", mod(func(c jwt.MapClaims) { c["task"].(map[string]any)["widen"] = true }), `member "widen"`},
		{"task member in other case", mod(func(c jwt.MapClaims) { c["task"] = map[string]any{"ID": "t1"} }), `member "ID"`},
		{"task without id", mod(func(c jwt.MapClaims) { c["task"] = map[string]any{"tools": []any{}} }), "has no id"},
		{"task id not a string", mod(func(c jwt.MapClaims) { c["task"] = map[string]any{"id": 1} }), "id that is not"},
		{"task id too long", mod(func(c jwt.MapClaims) { c["task"] = map[string]any{"id": strings.Repeat("x", 257)} }), "id that is not"},
		{"scopes a string", mod(func(c jwt.MapClaims) { c["task"].(map[string]any)["scopes"] = "mail" }), "scopes that are not"},
		{"tools of numbers", mod(func(c jwt.MapClaims) { c["task"].(map[string]any)["tools"] = []any{1} }), "tools that are not"},
		{"tools null", mod(func(c jwt.MapClaims) { c["task"].(map[string]any)["tools"] = nil }), "tools that are not"},
		{"attrs an array", mod(func(c jwt.MapClaims) { c["task"].(map[string]any)["attrs"] = []any{"x"} }), "attrs that are not"},
		{"a duplicate claim", s.signRaw(t, `{"sub":"mallory","sub":"alice","exp":`+jsonNum(exp)+`,"task":{"id":"t1"}}`), "not valid"},
		{"a claim in other case", s.signRaw(t, `{"sub":"alice","exp":`+jsonNum(exp)+`,"EXP":99999999999,"task":{"id":"t1"}}`), "not valid"},
		{"a duplicate task member", s.signRaw(t, `{"sub":"alice","exp":`+jsonNum(exp)+`,"task":{"id":"t1","tools":["a"],"tools":["*"]}}`), "not valid"},
		{"huge", s.sign(t, taskClaims("alice", map[string]any{"id": "t1", "attrs": map[string]any{"pad": strings.Repeat("x", 20<<10)}})), "longer than"},
		{"not a JWT", "hello", "not valid"},
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestTaskVerifier: a valid token gives its task; every malformed, forged,
// stale or misdirected token is refused with a reason.
func TestTaskVerifier(t *testing.T) {
	s := newTaskSigner(t)
	v, err := guardmcp.NewTaskVerifier(s.keys, guardmcp.TaskOptions{})
	require.NoError(t, err)
	ctx := context.Background()

	tok := s.sign(t, taskClaims("alice", map[string]any{"id": "t1", "scopes": []any{"mail"}, "tools": []any{},
		"attrs": map[string]any{"recipients": []any{"bob@example.com"}, "max": 20}}))
	task, err := v.Verify(ctx, tok, "alice", "s1")
	require.NoError(t, err)
	assert.Equal(t, "t1", task.ID)
	assert.Equal(t, []string{"mail"}, task.Scopes)
	assert.Equal(t, []string{}, task.Tools, "an empty list keeps nothing")
	assert.Equal(t, []any{"bob@example.com"}, task.Attrs["recipients"])
	assert.Equal(t, json.Number("20"), task.Attrs["max"])
	bound := taskClaims("alice", map[string]any{"id": "t2"})
	bound["sid"] = "s1"
	task, err = v.Verify(ctx, s.sign(t, bound), "alice", "s1")
	require.NoError(t, err)
	assert.Nil(t, task.Scopes, "no scopes member keeps every scope")
	_, err = v.Verify(ctx, s.sign(t, bound), "alice", "")
	assert.ErrorContains(t, err, "the call has none")

	for _, a := range taskAttacks(t, s) {
		t.Run(a.name, func(t *testing.T) {
			_, err := v.Verify(ctx, a.token, "alice", "s1")
			require.Error(t, err)
			assert.Contains(t, err.Error(), a.want)
		})
	}

	t.Run("audience and issuer", func(t *testing.T) {
		v, err := guardmcp.NewTaskVerifier(s.keys, guardmcp.TaskOptions{Audience: "mcpguard", Issuer: "https://app.test"})
		require.NoError(t, err)
		c := taskClaims("alice", map[string]any{"id": "t1"})
		_, err = v.Verify(ctx, s.sign(t, c), "alice", "")
		assert.ErrorContains(t, err, "not valid", "no aud")
		c["aud"], c["iss"] = []any{"other", "mcpguard"}, "https://app.test"
		_, err = v.Verify(ctx, s.sign(t, c), "alice", "")
		assert.NoError(t, err)
		c["aud"] = "other"
		_, err = v.Verify(ctx, s.sign(t, c), "alice", "")
		assert.ErrorContains(t, err, "not valid", "another audience")
		c["aud"], c["iss"] = "mcpguard", "https://evil.test"
		_, err = v.Verify(ctx, s.sign(t, c), "alice", "")
		assert.ErrorContains(t, err, "not valid", "another issuer")
	})

	t.Run("session claim", func(t *testing.T) {
		c := taskClaims("alice", map[string]any{"id": "t1"})
		c["session"] = "conv-1"
		task, sess, err := v.VerifySession(ctx, s.sign(t, c), "alice", "")
		require.NoError(t, err)
		assert.Equal(t, "t1", task.ID)
		assert.Equal(t, "conv-1", sess)
		_, err = v.Verify(ctx, s.sign(t, c), "alice", "")
		assert.NoError(t, err)
		_, _, err = v.VerifySession(ctx, s.sign(t, c), "alice", "s1")
		assert.ErrorContains(t, err, "MCP session of its own", "a session claim cannot replace the request's session")
		for _, bad := range []any{"", 7, nil, []any{"conv-1"}, strings.Repeat("x", 257)} {
			c["session"] = bad
			_, _, err = v.VerifySession(ctx, s.sign(t, c), "alice", "")
			assert.ErrorContains(t, err, "session claim is not a string", "%v", bad)
		}
		delete(c, "session")
		_, sess, err = v.VerifySession(ctx, s.sign(t, c), "alice", "")
		require.NoError(t, err)
		assert.Empty(t, sess)
		c["Session"] = "conv-1"
		_, sess, err = v.VerifySession(ctx, s.sign(t, c), "alice", "")
		require.NoError(t, err)
		assert.Empty(t, sess, "only the claim spelled session names one")
	})

	_, err = guardmcp.NewTaskVerifier(nil, guardmcp.TaskOptions{})
	assert.Error(t, err)
	var nilV *guardmcp.TaskVerifier
	_, err = nilV.Verify(ctx, tok, "alice", "")
	assert.Error(t, err)
}

const taskPolicy = `
version: 1
scopes:
  mail:
    grants:
      - tools: [send_email]
        when: '!has(task.attrs.recipients) || args.to in task.attrs.recipients'
      - tools: [read_inbox]
      - resources: ["mail:///**"]
      - prompts: [draft]
  pay:
    grants:
      - tools: [send_money]
`

// taskServer is an in-process mcp-go server with guardmcp and the mail
// and payment tools, which count their runs.
type taskServer struct {
	s    *server.MCPServer
	sink *memSink
	ran  map[string]int
	meta []*mcp.Meta // the _meta each handler saw, in order
}

func newTaskServer(t *testing.T, opts ...guardmcp.Option) *taskServer {
	t.Helper()
	p, err := scope.Parse([]byte(taskPolicy))
	require.NoError(t, err)
	ts := &taskServer{sink: &memSink{}, ran: map[string]int{}}
	g, err := toolguard.New(p, toolguard.WithSink(ts.sink))
	require.NoError(t, err)
	ts.s = server.NewMCPServer("mail", "1", append([]server.ServerOption{server.WithResourceCapabilities(false, false),
		server.WithPromptCapabilities(false)}, guardmcp.ServerOptions(g, opts...)...)...)
	h := func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ts.ran[req.Params.Name]++
		ts.meta = append(ts.meta, req.Params.Meta)
		return mcp.NewToolResultText("done"), nil
	}
	for name, schema := range map[string]string{
		"send_email": `{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`,
		"send_money": `{"type":"object","properties":{"amount":{"type":"integer"}}}`,
		"read_inbox": `{"type":"object"}`,
	} {
		require.NoError(t, guardmcp.AddTool(ts.s, g, mcp.NewToolWithRawSchema(name, "", json.RawMessage(schema)), h))
	}
	ts.s.AddResource(mcp.NewResource("mail:///inbox", "inbox"), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		ts.ran["inbox"]++
		ts.meta = append(ts.meta, req.Params.Meta)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "mail"}}, nil
	})
	ts.s.AddPrompt(mcp.NewPrompt("draft"), func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		ts.ran["draft"]++
		ts.meta = append(ts.meta, req.Params.Meta)
		return mcp.NewGetPromptResult("d", nil), nil
	})
	return ts
}

// callMeta calls a tool with _meta.
func (ts *taskServer) callMeta(t *testing.T, ctx context.Context, name, args string, meta map[string]any) callResult {
	t.Helper()
	msg := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":` + mustJSON(name) + `,"arguments":` + args + `,"_meta":` + mustJSON(meta) + `}}`
	resp := rpc(t, ctx, ts.s, msg)
	res, ok := resp["result"].(map[string]any)
	require.True(t, ok, "tools/call: %v", resp)
	var cr callResult
	cr.IsError, _ = res["isError"].(bool)
	for _, c := range res["content"].([]any) {
		cr.Text += c.(map[string]any)["text"].(string)
	}
	return cr
}

// TestTaskFromMetaThroughServerOptions: an in-process server with
// WithTaskVerifier narrows each request to the task its _meta carries,
// and denies — recorded, never run — requests whose task is refused; a
// server without a verifier denies every request that carries a task.
func TestTaskFromMetaThroughServerOptions(t *testing.T) {
	s := newTaskSigner(t)
	v, err := guardmcp.NewTaskVerifier(s.keys, guardmcp.TaskOptions{})
	require.NoError(t, err)
	ts := newTaskServer(t, guardmcp.WithTaskVerifier(v))
	alice := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"mail"}})
	task := func(tk map[string]any) map[string]any {
		return map[string]any{guardmcp.TaskMetaKey: s.sign(t, taskClaims("alice", tk))}
	}
	mailTask := task(map[string]any{"id": "t1", "tools": []any{"send_email"}, "attrs": map[string]any{"recipients": []any{"bob@example.com"}}})

	assert.False(t, ts.callMeta(t, alice, "send_email", `{"to":"eve@evil.test"}`, nil).IsError, "without a task")
	assert.False(t, ts.callMeta(t, alice, "send_email", `{"to":"bob@example.com"}`, mailTask).IsError)
	got := ts.callMeta(t, alice, "send_email", `{"to":"eve@evil.test"}`, mailTask)
	assert.True(t, got.IsError, "a recipient the task does not name")
	got = ts.callMeta(t, alice, "read_inbox", `{}`, mailTask)
	assert.True(t, got.IsError, "a tool outside the task")
	assert.Contains(t, got.Text, `task "t1" does not include tool "read_inbox"`)
	got = ts.callMeta(t, alice, "send_money", `{"amount":1}`, task(map[string]any{"id": "t2", "scopes": []any{"mail", "pay"}}))
	assert.True(t, got.IsError, "a task adds no scope")

	refused := []struct {
		name string
		meta map[string]any
		want string
	}{
		{"expired", map[string]any{guardmcp.TaskMetaKey: taskAttacks(t, s)[5].token}, "expired"},
		{"not a string", map[string]any{guardmcp.TaskMetaKey: map[string]any{"id": "t1"}}, "not a string"},
		{"key in other case", map[string]any{"io.agentguard/Task": "x"}, `"io.agentguard/Task"`},
		{"key in upper case", map[string]any{"IO.AGENTGUARD/TASK": "x"}, "not one this server reads"},
		{"a look-alike key", map[string]any{"agentguard.io/task": "x"}, "not one this server reads"},
		{"beside the right key", map[string]any{guardmcp.TaskMetaKey: mailTask[guardmcp.TaskMetaKey], "io.agentguard/tasks": "x"}, "not one this server reads"},
	}
	for _, r := range refused {
		got := ts.callMeta(t, alice, "send_email", `{"to":"bob@example.com"}`, r.meta)
		assert.True(t, got.IsError, r.name)
		assert.Contains(t, got.Text, "the task sent with the call was refused", r.name)
		assert.Contains(t, got.Text, r.want, r.name)
		assert.NotContains(t, got.Text, "guardmcp", r.name)
	}
	assert.Equal(t, 2, ts.ran["send_email"], "only the allowed calls ran")
	assert.Zero(t, ts.ran["read_inbox"]+ts.ran["send_money"])

	// Resources and prompts read the same _meta.
	bad := mustJSON(map[string]any{guardmcp.TaskMetaKey: "not.a.token"})
	resp := rpc(t, alice, ts.s, `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"mail:///inbox","_meta":`+bad+`}}`)
	require.NotNil(t, resp["error"], "%v", resp)
	assert.Contains(t, resp["error"].(map[string]any)["message"], "task sent with the call was refused")
	resp = rpc(t, alice, ts.s, `{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"draft","_meta":`+bad+`}}`)
	require.NotNil(t, resp["error"], "%v", resp)
	noPrompts := mustJSON(task(map[string]any{"id": "t3", "scopes": []any{}}))
	resp = rpc(t, alice, ts.s, `{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"draft","_meta":`+noPrompts+`}}`)
	require.NotNil(t, resp["error"], "a task without scopes gets no prompt: %v", resp)
	resp = rpc(t, alice, ts.s, `{"jsonrpc":"2.0","id":6,"method":"resources/read","params":{"uri":"mail:///inbox","_meta":`+mustJSON(mailTask)+`}}`)
	require.NotNil(t, resp["result"], "a task keeping the mail scope may read: %v", resp)
	assert.Equal(t, 1, ts.ran["inbox"])
	assert.Zero(t, ts.ran["draft"])

	var tasks, stages []string
	for _, r := range ts.sink.decisions() {
		tasks = append(tasks, r.Task)
		stages = append(stages, r.Stage)
	}
	assert.Equal(t, []string{"", "t1", "t1", "t1", "t2", "", "", "", "", "", "", "", "", "t3", "t1"}, tasks, "records name verified tasks only")
	for i := 5; i < 13; i++ {
		assert.Equal(t, "principal", stages[i], "refusal %d is recorded", i)
	}

	t.Run("no verifier", func(t *testing.T) {
		ts := newTaskServer(t)
		got := ts.callMeta(t, alice, "send_email", `{"to":"bob@example.com"}`, mailTask)
		assert.True(t, got.IsError)
		assert.Contains(t, got.Text, "no key to verify tasks with")
		assert.False(t, ts.callMeta(t, alice, "send_email", `{"to":"bob@example.com"}`, map[string]any{"other.vendor/x": 1}).IsError,
			"other vendors' keys are left alone")
		assert.Equal(t, 1, ts.ran["send_email"])
		recs := ts.sink.decisions()
		require.Len(t, recs, 2)
		assert.Equal(t, "deny", recs[0].Effect)
		assert.Contains(t, recs[0].Reason, "no key to verify tasks with")
	})
}

// TestTaskTokenNotShownToHandlers: the guard reads the task token and the
// handler of the tool, resource or prompt never sees it — a handler that
// logs its requests would leak a token that narrows, and through its attrs
// allows, calls until it expires — while the rest of _meta reaches it.
func TestTaskTokenNotShownToHandlers(t *testing.T) {
	s := newTaskSigner(t)
	v, err := guardmcp.NewTaskVerifier(s.keys, guardmcp.TaskOptions{})
	require.NoError(t, err)
	ts := newTaskServer(t, guardmcp.WithTaskVerifier(v))
	alice := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"mail"}})
	tok := s.sign(t, taskClaims("alice", map[string]any{"id": "t1", "tools": []any{"send_email"}}))

	both := map[string]any{guardmcp.TaskMetaKey: tok, "progressToken": "p1", "io.example/trace": "abc"}
	require.False(t, ts.callMeta(t, alice, "send_email", `{"to":"bob@example.com"}`, both).IsError)
	require.False(t, ts.callMeta(t, alice, "send_email", `{"to":"bob@example.com"}`, map[string]any{guardmcp.TaskMetaKey: tok}).IsError)
	for i, method := range []string{"resources/read", "prompts/get"} {
		params := `"uri":"mail:///inbox"`
		if method == "prompts/get" {
			params = `"name":"draft"`
		}
		resp := rpc(t, alice, ts.s, `{"jsonrpc":"2.0","id":`+jsonNum(int64(10+i))+`,"method":"`+method+`","params":{`+params+`,"_meta":`+mustJSON(both)+`}}`)
		require.NotNil(t, resp["result"], "%s: %v", method, resp)
	}
	require.Len(t, ts.meta, 4)
	for i, m := range ts.meta {
		if i == 1 {
			assert.Nil(t, m, "a _meta that held only the token is gone")
			continue
		}
		require.NotNil(t, m, "call %d", i)
		assert.NotContains(t, m.AdditionalFields, guardmcp.TaskMetaKey, "call %d", i)
		assert.Equal(t, "abc", m.AdditionalFields["io.example/trace"], "call %d", i)
		assert.EqualValues(t, "p1", m.ProgressToken, "call %d", i)
		assert.NotContains(t, mustJSON(m), tok, "call %d", i)
	}
	assert.Equal(t, 2, ts.ran["send_email"])
}
