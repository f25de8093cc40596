package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/scope"
)

// connect serves a guarded server over in-memory transports and returns a
// connected client session. The returned function closes the session,
// waits for the server and returns the audit records.
func connect(t *testing.T, pf guardsdk.PrincipalFunc) (*mcp.ClientSession, func() *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	var records bytes.Buffer
	s, err := newServer(audit.NewLog(&records), pf)
	require.NoError(t, err)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	require.NoError(t, err)
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, ct, nil)
	require.NoError(t, err)
	done := false
	t.Cleanup(func() {
		if !done {
			_ = cs.Close()
			_ = ss.Wait()
		}
	})
	return cs, func() *bytes.Buffer {
		done = true
		require.NoError(t, cs.Close())
		_ = ss.Wait()
		return &records
	}
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	require.Len(t, res.Content, 1)
	tc, ok := res.Content[0].(*mcp.TextContent)
	require.True(t, ok, "content is %T", res.Content[0])
	return tc.Text
}

func TestServer(t *testing.T) {
	cs, finish := connect(t, guardsdk.Static(demo.Principal()))
	ctx := context.Background()

	// tools/list: only what the principal may see, marked private.
	list, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	assert.Equal(t, []string{"read_file"}, names)
	assert.Equal(t, "private", list.CacheScope)

	calls := []struct {
		name    string
		tool    string
		args    any
		isError bool
		want    string
	}{
		{"allowed", "read_file", map[string]any{"path": "/w/notes.txt"}, false, "Customer 42 asked for a refund of order 1234."},
		{"deny rule", "read_file", map[string]any{"path": "/w/.env"}, true,
			`call to "read_file" denied: denied by rule "no-dotenv": secret files are off limits: /w/.env`},
		{"no grant", "read_file", map[string]any{"path": "/etc/passwd"}, true, "allows it only when args.path.isUnder"},
		{"hidden tool", "delete_file", map[string]any{"path": "/w/notes.txt"}, true, `no scope held by "support-bot" grants tool "delete_file"`},
		{"unknown tool", "shell", map[string]any{"cmd": "id"}, true, `call to "shell" denied`},
		{"schema violation", "read_file", map[string]any{"path": 42}, true, "at /path: got number, want string"},
		{"duplicate keys", "read_file", json.RawMessage(`{"path":"/w/.env","path":"/w/notes.txt"}`), true, `key "path" appears twice`},
		{"tool error", "read_file", map[string]any{"path": "/w/missing.txt"}, true, "no such file"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
			require.NoError(t, err)
			assert.Equal(t, c.isError, res.IsError)
			assert.Contains(t, text(t, res), c.want)
			assert.NotContains(t, text(t, res), "sk_live")
			if c.isError {
				assert.NotRegexp(t, `\b(toolguard|guardmcp|scope|audit):`, text(t, res), "the model reads no Go package names")
			}
		})
	}

	sum, err := audit.Verify(finish(), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, len(calls), sum.Decisions, "every call is decided and recorded")
	assert.Equal(t, 2, sum.Allowed, "the read and the read of a missing file")
	assert.Equal(t, 2, sum.Outcomes)
	assert.Equal(t, 1, sum.ByRule["no-dotenv"])
}

func TestNoPrincipal(t *testing.T) {
	cs, finish := connect(t, func(context.Context, mcp.Request) (scope.Principal, error) {
		return scope.Principal{}, errors.New("token expired")
	})
	ctx := context.Background()
	list, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, list.Tools)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/w/notes.txt"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(t, res), "(token expired)")
	sum, err := audit.Verify(finish(), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Denied)
}
