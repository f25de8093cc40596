// Command mcpsdk is an MCP server, built on the official Go SDK
// (github.com/modelcontextprotocol/go-sdk), whose tools are behind an
// agentguard Guard: tools/list shows each principal only the tools the
// policy lets them see, and every tools/call is decided and recorded before
// the tool runs. A denial is a tool result with isError set and the reason
// as text, which the model reads.
//
// The adapter is the package github.com/agentguard/agentguard/mcp/guardsdk:
// guardsdk.Middleware and guardsdk.AddTool. This program serves the support
// bot of the demo over stdio, recording to decisions.jsonl:
//
//	go run ./mcpsdk
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/mcp/guardsdk"
)

func main() {
	log, err := audit.OpenFile("decisions.jsonl", audit.FileOptions{Sync: audit.SyncEachRecord})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpsdk:", err)
		os.Exit(1)
	}
	err = run(context.Background(), &mcp.StdioTransport{}, log)
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpsdk:", err)
		os.Exit(1)
	}
}

// run serves the guarded server on t until the client disconnects.
func run(ctx context.Context, t mcp.Transport, sink audit.Sink) error {
	s, err := newServer(sink, guardsdk.Static(demo.Principal()))
	if err != nil {
		return err
	}
	return s.Run(ctx, t)
}

// newServer returns the MCP server with the demo's tools behind a guard.
func newServer(sink audit.Sink, pf guardsdk.PrincipalFunc) (*mcp.Server, error) {
	g, err := demo.NewPolicyGuard(sink)
	if err != nil {
		return nil, err
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1.0.0"}, nil)
	s.AddReceivingMiddleware(guardsdk.Middleware(g, pf))

	err = guardsdk.AddTool(s, g, &mcp.Tool{Name: "read_file", Description: "Read a text file in the workspace."},
		func(ctx context.Context, _ *mcp.CallToolRequest, in demo.ReadArgs) (*mcp.CallToolResult, any, error) {
			text, err := demo.ReadFile(ctx, in)
			if err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	if err != nil {
		return nil, err
	}
	err = guardsdk.AddTool(s, g, &mcp.Tool{Name: "delete_file", Description: "Delete a file.", Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)}},
		func(ctx context.Context, _ *mcp.CallToolRequest, in demo.DeleteArgs) (*mcp.CallToolResult, any, error) {
			_, err := demo.DeleteFile(ctx, in)
			return nil, nil, err
		})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }
