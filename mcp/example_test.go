package guardmcp_test

import (
	"context"
	"encoding/json"
	"fmt"

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
