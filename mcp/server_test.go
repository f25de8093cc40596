package guardmcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/toolguard"
)

func TestServerOptionsList(t *testing.T) {
	sink := &memSink{}
	g := testGuard(t, sink)
	s := fileServer(t, g)
	// A tool on the server but not on the guard, and a task tool: neither
	// can be guarded by the middleware, so neither is listed.
	s.AddTool(mcp.NewTool("unguarded"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ran"), nil
	})
	ro, rw := principals("/w")

	tests := []struct {
		name string
		ctx  context.Context
		want []string
	}{
		{"read-only", toolguard.WithPrincipal(context.Background(), ro), []string{"list_directory", "read_text_file"}},
		{"read-write", toolguard.WithPrincipal(context.Background(), rw), []string{"list_directory", "read_text_file", "write_file"}},
		{"no principal", context.Background(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, listNames(t, tt.ctx, s))
		})
	}
	assert.Empty(t, sink.decisions(), "listing records nothing")
}

func TestServerOptionsCall(t *testing.T) {
	sink := &memSink{}
	g := testGuard(t, sink)
	s := fileServer(t, g)
	s.AddTool(mcp.NewTool("unguarded"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ran"), nil
	})
	ro, rw := principals("/w")
	roCtx := toolguard.WithPrincipal(context.Background(), ro)
	rwCtx := toolguard.WithPrincipal(context.Background(), rw)

	tests := []struct {
		name     string
		ctx      context.Context
		tool     string
		args     string
		isError  bool
		text     string // substring of the result text
		rpcError bool
	}{
		{"read inside", roCtx, "read_text_file", `{"path":"/w/a.txt"}`, false, "read_text_file /w/a.txt", false},
		{"list inside", roCtx, "list_directory", `{"path":"/w"}`, false, "list_directory /w", false},
		{"read outside", roCtx, "read_text_file", `{"path":"/etc/passwd"}`, true, "denied", false},
		{"dot-dot escape", roCtx, "read_text_file", `{"path":"/w/../etc/passwd"}`, true, "denied", false},
		{"write without scope", roCtx, "write_file", `{"path":"/w/a.txt","content":"x"}`, true, "denied", false},
		{"write with scope", rwCtx, "write_file", `{"path":"/w/a.txt","content":"x"}`, false, "write_file /w/a.txt", false},
		{"deny rule", rwCtx, "read_text_file", `{"path":"/w/.env"}`, true, "secret files are off limits", false},
		{"schema violation", roCtx, "read_text_file", `{"path":1}`, true, "denied", false},
		{"unknown property", roCtx, "read_text_file", `{"path":"/w/a","x":1}`, true, "denied", false},
		{"duplicate keys", roCtx, "read_text_file", `{"path":"/w/a","path":"/etc/passwd"}`, true, "denied", false},
		{"no principal", context.Background(), "read_text_file", `{"path":"/w/a.txt"}`, true, "principal", false},
		{"not on the guard", rwCtx, "unguarded", `{}`, true, "denied", false},
		{"not on the server", rwCtx, "nope", `{"path":"/w/a"}`, true, `no tool named "nope"`, false},
		{"not on the server, bad arguments", rwCtx, "nope", `[1]`, true, "denied", false},
		{"the unknown-tool route by name", rwCtx, "guardmcp unknown tool", `{}`, true, "denied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(sink.decisions())
			got := call(t, tt.ctx, s, tt.tool, tt.args)
			if tt.rpcError {
				assert.NotEmpty(t, got.RPCError)
				return
			}
			require.Empty(t, got.RPCError)
			assert.Equal(t, tt.isError, got.IsError, got.Text)
			assert.Contains(t, got.Text, tt.text)
			if tt.isError {
				// What the model reads names the call, not a Go package.
				assert.True(t, strings.HasPrefix(got.Text, "call to "), got.Text)
				assert.NotRegexp(t, `\b(toolguard|guardmcp|scope|audit):`, got.Text)
			}
			recs := sink.decisions()
			require.Len(t, recs, before+1, "one decision record per call")
			assert.Equal(t, tt.tool, recs[before].Tool, "the record names the tool called")
			assert.Equal(t, map[bool]string{false: "allow", true: "deny"}[tt.isError], recs[before].Effect)
		})
	}
}

