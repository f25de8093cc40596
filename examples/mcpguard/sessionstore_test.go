package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startRedis starts a redis-server on a free loopback port, without
// persistence, for t; it returns its address and a function that kills
// it. Without redis-server t is skipped, or fails when
// AGENTGUARD_REQUIRE_EXTERNAL=1.
func startRedis(t *testing.T) (addr string, kill func()) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		const msg = "redis-server not found: apt-get install redis-server"
		if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
			t.Fatal(msg + " (required: AGENTGUARD_REQUIRE_EXTERNAL=1)")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	kill = func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(kill)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	require.Eventually(t, func() bool { return c.Ping(context.Background()).Err() == nil }, 10*time.Second, 20*time.Millisecond, "redis-server did not start")
	return addr, kill
}

// buildGuard builds mcpguard into a temporary directory.
func buildGuard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcpguard")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// guardClient starts the built mcpguard over stdio in front of this test
// binary as an upstream with tool read, and connects a client to it.
func guardClient(t *testing.T, bin string, args ...string) *client.Client {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	argv := append(args, "--", self, "-test.run=^$")
	c, err := client.NewStdioMCPClient(bin, []string{upstreamEnv + "=read:Read"}, argv...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "test", Version: "1"}}})
	require.NoError(t, err)
	return c
}

// callRead calls tool read and returns whether it was an error, and its text.
func callRead(t *testing.T, c *client.Client) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "read", Arguments: map[string]any{"path": "/w/a"}}})
	require.NoError(t, err)
	var text strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return res.IsError, text.String()
}

// TestSessionStoreRedis runs the built mcpguard with -session-store
// redis://: the session's state is in Redis (its keys appear in the
// database named), its bounds are the flags' (-session-max-calls), and
// while Redis is down calls are denied, and mcpguard does not start.
func TestSessionStoreRedis(t *testing.T) {
	addr, kill := startRedis(t)
	bin := buildGuard(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte("version: 1\nscopes:\n  all:\n    grants:\n      - tools: [read]\n"), 0o644))
	args := func(extra ...string) []string {
		return append([]string{"-policy", policy, "-audit", filepath.Join(dir, "decisions.jsonl"), "-principal", "bot", "-scopes", "all",
			"-session-store", "redis://" + addr + "/3", "-session-store-timeout", "2s"}, extra...)
	}

	c := guardClient(t, bin, args("-session-max-calls", "2")...)
	for i := range 2 {
		isErr, text := callRead(t, c)
		require.False(t, isErr, "call %d: %s", i+1, text)
	}
	isErr, text := callRead(t, c)
	assert.True(t, isErr)
	assert.Contains(t, text, "this session can take no more calls")
	assert.Contains(t, text, "limit of 2 calls")
	rc := redis.NewClient(&redis.Options{Addr: addr, DB: 3})
	defer rc.Close()
	keys, err := rc.Keys(context.Background(), "{agentguard:*").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the session is kept in Redis database 3")

	// Another run (after this one ends: they share the audit log) is
	// another session; with Redis gone its calls are denied.
	require.NoError(t, c.Close())
	c = guardClient(t, bin, args()...)
	isErr, text = callRead(t, c)
	require.False(t, isErr, text)
	kill()
	isErr, text = callRead(t, c)
	assert.True(t, isErr, "a call with Redis down is denied: %s", text)
	assert.Contains(t, text, "the session's history could not be read, so the call is denied")

	require.NoError(t, c.Close())
	fresh := filepath.Join(dir, "fresh.jsonl")
	out, err := exec.Command(bin, append(args("-audit", fresh), "--", "true")...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "%s", out)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, string(out), "session store redis://"+addr+"/3")
	assert.Contains(t, string(out), "does not answer")
	assert.NoFileExists(t, fresh, "a start that fails leaves no audit log")
}

func TestSessionStoreFlags(t *testing.T) {
	r := runGuard(t, "-h")
	for _, f := range []string{"-session-store string", "-session-ttl duration", "-session-max-calls int", "-session-max-labels int", "-session-max-values int", "-session-store-max int", "-session-store-max-per-principal int", "-session-store-timeout duration"} {
		assert.Contains(t, r.stdout, f)
	}
	base := []string{"-policy", "p.yaml", "-audit", "a.jsonl"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-session-store", "mongodb://x"}, "-session-store is memory or redis://host:port/db"},
		{[]string{"-session-ttl", "0s"}, "-session-ttl must be at least 1ms"},
		{[]string{"-session-max-calls", "0"}, "-session-max-calls and -session-max-values must be positive"},
		{[]string{"-session-store-timeout", "0s"}, "-session-store-timeout must be positive"},
	} {
		r := runGuard(t, append(append(append([]string{}, base...), tt.args...), "--", "true")...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		assert.Contains(t, r.stderr, tt.want, "%v", tt.args)
	}
	// A bad Redis URL is a usage error too.
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	r = runGuard(t, "-policy", policy, "-audit", filepath.Join(dir, "a.jsonl"), "-principal", "bot", "-session-store", "redis://h:notaport/0", "--", "true")
	assert.Equal(t, 2, r.code, r.stderr)
	assert.Contains(t, r.stderr, "-session-store:")
}
