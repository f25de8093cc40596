package guardmcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestTaskAndFunctionsThroughGuardMCP: per-task narrowing and application
// CEL functions hold for tools served by an mcp-go server through
// guardmcp, as through Guard.Call. The application puts the task into the
// context (its context function would); the policy's function reads live
// data, and its failure denies.
func TestTaskAndFunctionsThroughGuardMCP(t *testing.T) {
	balances := map[string]float64{"alice": 100}
	balance := scope.Function{
		Name: "balance", Params: []scope.Type{scope.StringType}, Result: scope.DoubleType,
		Cost: 100, Timeout: 50 * time.Millisecond,
		Impl: func(_ context.Context, args ...any) (any, error) {
			b, ok := balances[args[0].(string)]
			if !ok {
				return nil, errors.New("no account")
			}
			return b, nil
		},
	}
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  mail:
    grants:
      - tools: [send_email]
        when: '!has(task.attrs.recipients) || args.to in task.attrs.recipients'
  pay:
    grants:
      - tools: [send_money]
        when: double(args.amount) <= balance(principal.id)
`), scope.WithFunction(balance))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	s := server.NewMCPServer("assistant", "1", guardmcp.ServerOptions(g)...)
	ran := 0
	h := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ran++
		return mcp.NewToolResultText("done"), nil
	}
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("send_email", "",
		json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`)), h))
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("send_money", "",
		json.RawMessage(`{"type":"object","properties":{"amount":{"type":"integer"}},"required":["amount"]}`)), h))

	alice := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"mail", "pay"}})
	task := toolguard.WithTask(alice, scope.Task{ID: "task-7", Tools: []string{"send_email"},
		Attrs: map[string]any{"recipients": []any{"bob@example.com"}}})

	// The task allows mail to the recipient the user named, nothing else.
	assert.False(t, call(t, task, s, "send_email", `{"to":"bob@example.com"}`).IsError)
	got := call(t, task, s, "send_email", `{"to":"eve@evil.example"}`)
	assert.True(t, got.IsError, "a recipient the user did not name")
	got = call(t, task, s, "send_money", `{"amount":1}`)
	assert.True(t, got.IsError, "a tool outside the task")
	assert.NotContains(t, got.Text, "toolguard")
	// A task cannot add a scope the principal lacks.
	mailOnly := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"mail"}})
	widened := toolguard.WithTask(mailOnly, scope.Task{ID: "task-8", Scopes: []string{"mail", "pay"}})
	assert.True(t, call(t, widened, s, "send_money", `{"amount":1}`).IsError, "narrowing never adds")

	// The application function: within the balance, over it, no account.
	assert.False(t, call(t, alice, s, "send_money", `{"amount":100}`).IsError)
	assert.True(t, call(t, alice, s, "send_money", `{"amount":101}`).IsError)
	mallory := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "mallory", Scopes: []string{"pay"}})
	got = call(t, mallory, s, "send_money", `{"amount":1}`)
	assert.True(t, got.IsError, "a failing function denies")
	assert.Equal(t, 2, ran, "only the two allowed calls ran")

	var tasks []string
	for _, r := range sink.decisions() {
		tasks = append(tasks, r.Task)
	}
	assert.Equal(t, []string{"task-7", "task-7", "task-7", "task-8", "", "", ""}, tasks, "records name the task")
}
