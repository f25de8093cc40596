package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
)

// seenEnv names the file where taskUpstream notes every call it gets.
const seenEnv = "GUARDMCP_TEST_SEEN"

// seenCall is a call as the upstream got it.
type seenCall struct {
	Tool string         `json:"tool"`
	Args map[string]any `json:"args"`
	Meta []string       `json:"meta"` // its _meta keys
}

// taskUpstream serves, over stdio, the mail and payment tools; each call
// is appended to the file named by seenEnv before it is answered.
func taskUpstream() int {
	s := server.NewMCPServer("mail", "1", server.WithToolCapabilities(true))
	note := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		sc := seenCall{Tool: req.Params.Name, Args: req.GetArguments(), Meta: []string{}}
		if m := req.Params.Meta; m != nil {
			for k := range m.AdditionalFields {
				sc.Meta = append(sc.Meta, k)
			}
		}
		line, _ := json.Marshal(sc)
		f, err := os.OpenFile(os.Getenv(seenEnv), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if _, err := f.Write(append(line, '\n')); err != nil {
			return nil, err
		}
		return mcp.NewToolResultText("done: " + req.Params.Name), nil
	}
	s.AddTool(mcp.NewTool("send_email", mcp.WithString("to", mcp.Required())), note)
	s.AddTool(mcp.NewTool("send_money", mcp.WithNumber("amount")), note)
	s.AddTool(mcp.NewTool("read_inbox"), note)
	if err := server.ServeStdio(s); err != nil {
		return 1
	}
	return 0
}

// readSeen returns the calls the upstream got.
func readSeen(t *testing.T, path string) []seenCall {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []seenCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c seenCall
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		out = append(out, c)
	}
	require.NoError(t, sc.Err())
	return out
}

// metaCall calls a tool with _meta, as a host application would.
func metaCall(ctx context.Context, c *client.Client, name string, args, meta map[string]any) (callOutcome, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	if meta != nil {
		req.Params.Meta = mcp.NewMetaFromMap(meta)
	}
	r, err := c.CallTool(ctx, req)
	if err != nil {
		return callOutcome{}, err
	}
	var texts []string
	for _, ct := range r.Content {
		if tx, ok := ct.(mcp.TextContent); ok {
			texts = append(texts, tx.Text)
		}
	}
	return callOutcome{IsError: r.IsError, Text: strings.Join(texts, "\n")}, nil
}

// taskEnv sets up the upstream for mcpguard and returns the policy file,
// the audit log and the upstream's notes.
func taskEnv(t *testing.T) (policy, logPath, seen string, upstream []string) {
	t.Helper()
	dir := t.TempDir()
	policy = filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(taskPolicy), 0o644))
	seen = filepath.Join(dir, "seen.jsonl")
	self, err := os.Executable()
	require.NoError(t, err)
	// Inherited by mcpguard and so by the upstream it starts.
	t.Setenv(testUpstreamEnv, "task")
	t.Setenv(seenEnv, seen)
	return policy, filepath.Join(dir, "decisions.jsonl"), seen, []string{"--", self, "-test.run=^$"}
}

