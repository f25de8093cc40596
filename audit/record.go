package audit

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the version of the record format written by this package,
// the value of [Record.Version] and of the "v" member of every line. It changes
// only when a record written by a newer version could be misread by an older
// reader; record.schema.json in this directory documents each version.
//
// Version 2 adds what lets each line stand on its own: the "mac" or "sig"
// member that authenticates a record under the log's key, and the Merkle
// tree root ("root"), right edge ("edge") and signed note ("note") of a
// checkpoint. [Verify] reads logs of versions 1 and 2, and a log whose
// first lines are version 1 and later ones version 2 (a file appended to
// after an upgrade); a version 1 line after a version 2 line is rejected.
const FormatVersion = 2

// minFormatVersion is the oldest version Verify reads.
const minFormatVersion = 1

// Kind says whether a [Record] is the decision taken before a tool runs or the
// outcome recorded after it ran.
type Kind string

// The kinds of record. A call that was allowed and ran has a decision record
// and, later in the log, an outcome record with the same ID. A denied call has
// only a decision record. Checkpoints are written by the [Log] itself (see
// [Checkpoint]); [Log.Write] refuses them from callers.
const (
	KindDecision   Kind = "decision"
	KindOutcome    Kind = "outcome"
	KindCheckpoint Kind = "checkpoint"
)

// The reasons a [Log] writes a checkpoint, the values of [Checkpoint.Reason].
const (
	// CheckpointInterval is a checkpoint written after every
	// CheckpointEvery records.
	CheckpointInterval = "interval"
	// CheckpointRotate is the last record of a file before the Log moves
	// on to a new one (FileOptions.MaxBytes).
	CheckpointRotate = "rotate"
	// CheckpointClose is the last record written by [Log.Close]. A log
	// that ends with one was closed cleanly and has not lost its tail
	// (see VerifyOptions.RequireClosed).
	CheckpointClose = "close"
	// CheckpointRecover is the first record [OpenFile] writes when it
	// resumes a chain whose last record is not a close checkpoint: the
	// writer crashed, or records were cut off. Verify lists them in
	// Summary.Recovered.
	CheckpointRecover = "recover"
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
	// Task is the id of the task the call was narrowed to, if any.
	Task string `json:"task,omitempty"`
	// Correlation links the call to the caller's trace and conversation. It
	// is left out of the encoding when nil or when all its fields are empty.
	Correlation *Correlation `json:"correlation,omitempty"`
	// Tool is the name of the tool called, as the caller sent it.
	Tool string `json:"tool"`
	// Args is the canonical JSON of the arguments with sensitive values
	// redacted (see [Redactor]).
	Args json.RawMessage `json:"args,omitempty"`
	// ArgsSHA256 is the hex SHA-256 of the canonical JSON of the unredacted
	// arguments, so a party holding them can prove what was sent.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// Redacted lists the JSON pointers of the values replaced in Args, in
	// whole or, for strings holding a secret, in part.
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
	// Labels are the labels the call's session held when it was decided.
	Labels []string `json:"labels,omitempty"`
	// Flow names the earlier calls of the session a flow rule read to
	// decide: the evidence behind a flow decision.
	Flow []FlowOrigin `json:"flow,omitempty"`
	// Remembered is the id of the earlier call whose approval, given for
	// the rest of the session, allowed this call without asking.
	Remembered string `json:"remembered,omitempty"`
	// Shadow holds the results of rules evaluated in shadow mode.
	Shadow []Shadow `json:"shadow,omitempty"`
	// Candidate is what a candidate policy, evaluated beside the enforced
	// one, decided: recorded, never enforced.
	Candidate *Candidate `json:"candidate,omitempty"`
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
	// ResultAction is what the result guard did to the result (outcome
	// records): "redacted" (parts replaced by keyed digests) or
	// "withheld" (kept from the caller); empty when it returned the
	// result as the tool made it.
	ResultAction string `json:"result_action,omitempty"`
	// ResultRules are the result rules that matched (outcome records).
	ResultRules []string `json:"result_rules,omitempty"`
	// ResultFindings are the kinds of secret and the patterns found in
	// the result (outcome records).
	ResultFindings []string `json:"result_findings,omitempty"`
	// ResultRedacted is how many values or parts of strings the result
	// guard replaced (outcome records).
	ResultRedacted int64 `json:"result_redacted,omitempty"`
	// LabelsAdded are the labels the result brought into the session
	// (outcome records).
	LabelsAdded []string `json:"labels_added,omitempty"`

	// Checkpoint is set in checkpoint records and only there.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`

	// Prev is the chain hash of the previous record's line: the hex
	// SHA-256 (HMAC-SHA256 under an HMAC key) of that line without its
	// trailing newline and, from format version 2, without its MAC and Sig
	// members; "" for the first record of a chain. Set by the [Log].
	Prev string `json:"prev"`
	// MAC authenticates this record on its own: the hex HMAC-SHA256, under
	// the log's HMAC key, of the line without its MAC and Sig members —
	// the value the next record's Prev will hold. Set by a [Log] with an
	// HMAC key (format version 2).
	MAC string `json:"mac,omitempty"`
	// Sig is the hex ed25519 signature of the line without its MAC and Sig
	// members, by the log's signing key. Set by a [Log] with a signing key
	// and no HMAC key, on every record but checkpoints, which carry
	// [Checkpoint.Sig] instead (format version 2).
	Sig string `json:"sig,omitempty"`
}

