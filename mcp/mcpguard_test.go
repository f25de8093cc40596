package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

const testUpstreamEnv = "GUARDMCP_TEST_UPSTREAM"

// testUpstream serves, over stdio, an upstream whose tools misbehave on
// request: echo answers, hang never answers, crash exits mid-call.
func testUpstream() int {
	s := server.NewMCPServer("misbehaving", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo " + req.GetString("text", "")), nil
	})
	s.AddTool(mcp.NewTool("hang"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		select {} // ignores cancellation, like a stuck server
	})
	s.AddTool(mcp.NewTool("crash"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		os.Exit(3)
		return nil, nil
	})
	if err := server.ServeStdio(s); err != nil {
		return 1
	}
	return 0
}

// misbehavingArgv runs mcpguard in front of the test binary as upstream.
func misbehavingArgv(t *testing.T, guard, policy, auditPath string, extra ...string) []string {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(testUpstreamEnv, "1") // inherited by mcpguard and so by the upstream
	argv := append([]string{guard, "-policy", policy, "-audit", auditPath, "-principal", "agent", "-scopes", "tools"}, extra...)
	return append(argv, "--", self, "-test.run=^$")
}

// allRecords verifies the log's chain and returns all its records.
func allRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	fh, err := os.Open(path)
	require.NoError(t, err)
	defer fh.Close()
	_, err = audit.Verify(fh, audit.VerifyOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		out = append(out, r)
	}
	return out
}

const approvalPolicy = `
version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_text_file, list_directory]
        when: args.path.isUnder(principal.attrs.workspace)
  fs.write:
    grants:
      - tools: [write_file]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: confirm-writes
    effect: ask
    tools: [write_file]
    message: '"writing " + args.path + " needs approval from a human"'
`

// elicitFunc adapts a function to client.ElicitationHandler.
type elicitFunc func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error)

func (f elicitFunc) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return f(ctx, req)
}

func answer(action mcp.ElicitationResponseAction, content map[string]any) elicitFunc {
	return func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: action, Content: content}}, nil
	}
}

func TestMCPGuardApprovalByElicitation(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	root, ws := workspace(t)
	policy := filepath.Join(root, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(approvalPolicy), 0o644))
	upstream := []string{"node", filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), root}

	tests := []struct {
		name     string
		handler  client.ElicitationHandler // nil: the client cannot be asked
		approved bool
		text     string // in the result
		reason   string // in the record's approval
	}{
		{"approves", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true, "comment": "fine"}), true, "Successfully wrote", "fine"},
		{"refuses in the form", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": false, "comment": "not today"}), false, "not today", "the user refused: not today"},
		{"declines", answer(mcp.ElicitationResponseActionDecline, nil), false, "the user declined", "the user declined"},
		{"cancels", answer(mcp.ElicitationResponseActionCancel, nil), false, "the user cancelled", "the user cancelled"},
		{"cannot be asked", nil, false, "did not declare the elicitation capability", "did not declare the elicitation capability"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(ws, tt.name+".txt")
			logPath := filepath.Join(root, "log-"+string(rune('a'+i))+".jsonl")
			var asked []mcp.ElicitationRequest
			var opts []client.ClientOption
			if tt.handler != nil {
				h := tt.handler
				opts = append(opts, client.WithElicitationHandler(elicitFunc(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
					asked = append(asked, req)
					return h.Elicit(ctx, req)
				})))
			}
			argv := append([]string{guard, "-policy", policy, "-audit", logPath, "-approval-timeout", "20s",
				"-principal", "writer", "-scopes", "fs.read,fs.write", "-attr", "workspace=" + ws, "--"}, upstream...)
			res := goSession(t, argv, []toolCall{{"write_file", map[string]any{"path": file, "content": "approved content"}}}, opts...)

			require.Len(t, res.Calls, 1)
			got := res.Calls[0]
			assert.Equal(t, !tt.approved, got.IsError, got.Text)
			assert.Contains(t, got.Text, tt.text)
			_, statErr := os.Stat(file)
			assert.Equal(t, tt.approved, statErr == nil, "the file is written only when approved")

			if tt.handler != nil {
				require.Len(t, asked, 1, "the user is asked once")
				msg := asked[0].Params.Message
				for _, want := range []string{"write_file", "writer", file, "approved content", "needs approval from a human", "confirm-writes"} {
					assert.Contains(t, msg, want, "the question shows %q", want)
				}
			} else {
				assert.Contains(t, got.Text, "human approval was required")
			}

			recs := verifyLog(t, logPath)
			require.Len(t, recs, 1, "one decision record")
			r := recs[0]
			assert.Equal(t, "write_file", r.Tool)
			assert.Equal(t, map[bool]string{true: "allow", false: "deny"}[tt.approved], r.Effect)
			require.NotNil(t, r.Approval, "the record says what the approval was")
			assert.Equal(t, tt.approved, r.Approval.Approved)
			assert.Equal(t, "confirm-writes", r.Approval.Rule)
			assert.NotEmpty(t, r.Approval.Binding)
			assert.Contains(t, r.Approval.Reason, tt.reason)
			if tt.handler != nil {
				assert.Contains(t, r.Approval.By, "guardmcp-test", "the answering client is named")
			}
		})
	}
}

