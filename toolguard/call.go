package toolguard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/fastschema"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
)

// Call decides a call to the named tool and, if it is allowed, runs it.
//
// In order: the tool must be registered; ctx must carry a principal
// ([WithPrincipal]); the arguments are decoded strictly and validated
// against the tool's input schema; the policy decides; an ask decision goes
// to the approver; rate limits are taken; the decision record is written to
// the sink — and only then does the handler run, after which an outcome
// record is written. Any failure on the way denies the call, returning a
// *[DeniedError] (errors.Is(err, [ErrDenied]) holds) and the handler does
// not run. The handler's own result and error are returned as they are.
//
// If the outcome record cannot be written, the tool has already run: its
// result is returned together with an error matching [ErrAuditUnavailable].
func (g *Guard) Call(ctx context.Context, name string, args json.RawMessage) (any, error) {
	st := getState()
	defer putState(st)
	if g.telemetry != nil {
		ctx, st.span = g.telemetry.start(ctx, name)
	}
	g.evaluate(ctx, st, name, args, false)
	// Records are written even when ctx is cancelled: the attempt and the
	// outcome of a cancelled call are evidence too.
	rctx := context.WithoutCancel(ctx)
	// Correlation is read from ctx: a lookup through rctx would allocate.
	err := g.record(rctx, correlationFrom(ctx), st)
	if st.span != nil {
		g.telemetry.decided(ctx, st.span, &st.d)
		if err != nil || st.d.Effect != scope.Allow {
			g.telemetry.ended(st.span, nil, 0)
		}
	}
	if err != nil || st.d.Effect != scope.Allow {
		if st.release != nil {
			st.release()
		}
		g.releaseSessionCall(rctx, st)
		if err != nil {
			return nil, err
		}
		return nil, st.denied()
	}
	if st.private != nil {
		args = st.private // what the approver approved, not the caller's buffer
	}
	out, err := g.run(ctx, rctx, st, args)
	g.releaseSessionCall(rctx, st)
	if st.span != nil {
		g.telemetry.ended(st.span, err, time.Duration(st.out.DurationNS))
	}
	return out, err
}

// Check decides a call without running it, asking anyone, or recording
// anything; rate limits are checked without taking from them.
//
// err is nil only when the decision is Allow: [Guard.Call] would run the
// tool without asking anyone. So
//
//	if _, err := g.Check(ctx, name, args); err == nil { ... }
//
// never skips a human. When an ask rule matches, the decision has Effect
// Ask (and the [Binding] an approval needs) and err is a *[DeniedError]
// matching [ErrApprovalRequired] and [ErrDenied]; when the decision is
// deny, err is a *[DeniedError] with the specific sentinel.
func (g *Guard) Check(ctx context.Context, name string, args json.RawMessage) (Decision, error) {
	st := getState()
	defer putState(st)
	g.evaluate(ctx, st, name, args, true)
	d := st.d.clone()
	switch d.Effect {
	case scope.Allow:
		return d, nil
	case scope.Ask:
		return d, &DeniedError{Decision: &d, kind: ErrApprovalRequired}
	}
	return d, &DeniedError{Decision: &d, kind: st.kind, cause: st.cause}
}

// callState is the per-call scratch space, pooled.
type callState struct {
	d      Decision
	kind   error // sentinel of a denial
	cause  error // underlying error of a denial
	tool   *tool
	start  time.Time
	end    time.Time // when the decision was made
	args   map[string]any
	canon  []byte // canonical arguments
	redact []byte // canonical redacted arguments
	redPtr []string
	// private is the handler's own copy of the arguments, taken before an
	// approval wait.
	private json.RawMessage
	rec     audit.Record
	out     audit.Record
	limBuf  [2]audit.LimitState
	view    sessionView // the call's session, when it has one
	// release frees the concurrency slots the call holds, if any.
	release func()
	// reserved is set while the call holds one of its session's calls
	// (SessionStore.Reserve) that no Append has used up.
	reserved bool
	span     trace.Span // when telemetry is on
}

