package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/schema"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
)

func TestToolsNode(t *testing.T) {
	calls := []struct {
		name, tool, args, want string
	}{
		{"allowed", "read_file", `{"path":"/w/notes.txt"}`, "Customer 42 asked for a refund of order 1234."},
		{"deny rule", "read_file", `{"path":"/w/.env"}`,
			`call to "read_file" denied: denied by rule "no-dotenv": secret files are off limits: /w/.env`},
		{"no grant", "delete_file", `{"path":"/w/notes.txt"}`, `no scope held by "support-bot" grants tool "delete_file"`},
		{"unknown tool", "shell", `{"cmd":"id"}`, `call to "shell" denied`},
		{"duplicate keys", "read_file", `{"path":"/w/.env","path":"/w/notes.txt"}`, `key "path" appears twice`},
		{"schema violation", "read_file", `{"path":42}`, "at /path: got number, want string"},
	}
	msg := &schema.Message{Role: schema.Assistant}
	for _, c := range calls {
		msg.ToolCalls = append(msg.ToolCalls, schema.ToolCall{ID: c.name, Type: "function",
			Function: schema.FunctionCall{Name: c.tool, Arguments: c.args}})
	}
	var records bytes.Buffer
	out, err := toolMessages(context.Background(), msg, audit.NewLog(&records))
	require.NoError(t, err)
	got := map[string]string{}
	for _, m := range out {
		assert.Equal(t, schema.Tool, m.Role)
		got[m.ToolCallID] = m.Content
	}
	for _, c := range calls {
		assert.Contains(t, got[c.name], c.want, c.name)
		assert.NotContains(t, got[c.name], "sk_live", c.name)
	}

	sum, err := audit.Verify(&records, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, len(calls), sum.Decisions)
	assert.Equal(t, 1, sum.Allowed)
	assert.Equal(t, 1, sum.Outcomes)
}

func TestRunPrints(t *testing.T) {
	msg := &schema.Message{Role: schema.Assistant, ToolCalls: []schema.ToolCall{
		{ID: "c1", Type: "function", Function: schema.FunctionCall{Name: "read_file", Arguments: `{"path":"/w/.env"}`}},
	}}
	var w bytes.Buffer
	require.NoError(t, run(context.Background(), msg, audit.Discard, &w))
	assert.Contains(t, w.String(), `c1: call to "read_file" denied`)
}

// streamer is a streamable tool: the middleware does not cover it.
type streamer struct{ tool.InvokableTool }

func (streamer) StreamableRun(context.Context, string, ...tool.Option) (*schema.StreamReader[string], error) {
	return nil, nil
}

func TestToolsNodeConfigRefuses(t *testing.T) {
	ctx := context.Background()
	read, err := utils.InferTool("read_file", "Read.", demo.ReadFile)
	require.NoError(t, err)
	tests := []struct {
		name  string
		tools []tool.BaseTool
	}{
		{"streamable", []tool.BaseTool{streamer{read}}},
		{"duplicate", []tool.BaseTool{read, read}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := demo.NewPolicyGuard(audit.Discard)
			require.NoError(t, err)
			_, err = ToolsNodeConfig(ctx, g, tt.tools)
			assert.Error(t, err)
		})
	}
}