// TestMCPGuardTaskOverStdio runs the mcpguard binary over stdio in front of
// a Go MCP server, with -task-key. A signed task in _meta narrows the
// calls it comes with: a tool outside the task is denied and the upstream
// never sees it, task attrs restrict the recipients, and a task naming a
// scope the principal lacks adds nothing. Every forged, stale, misdirected
// or malformed task, and every look-alike _meta key, is denied, recorded,
// and kept from the upstream; the token itself is never forwarded.
// Without -task-key, a call with a task is denied.
func TestMCPGuardTaskOverStdio(t *testing.T) {
	guard := buildBin(t, "mcpguard")
	policy, logPath, seenPath, upstream := taskEnv(t)
	s := newTaskSigner(t)
	argv := append([]string{guard, "-policy", policy, "-audit", logPath, "-principal", "alice", "-scopes", "mail",
		"-task-key", s.pemPath}, upstream...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc := startStdioClient(t, ctx, argv)
	call := func(name string, args map[string]any, meta map[string]any) callOutcome {
		t.Helper()
		res, err := metaCall(ctx, sc.c, name, args, meta)
		require.NoError(t, err, "%s is answered with a result; stderr: %s", name, sc.stderr.String())
		return res
	}
	task := func(tk map[string]any) map[string]any {
		return map[string]any{guardmcp.TaskMetaKey: s.sign(t, taskClaims("alice", tk))}
	}
	mailTask := task(map[string]any{"id": "t1", "tools": []any{"send_email"}, "attrs": map[string]any{"recipients": []any{"bob@example.com"}}})
	eve, bob := map[string]any{"to": "eve@evil.test"}, map[string]any{"to": "bob@example.com"}

	assert.False(t, call("send_email", eve, nil).IsError, "without a task, any recipient")
	res := call("send_email", bob, mailTask)
	assert.False(t, res.IsError, res.Text)
	res = call("send_email", eve, mailTask)
	assert.True(t, res.IsError, "a recipient the task does not name")
	res = call("read_inbox", nil, mailTask)
	assert.True(t, res.IsError)
	assert.Contains(t, res.Text, `task "t1" does not include tool "read_inbox"`)
	assert.True(t, call("send_money", map[string]any{"amount": 1}, nil).IsError, "alice has no pay scope")
	res = call("send_money", map[string]any{"amount": 1}, task(map[string]any{"id": "t2", "scopes": []any{"mail", "pay"}}))
	assert.True(t, res.IsError, "a task cannot add the pay scope")
	allowed := 2

	attacks := taskAttacks(t, s)
	for _, a := range attacks {
		res := call("send_email", bob, map[string]any{guardmcp.TaskMetaKey: a.token})
		assert.True(t, res.IsError, a.name)
		assert.Contains(t, res.Text, "the task sent with the call was refused", a.name)
		assert.Contains(t, res.Text, a.want, a.name)
		assert.NotContains(t, res.Text, "guardmcp", a.name)
	}
	lookalikes := []map[string]any{
		{"io.agentguard/Task": mailTask[guardmcp.TaskMetaKey]},
		{"IO.AGENTGUARD/TASK": mailTask[guardmcp.TaskMetaKey]},
		{"io.agentguard.task": mailTask[guardmcp.TaskMetaKey]},
		{"agentguard/task": mailTask[guardmcp.TaskMetaKey]},
		{guardmcp.TaskMetaKey: mailTask[guardmcp.TaskMetaKey], "io.agentguard/scopes": []any{"pay"}},
		{guardmcp.TaskMetaKey: 42},
	}
	for _, m := range lookalikes {
		res := call("send_email", eve, m)
		assert.True(t, res.IsError, "%v", m)
		assert.Contains(t, res.Text, "the task sent with the call was refused", "%v", m)
	}
	assert.False(t, call("send_email", eve, map[string]any{"com.example/trace": "x"}).IsError, "other vendors' keys are left alone")
	allowed++
	sc.stop(t)

	seen := readSeen(t, seenPath)
	require.Len(t, seen, allowed, "the upstream saw only the allowed calls: %+v", seen)
	assert.Equal(t, []string{"eve@evil.test", "bob@example.com", "eve@evil.test"},
		[]string{seen[0].Args["to"].(string), seen[1].Args["to"].(string), seen[2].Args["to"].(string)})
	for _, c := range seen {
		assert.Equal(t, "send_email", c.Tool)
		assert.NotContains(t, c.Meta, guardmcp.TaskMetaKey, "the token is not forwarded")
	}
	assert.Contains(t, seen[2].Meta, "com.example/trace", "other _meta is forwarded")

	var decisions []audit.Record
	for _, r := range allRecords(t, logPath) {
		if r.Kind == audit.KindDecision {
			decisions = append(decisions, r)
		}
	}
	require.Len(t, decisions, 6+len(attacks)+len(lookalikes)+1)
	var tasks []string
	for _, r := range decisions[:6] {
		tasks = append(tasks, r.Task)
	}
	assert.Equal(t, []string{"", "t1", "t1", "t1", "", "t2"}, tasks, "records name the verified task")
	for _, r := range decisions[6 : 6+len(attacks)+len(lookalikes)] {
		assert.Equal(t, "deny", r.Effect)
		assert.Equal(t, "principal", r.Stage)
		assert.Contains(t, r.Reason, "the task sent with the call was refused")
		assert.Empty(t, r.Task, "a refused task is never recorded as the task")
		assert.Equal(t, "alice", r.Principal)
	}

	t.Run("without a task key", func(t *testing.T) {
		logPath := filepath.Join(t.TempDir(), "decisions.jsonl")
		argv := append([]string{guard, "-policy", policy, "-audit", logPath, "-principal", "alice", "-scopes", "mail"}, upstream...)
		sc := startStdioClient(t, ctx, argv)
		res, err := metaCall(ctx, sc.c, "send_email", bob, mailTask)
		require.NoError(t, err)
		assert.True(t, res.IsError)
		assert.Contains(t, res.Text, "no key to verify tasks with")
		sc.stop(t)
		assert.Len(t, readSeen(t, seenPath), allowed, "the upstream never saw it")
		recs := allRecords(t, logPath)
		require.Len(t, recs, 1)
		assert.Equal(t, "deny", recs[0].Effect)
	})
}

// taskHTTPClient connects an initialized mcp-go client over streamable
// HTTP with a bearer token.
func taskHTTPClient(t *testing.T, url, bearer string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + bearer}))
	require.NoError(t, err)
	c := client.NewClient(tr, client.WithLegacyProtocolOnly())
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "task-test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	require.NotEmpty(t, c.GetSessionId())
	return c
}