var statePool = sync.Pool{New: func() any { return new(callState) }}

func getState() *callState { return statePool.Get().(*callState) }

func putState(st *callState) {
	canon, redact := st.canon[:0], st.redact[:0]
	if cap(canon) > 64<<10 {
		canon = nil
	}
	if cap(redact) > 64<<10 {
		redact = nil
	}
	*st = callState{canon: canon, redact: redact}
	statePool.Put(st)
}

func (st *callState) deny(stage Stage, kind, cause error, reason string) {
	st.d.Effect = scope.Deny
	st.d.Stage = stage
	st.d.Reason = clip(reason, maxReason)
	st.kind, st.cause = kind, cause
}

// denied returns the DeniedError of a denied call, with its own copy of the
// decision.
func (st *callState) denied() error {
	d := st.d.clone()
	return &DeniedError{Decision: &d, kind: st.kind, cause: st.cause}
}

func (d *Decision) clone() Decision {
	c := *d
	return c
}

// evaluate runs the pipeline up to (not including) the record.
func (g *Guard) evaluate(ctx context.Context, st *callState, name string, args json.RawMessage, dryRun bool) {
	st.start = g.now()
	st.d.CallID = g.newID()
	st.d.Tool = name
	st.d.Grant = -1
	pol := g.policy.Load()
	st.d.Revision = pol.Revision()
	defer func() {
		st.end = g.now()
		st.d.Latency = st.end.Sub(st.start)
	}()

	// The principal and the session go into every record, even of a call
	// denied earlier.
	pr := principalFrom(ctx)
	if pr != nil {
		st.d.Principal = pr.ID
	}
	st.d.Session, _ = SessionFrom(ctx)
	t, ok := g.lookup(name)
	if !ok {
		st.d.ArgsSHA256 = rawDigest(args)
		st.deny(StageTool, ErrUnknownTool, nil, fmt.Sprintf("there is no tool named %s", quote(name)))
		return
	}
	st.tool = t

	if pr == nil || pr.ID == "" {
		st.d.ArgsSHA256 = rawDigest(args)
		st.deny(StagePrincipal, ErrNoPrincipal, nil, "the caller is not identified (no principal), so no tool may be called")
		return
	}
	st.d.Principal = pr.ID
	if err := refusedTask(ctx); err != nil {
		st.d.ArgsSHA256 = rawDigest(args)
		st.deny(StagePrincipal, ErrTaskRefused, err, refusedTaskReason(err))
		return
	}

	// Arguments: strict decoding, then the schema.
	obj, ok := g.arguments(st, t, t.keysFor(pol), args)
	if !ok {
		return
	}

	// Policy, and the candidate policy beside it.
	in := scope.Input{
		Principal: *pr,
		Tool:      t.info,
		Args:      obj,
		Call:      scope.Call{ID: st.d.CallID, Time: st.start},
	}
	if !g.sessionInput(ctx, st, pr, &in) {
		return
	}
	st.d.Decision = pol.Decide(ctx, in)
	st.d.Reason = clip(st.d.Reason, maxReason) // a rule's message may quote the arguments
	if !dryRun {
		st.d.Candidate = g.decideCandidate(ctx, in, &st.d.Decision)
	}
	if st.d.Effect == scope.Deny {
		st.deny(StagePolicy, ErrPolicy, nil, st.d.Reason)
		return
	}
	st.d.Stage = StagePolicy
	if st.d.Effect == scope.Ask {
		st.d.Binding = Binding(pr.ID, name, st.d.ArgsSHA256, st.d.Revision)
	}

	// Approval.
	if st.d.Effect == scope.Ask && !dryRun {
		if !g.approve(ctx, st, &in, args) {
			return
		}
	}

	// Rate limits.
	if len(st.d.Limits) > 0 {
		res, release, err := g.limiter.Take(ctx, st.start, st.d.Limits, dryRun)
		st.d.LimitResults = res
		st.release = release
		if err != nil {
			st.deny(StageLimit, ErrRateLimited, err, fmt.Sprintf("the rate limiter could not decide, so the call is denied to be safe: %s", plainError(err)))
			return
		}
		for i, r := range res {
			if !r.Allowed {
				st.deny(StageLimit, ErrRateLimited, nil, limitReason(&st.d.Limits[i], &r))
				return
			}
		}
		if st.d.Effect == scope.Allow {
			st.d.Stage = StageLimit
		}
	}
	if !dryRun {
		g.reserveSessionCall(ctx, st)
	}
}

