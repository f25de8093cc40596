package guardmcp_test

//lint:file-ignore SA1019 the example speaks the legacy MCP protocol: an initialize handshake

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// DialProxy in front of a streamable HTTP server: each client of the proxy
// gets an upstream session of its own, at most 8 at once, each closed
// after 10 idle minutes.
func ExampleDialProxy() {
	ctx := context.Background()
	up := server.NewMCPServer("greeter", "1", server.WithToolCapabilities(true))
	up.AddTool(mcp.NewTool("hello", mcp.WithString("name")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hello " + req.GetString("name", "")), nil
	})
	upTS := httptest.NewServer(server.NewStreamableHTTPServer(up))
	defer upTS.Close()

	p, err := scope.Parse([]byte("version: 1\nscopes:\n  greet:\n    grants:\n      - tools: [hello]\n"))
	if err != nil {
		log.Fatal(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		log.Fatal(err)
	}
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{URL: upTS.URL,
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()}}, g,
		guardmcp.WithMaxSessions(8), guardmcp.WithSessionIdle(10*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	defer px.Close()
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(), server.WithHTTPContextFunc(
		guardmcp.HTTPContextFunc(guardmcp.Static(scope.Principal{ID: "agent", Scopes: []string{"greet"}})))))
	defer front.Close()

	for _, name := range []string{"ada", "grace"} {
		c, err := client.NewStreamableHttpClient(front.URL)
		if err != nil {
			log.Fatal(err)
		}
		c = client.NewClient(c.GetTransport(), client.WithLegacyProtocolOnly())
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		if err := c.Start(ctx); err != nil {
			log.Fatal(err)
		}
		if _, err := c.Initialize(ctx, init); err != nil {
			log.Fatal(err)
		}
		req := mcp.CallToolRequest{}
		req.Params.Name = "hello"
		req.Params.Arguments = map[string]any{"name": name}
		res, err := c.CallTool(ctx, req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(res.Content[0].(mcp.TextContent).Text)
		defer c.Close()
	}
	fmt.Println("upstream sessions:", px.UpstreamSessions())
	// Output:
	// hello ada
	// hello grace
	// upstream sessions: 2
}
