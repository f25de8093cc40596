package guardmcp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/toolguard"
)

// ErrNoElicitation is returned (with a denying Approval) by the approver of
// [ElicitationApprover] when the calling client cannot ask its user: it did
// not declare the elicitation capability, or the call did not come through
// an MCP session that can carry the question.
var ErrNoElicitation = errors.New("guardmcp: human approval was required, and the calling MCP client cannot ask its user for it (it did not declare the elicitation capability)")

// ElicitationOption configures [ElicitationApprover].
type ElicitationOption func(*elicitationOptions)

type elicitationOptions struct {
	timeout time.Duration
	message func(toolguard.ApprovalRequest) string
}

// WithElicitationTimeout bounds how long the approver waits for the user's
// answer when the call's context has no deadline of its own (default 5
// minutes). No answer in time denies. [toolguard.WithApprovalTimeout] sets a
// deadline on that context for every approver.
func WithElicitationTimeout(d time.Duration) ElicitationOption {
	return func(o *elicitationOptions) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithElicitationMessage replaces the text the user is shown. The default
// ([ElicitationMessage]) names the tool, the principal, the arguments and
// why the policy asks.
func WithElicitationMessage(f func(toolguard.ApprovalRequest) string) ElicitationOption {
	return func(o *elicitationOptions) {
		if f != nil {
			o.message = f
		}
	}
}

// maxComment bounds the user's comment kept in the approval.
const maxComment = 500

// ElicitationMessage is the default text of an approval question:
// [toolguard.ApprovalMessage], which names the tool, the principal, the
// arguments as the guard gives them (sensitive values redacted), what of
// them is hidden and why, and the reason of the rule that asks.
func ElicitationMessage(req toolguard.ApprovalRequest) string {
	return toolguard.ApprovalMessage(req)
}

func truncate(s string, n int) string { return toolguard.TruncateUTF8(s, n) }

// approvalSchema is the form the user fills in.
var approvalSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"approve": map[string]any{
			"type":        "boolean",
			"title":       "Approve",
			"description": "Run this call now",
			"default":     false,
		},
		"comment": map[string]any{
			"type":        "string",
			"title":       "Comment",
			"description": "Optional; shown to the agent if you refuse",
			"maxLength":   maxComment,
		},
	},
	"required": []string{"approve"},
}

type elicitationApprover struct {
	s *server.MCPServer
	o elicitationOptions
}

// ElicitationApprover returns a [toolguard.Approver] that asks the human at
// the calling client, through MCP elicitation: a form with "approve" (yes or
// no) and an optional comment, under a message that states the tool, the
// principal, the arguments and why the policy asks. Only an accepted form
// with approve set to true approves; a refusal, a decline, a cancel, no
// answer before the context is done, or any error denies. Every answer
// carries the request's binding, so it covers that exact call only.
//
// The question goes to the client session of the tools/call being decided
// (the approver runs with the call's context). If that client did not
// declare the elicitation capability, the call is denied with
// [ErrNoElicitation], and the denial the model reads says that human
// approval was required and could not be asked for. Clients on protocol
// version 2026-07-28, where a server can no longer send a request in the
// middle of a call, are denied in the same way.
//
// s is the server whose sessions are asked; nil means the server the call
// arrived at, which suits a guard built before its server (as for
// [NewProxy]). The approver is safe for concurrent use.
func ElicitationApprover(s *server.MCPServer, opts ...ElicitationOption) toolguard.Approver {
	a := &elicitationApprover{s: s, o: elicitationOptions{timeout: 5 * time.Minute, message: ElicitationMessage}}
	for _, opt := range opts {
		if opt != nil {
			opt(&a.o)
		}
	}
	return a
}

func (a *elicitationApprover) Approve(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
	answer := toolguard.Approval{By: "mcp-elicitation", Binding: req.Binding}
	s := a.s
	if s == nil {
		s = server.ServerFromContext(ctx)
	}
	session := server.ClientSessionFromContext(ctx)
	if s == nil || session == nil {
		answer.Reason = "human approval was required, and the call did not come through an MCP client session that could ask for it"
		return answer, ErrNoElicitation
	}
	if ci, ok := session.(server.SessionWithClientInfo); ok {
		if name := ci.GetClientInfo().Name; name != "" {
			answer.By = "mcp-elicitation: user of " + name
		}
		if ci.GetClientCapabilities().Elicitation == nil {
			answer.Reason = "human approval was required, and the client did not declare the elicitation capability, so it cannot ask its user"
			return answer, ErrNoElicitation
		}
	}
	if _, ok := session.(server.SessionWithElicitation); !ok {
		answer.Reason = "human approval was required, and the client's transport cannot carry the question"
		return answer, ErrNoElicitation
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.o.timeout)
		defer cancel()
	}
	er := mcp.ElicitationRequest{Params: mcp.ElicitationParams{
		Mode:            mcp.ElicitationModeForm,
		Message:         a.o.message(req),
		RequestedSchema: approvalSchema,
	}}
	er.Method = string(mcp.MethodElicitationCreate)
	res, err := s.RequestElicitation(ctx, er)
	if err != nil {
		if ctx.Err() != nil {
			answer.Reason = "no answer from the user in time"
		} else {
			answer.Reason = "asking the user failed: " + err.Error()
		}
		return answer, fmt.Errorf("guardmcp: approval by elicitation: %w", err)
	}
	if res == nil {
		answer.Reason = "the client sent no answer"
		return answer, nil
	}
	switch res.Action {
	case mcp.ElicitationResponseActionAccept:
	case mcp.ElicitationResponseActionDecline:
		answer.Reason = "the user declined"
		return answer, nil
	case mcp.ElicitationResponseActionCancel:
		answer.Reason = "the user cancelled"
		return answer, nil
	default:
		answer.Reason = fmt.Sprintf("the client answered %q", truncate(string(res.Action), 64))
		return answer, nil
	}
	content, _ := res.Content.(map[string]any)
	approve, _ := content["approve"].(bool)
	comment, _ := content["comment"].(string)
	comment = strings.TrimSpace(truncate(comment, maxComment))
	if !approve {
		answer.Reason = "the user refused"
		if comment != "" {
			answer.Reason += ": " + comment
		}
		return answer, nil
	}
	answer.Approved = true
	answer.Reason = comment
	return answer, nil
}