// TestMCPGuardTaskOverHTTP runs the mcpguard binary over streamable HTTP,
// principals from bearer tokens, with -task-key and -task-audience. Tasks
// bound to a session (sid) work in it and are refused in another session
// of the same principal; a task for another principal, or without the
// audience, is refused. Two clients calling at once with different tasks
// each get their own narrowing, and the records of each session name its
// task.
func TestMCPGuardTaskOverHTTP(t *testing.T) {
	guard := buildBin(t, "mcpguard")
	policy, logPath, seenPath, upstream := taskEnv(t)
	s := newTaskSigner(t)
	jf := newJWTFixture(t)
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(jwks, jf.jwks, 0o600))
	bearer := func(sub string) string {
		return jf.sign(t, validClaims(), func(c jwt.MapClaims) { c["sub"], c["scope"] = sub, "mail" })
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	px := exec.Command(guard, append([]string{"-policy", policy, "-audit", logPath, "-listen", addr,
		"-jwks", jwks, "-audience", "mcp", "-issuer", "https://idp.test",
		"-task-key", s.pemPath, "-task-audience", "mcpguard"}, upstream...)...)
	out := startProcess(t, px)
	waitListening(t, addr, 30*time.Second)
	url := "http://" + addr + "/mcp"

	a := taskHTTPClient(t, url, bearer("alice"))
	b := taskHTTPClient(t, url, bearer("alice"))
	c := taskHTTPClient(t, url, bearer("bob"))
	token := func(sub, sid string, task map[string]any, aud bool) map[string]any {
		cl := taskClaims(sub, task)
		if sid != "" {
			cl["sid"] = sid
		}
		if aud {
			cl["aud"] = "mcpguard"
		}
		return map[string]any{guardmcp.TaskMetaKey: s.sign(t, cl)}
	}
	taskA := token("alice", a.GetSessionId(), map[string]any{"id": "tA", "tools": []any{"send_email"},
		"attrs": map[string]any{"recipients": []any{"bob@example.com"}}}, true)
	taskB := token("alice", b.GetSessionId(), map[string]any{"id": "tB", "tools": []any{"read_inbox"}}, true)
	bob := map[string]any{"to": "bob@example.com"}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	must := func(cl *client.Client, name string, args, meta map[string]any) callOutcome {
		t.Helper()
		res, err := metaCall(ctx, cl, name, args, meta)
		require.NoError(t, err, "mcpguard: %s", out.String())
		return res
	}
	res := must(a, "send_email", bob, taskA)
	assert.False(t, res.IsError, res.Text)
	res = must(b, "send_email", bob, taskA)
	assert.True(t, res.IsError, "A's task replayed in B's session")
	assert.Contains(t, res.Text, "bound to another MCP session")
	res = must(c, "send_email", bob, token("alice", "", map[string]any{"id": "tA"}, true))
	assert.True(t, res.IsError, "alice's task sent by bob")
	assert.Contains(t, res.Text, "another principal")
	res = must(b, "read_inbox", nil, token("alice", "", map[string]any{"id": "tB"}, false))
	assert.True(t, res.IsError, "no audience")
	assert.Contains(t, res.Text, "not valid")

	// A and B at once, each with its own task.
	const rounds = 10
	var wg sync.WaitGroup
	for _, cl := range []struct {
		c              *client.Client
		task           map[string]any
		allowed, other string
	}{{a, taskA, "send_email", "read_inbox"}, {b, taskB, "read_inbox", "send_email"}} {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					ok, err := metaCall(ctx, cl.c, cl.allowed, bob, cl.task)
					if assert.NoError(t, err) {
						assert.False(t, ok.IsError, "%s in its own task: %s", cl.allowed, ok.Text)
					}
					no, err := metaCall(ctx, cl.c, cl.other, bob, cl.task)
					if assert.NoError(t, err) {
						assert.True(t, no.IsError, "%s is outside the task", cl.other)
						assert.Contains(t, no.Text, "does not include tool")
					}
				}
			}()
		}
	}
	wg.Wait()

	seen := readSeen(t, seenPath)
	count := map[string]int{}
	for _, sc := range seen {
		count[sc.Tool]++
		assert.NotContains(t, sc.Meta, guardmcp.TaskMetaKey)
	}
	assert.Equal(t, map[string]int{"send_email": 1 + 2*rounds, "read_inbox": 2 * rounds}, count, "the upstream saw only the allowed calls")

	// Records: each session's calls carry its own task. Every decision
	// was written before its call was answered.
	decisions := completeDecisions(t, logPath)
	require.Len(t, decisions, 4+8*rounds)
	tasksOf := map[string][]string{}
	for _, r := range decisions {
		if r.Task != "" && !slices.Contains(tasksOf[r.Session], r.Task) {
			tasksOf[r.Session] = append(tasksOf[r.Session], r.Task)
		}
	}
	assert.Equal(t, map[string][]string{a.GetSessionId(): {"tA"}, b.GetSessionId(): {"tB"}}, tasksOf)
}

// completeDecisions returns the decision records among the complete lines
// of a log that may be being written.
func completeDecisions(t *testing.T, path string) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []audit.Record
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[:len(lines)-1] { // the last is "" or incomplete
		var r audit.Record
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		if r.Kind == audit.KindDecision {
			out = append(out, r)
		}
	}
	return out
}