var emptyObject = json.RawMessage(`{}`)

// orEmptyObject reads no arguments, or null, as an empty object.
func orEmptyObject(args json.RawMessage) json.RawMessage {
	if t := bytes.TrimSpace(args); len(t) == 0 || string(t) == "null" {
		return emptyObject
	}
	return args
}

// arguments is the argument stage: strict decoding, keys folding like a
// declared property or a member the policy reads (keys), then the schema.
// It reports false when it denied the call.
func (g *Guard) arguments(st *callState, t *tool, keys *fastschema.Keys, args json.RawMessage) (map[string]any, bool) {
	args = orEmptyObject(args)
	obj, err := safejson.DecodeArguments(args, safejson.Limits(g.argLim))
	if err != nil {
		st.d.ArgsSHA256 = rawDigest(args)
		var se *safejson.Error
		v := Violation{Message: err.Error()}
		if errors.As(err, &se) {
			v = Violation{Pointer: se.Pointer, Message: strings.TrimPrefix(se.Error(), "safejson: ")}
		}
		v.Pointer, v.Message = clip(v.Pointer, maxMessage), clip(plainError(errors.New(v.Message)), maxMessage)
		st.d.Violations = []Violation{v}
		st.deny(StageArguments, ErrInvalidArguments, err, fmt.Sprintf("the arguments are not acceptable JSON: %s", v.Message))
		return nil, false
	}
	st.args = obj
	st.canon, err = canonjson.Append(st.canon[:0], obj)
	if err != nil {
		st.d.ArgsSHA256 = rawDigest(args)
		st.deny(StageArguments, ErrInvalidArguments, err, fmt.Sprintf("the arguments cannot be put in canonical form: %s", plainError(err)))
		return nil, false
	}
	st.d.ArgsSHA256 = digest(st.canon)
	if c := keys.Check(obj); c != nil {
		st.d.Violations = []Violation{{Pointer: c.Pointer, Message: fmt.Sprintf("key %s is not a property of this object, but it is property %s in other letter case", quote(c.Key), quote(c.Property))}}
		st.deny(StageArguments, ErrInvalidArguments, nil, fmt.Sprintf("the arguments of %s are not acceptable: at %s: key %s is property %s in other letter case, and the tool could read it as that property, which was not checked; use the exact name", quote(t.Name), sanitize(c.Pointer), quote(c.Key), quote(c.Property)))
		return nil, false
	}
	// The fast validator never accepts what the full one rejects; anything
	// it does not accept gets the full validator and its report.
	if t.fast == nil || !t.fast.Valid(obj) {
		full, err := t.schema.get()
		if err != nil {
			// Not expected: a schema compiled on first use is one sure to compile.
			st.deny(StageArguments, ErrInvalidArguments, err, fmt.Sprintf("the input schema of %s does not compile, so its arguments cannot be checked", quote(t.Name)))
			return nil, false
		}
		if err := full.Validate(obj); err != nil {
			st.d.Violations = violations(err)
			st.deny(StageArguments, ErrInvalidArguments, nil, argumentsReason(t.Name, st.d.Violations))
			return nil, false
		}
	}
	return obj, true
}

