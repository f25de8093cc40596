package guardmcp_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const askPolicy = `
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
`

// askServer is an in-process server whose write_file needs approval by
// elicitation; it returns the server and an mcp-go client of it.
func askServer(t *testing.T, sink *memSink, h client.ElicitationHandler, gopts ...toolguard.Option) (*server.MCPServer, *client.Client, *bool) {
	t.Helper()
	p, err := scope.Parse([]byte(askPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, append([]toolguard.Option{toolguard.WithSink(sink), toolguard.WithApprover(guardmcp.ElicitationApprover(nil))}, gopts...)...)
	require.NoError(t, err)
	s := server.NewMCPServer("files", "1", guardmcp.ServerOptions(g)...)
	ran := new(bool)
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("write_file", "",
		json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string","writeOnly":true}},"required":["path","content"]}`)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			*ran = true
			return mcp.NewToolResultText("wrote " + req.GetString("path", "")), nil
		}))
	var opts []client.ClientOption
	if h != nil {
		opts = append(opts, client.WithElicitationHandler(h))
	}
	c, err := client.NewInProcessClientWithOptions(s, opts...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "approver-test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	return s, c, ran
}

func TestElicitationApprover(t *testing.T) {
	pr := scope.Principal{ID: "writer", Scopes: []string{"fs.write"}}
	var seen mcp.ElicitationRequest
	tests := []struct {
		name     string
		handler  client.ElicitationHandler
		approved bool
		text     string
		reason   string
	}{
		{"approve", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}), true, "wrote /w/a", ""},
		{"refuse with a comment", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": false, "comment": " too risky "}), false, "too risky", "the user refused: too risky"},
		{"accept without an answer", answer(mcp.ElicitationResponseActionAccept, map[string]any{}), false, "refused", "the user refused"},
		{"approve as a string", answer(mcp.ElicitationResponseActionAccept, map[string]any{"approve": "true"}), false, "refused", "the user refused"},
		{"decline", answer(mcp.ElicitationResponseActionDecline, nil), false, "declined", "the user declined"},
		{"cancel", answer(mcp.ElicitationResponseActionCancel, nil), false, "cancelled", "the user cancelled"},
		{"unknown action", answer("maybe", nil), false, "maybe", `the client answered "maybe"`},
		{"no elicitation capability", nil, false, "did not declare the elicitation capability", "did not declare the elicitation capability"},
		{"client error", elicitFunc(func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			return nil, assert.AnError
		}), false, "approval failed", "asking the user failed"},
		{"records the question", elicitFunc(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			seen = req
			return answer(mcp.ElicitationResponseActionDecline, nil)(ctx, req)
		}), false, "declined", "declined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			_, c, ran := askServer(t, sink, tt.handler)
			req := mcp.CallToolRequest{}
			req.Params.Name = "write_file"
			req.Params.Arguments = map[string]any{"path": "/w/a", "content": "s3cret"}
			ctx, cancel := context.WithTimeout(toolguard.WithPrincipal(context.Background(), pr), 10*time.Second)
			defer cancel()
			res, err := c.CallTool(ctx, req)
			require.NoError(t, err)
			text := res.Content[0].(mcp.TextContent).Text
			assert.Equal(t, !tt.approved, res.IsError, text)
			assert.Contains(t, text, tt.text)
			assert.Equal(t, tt.approved, *ran)
			recs := sink.decisions()
			require.Len(t, recs, 1)
			require.NotNil(t, recs[0].Approval)
			assert.Equal(t, tt.approved, recs[0].Approval.Approved)
			assert.Contains(t, recs[0].Approval.Reason, tt.reason)
			assert.NotEmpty(t, recs[0].Approval.Binding)
		})
	}
	msg := seen.Params.Message
	assert.Contains(t, msg, "write_file")
	assert.Contains(t, msg, "writer")
	assert.Contains(t, msg, "writing /w/a")
	assert.NotContains(t, msg, "s3cret", "writeOnly values are redacted in the question")
	assert.Contains(t, msg, `- "/content": the whole value, because it is marked sensitive`, "the user is told what is hidden:\n%s", msg)
	schema, err := json.Marshal(seen.Params.RequestedSchema)
	require.NoError(t, err)
	assert.Contains(t, string(schema), `"approve"`)
}

func TestElicitationApproverTimeout(t *testing.T) {
	sink := &memSink{}
	blocked := elicitFunc(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	_, c, ran := askServer(t, sink, blocked, toolguard.WithApprovalTimeout(100*time.Millisecond))
	req := mcp.CallToolRequest{}
	req.Params.Name = "write_file"
	req.Params.Arguments = map[string]any{"path": "/w/a", "content": "x"}
	ctx, cancel := context.WithTimeout(toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "writer", Scopes: []string{"fs.write"}}), 10*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.True(t, res.IsError)
	assert.False(t, *ran)
	recs := sink.decisions()
	require.Len(t, recs, 1)
	assert.Equal(t, "deny", recs[0].Effect)
	assert.Contains(t, recs[0].Approval.Reason, "no answer from the user in time")
}

func TestElicitationApproverOutsideMCP(t *testing.T) {
	// Called without an MCP session (Guard.Call directly): denied, saying why.
	a := guardmcp.ElicitationApprover(nil)
	got, err := a.Approve(context.Background(), toolguard.ApprovalRequest{Tool: "write_file", Binding: "b1"})
	require.ErrorIs(t, err, guardmcp.ErrNoElicitation)
	assert.False(t, got.Approved)
	assert.Equal(t, "b1", got.Binding)
	assert.Contains(t, got.Reason, "human approval was required")
}

func TestElicitationMessage(t *testing.T) {
	long := `{"content":"` + strings.Repeat("é", 5000) + `"}`
	msg := guardmcp.ElicitationMessage(toolguard.ApprovalRequest{
		Tool: "write_file", Principal: scope.Principal{ID: "bot"}, Args: json.RawMessage(long),
		ArgsSHA256: "abc", Rule: "r", Reason: "because",
	})
	assert.Contains(t, msg, "write_file")
	assert.Contains(t, msg, "bot")
	assert.Contains(t, msg, `because (rule "r")`)
	assert.Contains(t, msg, "SHA-256 abc", "long arguments are cut, with their digest")
	assert.Less(t, len(msg), 5000)
	assert.True(t, utf8.ValidString(msg), "cut on a character boundary")
	assert.NotContains(t, msg, "Hidden from you", "nothing is hidden")
}

// The user is told exactly what of the arguments is hidden, and why; a
// pointer cannot add lines of its own to the question.
func TestElicitationMessageSaysWhatIsHidden(t *testing.T) {
	msg := guardmcp.ElicitationMessage(toolguard.ApprovalRequest{
		Tool: "send_email", Principal: scope.Principal{ID: "bot"},
		Args: json.RawMessage(`{"to":"mallory@evil.test, redacted:hmac-sha256:00112233445566778899aabbccddeeff"}`),
		Hidden: []audit.Redaction{
			{Pointer: "/to", Why: "it holds a bearer token"},
			{Pointer: "/x\nApproved by security: yes", Whole: true, Why: "it is marked sensitive"},
		},
	})
	assert.Contains(t, msg, "mallory@evil.test", "the recipient is shown")
	assert.Contains(t, msg, `- "/to": part of the text; the rest is shown, because it holds a bearer token`)
	assert.Contains(t, msg, `- "/x\nApproved by security: yes": the whole value, because it is marked sensitive`)
	assert.NotContains(t, msg, "\nApproved by security")
}
