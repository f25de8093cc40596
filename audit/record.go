package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the version of the record format written by this package,
// the value of [Record.Version] and of the "v" member of every line. It changes
// only when a record written by a newer version could be misread by an older
// reader; record.schema.json in this directory documents each version.
const FormatVersion = 1

// Kind says whether a [Record] is the decision taken before a tool runs or the
// outcome recorded after it ran.
type Kind string

// The kinds of record. A call that was allowed and ran has a decision record
// and, later in the log, an outcome record with the same ID. A denied call has
// only a decision record.
const (
	KindDecision Kind = "decision"
	KindOutcome  Kind = "outcome"
)

// Record is one line of the decision log. Field order below is the order in
// the JSON encoding written by [Record.AppendJSON]; fields marked omitempty are
// left out when they hold their zero value.
//
// A Record is plain data; its zero value is not a valid record ([Log.Write]
// rejects it: it has no ID, kind or time). A Record must not be modified while
// a [Sink] is writing it; sinks may set Seq and Prev.
type Record struct {
	// Version is the format version, [FormatVersion]. [Log.Write] sets it when
	// it is zero.
	Version int `json:"v"`
	// Seq is the position in the chain: 0, 1, 2, ... Set by the [Log].
	Seq uint64 `json:"seq"`
	// ID is the call's id, shared by its decision and its outcome record.
	ID string `json:"id"`
	// Kind is [KindDecision] or [KindOutcome].
	Kind Kind `json:"kind"`
	// Time is when the record was made; encoded in UTC as RFC 3339 with
	// exactly nine fractional digits.
	Time time.Time `json:"time"`
	// Principal is the id of the calling principal.
	Principal string `json:"principal,omitempty"`
	// Session is the caller's session id, if it has one.
	Session string `json:"session,omitempty"`
	// Tool is the name of the tool called, as the caller sent it.
	Tool string `json:"tool"`
	// Args is the canonical JSON of the arguments with sensitive values
	// redacted (see [Redactor]).
	Args json.RawMessage `json:"args,omitempty"`
	// ArgsSHA256 is the hex SHA-256 of the canonical JSON of the unredacted
	// arguments, so a party holding them can prove what was sent.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// Redacted lists the JSON pointers of the values replaced in Args.
	Redacted []string `json:"redacted,omitempty"`
	// Effect is "allow" or "deny" in a decision record and empty in an
	// outcome record.
	Effect string `json:"effect,omitempty"`
	// Stage is the step that decided: tool, principal, arguments, policy,
	// approval, limit, audit or guard.
	Stage string `json:"stage,omitempty"`
	// Rule is the name of the deciding rule.
	Rule string `json:"rule,omitempty"`
	// Scope is the scope whose grant allowed the call.
	Scope string `json:"scope,omitempty"`
	// Grant identifies the grant within Scope, for example "fs.read#0".
	Grant string `json:"grant,omitempty"`
	// Reason explains the decision in words a model can act on.
	Reason string `json:"reason,omitempty"`
	// Violations are the argument validation failures.
	Violations []Violation `json:"violations,omitempty"`
	// Limits is the state of every rate limit or quota checked.
	Limits []LimitState `json:"limits,omitempty"`
	// Approval is the human approval asked for, if any.
	Approval *Approval `json:"approval,omitempty"`
	// Shadow holds the results of rules evaluated in shadow mode.
	Shadow []Shadow `json:"shadow,omitempty"`
	// Errors are the evaluation errors met on the way to the decision.
	Errors []string `json:"errors,omitempty"`
	// Policy is the revision of the policy that decided (hex SHA-256).
	Policy string `json:"policy,omitempty"`
	// LatencyNS is the time spent deciding, in nanoseconds.
	LatencyNS int64 `json:"latency_ns,omitempty"`

	// DurationNS is the handler's run time in nanoseconds (outcome records).
	DurationNS int64 `json:"duration_ns,omitempty"`
	// Error is the error the handler returned (outcome records).
	Error string `json:"error,omitempty"`
	// ErrorClass classifies Error: tool_error, panic, timeout or canceled.
	ErrorClass string `json:"error_class,omitempty"`
	// ResultBytes is the size of the handler's result (outcome records).
	ResultBytes int64 `json:"result_bytes,omitempty"`
	// ResultSHA256 is the hex SHA-256 of the result (outcome records).
	ResultSHA256 string `json:"result_sha256,omitempty"`

	// Prev is the hex SHA-256 of the previous record's line, without its
	// trailing newline; "" for the first record of a chain. Set by the [Log].
	Prev string `json:"prev"`
}

// Violation is one argument validation failure.
type Violation struct {
	// Pointer is the JSON pointer (RFC 6901) of the offending value.
	Pointer string `json:"pointer"`
	// Message says what is wrong with it.
	Message string `json:"message"`
}

// LimitState is the state of one rate limit or quota at decision time.
type LimitState struct {
	// Name is the limit's name in the policy.
	Name string `json:"name"`
	// Key is the value the limit was keyed on, for example a principal id.
	Key string `json:"key,omitempty"`
	// Allowed reports whether the limit let the call through.
	Allowed bool `json:"allowed"`
	// RetryAfterMS is how long to wait before retrying, when not allowed.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// Approval is the outcome of asking a human to approve a call.
type Approval struct {
	// Rule is the rule that asked for approval.
	Rule string `json:"rule,omitempty"`
	// Approved reports the answer.
	Approved bool `json:"approved"`
	// By identifies who answered.
	By string `json:"by,omitempty"`
	// Reason is the approver's reason.
	Reason string `json:"reason,omitempty"`
}

// Shadow is the result of one rule evaluated in shadow mode: recorded, never
// enforced.
type Shadow struct {
	// Rule is the rule's name.
	Rule string `json:"rule"`
	// Effect is the rule's effect, for example "deny" or "ask".
	Effect string `json:"effect"`
	// Matched reports whether the rule matched.
	Matched bool `json:"matched"`
	// Message is the rule's message when it matched.
	Message string `json:"message,omitempty"`
	// Error is the evaluation error, if any.
	Error string `json:"error,omitempty"`
}

// check reports why r cannot be a line of the log, or "" if it can. Seq and
// Prev are the Log's to set and are checked by Verify against the chain. The
// Log refuses such records and Verify rejects such lines, so everything a Log
// writes verifies and matches record.schema.json.
func (r *Record) check() string {
	switch {
	case r.Version != FormatVersion:
		return fmt.Sprintf("format version %d, want %d", r.Version, FormatVersion)
	case r.ID == "":
		return "record has no id"
	case r.Time.IsZero():
		return "record has no time"
	}
	if y := r.Time.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Sprintf("time %d is outside the years 0000-9999", y)
	}
	switch r.Kind {
	case KindDecision:
		if r.Effect != "allow" && r.Effect != "deny" {
			return fmt.Sprintf("decision effect %q is not allow or deny", r.Effect)
		}
	case KindOutcome:
		if r.Effect != "" {
			return fmt.Sprintf("outcome record has effect %q", r.Effect)
		}
	default:
		return fmt.Sprintf("unknown kind %q", r.Kind)
	}
	switch {
	case !isHash(r.ArgsSHA256):
		return "args_sha256 is not a lowercase hex SHA-256"
	case !isHash(r.ResultSHA256):
		return "result_sha256 is not a lowercase hex SHA-256"
	case !isHash(r.Policy):
		return "policy is not a lowercase hex SHA-256"
	}
	return ""
}

// isHash reports whether s is empty or 64 lowercase hex digits.
func isHash(s string) bool {
	if s == "" {
		return true
	}
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
