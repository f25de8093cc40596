package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

var (
	buildOnce sync.Map // package → *buildResult
	binDir    string
	binDirMu  sync.Mutex
)

type buildResult struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildBin builds one of the example commands once per test run.
func buildBin(t testing.TB, name string) string {
	t.Helper()
	binDirMu.Lock()
	if binDir == "" {
		d, err := os.MkdirTemp("", "guardmcp-bin-")
		require.NoError(t, err)
		binDir = d
	}
	dir := binDir
	binDirMu.Unlock()
	v, _ := buildOnce.LoadOrStore(name, &buildResult{})
	br := v.(*buildResult)
	br.once.Do(func() {
		br.path = filepath.Join(dir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", br.path, "./examples/"+name)
		cmd.Dir = ".."
		br.out, br.err = cmd.CombinedOutput()
	})
	require.NoError(t, br.err, "go build %s: %s", name, br.out)
	return br.path
}

func TestMain(m *testing.M) {
	switch os.Getenv(testUpstreamEnv) {
	case "1":
		// The test binary doubles as an upstream MCP server (see
		// testUpstream), so tests can make it hang or crash.
		os.Exit(testUpstream())
	case "poisoned":
		os.Exit(poisonedUpstream())
	case "cancel":
		os.Exit(cancelUpstream())
	case "task":
		os.Exit(taskUpstream())
	case "lines":
		os.Exit(echoLines())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

type toolCall struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

type callOutcome struct {
	IsError bool   `json:"isError"`
	Text    string `json:"text"`
}

type sessionResult struct {
	Tools []string      `json:"tools"`
	Calls []callOutcome `json:"calls"`
}

// stdioClient is an mcp-go client of a stdio server command it started.
type stdioClient struct {
	c      *client.Client
	cmd    *exec.Cmd
	stderr *syncBuffer
}

// startStdioClient starts argv and connects an initialized mcp-go client to
// it; the client (and so the command) is closed at cleanup.
func startStdioClient(t *testing.T, ctx context.Context, argv []string, opts ...client.ClientOption) *stdioClient {
	t.Helper()
	sc := &stdioClient{stderr: &syncBuffer{}}
	tr := transport.NewStdioWithOptions(argv[0], nil, argv[1:],
		transport.WithCommandStderrWriter(sc.stderr),
		transport.WithCommandFunc(func(ctx context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
			sc.cmd = exec.CommandContext(ctx, command, args...)
			sc.cmd.Env = append(os.Environ(), env...)
			return sc.cmd, nil
		}))
	sc.c = client.NewClient(tr, append([]client.ClientOption{client.WithLegacyProtocolOnly()}, opts...)...)
	require.NoError(t, sc.c.Start(ctx))
	t.Cleanup(func() { sc.c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "guardmcp-test", Version: "1"}
	_, err := sc.c.Initialize(ctx, init)
	require.NoError(t, err, "initialize; stderr: %s", sc.stderr.String())
	return sc
}

// stop sends SIGTERM and waits for a clean exit.
func (sc *stdioClient) stop(t *testing.T) {
	t.Helper()
	require.NotNil(t, sc.cmd)
	require.NoError(t, sc.cmd.Process.Signal(syscall.SIGTERM))
	exited := make(chan struct{})
	go func() { sc.c.Close(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	if sc.cmd.ProcessState != nil {
		assert.True(t, sc.cmd.ProcessState.Success(), "exit status %v; stderr: %s", sc.cmd.ProcessState, sc.stderr.String())
	}
}

func (sc *stdioClient) toolNames(t *testing.T, ctx context.Context) []string {
	t.Helper()
	tools, err := sc.c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	sort.Strings(names)
	return names
}

func (sc *stdioClient) call(t *testing.T, ctx context.Context, tc toolCall) callOutcome {
	t.Helper()
	r, err := sc.callErr(ctx, tc)
	require.NoError(t, err, "call %s; stderr: %s", tc.Name, sc.stderr.String())
	return r
}

func (sc *stdioClient) callErr(ctx context.Context, tc toolCall) (callOutcome, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = tc.Name
	req.Params.Arguments = tc.Arguments
	r, err := sc.c.CallTool(ctx, req)
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

// goSession runs calls against a stdio MCP server command with mcp-go's
// client, then stops the server with SIGTERM and waits for it to exit.
func goSession(t *testing.T, argv []string, calls []toolCall, opts ...client.ClientOption) sessionResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc := startStdioClient(t, ctx, argv, opts...)
	var res sessionResult
	res.Tools = sc.toolNames(t, ctx)
	for _, tc := range calls {
		res.Calls = append(res.Calls, sc.call(t, ctx, tc))
	}
	sc.stop(t)
	return res
}

// nodeSession runs the same with the TypeScript SDK client.
func nodeSession(t *testing.T, argv []string, calls []toolCall) sessionResult {
	t.Helper()
	f := filepath.Join(t.TempDir(), "calls.json")
	b, err := json.Marshal(calls)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, b, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{"client.mjs", f, "--"}, argv...)...)
	cmd.Dir = filepath.Join("testdata", "node")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node client: %s", stderr.String())
	var res sessionResult
	require.NoError(t, json.Unmarshal(out, &res), "output: %s", out)
	return res
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const e2ePolicy = `
version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_text_file, read_file, list_directory, get_file_info]
        when: args.path.isUnder(principal.attrs.workspace)
  fs.write:
    grants:
      - tools: [write_file, edit_file, create_directory]
        when: args.path.isUnder(principal.attrs.workspace)
`

type fsFixture struct {
	root, ws, policy string
	calls            []toolCall
	wantError        []bool
}

func newFSFixture(t *testing.T) *fsFixture {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	f := &fsFixture{root: root, ws: filepath.Join(root, "ws"), policy: filepath.Join(root, "policy.yaml")}
	require.NoError(t, os.MkdirAll(f.ws, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.ws, "a.txt"), []byte("hello from the workspace"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(root, "secret.txt"), []byte("top secret"), 0o644))
	require.NoError(t, os.WriteFile(f.policy, []byte(e2ePolicy), 0o644))
	f.calls = []toolCall{
		{"read_text_file", map[string]any{"path": filepath.Join(f.ws, "a.txt")}},
		{"list_directory", map[string]any{"path": f.ws}},
		{"read_text_file", map[string]any{"path": filepath.Join(root, "secret.txt")}},
		{"read_text_file", map[string]any{"path": f.ws + "/../secret.txt"}},
		{"write_file", map[string]any{"path": filepath.Join(f.ws, "b.txt"), "content": "x"}},
		{"no_such_tool", map[string]any{"path": f.ws}},
	}
	f.wantError = []bool{false, false, true, true, true, true}
	return f
}

func (f *fsFixture) principalArgs() []string {
	return []string{"-principal", "reader", "-scopes", "fs.read", "-attr", "workspace=" + f.ws}
}

func checkFSResults(t *testing.T, f *fsFixture, res sessionResult) {
	t.Helper()
	require.Len(t, res.Calls, len(f.calls))
	for i, c := range res.Calls {
		assert.Equal(t, f.wantError[i], c.IsError, "call %d (%s): %s", i, f.calls[i].Name, c.Text)
		if f.wantError[i] {
			assert.Contains(t, c.Text, "denied", "call %d has a reason", i)
		}
	}
	assert.Contains(t, res.Calls[0].Text, "hello from the workspace")
	_, err := os.Stat(filepath.Join(f.ws, "b.txt"))
	assert.True(t, os.IsNotExist(err), "the denied write did not happen")
}

// verifyLog checks the audit log's chain and returns its decision records.
func verifyLog(t *testing.T, path string) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, r := range allRecords(t, path) {
		if r.Kind == audit.KindDecision {
			out = append(out, r)
		}
	}
	return out
}

func TestMCPGuardFilesystemE2E(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	server := buildBin(t, "mcp-server")
	f := newFSFixture(t)
	upstream := []string{"node", filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), f.root}

	proxied := func(auditName string) []string {
		argv := append([]string{guard, "-policy", f.policy, "-audit", filepath.Join(f.root, auditName)}, f.principalArgs()...)
		return append(append(argv, "--"), upstream...)
	}

	t.Run("mcp-go client through mcpguard", func(t *testing.T) {
		res := goSession(t, proxied("proxy-go.jsonl"), f.calls)
		assert.Equal(t, []string{"get_file_info", "list_directory", "read_file", "read_text_file"}, res.Tools,
			"a read-only principal lists only read tools")
		checkFSResults(t, f, res)
		recs := verifyLog(t, filepath.Join(f.root, "proxy-go.jsonl"))
		require.Len(t, recs, len(f.calls), "one decision record per call")
		for i, r := range recs {
			assert.Equal(t, f.calls[i].Name, r.Tool)
			if f.calls[i].Name != "no_such_tool" {
				// toolguard denies an unknown tool before it looks at
				// the principal, and records none.
				assert.Equal(t, "reader", r.Principal)
			}
			assert.Equal(t, map[bool]string{false: "allow", true: "deny"}[f.wantError[i]], r.Effect)
		}
	})

	t.Run("TypeScript SDK client through mcpguard", func(t *testing.T) {
		res := nodeSession(t, proxied("proxy-ts.jsonl"), f.calls)
		assert.Equal(t, []string{"get_file_info", "list_directory", "read_file", "read_text_file"}, res.Tools)
		checkFSResults(t, f, res)
		assert.Len(t, verifyLog(t, filepath.Join(f.root, "proxy-ts.jsonl")), len(f.calls))
	})

	t.Run("same decisions in-process", func(t *testing.T) {
		argv := append([]string{server, "-root", f.root, "-policy", f.policy, "-audit", filepath.Join(f.root, "inproc.jsonl")}, f.principalArgs()...)
		res := goSession(t, argv, f.calls)
		assert.Equal(t, []string{"list_directory", "read_text_file"}, res.Tools)
		checkFSResults(t, f, res)
		inproc := verifyLog(t, filepath.Join(f.root, "inproc.jsonl"))
		proxy := verifyLog(t, filepath.Join(f.root, "proxy-go.jsonl"))
		require.Len(t, inproc, len(proxy))
		for i := range proxy {
			assert.Equal(t, proxy[i].Effect, inproc[i].Effect, "call %d", i)
			assert.Equal(t, proxy[i].Stage, inproc[i].Stage, "call %d", i)
			assert.Equal(t, proxy[i].Scope, inproc[i].Scope, "call %d", i)
			assert.Equal(t, proxy[i].Reason, inproc[i].Reason, "call %d", i)
			assert.Equal(t, proxy[i].ArgsSHA256, inproc[i].ArgsSHA256, "call %d", i)
		}
	})

	t.Run("lock catches a changed tool", func(t *testing.T) {
		lock := filepath.Join(f.root, "tools.lock.json")
		logPath := filepath.Join(f.root, "lock.jsonl")
		argv := func(update bool) []string {
			a := []string{guard, "-policy", f.policy, "-audit", logPath, "-lock", lock}
			if update {
				a = append(a, "-update-lock")
			}
			a = append(a, f.principalArgs()...)
			return append(append(a, "--"), upstream...)
		}
		// Without a lock file mcpguard refuses to start, and says how to
		// write one.
		out, err := exec.Command(guard, "-policy", f.policy, "-audit", logPath, "-lock", lock, "-principal", "x", "--", "true").CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), "run the same command with -update-lock added")
		assert.NotContains(t, string(out), "WithLock", "no Go API names for a command-line user")
		_, err = os.Stat(logPath)
		assert.ErrorIs(t, err, os.ErrNotExist, "a failed start leaves no log file behind")

		// -update-lock pins the tools, says which, and exits.
		out, err = exec.Command(argv(true)[0], argv(true)[1:]...).Output()
		require.NoError(t, err)
		assert.Contains(t, string(out), "tools pinned (there was no lock before)")
		assert.Contains(t, string(out), "  added     read_text_file\n")

		res := goSession(t, argv(false), f.calls[:1])
		assert.False(t, res.Calls[0].IsError, res.Calls[0].Text)

		// Pretend the upstream changed read_text_file since the lock was
		// written: its pinned digest no longer matches.
		var l map[string]any
		b, err := os.ReadFile(lock)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &l))
		tools := l["tools"].(map[string]any)
		require.Contains(t, tools, "read_text_file")
		tools["read_text_file"] = "sha256:" + strings.Repeat("0", 64)
		delete(tools, "list_directory")
		b, err = json.Marshal(l)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(lock, b, 0o644))

		res = goSession(t, argv(false), f.calls[:2])
		assert.Equal(t, []string{"get_file_info", "read_file"}, res.Tools, "changed and new tools are hidden")
		for i, c := range res.Calls {
			assert.True(t, c.IsError, "call %d: %s", i, c.Text)
		}
		assert.Contains(t, res.Calls[0].Text, "changed since the tool lock was written")
		assert.Contains(t, res.Calls[1].Text, "not in the tool lock")
		recs := verifyLog(t, logPath)
		require.Len(t, recs, 3)
		assert.Equal(t, "deny", recs[1].Effect)
		assert.Equal(t, "tool-lock", recs[1].Rule)
		assert.Contains(t, recs[1].Reason, "changed since the tool lock")
		assert.Equal(t, "reader", recs[1].Principal)
	})
}
