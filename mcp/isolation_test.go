package guardmcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nodeClientSession is what testdata/node/session-client.mjs reports.
type nodeClientSession struct {
	Tools []string `json:"tools"`
	Calls []struct {
		IsError bool   `json:"isError"`
		Text    string `json:"text"`
		MS      int64  `json:"ms"`
	} `json:"calls"`
	Logs []struct {
		Level string `json:"level"`
		Data  string `json:"data"`
	} `json:"logs"`
	Updates     []string `json:"updates"`
	Sampling    []string `json:"sampling"`
	Elicitation []string `json:"elicitation"`
	Roots       int      `json:"roots"`
	Progress    int      `json:"progress"`
}

// runNodeSession runs one session of the official TypeScript SDK client
// against url with the configuration cfg.
func runNodeSession(ctx context.Context, mods, url string, cfg map[string]any) (nodeClientSession, error) {
	cfg["url"] = url
	b, err := json.Marshal(cfg)
	if err != nil {
		return nodeClientSession{}, err
	}
	f, err := os.CreateTemp("", "session-*.json")
	if err != nil {
		return nodeClientSession{}, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		return nodeClientSession{}, err
	}
	f.Close()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(mods, "..", "session-client.mjs"), f.Name())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nodeClientSession{}, fmt.Errorf("session client %v: %w: %s", cfg["name"], err, stderr.String())
	}
	var s nodeClientSession
	if err := json.Unmarshal(out, &s); err != nil {
		return nodeClientSession{}, fmt.Errorf("session client output %q: %w", out, err)
	}
	return s, nil
}

// serveMCPGuard starts mcpguard on a free loopback port with the allow-all
// policy and the given upstream arguments, and returns its /mcp URL.
func serveMCPGuard(t *testing.T, upstream ...string) (url string, out *syncBuffer) {
	t.Helper()
	guard := buildBin(t, "mcpguard")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(allowAllPolicy), 0o644))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	args := append([]string{"-policy", policy, "-audit", filepath.Join(dir, "decisions.jsonl"), "-listen", addr,
		"-principal", "agent", "-scopes", "all", "-call-timeout", "60s", "-forward-roots"}, upstream...)
	out = startProcess(t, exec.Command(guard, args...))
	waitListening(t, addr, 30*time.Second)
	return "http://" + addr + "/mcp", out
}

// startEverythingHTTP starts server-everything over streamable HTTP and
// returns its URL.
func startEverythingHTTP(t *testing.T, mods string) string {
	t.Helper()
	port := freePort(t)
	ev := exec.Command("node", filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "streamableHttp")
	ev.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	startProcess(t, ev)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, 20*time.Second)
	return "http://" + addr + "/mcp"
}

// TestTwoClientsIsolatedThroughMCPGuard runs two official TypeScript SDK
// clients at once through one mcpguard in front of server-everything, over
// stdio and over HTTP. Each has its own upstream session: its own logging
// level, subscriptions, sampling, elicitation and roots. Alpha declares
// every capability and asks for debug logs; bravo declares only sampling
// and asks for emergency logs. Neither sees the other's logs, resource
// updates or requests; bravo is not offered the tools that need what it
// did not declare.
func TestTwoClientsIsolatedThroughMCPGuard(t *testing.T) {
	mods := requireExternal(t)
	everything := filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js")
	for _, kind := range []string{"stdio", "http"} {
		t.Run(kind+" upstream", func(t *testing.T) {
			var url string
			if kind == "stdio" {
				url, _ = serveMCPGuard(t, "--", "node", everything, "stdio")
			} else {
				url, _ = serveMCPGuard(t, "-upstream", startEverythingHTTP(t, mods))
			}
			const watched = "demo://resource/static/document/architecture.md"
			alpha := map[string]any{"name": "alpha", "level": "debug",
				"caps": map[string]bool{"sampling": true, "elicitation": true, "roots": true},
				"ops": []map[string]any{
					{"op": "call", "name": "toggle-simulated-logging"},
					{"op": "subscribe", "uri": watched},
					{"op": "call", "name": "toggle-subscriber-updates"},
					{"op": "call", "name": "trigger-sampling-request", "arguments": map[string]any{"prompt": "alpha prompt", "maxTokens": 10}},
					{"op": "call", "name": "trigger-elicitation-request"},
					{"op": "call", "name": "get-roots-list"},
					{"op": "wait", "ms": 6000},
					{"op": "call", "name": "toggle-subscriber-updates"},
					{"op": "call", "name": "toggle-simulated-logging"},
				}}
			bravo := map[string]any{"name": "bravo", "level": "emergency",
				"caps": map[string]bool{"sampling": true},
				"ops": []map[string]any{
					{"op": "call", "name": "toggle-simulated-logging"},
					{"op": "call", "name": "trigger-sampling-request", "arguments": map[string]any{"prompt": "bravo prompt", "maxTokens": 10}},
					{"op": "wait", "ms": 6000},
					{"op": "call", "name": "toggle-simulated-logging"},
				}}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			var a, b nodeClientSession
			var errA, errB error
			wg.Add(2)
			go func() { defer wg.Done(); a, errA = runNodeSession(ctx, mods, url, alpha) }()
			go func() { defer wg.Done(); b, errB = runNodeSession(ctx, mods, url, bravo) }()
			wg.Wait()
			require.NoError(t, errA)
			require.NoError(t, errB)
			for _, c := range append(a.Calls, b.Calls...) {
				assert.False(t, c.IsError, c.Text)
			}

			// Tools: each client is offered what its own session offers.
			assert.Subset(t, a.Tools, []string{"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"})
			assert.Contains(t, b.Tools, "trigger-sampling-request")
			assert.NotContains(t, b.Tools, "trigger-elicitation-request", "bravo did not declare elicitation")
			assert.NotContains(t, b.Tools, "get-roots-list", "bravo did not declare roots")

			// Sampling, elicitation, roots: each request reached the
			// client whose call sent it, and only that one.
			require.Len(t, a.Sampling, 1)
			assert.Contains(t, a.Sampling[0], "alpha prompt")
			require.Len(t, b.Sampling, 1)
			assert.Contains(t, b.Sampling[0], "bravo prompt")
			assert.Contains(t, a.Calls[3].Text, "sampled by alpha")
			assert.Contains(t, b.Calls[1].Text, "sampled by bravo")
			assert.Len(t, a.Elicitation, 1)
			assert.Contains(t, a.Calls[4].Text, "elicited by alpha")
			assert.GreaterOrEqual(t, a.Roots, 1)
			assert.Contains(t, a.Calls[5].Text, "file:///roots-of-alpha")

			// Subscriptions: alpha's updates reach alpha only.
			require.NotEmpty(t, a.Updates, "alpha subscribed and turned updates on")
			for _, u := range a.Updates {
				assert.Equal(t, watched, u)
			}
			assert.Empty(t, b.Updates, "bravo subscribed to nothing")

			// Logs: alpha's level is debug, bravo's emergency; neither
			// sees the other's messages.
			require.NotEmpty(t, a.Logs, "alpha asked for debug logs and turned simulated logging on")
			sawSubscribeLog := false
			for _, l := range a.Logs {
				sawSubscribeLog = sawSubscribeLog || strings.Contains(l.Data, watched)
			}
			assert.True(t, sawSubscribeLog, "alpha sees the info message about its own subscription: %v", a.Logs)
			for _, l := range b.Logs {
				assert.Equal(t, "emergency", l.Level, "bravo gets only the level it asked for: %v", l)
				assert.NotContains(t, l.Data, watched, "bravo never sees alpha's messages")
			}
		})
	}
}

