package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// requireNodePeers skips a test that needs node and the MCP servers of
// mcp/testdata/node, unless AGENTGUARD_REQUIRE_EXTERNAL=1, when their
// absence fails it. It returns the node_modules directory.
func requireNodePeers(t *testing.T) string {
	t.Helper()
	mods, err := filepath.Abs(filepath.Join("..", "..", "mcp", "testdata", "node", "node_modules"))
	require.NoError(t, err)
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(mods, "@modelcontextprotocol", "server-filesystem")); err != nil {
		missing = "node packages are not installed"
	}
	if missing != "" {
		msg := missing + ": run npm ci in mcp/testdata/node (npm ci --prefix mcp/testdata/node)"
		if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
			t.Fatal(msg + " (required: AGENTGUARD_REQUIRE_EXTERNAL=1)")
		}
		t.Skip(msg)
	}
	return mods
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFunctionsThroughBinary runs the built mcpguard over stdio in front
// of the MCP filesystem server (Node), with a policy that allows a write
// of no more bytes than balance(principal.id), a -functions function
// answered by an HTTP server. The write runs within the balance; it is
// denied, and does not run, over the balance and whenever the function
// fails: a 500, a server slower than the timeout, a result of the wrong
// type, a server that is gone. The denial names the function and nothing
// of the failure or of Go; the log on stderr says what failed, and the
// audit log records every decision with the function's error. A policy
// reloaded with -watch or on SIGHUP calls the function too.
func TestFunctionsThroughBinary(t *testing.T) {
	mods := requireNodePeers(t)
	bin := buildGuard(t)
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	ws := filepath.Join(root, "ws")
	require.NoError(t, os.MkdirAll(ws, 0o755))
	policy := filepath.Join(root, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(balancePolicy(ws)), 0o644))
	logPath := filepath.Join(root, "decisions.jsonl")

	balances := newFunctionServer(t)
	var asked sync.Map // principal ids the server was asked about
	answer := func(status int, body string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			var req struct {
				Function string `json:"function"`
				Args     []any  `json:"args"`
			}
			if err := json.Unmarshal(*balances.body.Load(), &req); err == nil && req.Function == "balance" && len(req.Args) == 1 {
				asked.Store(req.Args[0], true)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
	}
	balances.answerWith(answer(http.StatusOK, `{"result": 10}`))
	fns := filepath.Join(root, "functions.yaml")
	require.NoError(t, os.WriteFile(fns, []byte(fmt.Sprintf(balanceFunctions, balances.URL+"/balance")), 0o644))

	stderr := &lockedBuffer{}
	var cmd *exec.Cmd
	argv := []string{"-policy", policy, "-audit", logPath, "-functions", fns, "-watch", "50ms",
		"-principal", "alice", "-scopes", "pay",
		"--", "node", filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), ws}
	tr := transport.NewStdioWithOptions(bin, nil, argv,
		transport.WithCommandStderrWriter(stderr),
		transport.WithCommandFunc(func(ctx context.Context, command string, env []string, args []string) (*exec.Cmd, error) {
			cmd = exec.CommandContext(ctx, command, args...)
			cmd.Env = append(os.Environ(), env...)
			return cmd, nil
		}))
	//lint:ignore SA1019 mcpguard speaks the legacy protocol to its upstream; the test client does the same
	c := client.NewClient(tr, client.WithLegacyProtocolOnly())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	_, err = c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "test", Version: "1"}}})
	require.NoError(t, err, "stderr: %s", stderr.String())

	// write asks to write content to ws/name, and says whether the call
	// was refused, its text, and whether the file is there.
	write := func(name, content string) (bool, string, bool) {
		t.Helper()
		path := filepath.Join(ws, name)
		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "write_file",
			Arguments: map[string]any{"path": path, "content": content}}})
		require.NoError(t, err, "stderr: %s", stderr.String())
		var text strings.Builder
		for _, ct := range res.Content {
			if tc, ok := ct.(mcp.TextContent); ok {
				text.WriteString(tc.Text)
			}
		}
		_, statErr := os.Stat(path)
		return res.IsError, text.String(), statErr == nil
	}
	// denied checks a denial caused by a failed call of balance.
	// Any of causes may be the one logged: a server that has gone away
	// refuses new connections, or closes a pooled one under the request.
	denied := func(name string, causes ...string) {
		t.Helper()
		isErr, text, ran := write(name, "12345")
		assert.True(t, isErr, "%s: %s", name, text)
		assert.False(t, ran, "%s: the tool did not run", name)
		assert.Contains(t, text, "function balance", name)
		for _, leak := range append([]string{"toolguard", "scope.", "guardmcp", "safejson", "main.", "net/http", "url.Error", "*errors", "json.Number", balances.URL}, causes...) {
			assert.NotContains(t, text, leak, "%s: the denial carries no cause and no Go names", name)
		}
		assert.Eventually(t, func() bool {
			for _, cause := range causes {
				if strings.Contains(stderr.String(), cause) {
					return true
				}
			}
			return false
		}, 5*time.Second, 20*time.Millisecond, "%s: the log says what failed (%q): %s", name, causes, stderr.String())
	}

	isErr, text, ran := write("within.txt", "12345")
	assert.False(t, isErr, text)
	assert.True(t, ran, "within the balance the tool runs")
	_, ok := asked.Load("alice")
	assert.True(t, ok, "the function server was asked about the principal")

	isErr, text, ran = write("over.txt", "12345678901")
	assert.True(t, isErr, text)
	assert.False(t, ran, "over the balance the tool does not run")
	assert.Contains(t, text, "denied")

	balances.answerWith(answer(http.StatusInternalServerError, `{"result": 1000}`))
	denied("status.txt", "500 Internal Server Error")

	balances.answerWith(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	denied("slow.txt", "context deadline exceeded")

	balances.answerWith(answer(http.StatusOK, `{"result": "lots"}`))
	denied("wrong-type.txt", "a string, not double")

	balances.answerWith(answer(http.StatusOK, `{"result": 1000, "result": 1}`))
	denied("duplicate-keys.txt", "duplicate object key")

	// A reloaded policy gets the functions: writes now cost four times
	// their size.
	balances.answerWith(answer(http.StatusOK, `{"result": 10}`))
	require.NoError(t, os.WriteFile(policy, []byte(strings.Replace(balancePolicy(ws), "double(size(args.content))", "4.0 * double(size(args.content))", 1)), 0o644))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "policy reloaded") }, 10*time.Second, 20*time.Millisecond,
		"stderr: %s", stderr.String())
	assert.NotContains(t, stderr.String(), "policy reload failed")
	isErr, text, ran = write("reloaded-over.txt", "12345")
	assert.True(t, isErr && !ran, "20 > 10: %s", text)
	isErr, text, ran = write("reloaded-within.txt", "12")
	assert.True(t, !isErr && ran, "8 <= 10: %s", text)

	// So does one reloaded on SIGHUP (a policy calling balance would not
	// load without it).
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), `policy reloaded" trigger=SIGHUP`) }, 10*time.Second, 20*time.Millisecond,
		"stderr: %s", stderr.String())
	assert.NotContains(t, stderr.String(), "policy reload failed")

	balances.Close()
	denied("gone.txt", "connection refused", "connection reset", ": EOF")

	// Stop mcpguard cleanly, so that the audit log is closed, then read it.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	c.Close()
	fh, err := os.Open(logPath)
	require.NoError(t, err)
	defer fh.Close()
	_, err = audit.Verify(fh, audit.VerifyOptions{})
	require.NoError(t, err)
	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	type decision struct{ effect, errors string }
	var got []decision
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r audit.Record
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		if r.Kind == audit.KindDecision && r.Tool == "write_file" {
			// An error is "<JSON pointer>: <expression>: <error>".
			var errs []string
			for _, e := range r.Errors {
				assert.Contains(t, e, "/scopes/pay/grants/0/when: ")
				errs = append(errs, e[strings.LastIndex(e, `": `)+3:])
			}
			got = append(got, decision{r.Effect, strings.Join(errs, "; ")})
		}
	}
	failed := "function balance failed"
	assert.Equal(t, []decision{
		{"allow", ""}, {"deny", ""}, // within and over
		{"deny", failed}, {"deny", "function balance did not answer within 300ms"}, // 500, slow
		{"deny", failed}, {"deny", failed}, // wrong type, duplicate keys
		{"deny", ""}, {"allow", ""}, // reloaded
		{"deny", failed}, // gone
	}, got)
}
