package guardsdk_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// The host application signs a task for one user request ("send Bob the
// report") and attaches it to each tools/call under
// _meta["io.agentguard/task"]; the go-sdk server narrows the call to it:
// mail only to the recipient the user named.
func ExampleWithTaskVerifier() {
	// The application's key; the server has only its public half (in
	// practice from a file, with guardmcp.LoadJWTKeys).
	appKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	v, err := guardmcp.NewTaskVerifier([]guardmcp.JWTKey{{Key: appKey.Public()}}, guardmcp.TaskOptions{})
	if err != nil {
		panic(err)
	}
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  mail:
    grants:
      - tools: [send_email]
        when: '!has(task.attrs.recipients) || args.to in task.attrs.recipients'
`))
	if err != nil {
		panic(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		panic(err)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "mail", Version: "1.0.0"}, nil)
	assistant := scope.Principal{ID: "assistant", Scopes: []string{"mail"}}
	s.AddReceivingMiddleware(guardsdk.Middleware(g, guardsdk.Static(assistant), guardsdk.WithTaskVerifier(v)))
	type args struct {
		To string `json:"to"`
	}
	err = guardsdk.AddTool(s, g, &mcp.Tool{Name: "send_email", Description: "Send an e-mail."},
		func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "sent to " + in.To}}}, nil, nil
		})
	if err != nil {
		panic(err)
	}

	// The application signs the task for the principal it acts for.
	token, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"sub":  "assistant",
		"exp":  time.Now().Add(5 * time.Minute).Unix(),
		"task": map[string]any{"id": "send-report", "attrs": map[string]any{"recipients": []string{"bob@example.com"}}},
	}).SignedString(appKey)
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		panic(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "host", Version: "1.0.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		panic(err)
	}
	defer cs.Close()
	for _, to := range []string{"bob@example.com", "eve@evil.example"} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Meta: mcp.Meta{guardsdk.TaskMetaKey: token},
			Name: "send_email", Arguments: map[string]any{"to": to}})
		if err != nil {
			panic(err)
		}
		fmt.Println(to, "isError:", res.IsError)
	}
	// Output:
	// bob@example.com isError: false
	// eve@evil.example isError: true
}
