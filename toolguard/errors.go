package toolguard

import (
	"errors"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Every denial matches [ErrDenied] and, where one applies,
// the more specific sentinel; errors.As with *[DeniedError] gives the whole
// [Decision]. Malfunctions of the tool itself (an error it returns, a panic,
// a timeout) are not denials.
var (
	// ErrDenied matches every denied call.
	ErrDenied = errors.New("toolguard: denied")
	// ErrUnknownTool: the tool is not registered.
	ErrUnknownTool = errors.New("toolguard: unknown tool")
	// ErrNoPrincipal: the context carries no principal.
	ErrNoPrincipal = errors.New("toolguard: no principal")
	// ErrTaskRefused: the call came with a task that could not be
	// accepted ([WithRefusedTask]).
	ErrTaskRefused = errors.New("toolguard: task refused")
	// ErrInvalidArguments: the arguments are not safe JSON or do not match
	// the tool's input schema.
	ErrInvalidArguments = errors.New("toolguard: invalid arguments")
	// ErrPolicy: the policy denied the call (a deny rule, or no grant).
	ErrPolicy = errors.New("toolguard: denied by policy")
	// ErrNotApproved: an ask rule matched and no approver said yes.
	ErrNotApproved = errors.New("toolguard: not approved")
	// ErrApprovalRequired: returned by [Guard.Check] when an ask rule
	// matches. Check asks nobody, so the call may not run as checked:
	// [Guard.Call] would first ask the approver. The error is a
	// *[DeniedError] whose Decision has Effect Ask and the binding an
	// approval needs; it matches [ErrDenied] too.
	ErrApprovalRequired = errors.New("toolguard: approval required")
	// ErrApprovalVoid: the policy changed while the call waited for its
	// approver, and the policy in force does not ask the same question
	// (the same rule, for the same binding); the answer is void and the
	// call is denied. It comes with [ErrNotApproved].
	ErrApprovalVoid = errors.New("toolguard: approval void under the policy in force")
	// ErrRateLimited: a rate limit is exhausted, or the limiter failed.
	ErrRateLimited = errors.New("toolguard: rate limited")
	// ErrAuditUnavailable: the decision record could not be written, so
	// the call was denied.
	ErrAuditUnavailable = errors.New("toolguard: audit unavailable")

	// ErrToolPanic: the tool's handler panicked. The panic is recovered and
	// recorded.
	ErrToolPanic = errors.New("toolguard: tool panicked")
	// ErrToolTimeout: the handler did not return within the tool timeout.
	ErrToolTimeout = errors.New("toolguard: tool timed out")
)

// DeniedError is the error of a denied call, and of [Guard.Check] when a
// call needs approval ([ErrApprovalRequired]). Its message is written for a
// model to read and correct itself: which tool, why, and what is allowed.
type DeniedError struct {
	// Decision is the full decision, as recorded.
	Decision *Decision
	kind     error // the specific sentinel
	cause    error // an underlying error, if any
}

// Error returns `toolguard: call to "tool" denied: reason`, or, for the
// error of [Guard.Check] on an ask decision,
// `toolguard: call to "tool" needs approval: reason`.
func (e *DeniedError) Error() string {
	var b strings.Builder
	b.WriteString("toolguard: call to ")
	b.WriteString(quote(e.Decision.Tool))
	if e.kind == ErrApprovalRequired {
		b.WriteString(" needs approval: ")
	} else {
		b.WriteString(" denied: ")
	}
	b.WriteString(e.Decision.Reason)
	return b.String()
}

// ModelText returns the denial as a model should read it, without Go
// package names: `call to "tool" denied: reason`. Give it back to the model
// as the tool result; Error, which starts with the package name, is for
// programmers and logs.
func (e *DeniedError) ModelText() string {
	return "call to " + quote(e.Decision.Tool) + " denied: " + e.Decision.Reason
}

// Unwrap returns ErrDenied, the specific sentinel, and the underlying
// error if any.
func (e *DeniedError) Unwrap() []error {
	errs := []error{ErrDenied}
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// maxQuoted bounds tool names and other caller-supplied strings repeated in
// messages and records.
const maxQuoted = 128

// quote quotes a caller-supplied string for a message, truncated and with
// invalid UTF-8 and control characters escaped.
func quote(s string) string {
	return `"` + sanitize(s) + `"`
}

// sanitize truncates s to maxQuoted bytes (on a rune boundary) and makes it
// printable.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean && len(s) <= maxQuoted {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if i >= maxQuoted {
			b.WriteString("…")
			break
		}
		switch {
		case r == '\uFFFD' || r < 0x20 || r == 0x7f:
			b.WriteString("\uFFFD")
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// goPackagePrefix matches the "package: " prefixes Go error strings of this
// module, and of the standard library packages whose errors reach
// reasons (a URL or number a schema format could not parse), start with,
// where they begin the text or follow another error's colon, semicolon or
// parenthesis.
var goPackagePrefix = regexp.MustCompile(`(?m)(^|[:;(] ?)(toolguard|guardmcp|guardsdk|audit|scope|redislimit|redissession|safejson|canonjson|fastschema|fsroot|netguard|aibom|hostname|glob|net/url|strconv|strconv\.[A-Za-z]+|net/netip|json|time|x509|ed25519|crypto/[a-z0-9]+): `)

// Bounds of the text a denial and a record carry: a schema message can
// quote the whole value it refuses, and a handler's error can be of any
// length, but a reason is read by a model and a record must stay a line
// the audit log reads back.
const (
	maxMessage = 512      // one violation's message
	maxReason  = 4 << 10  // a denial's reason
	maxError   = 16 << 10 // an error kept in a record
)

// cutMark ends a clipped text.
const cutMark = "… (cut)"

// clip truncates s to at most n bytes, on a rune boundary, marking the cut
// within those n bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len(cutMark)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + cutMark
}

// PlainText returns err's text as a model or a remote client should read
// it: without the Go package names ("audit: ", "json: ", "net/url: ")
// that start error strings of this module and of the standard library,
// wherever they begin the text, a line, or follow another error's colon.
func PlainText(err error) string {
	return plainError(err)
}

// plainError is err's text for a reason the model reads: without the Go
// package names that start this module's error strings.
func plainError(err error) string {
	return goPackagePrefix.ReplaceAllString(err.Error(), "$1")
}
