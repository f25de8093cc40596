package guardsdk_test

import (
	"context"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/mcp/guardsdk"
)

// TestTaskIsRefused: this adapter does not verify tasks, so a tools/call,
// resources/read or prompts/get whose _meta carries one — or a key that
// looks meant to — is denied and recorded, and its handler does not run:
// running it without its task would give it more than its sender asked
// for. Other _meta keys change nothing.
func TestTaskIsRefused(t *testing.T) {
	ds := newDataServer(t, dataPolicy, guardsdk.Static(alice))
	f := newFixture(t, guardsdk.Static(bot))
	tools, finishTools := f.connect(t, nil)
	data, finishData := ds.connect(t, nil)
	ctx := context.Background()

	metas := []mcp.Meta{
		{guardmcp.TaskMetaKey: "eyJhbGciOiJFZERTQSJ9.e30.c2ln"},
		{guardmcp.TaskMetaKey: map[string]any{"id": "t1"}},
		{"io.agentguard/Task": "x"},
		{"IO.AGENTGUARD/TASK": "x"},
		{"agentguard.io/task": "x"},
		{"io.example/trace": "abc", "AgentGuard": "x"},
		{"io.agentguard/taſk": "x"}, // a long s: folds to S
	}
	for _, meta := range metas {
		res, err := tools.CallTool(ctx, &mcp.CallToolParams{Meta: meta, Name: "write_file", Arguments: map[string]any{"path": "/w/a", "text": "x"}})
		require.NoError(t, err)
		assert.True(t, res.IsError, "%v", meta)
		assert.Contains(t, text(t, res), "the task sent with the call was refused", "%v", meta)
		assert.Contains(t, text(t, res), "this server does not verify tasks", "%v", meta)
		assert.NotRegexp(t, `\b(toolguard|guardsdk|guardmcp|scope|audit): `, text(t, res))

		_, err = data.ReadResource(ctx, &mcp.ReadResourceParams{Meta: meta, URI: "file:///w/a.txt"})
		requireDenied(t, err, "this server does not verify tasks")
		_, err = data.GetPrompt(ctx, &mcp.GetPromptParams{Meta: meta, Name: "summarize"})
		requireDenied(t, err, "this server does not verify tasks")
	}
	assert.Zero(t, f.writes.Load(), "no refused call ran")
	assert.Empty(t, ds.seen(&ds.reads))
	assert.Empty(t, ds.seen(&ds.gets))

	other := mcp.Meta{"progressToken": "p1", "io.example/trace": "abc"}
	res, err := tools.CallTool(ctx, &mcp.CallToolParams{Meta: other, Name: "read_file", Arguments: map[string]any{"path": "/w/notes.txt"}})
	require.NoError(t, err)
	assert.False(t, res.IsError, "%s", text(t, res))
	_, err = data.ReadResource(ctx, &mcp.ReadResourceParams{Meta: other, URI: "file:///w/a.txt"})
	require.NoError(t, err)
	assert.Equal(t, []string{"file:///w/a.txt"}, ds.seen(&ds.reads))

	sum := finishTools()
	assert.Equal(t, len(metas)+1, sum.Decisions, "every refusal is recorded")
	assert.Equal(t, 1, sum.Allowed)
	sum = finishData()
	assert.Equal(t, 2*len(metas)+1, sum.Decisions)
}