func TestServerOptionsUnknownToolNotRun(t *testing.T) {
	// A tool registered on the guard only is not served: a call is denied
	// and its handler never runs.
	sink := &memSink{}
	g := testGuard(t, sink)
	s := fileServer(t, g)
	ran := false
	require.NoError(t, g.Register(toolguard.Tool{Name: "guard_only", InputSchema: json.RawMessage(`{"type":"object"}`),
		Handler: func(context.Context, json.RawMessage) (any, error) {
			ran = true
			return mcp.NewToolResultText("ran"), nil
		}}))
	_, rw := principals("/w")
	got := call(t, toolguard.WithPrincipal(context.Background(), rw), s, "guard_only", `{}`)
	assert.True(t, got.IsError)
	assert.Contains(t, got.Text, "does not serve")
	assert.False(t, ran)
	assert.NotContains(t, listNames(t, toolguard.WithPrincipal(context.Background(), rw), s), "guardmcp unknown tool")
}

func TestServerOptionsMalfunction(t *testing.T) {
	sink := &memSink{}
	g := testGuard(t, sink)
	s := server.NewMCPServer("x", "1", guardmcp.ServerOptions(g)...)
	schema := json.RawMessage(pathSchema)
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("read_text_file", "", schema),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("disk on fire")
		}))
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("list_directory", "", schema),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			panic("boom")
		}))
	ro, _ := principals("/w")
	ctx := toolguard.WithPrincipal(context.Background(), ro)

	got := call(t, ctx, s, "read_text_file", `{"path":"/w/a"}`)
	assert.Contains(t, got.RPCError, "disk on fire", "a tool's own error is a JSON-RPC error")
	got = call(t, ctx, s, "list_directory", `{"path":"/w/a"}`)
	assert.Contains(t, got.RPCError, "panic", "a panic is a JSON-RPC error")
	assert.Len(t, sink.decisions(), 2)
}

func TestServerOptionsAuditFailureDenies(t *testing.T) {
	failing := sinkFunc(func() error { return errors.New("disk full") })
	g := testGuard(t, failing)
	ran := false
	s := server.NewMCPServer("x", "1", guardmcp.ServerOptions(g)...)
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("read_text_file", "", json.RawMessage(pathSchema)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			ran = true
			return mcp.NewToolResultText("x"), nil
		}))
	ro, _ := principals("/w")
	got := call(t, toolguard.WithPrincipal(context.Background(), ro), s, "read_text_file", `{"path":"/w/a"}`)
	assert.True(t, got.IsError)
	assert.False(t, ran, "the tool must not run without its decision record")
}

func TestAddToolDirectCall(t *testing.T) {
	// A tool added with AddTool can also be called through the guard
	// directly; its mcp-go handler gets the validated arguments.
	g := testGuard(t, &memSink{})
	s := fileServer(t, g)
	_ = s
	ro, _ := principals("/w")
	out, err := g.Call(toolguard.WithPrincipal(context.Background(), ro), "read_text_file", json.RawMessage(`{"path":"/w/x"}`))
	require.NoError(t, err)
	res, ok := out.(*mcp.CallToolResult)
	require.True(t, ok)
	require.Len(t, res.Content, 1)
	assert.Equal(t, "read_text_file /w/x", res.Content[0].(mcp.TextContent).Text)
}

func TestAddToolErrors(t *testing.T) {
	g := testGuard(t, &memSink{})
	s := server.NewMCPServer("x", "1", guardmcp.ServerOptions(g)...)
	h := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return nil, nil }
	tests := []struct {
		name string
		tool mcp.Tool
	}{
		{"bad name", mcp.NewTool("has space")},
		{"bad schema", mcp.NewToolWithRawSchema("t1", "", json.RawMessage(`{"type":"nonsense"}`))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Error(t, guardmcp.AddTool(s, g, tt.tool, h))
			assert.Nil(t, s.GetTool(tt.tool.Name), "a tool the guard refuses is not served")
		})
	}
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewTool("ok"), h))
	require.Error(t, guardmcp.AddTool(s, g, mcp.NewTool("ok"), h), "duplicate")
	require.Error(t, guardmcp.AddTool(nil, g, mcp.NewTool("ok2"), h))
}

type sinkFunc func() error

func (f sinkFunc) Write(context.Context, *audit.Record) error { return f() }
