package guardsdk_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// A go-sdk server whose tools are behind a guard: the middleware decides
// and records every call, and asks the user through elicitation where the
// policy says to ask.
func ExampleMiddleware() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  notes.read:
    grants:
      - tools: [read_note]
        when: args.id.startsWith("n-")
`))
	if err != nil {
		panic(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard),
		toolguard.WithApprover(guardsdk.ElicitationApprover(guardsdk.ApproverOptions{})))
	if err != nil {
		panic(err)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1.0.0"}, nil)
	s.AddReceivingMiddleware(guardsdk.Middleware(g, guardsdk.Static(scope.Principal{ID: "bot", Scopes: []string{"notes.read"}})))
	type args struct {
		ID string `json:"id"`
	}
	err = guardsdk.AddTool(s, g, &mcp.Tool{Name: "read_note", Description: "Read a note."},
		func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "note " + in.ID}}}, nil, nil
		})
	if err != nil {
		panic(err)
	}

	// A client, here over in-memory transports.
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		panic(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		panic(err)
	}
	defer cs.Close()
	for _, id := range []string{"n-1", "secret"} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_note", Arguments: map[string]any{"id": id}})
		if err != nil {
			panic(err)
		}
		fmt.Println(res.IsError, res.Content[0].(*mcp.TextContent).Text)
	}
	// Output:
	// false note n-1
	// true call to "read_note" denied: no scope held by "bot" grants tool "read_note" for these arguments; scope "notes.read" allows it only when args.id.startsWith("n-")
}

// Resources are governed by the policy's resource grants and rules: a read
// is decided by the canonical form of its URI and recorded before the
// server's handler runs, and a denial is a JSON-RPC error whose message is
// the reason.
func ExampleMiddleware_resources() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  notes.read:
    grants:
      - resources: ["notes:///**"]
rules:
  - name: no-private-notes
    effect: deny
    resources: ["notes:///private/**"]
`))
	if err != nil {
		panic(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		panic(err)
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1.0.0"}, nil)
	s.AddReceivingMiddleware(guardsdk.Middleware(g, guardsdk.Static(scope.Principal{ID: "bot", Scopes: []string{"notes.read"}})))
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "notes:///{+path}", Name: "notes"},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, Text: "a note"}}}, nil
		})

	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := s.Connect(ctx, st, nil)
	if err != nil {
		panic(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1.0.0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		panic(err)
	}
	defer cs.Close()
	for _, uri := range []string{"notes:///todo.md", "notes:///public/../private/diary.md"} {
		res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		var we *jsonrpc.Error
		switch {
		case errors.As(err, &we):
			fmt.Println(we.Code, we.Message)
		case err != nil:
			panic(err)
		default:
			fmt.Println(res.Contents[0].Text)
		}
	}
	// Output:
	// a note
	// -32602 call to "resources/read" denied: resource "notes:///public/../private/diary.md" is denied by rule "no-private-notes"
}