// approve asks the approver about an ask decision and reports whether the
// call may go on. The handler will run on a private copy of the arguments
// taken before the wait; after the answer the call is decided again under
// the policy in force ([Guard.stillAsks]).
func (g *Guard) approve(ctx context.Context, st *callState, in *scope.Input, raw json.RawMessage) bool {
	rule := st.d.Rule
	if g.approver == nil {
		st.deny(StageApproval, ErrNotApproved, nil, st.d.Reason+"; no approver is configured, so the call is denied")
		return false
	}
	private, err := g.privateArgs(st, raw)
	if err != nil {
		st.deny(StageApproval, ErrNotApproved, err, "the arguments changed while the call was being decided, so it is denied")
		return false
	}
	st.private = private
	redacted, hidden, err := g.explainedArgs(st)
	if err != nil {
		st.deny(StageApproval, ErrNotApproved, err, fmt.Sprintf("the arguments cannot be shown to an approver: %s", plainError(err)))
		return false
	}
	req := ApprovalRequest{
		ID: st.d.CallID, CallID: st.d.CallID, Tool: st.d.Tool, Principal: in.Principal,
		// The approver may keep the request after the call ends; the
		// redacted bytes live in pooled call state.
		Args: bytes.Clone(redacted), ArgsSHA256: st.d.ArgsSHA256, Hidden: hidden,
		Rule: rule, Reason: st.d.Reason, PolicyRevision: st.d.Revision,
		Binding: st.d.Binding,
	}
	if st.d.Session != "" {
		req.RememberKey = st.d.RememberKey
	}
	if g.approvalTimeout > 0 {
		req.Expires = st.start.Add(g.approvalTimeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, req.Expires)
		defer cancel()
	}
	a, err := safeApprove(ctx, g.approver, req)
	st.d.Approval = &a
	switch {
	case err != nil:
		st.deny(StageApproval, ErrNotApproved, err, fmt.Sprintf("%s; the approval failed: %s", st.d.Reason, plainError(err)))
		return false
	case !a.Approved:
		msg := st.d.Reason + "; a human did not approve it"
		if a.Reason != "" {
			msg += ": " + a.Reason
		}
		st.deny(StageApproval, ErrNotApproved, nil, msg)
		return false
	case a.Binding == "":
		st.deny(StageApproval, ErrNotApproved, ErrWrongBinding, st.d.Reason+"; the approval given does not name the call it is for")
		return false
	case a.Binding != req.Binding:
		st.deny(StageApproval, ErrNotApproved, ErrWrongBinding, st.d.Reason+"; the approval given was for another call")
		return false
	}
	if !g.stillAsks(ctx, st, in) {
		return false
	}
	st.d.Effect = scope.Allow
	st.d.Stage = StageApproval
	st.d.Reason = fmt.Sprintf("approved by %s (rule %q)", orSomeone(a.By), rule)
	return true
}

// stillAsks decides the call again, after the answer, under the policy in
// force. An approval answers one question: this rule, for this binding
// (which names the policy revision). If the policy changed while the call
// waited and no longer asks exactly that, the approval is void and the
// call is denied, whatever the new policy says: the caller may call again
// to have it decided afresh.
func (g *Guard) stillAsks(ctx context.Context, st *callState, in *scope.Input) bool {
	pol := g.policy.Load()
	now := pol.Decide(context.WithoutCancel(ctx), *in)
	if now.Effect == scope.Ask && now.Rule == st.d.Rule &&
		Binding(in.Principal.ID, st.d.Tool, st.d.ArgsSHA256, now.Revision) == st.d.Binding {
		return true
	}
	cause := fmt.Errorf("%w: asked by rule %q under policy %s; under policy %s the decision is %s (rule %q)",
		ErrApprovalVoid, st.d.Rule, st.d.Revision, now.Revision, now.Effect, now.Rule)
	reason := "the policy changed while the call waited for approval, and the approval does not cover the call under the policy in force, so it is denied; call again to have it decided under the new policy"
	if now.Effect == scope.Deny {
		reason = now.Reason + "; " + reason
	}
	st.deny(StageApproval, ErrNotApproved, cause, reason)
	return false
}

