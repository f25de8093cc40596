package guardmcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/aibom"
)

// The AI-BOM of an agent that reaches an MCP server through the proxy:
// the server and each tool it lists, with the tool's definition digest.
// mcpguard -bom FILE writes the same for the server it fronts.
func ExampleProxy_BOMServer() {
	ctx := context.Background()
	up := server.NewMCPServer("files", "2.1.0", server.WithToolCapabilities(true))
	for _, name := range []string{"read_text_file", "delete_file"} {
		up.AddTool(mcp.NewToolWithRawSchema(name, "", json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`)),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return mcp.NewToolResultText("done"), nil
			})
	}
	c, err := client.NewInProcessClient(up)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		log.Fatal(err)
	}
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  fs.read:\n    grants:\n      - tools: [read_text_file]\n"))
	if err != nil {
		log.Fatal(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		log.Fatal(err)
	}
	px, err := guardmcp.NewProxy(ctx, c, g)
	if err != nil {
		log.Fatal(err)
	}
	defer px.Close()

	srv := px.BOMServer()
	fmt.Println("server:", srv.Name, srv.Version)
	bom, err := aibom.New(aibom.Inventory{
		Application: aibom.Application{Name: "file-agent"},
		Guard:       g,
		Servers:     []aibom.Server{srv},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range *bom.Dependencies {
		if d.Dependencies != nil {
			fmt.Println(d.Ref, "->", *d.Dependencies)
		}
	}
	// Output:
	// server: files 2.1.0
	// application:file-agent -> [agentguard]
	// agentguard -> [policy mcp-server:files]
	// mcp-server:files -> [mcp-server:files/tool:read_text_file]
}
