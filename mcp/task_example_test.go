package guardmcp_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// The host application signs a task for one user request ("send Bob the
// report") and attaches it to each tools/call it sends under
// _meta["io.agentguard/task"]. The server narrows the call to the task:
// mail only to the recipient the user named.
func ExampleWithTaskVerifier() {
	// The application's key; the server has only its public half (in
	// practice from a file, with guardmcp.LoadJWTKeys).
	appKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	v, _ := guardmcp.NewTaskVerifier([]guardmcp.JWTKey{{Key: appKey.Public()}}, guardmcp.TaskOptions{})

	p, _ := scope.Parse([]byte(`
version: 1
scopes:
  mail:
    grants:
      - tools: [send_email]
        when: '!has(task.attrs.recipients) || args.to in task.attrs.recipients'
`))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard))
	s := server.NewMCPServer("mail", "1.0", guardmcp.ServerOptions(g, guardmcp.WithTaskVerifier(v))...)
	_ = guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("send_email", "Send an e-mail.",
		json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("sent to " + req.GetString("to", "")), nil
		})

	// The application signs the task for the principal it is acting for.
	token, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub":  "assistant",
		"exp":  time.Now().Add(5 * time.Minute).Unix(),
		"task": map[string]any{"id": "send-report", "attrs": map[string]any{"recipients": []string{"bob@example.com"}}},
	}).SignedString(appKey)
	meta, _ := json.Marshal(map[string]string{guardmcp.TaskMetaKey: token})

	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "assistant", Scopes: []string{"mail"}})
	for _, to := range []string{"bob@example.com", "eve@evil.example"} {
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send_email","arguments":{"to":%q},"_meta":%s}}`, to, meta)
		res := s.HandleMessage(ctx, json.RawMessage(msg)).(mcp.JSONRPCResponse).Result.(*mcp.CallToolResult)
		fmt.Println(to, "isError:", res.IsError)
	}
	// Output:
	// bob@example.com isError: false
	// eve@evil.example isError: true
}