// Correlation carries the caller's identifiers that tie a tool call to the
// rest of its story: the distributed trace, the conversation and turn, and
// the model message that asked for the call. All fields are optional; the
// guard fills them from the context.
type Correlation struct {
	// TraceID is the trace id, for example a W3C trace-context trace-id.
	TraceID string `json:"trace_id,omitempty"`
	// SpanID is the span id within the trace.
	SpanID string `json:"span_id,omitempty"`
	// Conversation identifies the conversation or agent run.
	Conversation string `json:"conversation,omitempty"`
	// Turn identifies the turn within the conversation.
	Turn string `json:"turn,omitempty"`
	// Message is the id of the model message that asked for the call.
	Message string `json:"message,omitempty"`
}

// isZero reports whether c carries nothing to encode.
func (c *Correlation) isZero() bool {
	return c == nil || *c == Correlation{}
}

// Checkpoint is the body of a checkpoint record: a statement, signed with
// ed25519 when the [Log] has a signing key, that the chain held Records
// records ending with the one whose hash is Hash. The signature covers the
// whole checkpoint line (its seq, prev and time included) as encoded by
// [Record.AppendJSON] with Sig empty; since prev links to the previous line,
// a valid signature vouches for everything before it.
type Checkpoint struct {
	// Seq is the seq of the last record covered; 0 when Records is 0.
	Seq uint64 `json:"seq"`
	// Hash is the chain hash of that record (the checkpoint's own Prev);
	// "" when Records is 0.
	Hash string `json:"hash"`
	// Records is the number of records covered: all records of the chain
	// before the checkpoint, checkpoints included. It equals the
	// checkpoint record's own Seq.
	Records uint64 `json:"records"`
	// Reason is [CheckpointInterval], [CheckpointRotate] or
	// [CheckpointClose].
	Reason string `json:"reason"`
	// Root is the hex RFC 6962 Merkle tree hash of the Records lines
	// before the checkpoint (each line without its newline is a leaf; see
	// [Tree]). Format version 2.
	Root string `json:"root,omitempty"`
	// Edge is the right edge of that tree: the hex hashes of its complete
	// subtrees, largest first. It lets a Log resume the tree without
	// reading the lines before the checkpoint. Format version 2.
	Edge []string `json:"edge,omitempty"`
	// Note is the checkpoint as a C2SP tlog-checkpoint signed note (origin,
	// tree size = Records, base64 Root, then the ed25519 signature line), as
	// a witness receives it; set when the log has a signing key. See
	// [Origin]. Format version 2.
	Note string `json:"note,omitempty"`
	// KeyID identifies the signing key (see [KeyID]); empty when unsigned.
	KeyID string `json:"key_id,omitempty"`
	// Sig is the hex ed25519 signature; empty when unsigned.
	Sig string `json:"sig,omitempty"`
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
	// FailedOpen reports that the limiter could not decide and let the
	// call through because it was configured to fail open.
	FailedOpen bool `json:"failed_open,omitempty"`
}

// FlowOrigin names an earlier call of the session that a flow decision
// read.
type FlowOrigin struct {
	// Tool is the earlier call's tool.
	Tool string `json:"tool"`
	// CallID is the earlier call's id: the id of its records.
	CallID string `json:"call_id"`
	// Seq is the earlier call's position in its session, from 1.
	Seq uint64 `json:"seq"`
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
	// Binding is the hash of the exact call the approval was for
	// (principal, tool, arguments, policy revision).
	Binding string `json:"binding,omitempty"`
	// ForSession reports that the approval also covers, for the rest of
	// the session, later calls the same rule asks about with the same
	// remember key.
	ForSession bool `json:"for_session,omitempty"`
}

