// Command eino runs a cloudwego/eino ToolsNode whose tool calls all go
// through an agentguard Guard, by way of an InvokableToolMiddleware
// (guard.go). The ToolsNode is what a ChatModel's tool calls flow into in an
// eino graph or ReAct agent; here it is fed the assistant message a model
// would produce, since eino's core module ships no model client.
//
//	go run ./eino
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/schema"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/toolguard"
)

func main() {
	log, err := audit.OpenFile("decisions.jsonl", audit.FileOptions{Sync: audit.SyncEachRecord})
	if err != nil {
		fmt.Fprintln(os.Stderr, "eino:", err)
		os.Exit(1)
	}
	msg := &schema.Message{Role: schema.Assistant, ToolCalls: []schema.ToolCall{
		{ID: "call_notes", Type: "function", Function: schema.FunctionCall{Name: "read_file", Arguments: `{"path":"/w/notes.txt"}`}},
		{ID: "call_env", Type: "function", Function: schema.FunctionCall{Name: "read_file", Arguments: `{"path":"/w/.env"}`}},
	}}
	err = run(context.Background(), msg, log, os.Stdout)
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "eino:", err)
		os.Exit(1)
	}
}

// run answers the tool calls of msg with a guarded ToolsNode and prints the
// tool messages, which would go back to the model.
func run(ctx context.Context, msg *schema.Message, sink audit.Sink, w io.Writer) error {
	out, err := toolMessages(ctx, msg, sink)
	if err != nil {
		return err
	}
	for _, m := range out {
		if _, err := fmt.Fprintf(w, "%s: %s\n", m.ToolCallID, m.Content); err != nil {
			return err
		}
	}
	return nil
}

func toolMessages(ctx context.Context, msg *schema.Message, sink audit.Sink) ([]*schema.Message, error) {
	g, err := demo.NewPolicyGuard(sink)
	if err != nil {
		return nil, err
	}
	ctx = toolguard.WithPrincipal(ctx, demo.Principal())

	readFile, err := utils.InferTool("read_file", "Read a text file in the workspace.", demo.ReadFile)
	if err != nil {
		return nil, err
	}
	deleteFile, err := utils.InferTool("delete_file", "Delete a file.", demo.DeleteFile)
	if err != nil {
		return nil, err
	}
	conf, err := ToolsNodeConfig(ctx, g, []tool.BaseTool{readFile, deleteFile})
	if err != nil {
		return nil, err
	}
	tn, err := compose.NewToolNode(ctx, conf)
	if err != nil {
		return nil, err
	}
	return tn.Invoke(ctx, msg)
}