// privateArgs returns a copy of raw for the handler, and checks that the
// copy holds the arguments decided: a caller that changes its buffer while
// the call waits for a human cannot change what runs.
func (g *Guard) privateArgs(st *callState, raw json.RawMessage) (json.RawMessage, error) {
	c := bytes.Clone(orEmptyObject(raw))
	obj, err := safejson.DecodeArguments(c, safejson.Limits(g.argLim))
	if err != nil {
		return nil, err
	}
	canon, err := canonjson.Append(nil, obj)
	if err != nil {
		return nil, err
	}
	if digest(canon) != st.d.ArgsSHA256 {
		return nil, errors.New("toolguard: the arguments changed after they were decided")
	}
	return c, nil
}

func safeApprove(ctx context.Context, a Approver, req ApprovalRequest) (ap Approval, err error) {
	defer func() {
		if r := recover(); r != nil {
			ap, err = Approval{}, fmt.Errorf("approver panicked: %v", r)
		}
	}()
	return a.Approve(ctx, req)
}

func orSomeone(s string) string {
	if s == "" {
		return "an approver"
	}
	return quote(s)
}

// redactedArgs returns the canonical arguments with sensitive values
// replaced by digests.
func (g *Guard) redactedArgs(st *callState) ([]byte, error) {
	b, _, err := g.redactArgs(st, false)
	return b, err
}

// explainedArgs is redactedArgs for an approver: the same bytes the record
// will hold, and what was hidden in them and why.
func (g *Guard) explainedArgs(st *callState) ([]byte, []audit.Redaction, error) {
	return g.redactArgs(st, true)
}

func (g *Guard) redactArgs(st *callState, explain bool) ([]byte, []audit.Redaction, error) {
	if st.args == nil {
		return nil, nil, nil
	}
	paths := st.tool.sensitive
	if extra := g.policy.Load().RedactPointers(st.tool.Name); len(extra) > 0 {
		paths = append(slices.Clip(paths), extra...)
	}
	if len(paths) == 0 && !g.redactor.Detects() {
		return st.canon, nil, nil
	}
	var red any
	var ptrs []string
	var expl []audit.Redaction
	if explain {
		red, expl = g.redactor.Explain(st.args, paths)
		for _, e := range expl {
			ptrs = append(ptrs, e.Pointer)
		}
	} else {
		red, ptrs = g.redactor.Redact(st.args, paths)
	}
	if len(ptrs) == 0 {
		return st.canon, nil, nil
	}
	st.redPtr = ptrs
	var err error
	st.redact, err = canonjson.Append(st.redact[:0], red)
	return st.redact, expl, err
}

