// Command stdioserver is a guarded go-sdk MCP server over stdio, for the
// tests of guardsdk: it records to the file named by its argument.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const policy = `
version: 1
scopes:
  files.read:
    grants:
      - tools: [read_file]
rules:
  - name: no-dotenv
    effect: deny
    tools: [read_file]
    when: args.path.endsWith(".env")
    message: '"secret files are off limits: " + args.path'
`

type readArgs struct {
	Path string `json:"path"`
}

func main() {
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "stdioserver:", err)
		os.Exit(1)
	}
}

func run(logPath string) error {
	log, err := audit.OpenFile(logPath, audit.FileOptions{})
	if err != nil {
		return err
	}
	defer log.Close()
	p, err := scope.Parse([]byte(policy))
	if err != nil {
		return err
	}
	g, err := toolguard.New(p, toolguard.WithSink(log))
	if err != nil {
		return err
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1"}, nil)
	s.AddReceivingMiddleware(guardsdk.Middleware(g, guardsdk.Static(scope.Principal{ID: "bot", Scopes: []string{"files.read"}})))
	err = guardsdk.AddTool(s, g, &mcp.Tool{Name: "read_file"},
		func(_ context.Context, _ *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "contents of " + in.Path}}}, nil, nil
		})
	if err != nil {
		return err
	}
	return s.Run(context.Background(), &mcp.StdioTransport{})
}