const cancelFileEnv = "GUARDMCP_CANCEL_FILE"

// cancelUpstream serves (over stdio, or streamable HTTP on
// $GUARDMCP_TEST_PORT) an mcp-go server whose tool "block" waits until its
// request is cancelled, and notes in $GUARDMCP_CANCEL_FILE when it started
// and when it was cancelled.
func cancelUpstream() int {
	note := func(s string) {
		f, err := os.OpenFile(os.Getenv(cancelFileEnv), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintln(f, s)
			f.Close()
		}
	}
	s := server.NewMCPServer("canceller", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("block"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		note("entered")
		select {
		case <-ctx.Done():
			note("cancelled")
			return nil, ctx.Err()
		case <-time.After(50 * time.Second):
			note("ran to completion")
			return mcp.NewToolResultText("done"), nil
		}
	})
	if port := os.Getenv("GUARDMCP_TEST_PORT"); port != "" {
		// Like the TypeScript SDK's server, the handler's work is not
		// tied to the HTTP connection: only notifications/cancelled
		// stops it.
		h := server.NewStreamableHTTPServer(s)
		detached := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
		})
		srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: detached, ReadHeaderTimeout: 5 * time.Second}
		if err := srv.ListenAndServe(); err != nil {
			return 1
		}
		return 0
	}
	if err := server.ServeStdio(s); err != nil {
		return 1
	}
	return 0
}

// TestCancellationThroughMCPGuard: a client (the official TypeScript SDK)
// cancels a call in flight; mcpguard passes notifications/cancelled on to
// the upstream, over stdio and over HTTP, and the upstream's handler stops
// long before mcpguard's call timeout (60s) would have ended it.
func TestCancellationThroughMCPGuard(t *testing.T) {
	mods := requireExternal(t)
	self, err := os.Executable()
	require.NoError(t, err)
	for _, kind := range []string{"stdio", "http"} {
		t.Run(kind+" upstream", func(t *testing.T) {
			notes := filepath.Join(t.TempDir(), "notes.txt")
			t.Setenv(testUpstreamEnv, "cancel")
			t.Setenv(cancelFileEnv, notes)
			var url string
			if kind == "stdio" {
				url, _ = serveMCPGuard(t, "--", self, "-test.run=^$")
			} else {
				port := freePort(t)
				up := exec.Command(self, "-test.run=^$")
				up.Env = append(os.Environ(), "GUARDMCP_TEST_PORT="+strconv.Itoa(port))
				startProcess(t, up)
				addr := fmt.Sprintf("127.0.0.1:%d", port)
				waitListening(t, addr, 20*time.Second)
				url, _ = serveMCPGuard(t, "-upstream", "http://"+addr+"/mcp")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := runNodeSession(ctx, mods, url, map[string]any{"name": "canceller",
				"ops": []map[string]any{{"op": "cancel", "name": "block", "afterMs": 1500}, {"op": "wait", "ms": 500}}})
			require.NoError(t, err)
			require.Len(t, s.Calls, 1)
			assert.True(t, s.Calls[0].IsError, s.Calls[0].Text)
			assert.Contains(t, s.Calls[0].Text, "aborted")
			deadline := time.Now().Add(5 * time.Second)
			var got string
			for time.Now().Before(deadline) {
				b, _ := os.ReadFile(notes)
				if got = string(b); strings.Contains(got, "cancelled") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			assert.Equal(t, "entered\ncancelled\n", got, "the upstream's handler was cancelled")
		})
	}
}