// Candidate is a candidate policy's decision on a call, recorded beside the
// enforced decision and never enforced.
type Candidate struct {
	// Policy is the candidate policy's revision.
	Policy string `json:"policy"`
	// Effect is what the candidate decided: "allow", "deny" or "ask".
	Effect string `json:"effect"`
	// Rule is the candidate's deciding rule, if any.
	Rule string `json:"rule,omitempty"`
	// Grant is the candidate's allowing grant, if any.
	Grant string `json:"grant,omitempty"`
	// Reason is the candidate's reason.
	Reason string `json:"reason,omitempty"`
	// Agrees reports whether the candidate reached the enforced policy's
	// effect by the same rule.
	Agrees bool `json:"agrees"`
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
	case r.Version < minFormatVersion || r.Version > FormatVersion:
		return fmt.Sprintf("format version %d, want %d to %d", r.Version, minFormatVersion, FormatVersion)
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
	case KindCheckpoint:
		if r.Effect != "" {
			return fmt.Sprintf("checkpoint record has effect %q", r.Effect)
		}
		if r.Checkpoint == nil {
			return "checkpoint record has no checkpoint"
		}
		if reason := r.Checkpoint.check(); reason != "" {
			return reason
		}
	default:
		return fmt.Sprintf("unknown kind %q", r.Kind)
	}
	if r.Kind != KindCheckpoint && r.Checkpoint != nil {
		return fmt.Sprintf("%s record has a checkpoint", r.Kind)
	}
	switch {
	case !isHash(r.ArgsSHA256):
		return "args_sha256 is not a lowercase hex SHA-256"
	case !isHash(r.ResultSHA256):
		return "result_sha256 is not a lowercase hex SHA-256"
	case r.ResultAction != "" && r.ResultAction != "redacted" && r.ResultAction != "withheld":
		return fmt.Sprintf("result_action %q is not redacted or withheld", r.ResultAction)
	case r.ResultRedacted < 0:
		return "result_redacted is negative"
	case !isHash(r.Policy):
		return "policy is not a lowercase hex SHA-256"
	case r.MAC != "" && !isLowerHex(r.MAC, 64):
		return "mac is not a lowercase hex HMAC-SHA256"
	case r.Sig != "" && !isLowerHex(r.Sig, 2*ed25519.SignatureSize):
		return "sig is not a lowercase hex ed25519 signature"
	case r.MAC != "" && r.Sig != "":
		return "a record carries mac or sig, never both"
	case r.Sig != "" && r.Kind == KindCheckpoint:
		return "a checkpoint is signed in checkpoint.sig, not sig"
	}
	if r.Version == 1 && (r.MAC != "" || r.Sig != "" || r.Checkpoint != nil && (r.Checkpoint.Root != "" || r.Checkpoint.Edge != nil || r.Checkpoint.Note != "")) {
		return "format version 1 has no mac, sig, or checkpoint root, edge and note"
	}
	if r.Version >= 2 && r.Kind == KindCheckpoint && r.Checkpoint.Root == "" {
		return "checkpoint has no root"
	}
	return ""
}

// check reports why c cannot be a checkpoint, or "" if it can.
func (c *Checkpoint) check() string {
	switch c.Reason {
	case CheckpointInterval, CheckpointRotate, CheckpointClose, CheckpointRecover:
	default:
		return fmt.Sprintf("unknown checkpoint reason %q", c.Reason)
	}
	switch {
	case !isHash(c.Hash):
		return "checkpoint hash is not a lowercase hex SHA-256"
	case (c.Records == 0) != (c.Hash == ""):
		return "checkpoint hash must be empty exactly when it covers no records"
	case c.Records == 0 && c.Seq != 0, c.Records > 0 && c.Seq != c.Records-1:
		return fmt.Sprintf("checkpoint seq %d does not match its record count %d", c.Seq, c.Records)
	case (c.KeyID == "") != (c.Sig == ""):
		return "checkpoint must have both key_id and sig, or neither"
	case c.KeyID != "" && !isLowerHex(c.KeyID, keyIDLen):
		return "checkpoint key_id is not 16 lowercase hex digits"
	case c.Sig != "" && !isLowerHex(c.Sig, 2*ed25519.SignatureSize):
		return "checkpoint sig is not a lowercase hex ed25519 signature"
	case c.Root != "" && !isLowerHex(c.Root, 64):
		return "checkpoint root is not a lowercase hex SHA-256"
	case len(c.Edge) > 64:
		return "checkpoint edge has more than 64 hashes"
	case c.Note != "" && c.Sig == "":
		return "checkpoint has a note but no sig"
	case len(c.Note) > maxNote:
		return "checkpoint note is too long"
	}
	for _, h := range c.Edge {
		if !isLowerHex(h, 64) {
			return "checkpoint edge holds a hash that is not lowercase hex SHA-256"
		}
	}
	return ""
}

// isHash reports whether s is empty or 64 lowercase hex digits.
func isHash(s string) bool {
	if s == "" {
		return true
	}
	return isLowerHex(s, 64)
}

// isLowerHex reports whether s is n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
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
