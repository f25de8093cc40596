package guardmcp_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func ExampleServerOptions() {
	p, _ := scope.Parse([]byte(`
version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_text_file]
        when: args.path.isUnder("/srv/docs")
`))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard))
	s := server.NewMCPServer("docs", "1.0", guardmcp.ServerOptions(g)...)
	tool := mcp.NewToolWithRawSchema("read_text_file", "Read a document.",
		json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`))
	_ = guardmcp.AddTool(s, g, tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("contents of " + req.GetString("path", "")), nil
	})

	// Over stdio or HTTP the principal comes from StdioContextFunc or
	// HTTPContextFunc; here it is put into the context directly.
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bot", Scopes: []string{"fs.read"}})
	for _, path := range []string{"/srv/docs/a.txt", "/etc/passwd"} {
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":%q}}}`, path)
		resp := s.HandleMessage(ctx, json.RawMessage(msg)).(mcp.JSONRPCResponse)
		res := resp.Result.(*mcp.CallToolResult)
		fmt.Println(path, "isError:", res.IsError)
	}
	// Output:
	// /srv/docs/a.txt isError: false
	// /etc/passwd isError: true
}

// An ask rule sends write_file to the human at the calling client, through
// MCP elicitation; here the client's user approves.
func ExampleElicitationApprover() {
	p, _ := scope.Parse([]byte(`
version: 1
scopes:
  fs.write:
    grants:
      - tools: [write_file]
rules:
  - name: confirm-writes
    effect: ask
    tools: [write_file]
    message: '"writing " + args.path'
`))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard),
		toolguard.WithApprover(guardmcp.ElicitationApprover(nil)))
	s := server.NewMCPServer("files", "1.0", guardmcp.ServerOptions(g)...)
	tool := mcp.NewToolWithRawSchema("write_file", "Write a file.",
		json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`))
	_ = guardmcp.AddTool(s, g, tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("wrote " + req.GetString("path", "")), nil
	})

	// A client whose user says yes (elicitFunc adapts a function to
	// client.ElicitationHandler).
	c, _ := client.NewInProcessClientWithOptions(s, client.WithElicitationHandler(elicitFunc(
		func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
				Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"approve": true},
			}}, nil
		})))
	ctx := context.Background()
	_ = c.Start(ctx)
	defer c.Close()
	_, _ = c.Initialize(ctx, mcp.InitializeRequest{})

	ctx = toolguard.WithPrincipal(ctx, scope.Principal{ID: "bot", Scopes: []string{"fs.write"}})
	req := mcp.CallToolRequest{}
	req.Params.Name = "write_file"
	req.Params.Arguments = map[string]any{"path": "/srv/out/report.txt"}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Content[0].(mcp.TextContent).Text)
	// Output:
	// wrote /srv/out/report.txt
}
