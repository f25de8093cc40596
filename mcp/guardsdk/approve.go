package guardsdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/toolguard"
)

// ErrNoElicitation is returned (with a denying Approval) by the approver of
// [ElicitationApprover] when the calling client cannot ask its user: it did
// not declare the elicitation capability, or the call did not come through
// an MCP session that can carry the question.
var ErrNoElicitation = errors.New("guardsdk: the calling MCP client cannot ask its user for approval")

// ApproverOptions configures [ElicitationApprover].
type ApproverOptions struct {
	// Timeout bounds how long the approver waits for the user's answer
	// when the call's context has no deadline of its own (default 5
	// minutes). No answer in time denies.
	Timeout time.Duration
	// Message is the text the user is shown; nil means
	// [toolguard.ApprovalMessage].
	Message func(toolguard.ApprovalRequest) string
}

// maxComment bounds the user's comment kept in the approval.
const maxComment = 500

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

type elicitationApprover struct{ o ApproverOptions }

// ElicitationApprover returns a [toolguard.Approver] that asks the human at
// the calling client, through MCP elicitation: a form with "approve" (yes
// or no) and an optional comment, under a message that states the tool, the
// principal, the arguments and why the policy asks. Only an accepted form
// with approve set to true approves; a refusal, a decline, a cancel, no
// answer in time or any error denies. Every answer carries the request's
// binding, so it covers that exact call only.
//
// The question goes to the client session of the tools/call being decided,
// which [Middleware] puts in the call's context. If that client did not
// declare the elicitation capability, or the call did not come through
// [Middleware], the call is denied with [ErrNoElicitation]. Clients on
// protocol version 2026-07-28 or later, where a server can no longer send a
// request in the middle of a call, are denied in the same way: multi
// round-trip input requests are not used. The approver is safe for
// concurrent use.
func ElicitationApprover(o ApproverOptions) toolguard.Approver {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Message == nil {
		o.Message = toolguard.ApprovalMessage
	}
	return &elicitationApprover{o: o}
}

// Approve implements [toolguard.Approver].
func (a *elicitationApprover) Approve(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
	answer := toolguard.Approval{By: "mcp-elicitation", Binding: req.Binding}
	ss := serverSession(ctx)
	if ss == nil {
		answer.Reason = "the call did not come through an MCP client session that could ask for it"
		return answer, fmt.Errorf("%w: %s", ErrNoElicitation, answer.Reason)
	}
	ip := ss.InitializeParams()
	if ip == nil || ip.Capabilities == nil || ip.Capabilities.Elicitation == nil {
		answer.Reason = "the client did not declare the elicitation capability"
		return answer, fmt.Errorf("%w: %s", ErrNoElicitation, answer.Reason)
	}
	if ip.ProtocolVersion >= "2026-07-28" {
		// From this version on a server may not send a request in the
		// middle of a call (multi round-trip requests instead).
		answer.Reason = "the client's protocol version (" + toolguard.TruncateUTF8(ip.ProtocolVersion, 32) + ") does not let a server ask its user in the middle of a call"
		return answer, fmt.Errorf("%w: %s", ErrNoElicitation, answer.Reason)
	}
	if ip.ClientInfo != nil && ip.ClientInfo.Name != "" {
		answer.By = "mcp-elicitation: user of " + toolguard.TruncateUTF8(ip.ClientInfo.Name, 100)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.o.Timeout)
		defer cancel()
	}
	res, err := ss.Elicit(ctx, &mcp.ElicitParams{Mode: "form", Message: a.o.Message(req), RequestedSchema: approvalSchema})
	if err != nil {
		if ctx.Err() != nil {
			answer.Reason = "no answer from the user in time"
			return answer, fmt.Errorf("guardsdk: %s: %w", answer.Reason, err)
		}
		answer.Reason = "asking the user failed: " + err.Error()
		return answer, fmt.Errorf("guardsdk: asking the user failed: %w", err)
	}
	return judge(answer, res), nil
}

// judge turns the client's answer into an approval: only an accepted form
// with approve set to true approves.
func judge(answer toolguard.Approval, res *mcp.ElicitResult) toolguard.Approval {
	if res == nil {
		answer.Reason = "the client sent no answer"
		return answer
	}
	switch res.Action {
	case "accept":
	case "decline":
		answer.Reason = "the user declined"
		return answer
	case "cancel":
		answer.Reason = "the user cancelled"
		return answer
	default:
		answer.Reason = fmt.Sprintf("the client answered %q", toolguard.TruncateUTF8(res.Action, 64))
		return answer
	}
	approve, _ := res.Content["approve"].(bool)
	comment, _ := res.Content["comment"].(string)
	comment = strings.TrimSpace(toolguard.TruncateUTF8(comment, maxComment))
	if !approve {
		answer.Reason = "the user refused"
		if comment != "" {
			answer.Reason += ": " + comment
		}
		return answer
	}
	answer.Approved = true
	answer.Reason = comment
	return answer
}
