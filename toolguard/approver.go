package toolguard

import (
	"context"
	"encoding/json"
	"time"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
)

// Approver decides calls that an ask rule sends to a human. Approve may be
// called concurrently. It should return when ctx is done; an error, or a
// zero Approval, denies the call. Only an Approval with Approved set and
// Binding equal to the request's approves it.
type Approver interface {
	Approve(ctx context.Context, req ApprovalRequest) (Approval, error)
}

// ApproverFunc adapts a function to [Approver].
type ApproverFunc func(ctx context.Context, req ApprovalRequest) (Approval, error)

// Approve calls f.
func (f ApproverFunc) Approve(ctx context.Context, req ApprovalRequest) (Approval, error) {
	return f(ctx, req)
}

// ApprovalRequest describes the exact call a human is asked about.
type ApprovalRequest struct {
	// ID identifies the request (it is the call's id).
	ID string
	// CallID identifies the call in the audit log.
	CallID    string
	Tool      string
	Principal scope.Principal
	// Args are the canonical arguments as the decision record holds them:
	// values the schema or policy marks sensitive are replaced whole by a
	// digest ("redacted:hmac-sha256:…"), and the parts of strings that
	// look like secrets (a bearer token, a key) are replaced by digests of
	// those parts, the rest of each string shown as it is. Hidden lists
	// every value changed, and why.
	Args json.RawMessage
	// Hidden says what in Args is hidden from the approver, and why: the
	// JSON pointer of each value replaced in whole or in part, whether
	// whole, and the reason: "it is marked sensitive" (by the tool's input
	// schema — writeOnly or x-sensitive — or by the policy), or the kind of
	// secret found, such as "it holds a bearer token". Empty when nothing
	// is hidden.
	Hidden []audit.Redaction
	// ArgsSHA256 is the hex SHA-256 of the canonical, unredacted arguments:
	// an approval is for these arguments and no others.
	ArgsSHA256 string
	// Rule is the ask rule that matched, Reason its message.
	Rule   string
	Reason string
	// PolicyRevision is the revision of the policy that asked.
	PolicyRevision string
	// Binding is the hash of principal, tool, arguments and policy
	// revision ([Binding]): an answer is valid for this call only.
	Binding string
	// RememberKey is, when the ask rule names a remember key and the call
	// belongs to a session, the key an approval [Approval.ForSession]
	// covers: later calls the same rule asks about with this key are
	// allowed for the rest of the session. Empty otherwise.
	RememberKey string
	// Expires is when the request stops waiting, if the guard sets a limit
	// ([WithApprovalTimeout]).
	Expires time.Time
}

// Approval is a human's answer. The zero Approval denies, and so does an
// approval without the binding of the call it answers.
type Approval struct {
	Approved bool
	// By identifies who answered.
	By string
	// Reason is an optional comment, shown to the model on a rejection.
	Reason string
	// Binding must equal the request's binding ([ApprovalRequest.Binding]):
	// an approval that names another call, or none, does not approve.
	Binding string
	// ForSession, with Approved, also approves for the rest of the
	// session the later calls that the same rule asks about with the same
	// remember key ([ApprovalRequest.RememberKey]). It has no effect when
	// the request has no remember key.
	ForSession bool
}