const reloadPolicyV1 = `
version: 1
scopes:
  tools:
    grants:
      - tools: [echo]
`

const reloadPolicyV2 = `
version: 1
scopes:
  tools:
    grants:
      - tools: [echo, hang]
`

func TestMCPGuardReload(t *testing.T) {
	guard := buildBin(t, "mcpguard")
	for _, trigger := range []string{"SIGHUP", "watch"} {
		t.Run(trigger, func(t *testing.T) {
			dir := t.TempDir()
			policy := filepath.Join(dir, "policy.yaml")
			logPath := filepath.Join(dir, "decisions.jsonl")
			require.NoError(t, os.WriteFile(policy, []byte(reloadPolicyV1), 0o644))
			var extra []string
			if trigger == "watch" {
				extra = []string{"-watch", "50ms"}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sc := startStdioClient(t, ctx, misbehavingArgv(t, guard, policy, logPath, extra...))
			changed := make(chan struct{}, 16)
			sc.c.OnNotification(func(n mcp.JSONRPCNotification) {
				if n.Method == string(mcp.MethodNotificationToolsListChanged) {
					changed <- struct{}{}
				}
			})
			reload := func() {
				if trigger == "SIGHUP" {
					require.NoError(t, sc.cmd.Process.Signal(syscall.SIGHUP))
				}
			}
			waitChanged := func() {
				t.Helper()
				select {
				case <-changed:
				case <-time.After(15 * time.Second):
					t.Fatalf("no tools/list_changed; mcpguard: %s", sc.stderr.String())
				}
			}
			drain := func() {
				for {
					select {
					case <-changed:
					default:
						return
					}
				}
			}

			assert.Equal(t, []string{"echo"}, sc.toolNames(t, ctx))
			assert.False(t, sc.call(t, ctx, toolCall{"echo", map[string]any{"text": "one"}}).IsError)

			// A broken policy is refused; the one in force stays.
			drain()
			require.NoError(t, os.WriteFile(policy, []byte("version: 1\nscopes: [oops\n"), 0o644))
			reload()
			require.Eventually(t, func() bool { return strings.Contains(sc.stderr.String(), "policy reload failed") },
				15*time.Second, 20*time.Millisecond, "the failed reload is logged")
			assert.Equal(t, []string{"echo"}, sc.toolNames(t, ctx))
			assert.False(t, sc.call(t, ctx, toolCall{"echo", map[string]any{"text": "two"}}).IsError)

			// A good one is swapped in and announced.
			drain()
			require.NoError(t, os.WriteFile(policy, []byte(reloadPolicyV2), 0o644))
			reload()
			waitChanged()
			assert.Equal(t, []string{"echo", "hang"}, sc.toolNames(t, ctx), "the new tool list")
			assert.False(t, sc.call(t, ctx, toolCall{"echo", map[string]any{"text": "three"}}).IsError)
			sc.stop(t)

			recs := verifyLog(t, logPath)
			require.Len(t, recs, 3)
			assert.Equal(t, recs[0].Policy, recs[1].Policy, "the broken policy never decided")
			assert.NotEqual(t, recs[1].Policy, recs[2].Policy, "the reloaded policy decided the last call")
		})
	}
}

const misbehavingPolicy = `
version: 1
scopes:
  tools:
    grants:
      - tools: [echo, hang, crash]
`

func TestMCPGuardUpstreamHangAndCrash(t *testing.T) {
	guard := buildBin(t, "mcpguard")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	logPath := filepath.Join(dir, "decisions.jsonl")
	require.NoError(t, os.WriteFile(policy, []byte(misbehavingPolicy), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const timeout = time.Second
	sc := startStdioClient(t, ctx, misbehavingArgv(t, guard, policy, logPath, "-call-timeout", timeout.String()))

	timed := func(tc toolCall) (callOutcome, time.Duration, error) {
		start := time.Now()
		res, err := sc.callErr(ctx, tc)
		return res, time.Since(start), err
	}

	// upstreamFailed checks the result of a call the upstream failed: an
	// error result the model can read, without Go package names.
	upstreamFailed := func(res callOutcome, err error, want string) {
		t.Helper()
		require.NoError(t, err, "a failed upstream is an error of the tool, not of the protocol")
		assert.True(t, res.IsError, res.Text)
		assert.True(t, strings.HasPrefix(res.Text, "the upstream server failed: tools/call "), res.Text)
		assert.Contains(t, res.Text, want)
		assert.NotContains(t, res.Text, "guardmcp")
	}

	// A hung upstream: the client gets an error once the call timeout
	// passes, and mcpguard goes on serving.
	res, took, err := timed(toolCall{"hang", nil})
	upstreamFailed(res, err, "deadline exceeded")
	assert.Less(t, took, timeout+5*time.Second)
	ok, _, err := timed(toolCall{"echo", map[string]any{"text": "still here"}})
	require.NoError(t, err)
	assert.Equal(t, "echo still here", ok.Text)

	// An upstream that dies mid-call: an error within the timeout, and
	// mcpguard still answers.
	res, took, err = timed(toolCall{"crash", nil})
	upstreamFailed(res, err, `"crash"`)
	assert.Less(t, took, timeout+5*time.Second)
	res, took, err = timed(toolCall{"echo", map[string]any{"text": "after"}})
	upstreamFailed(res, err, `"echo"`)
	assert.Less(t, took, timeout+5*time.Second)
	require.NoError(t, sc.c.Ping(ctx), "mcpguard stays up")
	assert.Equal(t, []string{"crash", "echo", "hang"}, sc.toolNames(t, ctx))
	sc.stop(t)

	recs := allRecords(t, logPath)
	type entry struct{ kind, tool, effect, errClass, err string }
	var got []entry
	for _, r := range recs {
		got = append(got, entry{kind: string(r.Kind), tool: r.Tool, effect: r.Effect, errClass: r.ErrorClass, err: r.Error})
	}
	require.Len(t, got, 8, "a decision and an outcome per call: %+v", got)
	for i, tool := range []string{"hang", "echo", "crash", "echo"} {
		assert.Equal(t, "decision", got[2*i].kind)
		assert.Equal(t, tool, got[2*i].tool)
		assert.Equal(t, "allow", got[2*i].effect)
		assert.Equal(t, "outcome", got[2*i+1].kind)
		assert.Equal(t, tool, got[2*i+1].tool)
	}
	t.Logf("outcome errors: hang: %q; crash: %q; after the crash: %q", got[1].err, got[5].err, got[7].err)
	assert.Empty(t, got[3].errClass, "the echo that worked")
	for _, i := range []int{1, 5, 7} {
		assert.NotEmpty(t, got[i].errClass, "outcome %d records an error class", i)
		assert.Contains(t, got[i].err, "upstream", "outcome %d records the error", i)
	}
}

// TestMCPGuardStartMessages starts mcpguard as the README does, in front of
// the filesystem server with examples/mcpguard/policy.yaml: nothing on
// stderr but the server's own banner — no failed roots request (the proxy
// does not declare roots upstream unless -forward-roots), no warnings.
// With a policy that leaves tools ungranted, each is warned about.
func TestMCPGuardStartMessages(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	examplePolicy, err := filepath.Abs(filepath.Join("..", "examples", "mcpguard", "policy.yaml"))
	require.NoError(t, err)
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	ws := filepath.Join(root, "w")
	require.NoError(t, os.MkdirAll(ws, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("hello 5e1f"), 0o644))
	narrow := filepath.Join(root, "narrow.yaml")
	require.NoError(t, os.WriteFile(narrow, []byte(testPolicy), 0o644))
	fsServer := filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js")

	start := func(t *testing.T, policy string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		argv := []string{guard, "-policy", policy, "-audit", filepath.Join(t.TempDir(), "d.jsonl"),
			"-principal", "support-bot", "-scopes", "fs.read", "-attr", "workspace=" + ws, "--", "node", fsServer, ws}
		sc := startStdioClient(t, ctx, argv)
		res := sc.call(t, ctx, toolCall{"read_text_file", map[string]any{"path": filepath.Join(ws, "notes.txt")}})
		assert.False(t, res.IsError, res.Text)
		assert.Contains(t, res.Text, "hello 5e1f")
		sc.stop(t)
		return sc.stderr.String()
	}

	t.Run("the example policy", func(t *testing.T) {
		stderr := start(t, examplePolicy)
		t.Logf("stderr:\n%s", stderr)
		for _, noise := range []string{"Failed", "cannot be routed", "level=WARN", "level=ERROR"} {
			assert.NotContains(t, stderr, noise)
		}
	})
	t.Run("tools no scope grants", func(t *testing.T) {
		stderr := start(t, narrow)
		for _, tool := range []string{"move_file", "edit_file", "read_multiple_files"} {
			assert.Regexp(t, `level=WARN msg="toolguard: no scope of the policy grants this tool[^"]*" tool=`+tool+` `, stderr)
		}
		assert.NotContains(t, stderr, "tool=read_text_file ", "a granted tool is not warned about")
	})
}

// workspace returns a fresh directory with symlinks resolved (the
// filesystem server compares resolved paths) and a "ws" directory in it.
func workspace(t *testing.T) (root, ws string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	ws = filepath.Join(root, "ws")
	require.NoError(t, os.MkdirAll(ws, 0o755))
	return root, ws
}
