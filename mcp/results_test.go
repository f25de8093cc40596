package guardmcp_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestServerResultGuard: an mcp-go tool's text content goes through the
// result guard: a secret in it is redacted (the result stays a
// CallToolResult), a result a rule forbids becomes a tool error the model
// reads, and the outcome record says what was done.
func TestServerResultGuard(t *testing.T) {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  s:
    grants:
      - tools: [read_mail]
results:
  rules:
    - name: no-private-keys
      effect: withhold
      tools: ["*"]
      when: '"private_key" in findings'
`))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	s := server.NewMCPServer("mail", "1", guardmcp.ServerOptions(g)...)
	var body string
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("read_mail", "", json.RawMessage(`{"type":"object"}`)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(body), nil
		}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "u", Scopes: []string{"s"}})

	body = "hi, the deploy key is AKIAIOSFODNN7EXAMPLE, thanks"
	got := call(t, ctx, s, "read_mail", `{}`)
	require.Empty(t, got.RPCError)
	assert.False(t, got.IsError)
	assert.NotContains(t, got.Text, "AKIAIOSFODNN7EXAMPLE")
	assert.Contains(t, got.Text, "hi, the deploy key is redacted:hmac-sha256:")
	assert.Contains(t, got.Text, ", thanks")

	body = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----"
	got = call(t, ctx, s, "read_mail", `{}`)
	require.Empty(t, got.RPCError)
	assert.True(t, got.IsError)
	assert.Contains(t, got.Text, "result was withheld")
	assert.NotContains(t, got.Text, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ")
	assert.NotRegexp(t, `\b(toolguard|guardmcp|scope|audit):`, got.Text)

	sink.mu.Lock()
	defer sink.mu.Unlock()
	var actions []string
	for _, r := range sink.recs {
		if r.Kind == "outcome" {
			actions = append(actions, r.ResultAction)
		}
	}
	assert.Equal(t, []string{"redacted", "withheld"}, actions)
}