// record writes the decision record. A failure denies the call.
func (g *Guard) record(ctx context.Context, corr *audit.Correlation, st *callState) error {
	r := &st.rec
	r.Version = audit.FormatVersion
	r.ID = st.d.CallID
	r.Kind = audit.KindDecision
	r.Time = st.start
	r.Principal = st.d.Principal
	recordSession(r, &st.d)
	r.Correlation = corr
	if st.span != nil {
		r.Correlation = withSpanIDs(r.Correlation, st.span)
	}
	r.Tool = st.d.Tool
	if st.tool == nil {
		r.Tool = sanitize(st.d.Tool)
	}
	redacted, err := g.redactedArgs(st)
	if err != nil {
		st.deny(StageAudit, ErrAuditUnavailable, err, fmt.Sprintf("the arguments cannot be recorded: %s", plainError(err)))
		return st.denied()
	}
	r.Args = redacted
	r.Redacted = st.redPtr
	r.ArgsSHA256 = st.d.ArgsSHA256
	r.Effect = st.d.Effect.String()
	r.Stage = string(st.d.Stage)
	r.Rule = st.d.Rule
	r.Scope = st.d.Scope
	r.Grant = st.d.GrantID
	r.Reason = st.d.Reason
	for _, v := range st.d.Violations {
		r.Violations = append(r.Violations, audit.Violation{Pointer: v.Pointer, Message: v.Message})
	}
	r.Limits = st.limBuf[:0]
	for _, l := range st.d.LimitResults {
		r.Limits = append(r.Limits, audit.LimitState{Name: l.Name, Key: l.Key, Allowed: l.Allowed, RetryAfterMS: l.RetryAfter.Milliseconds(), FailedOpen: l.FailedOpen})
		if l.FailedOpen {
			r.Errors = append(r.Errors, clip(fmt.Sprintf("limit %q failed open: %s", l.Name, l.Err), maxError))
		}
	}
	if a := st.d.Approval; a != nil {
		r.Approval = &audit.Approval{Rule: st.d.Rule, Approved: a.Approved, By: clip(a.By, maxError), Reason: clip(a.Reason, maxError), Binding: st.d.Binding,
			ForSession: a.Approved && a.ForSession && st.d.RememberKey != "" && st.d.Session != ""}
	}
	for _, s := range st.d.Shadow {
		sh := audit.Shadow{Rule: s.Rule, Effect: s.Effect.String(), Matched: s.Matched, Message: clip(s.Message, maxError)}
		if s.Err != nil {
			sh.Error = clip(s.Err.Error(), maxError)
		}
		r.Shadow = append(r.Shadow, sh)
	}
	if c := st.d.Candidate; c != nil {
		r.Candidate = &audit.Candidate{Policy: c.Revision, Effect: c.Effect.String(), Rule: c.Rule, Grant: c.GrantID, Reason: clip(c.Reason, maxError), Agrees: c.Agrees}
	}
	for _, e := range st.d.Errors {
		r.Errors = append(r.Errors, clip(e.Error(), maxError))
	}
	if st.cause != nil && st.d.Stage != StageArguments {
		r.Errors = append(r.Errors, clip(st.cause.Error(), maxError))
	}
	r.Policy = st.d.Revision
	r.LatencyNS = int64(st.d.Latency)

	if err := g.sink.Write(ctx, r); err != nil {
		reason := fmt.Sprintf("the decision could not be recorded, so the call is denied: %s", plainError(err))
		if st.d.Effect == scope.Deny {
			// Keep the original denial; add that it was not recorded.
			reason = clip(st.d.Reason+"; also, "+reason, maxReason)
			st.d.Reason = reason
			st.cause = errors.Join(st.cause, err)
			st.kind = errors.Join(st.kind, ErrAuditUnavailable)
			return st.denied()
		}
		st.deny(StageAudit, ErrAuditUnavailable, err, reason)
		return st.denied()
	}
	return nil
}

// run runs the handler and writes the outcome record.
func (g *Guard) run(ctx, rctx context.Context, st *callState, args json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(args)) == 0 || string(bytes.TrimSpace(args)) == "null" {
		args = emptyObject
	}
	start := st.end // the handler starts as the decision is made
	ctx = context.WithValue(ctx, callIDKey{}, st.d.CallID)
	out, class, err := g.invoke(ctx, st.tool, args, st.release)
	out, err = g.guardResult(ctx, st, out, err)
	out, err = g.sessionResult(rctx, st, out, err)
	dur := g.now().Sub(start)

	o := &st.out
	o.Version = audit.FormatVersion
	o.ID = st.d.CallID
	o.Kind = audit.KindOutcome
	o.Time = start.Add(dur)
	o.Principal = st.d.Principal
	o.Session, o.Task = st.d.Session, st.d.Task
	o.Correlation = st.rec.Correlation
	o.Tool = st.d.Tool
	o.DurationNS = int64(dur)
	if err != nil {
		o.Error = clip(err.Error(), maxError)
		o.ErrorClass = class
	}
	if b, ok := resultBytes(out); ok {
		o.ResultBytes = int64(len(b))
		o.ResultSHA256 = digest(b)
	}
	if werr := g.sink.Write(rctx, o); werr != nil {
		return out, errors.Join(err, fmt.Errorf("%w: the tool ran but its outcome could not be recorded: %w", ErrAuditUnavailable, werr))
	}
	return out, err
}

