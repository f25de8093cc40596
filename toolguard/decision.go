package toolguard

import (
	"time"

	"github.com/agentguard/agentguard/scope"
)

// Stage names the step of the pipeline that decided a call.
type Stage string

// The stages, in pipeline order.
const (
	StageTool      Stage = "tool"      // unknown tool
	StagePrincipal Stage = "principal" // no principal
	StageArguments Stage = "arguments" // unsafe JSON or schema violations
	StagePolicy    Stage = "policy"    // deny rule, no grant, evaluation error
	StageApproval  Stage = "approval"  // ask rule not approved
	StageLimit     Stage = "limit"     // rate limit
	StageAudit     Stage = "audit"     // the decision record could not be written
)

// Decision is a guard's decision on one call: the policy's decision plus
// what the guard added (argument violations, limits, approval). The zero
// Decision denies.
type Decision struct {
	scope.Decision
	// CallID identifies the call; its audit records carry it as id.
	CallID string
	// Tool and Principal are the tool name and principal ID as called.
	Tool      string
	Principal string
	// Session and Task are the ids of the call's session and task, if
	// any ([WithSession], [WithTask]); Labels are the labels the session
	// held when the call was decided.
	Session string
	Task    string
	Labels  []string
	// Stage is the step that decided.
	Stage Stage
	// Violations lists what is wrong with the arguments.
	Violations []Violation
	// LimitResults are the rate limits checked.
	LimitResults []LimitResult
	// Candidate is the candidate policy's decision, if one is set
	// ([WithCandidate]): recorded, never enforced.
	Candidate *Candidate
	// Approval is the approver's answer, when an ask rule matched, and
	// Binding the hash of the exact call it is for ([Binding]).
	Approval *Approval
	Binding  string
	// ArgsSHA256 is the hex SHA-256 of the canonical arguments (of the raw
	// bytes when they are not valid JSON).
	ArgsSHA256 string
	// Latency is the time spent deciding.
	Latency time.Duration
}

// Allowed reports whether the call may run.
func (d *Decision) Allowed() bool { return d.Effect == scope.Allow }

// Violation is one problem with a call's arguments.
type Violation struct {
	// Pointer is the JSON pointer of the offending value ("" is the whole
	// arguments object).
	Pointer string
	Message string
}
