package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// upstreamEnv makes the test binary an upstream MCP server whose tools are
// given by the variable's value ("name:description,...").
const upstreamEnv = "MCPGUARD_TEST_TOOLS"

func TestMain(m *testing.M) {
	if spec, ok := os.LookupEnv(upstreamEnv); ok {
		s := server.NewMCPServer("test-upstream", "1", server.WithToolCapabilities(true))
		for _, t := range strings.Split(spec, ",") {
			name, desc, _ := strings.Cut(t, ":")
			s.AddTool(mcp.NewTool(name, mcp.WithDescription(desc), mcp.WithString("path")),
				func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return mcp.NewToolResultText("ok"), nil
				})
		}
		if err := server.ServeStdio(s); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type result struct {
	code           int
	stdout, stderr string
}

func runGuard(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := exitCode(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		r := runGuard(t, arg)
		assert.Equal(t, 0, r.code, arg)
		assert.Empty(t, r.stderr, "help goes to stdout")
		for _, want := range []string{"Usage:", "mcpguard [flags] -- command [args...]", "-upstream URL", "Examples:",
			"-update-lock", "-- npx -y @modelcontextprotocol/server-filesystem", "-policy string"} {
			assert.Contains(t, r.stdout, want, arg)
		}
	}
}

func TestNoArguments(t *testing.T) {
	r := runGuard(t)
	assert.Equal(t, 2, r.code)
	assert.Empty(t, r.stdout)
	assert.True(t, strings.HasPrefix(r.stderr, "Usage:"), r.stderr)
	assert.Contains(t, r.stderr, "Examples:")
}

func TestUsageErrorsOnce(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-attr", "noequals", "--", "true"}, `invalid value "noequals" for flag -attr: want key=value`},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-policy", "p.yaml", "--", "true"}, "-policy and -audit are required"},
		{[]string{"-policy", "p.yaml", "-audit", "a.jsonl"}, "give the upstream: -upstream URL, or a command after --"},
		{[]string{"-update-lock", "--", "true"}, "-update-lock needs -lock"},
		{[]string{"-policy", "p.yaml", "-audit", "a.jsonl", "--", "true"}, "-principal (or, with -listen, -jwks / -jwt-key) is required"},
		{[]string{"-sync", "always", "--", "true"}, `invalid value "always" for flag -sync: want each, interval or none`},
		{[]string{"-sync", "each-record", "--", "true"}, `invalid value "each-record" for flag -sync: want each, interval or none`},
		{[]string{"-policy", "p.yaml", "-audit", "a.jsonl", "-sync-interval", "0s", "--", "true"}, "-sync-interval must be positive"},
	}
	for _, tt := range tests {
		r := runGuard(t, tt.args...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		assert.Equal(t, "mcpguard: "+tt.want+"\nRun 'mcpguard -h' for usage.\n", r.stderr, "%v: the error once, and where help is", tt.args)
		assert.Empty(t, r.stdout)
	}
}

// TestSyncFlag: -sync chooses the audit log's sync mode; by default a
// decision waits for its fsync and an outcome joins the next one.
func TestSyncFlag(t *testing.T) {
	tests := []struct {
		args []string
		want audit.FileOptions
	}{
		{nil, audit.FileOptions{Sync: audit.SyncEachRecord, Interval: time.Second, DeferOutcomes: true}},
		{[]string{"-sync", "each", "-sync-outcomes"}, audit.FileOptions{Sync: audit.SyncEachRecord, Interval: time.Second}},
		{[]string{"-sync", "interval", "-sync-interval", "50ms"}, audit.FileOptions{Sync: audit.SyncInterval, Interval: 50 * time.Millisecond, DeferOutcomes: true}},
		{[]string{"-sync", "none"}, audit.FileOptions{Sync: audit.SyncNone, Interval: time.Second, DeferOutcomes: true}},
	}
	for _, tt := range tests {
		args := append(append([]string{"-policy", "p.yaml", "-audit", "a.jsonl"}, tt.args...), "--", "true")
		c, err := parse(args, io.Discard, io.Discard)
		require.NoError(t, err, "%v", tt.args)
		assert.Equal(t, tt.want, c.logOptions(), "%v", tt.args)
	}
}

// testPolicy grants read_text_file only.
const testPolicy = `version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_text_file]
        when: args.path.startsWith("/w/")
`

func TestMissingLockLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	lock := filepath.Join(dir, "tools.lock.json")
	logPath := filepath.Join(dir, "decisions.jsonl")
	r := runGuard(t, "-policy", policy, "-audit", logPath, "-lock", lock, "-principal", "bot", "--", "true")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "mcpguard: no tool lock at "+lock)
	assert.Contains(t, r.stderr, "run the same command with -update-lock added")
	assert.NotContains(t, r.stderr, "WithLock", "no Go API names for a command-line user")
	assert.Equal(t, 1, strings.Count(r.stderr, "no tool lock"), "said once")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the policy: no log file left behind")

	// A start that fails after the log was opened (here: the upstream
	// cannot be started) removes the log it created, and keeps one that
	// was there before.
	r = runGuard(t, "-policy", policy, "-audit", logPath, "-principal", "bot", "--", filepath.Join(dir, "no-such-command"))
	assert.Equal(t, 1, r.code, r.stderr)
	_, err = os.Stat(logPath)
	assert.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, os.WriteFile(logPath, nil, 0o644))
	r = runGuard(t, "-policy", policy, "-audit", logPath, "-principal", "bot", "--", filepath.Join(dir, "no-such-command"))
	assert.Equal(t, 1, r.code, r.stderr)
	_, err = os.Stat(logPath)
	assert.NoError(t, err, "a log that was there before is kept")
}

func TestUpdateLockReports(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	lock := filepath.Join(dir, "tools.lock.json")
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	update := func(tools string, extra ...string) result {
		t.Helper()
		t.Setenv(upstreamEnv, tools)
		args := append([]string{"-lock", lock, "-update-lock"}, extra...)
		return runGuard(t, append(args, "--", self, "-test.run=^$")...)
	}

	r := update("read_text_file:Read a file,list_directory:List")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "mcpguard: wrote "+lock+": 2 tools pinned (there was no lock before)\n"+
		"  added     list_directory\n"+
		"  added     read_text_file\n", r.stdout)

	r = update("read_text_file:Read any file,write_file:Write,delete_file:Delete", "-policy", policy)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "mcpguard: wrote "+lock+": 3 tools pinned; since the previous lock 2 added, 1 changed, 1 removed\n"+
		"  added     delete_file\n"+
		"  removed   list_directory\n"+
		"  changed   read_text_file\n"+
		"  added     write_file\n", r.stdout)
	for _, tool := range []string{"delete_file", "write_file"} {
		assert.Contains(t, r.stderr, "no scope of the policy grants this tool, so every call to it will be denied\" tool="+tool+" ",
			"with -policy, ungranted tools are warned about")
	}
	assert.NotContains(t, r.stderr, "tool=read_text_file ")

	r = update("read_text_file:Read any file,write_file:Write,delete_file:Delete")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "since the previous lock 0 added, 0 changed, 0 removed\n  unchanged delete_file\n")
	assert.Empty(t, strings.TrimSpace(r.stderr), "no warnings without a policy")
}