// invoke calls the handler, turning a panic into an error and enforcing the
// tool timeout.
// release, if not nil, is called once the handler has really returned or
// panicked — after the timeout, if it outlives it.
func (g *Guard) invoke(ctx context.Context, t *tool, args json.RawMessage, release func()) (out any, class string, err error) {
	if g.timeout <= 0 {
		if release != nil {
			defer release()
		}
		return callHandler(ctx, t, args)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	type result struct {
		out   any
		err   error
		class string
	}
	done := make(chan result, 1)
	go func() {
		if release != nil {
			defer release()
		}
		out, class, err := callHandler(ctx, t, args)
		done <- result{out, err, class}
	}()
	select {
	case r := <-done:
		return r.out, r.class, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, "timeout", fmt.Errorf("%w: tool %q did not return within %s", ErrToolTimeout, t.Name, g.timeout)
		}
		return nil, "canceled", ctx.Err()
	}
}

func callHandler(ctx context.Context, t *tool, args json.RawMessage) (out any, class string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, class, err = nil, "panic", fmt.Errorf("%w: tool %q: %v", ErrToolPanic, t.Name, r)
		}
	}()
	out, err = t.Handler(ctx, args)
	if err != nil {
		class = "tool_error"
		if errors.Is(err, context.Canceled) {
			class = "canceled"
		} else if errors.Is(err, context.DeadlineExceeded) {
			class = "timeout"
		}
	}
	return out, class, err
}

func resultBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case json.RawMessage:
		return x, true
	case string:
		return []byte(x), true
	}
	return nil, false
}

func rawDigest(b []byte) string { return digest(b) }

// digest returns the hex SHA-256 of b.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	var hx [64]byte
	hex.Encode(hx[:], sum[:])
	return string(hx[:])
}

// maxViolations bounds the violations reported for one call.
const maxViolations = 20

// violations flattens a schema validation error into JSON-pointer
// violations.
func violations(err error) []Violation {
	var ve *sjs.ValidationError
	if !errors.As(err, &ve) {
		return []Violation{violation("", err.Error())}
	}
	out := ve.BasicOutput()
	var vs []Violation
	for _, u := range out.Errors {
		if u.Error == nil || len(vs) >= maxViolations {
			continue
		}
		vs = append(vs, violation(u.InstanceLocation, u.Error.String()))
	}
	if len(vs) == 0 && out.Error != nil {
		vs = append(vs, violation(out.InstanceLocation, out.Error.String()))
	}
	return vs
}

// violation is a schema violation with its pointer and message bounded
// (a message may quote the whole value it refuses) and no Go package
// names in the message (a format's parse error may carry "net/url: ").
func violation(pointer, message string) Violation {
	return Violation{Pointer: clip(pointer, maxMessage), Message: clip(plainError(errors.New(message)), maxMessage)}
}

func argumentsReason(tool string, vs []Violation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the arguments do not match the input schema of %s: ", quote(tool))
	for i, v := range vs {
		if i > 0 {
			b.WriteString("; ")
		}
		p := v.Pointer
		if p == "" {
			p = "(arguments)"
		}
		b.WriteString("at ")
		b.WriteString(p)
		b.WriteString(": ")
		b.WriteString(v.Message)
	}
	return b.String()
}

func roundUp(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if d < time.Second {
		return d.Round(time.Millisecond) + time.Millisecond
	}
	return d.Round(100 * time.Millisecond)
}

// limitReason explains a limit's denial.
func limitReason(u *scope.LimitUse, r *LimitResult) string {
	switch u.Kind {
	case scope.LimitConcurrency:
		return fmt.Sprintf("concurrency limit %q for %s is reached (%d of %d calls in flight); retry when one finishes", r.Name, quote(r.Key), r.Used, u.Count)
	case scope.LimitQuota:
		return fmt.Sprintf("quota %q for %s is used up (%d of %d used in this window, the call needs %d); it renews in %s", r.Name, quote(r.Key), r.Used, u.Count, u.Cost, roundUp(r.RetryAfter))
	}
	if u.Cost > int64(u.Burst) {
		return fmt.Sprintf("rate limit %q allows at most %d at once and the call needs %d", r.Name, u.Burst, u.Cost)
	}
	return fmt.Sprintf("rate limit %q for %s is exhausted; retry after %s", r.Name, quote(r.Key), roundUp(r.RetryAfter))
}
