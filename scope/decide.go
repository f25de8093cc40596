package scope

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/agentguard/agentguard/scope/internal/trace"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Principal is who is calling: an agent, a user, a service. In CEL it is the
// variable principal with fields id, scopes and attrs.
type Principal struct {
	// ID identifies the principal. An empty ID is no principal: denied.
	ID string `cel:"id" json:"id"`
	// Scopes the principal brings, such as token claims. The policy's static
	// principals section may add more.
	Scopes []string `cel:"scopes" json:"scopes,omitempty"`
	// Attrs are attributes for conditions, such as a workspace directory or
	// a tenant. Values are JSON-like: string, bool, numbers, []any,
	// map[string]any.
	Attrs map[string]any `cel:"attrs" json:"attrs,omitempty"`
}

// Tool describes the tool being called. In CEL it is the variable tool with
// fields name and annotations (such as MCP's readOnlyHint, destructiveHint).
type Tool struct {
	Name        string         `cel:"name"`
	Annotations map[string]any `cel:"annotations"`
}

// Call describes this call. In CEL it is the variable call with fields id and
// time (a timestamp).
type Call struct {
	ID   string    `cel:"id"`
	Time time.Time `cel:"time"`
}

// Input is everything a decision depends on.
type Input struct {
	Principal Principal
	Tool      Tool
	// Args are the call's arguments as decoded JSON: values are
	// map[string]any, []any, string, json.Number (or float64/int), bool, nil.
	// Decide never modifies them.
	Args map[string]any
	Call Call
	// Session is what earlier calls of the caller's session did; nil when
	// the call belongs to no session. A call without a session to a tool
	// whose enforced rules, grants or limit keys read the session is
	// denied: flow rules never see an empty history by omission.
	Session Session
	// Task narrows the principal's privilege for one task; nil for none.
	Task *Task
}

// Effect is the outcome of a decision. The zero value is Deny.
type Effect uint8

// Effects, from strongest to weakest: deny beats ask beats allow.
const (
	Deny Effect = iota
	Allow
	Ask
)

// String returns "deny", "allow" or "ask".
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case Ask:
		return "ask"
	default:
		return "deny"
	}
}

// Decision is the result of [Policy.Decide]. The zero Decision denies.
type Decision struct {
	// Effect is Allow, Deny or Ask (allowed once a human approves).
	Effect Effect
	// Rule names the deny or ask rule that decided, if any.
	Rule string
	// Scope and Grant name the grant that allowed the call (Grant is its
	// index in the scope), if any; Grant is -1 when no grant matched.
	// GrantID is the same as "scope#index".
	Scope   string
	Grant   int
	GrantID string
	// Reason explains the decision in words a model can act on.
	Reason string
	// Limits are the rate limits the allowing grant draws on, with their
	// keys evaluated for this call.
	Limits []LimitUse
	// Shadow holds the results of shadow-mode rules: evaluated, never
	// enforced.
	Shadow []ShadowResult
	// Errors are evaluation errors met on the way. An error never allows:
	// in a deny rule it denies, in a grant the grant does not match.
	Errors []EvalError
	// Revision is the revision of the policy that decided.
	Revision string
	// Flow names the earlier calls of the session that the deciding rule
	// read (the call that brought a label in, or whose result held a
	// value): the evidence behind a flow decision.
	Flow []Origin
	// RememberKey is, for an ask decision whose rule names a remember key,
	// that key evaluated for this call: an approval "for the rest of the
	// session" covers later calls the same rule asks about with this key.
	RememberKey string
	// Remembered, when not nil, is the earlier call whose approval, given
	// for the rest of the session, allowed this call without asking.
	Remembered *Origin
}

// LimitUse is one limit a call draws on.
type LimitUse struct {
	Limit
	// Key is the bucket, the value of the limit's key expression.
	Key string
	// Cost is how many units the call uses (1 unless the limit has a cost
	// expression).
	Cost int64
}

// ShadowResult is what a shadow-mode rule would have done.
type ShadowResult struct {
	Rule    string
	Effect  Effect // the rule's effect (deny or ask)
	Matched bool   // whether its condition held
	Message string
	Err     error
}

// EvalError is an error met while evaluating one expression.
type EvalError struct {
	// Path is the expression's JSON pointer in the policy.
	Path string
	// Expr is the expression's source.
	Expr string
	Err  error
}

// Error formats the evaluation error.
func (e EvalError) Error() string {
	return fmt.Sprintf("%s: %q: %v", e.Path, e.Expr, e.Err)
}

// Unwrap returns the underlying error.
func (e EvalError) Unwrap() error { return e.Err }

// Decide decides a call. It is pure: it evaluates the policy and nothing
// else — no rate limits, no approvals, no I/O but resolvesUnder's lstat and
// readlink — so it is safe to call for
// previews and tests. A nil policy, a cancelled context or a missing
// principal denies.
//
// Order: enforced deny rules (the first that matches, or fails to evaluate,
// denies); then grants of the principal's scopes (the first whose tools
// match and whose condition holds allows; none → deny); then ask rules (the
// first that matches turns allow into ask); then the allowing grant's limit
// keys. Shadow rules are evaluated on every call and reported in Shadow.
//
// A condition that compares an argument or the tool name with constants
// (args.kind == "k", tool.name in [...], args.path.startsWith("/w/")) is
// not evaluated when the call's string already makes that comparison false:
// the condition is then false without error, and the decision is the one
// evaluating it would give.
func (p *Policy) Decide(ctx context.Context, in Input) (d Decision) {
	d.Grant = -1
	if !p.admit(ctx, &in, &d) {
		return d
	}
	pl := p.planFor(in.Tool.Name)
	if in.Session == nil && pl.needsSession {
		d.Reason = needsSessionReason
		return d
	}
	act := getActivation(&in)
	act.trace = trace.From(ctx)
	defer putActivation(act)
	defer p.shadow(ctx, pl, act, &d)

	if p.denyRules(ctx, pl, act, &d) {
		return d
	}
	g := p.grantFor(ctx, pl, act, &in, &d)
	if g == nil {
		return d
	}
	d.Effect, d.Scope, d.Grant, d.GrantID = Allow, g.scope, g.index, g.id
	act.decided("grant", g.id)
	if p.askRules(ctx, pl, act, &d) || !p.limitKeys(ctx, g, act, &d) {
		return d
	}
	if d.Effect == Allow && d.Remembered == nil {
		d.Reason = g.allowReason
	}
	return d
}

// admit denies a call that cannot be decided: no policy, a cancelled
// context, no principal.
func (p *Policy) admit(ctx context.Context, in *Input, d *Decision) bool {
	if p == nil {
		d.Reason = "no policy is loaded"
		return false
	}
	d.Revision = p.revision
	if err := ctx.Err(); err != nil {
		d.Reason = "the decision was cancelled: " + err.Error()
		return false
	}
	if in.Principal.ID == "" {
		d.Reason = "no principal: the caller is not identified"
		return false
	}
	return taskAdmits(in, d)
}

// denyRules evaluates the enforced deny rules; it reports whether one
// denied the call.
func (p *Policy) denyRules(ctx context.Context, pl *plan, act *activation, d *Decision) bool {
	r, err := firstRule(ctx, &pl.deny, act)
	switch {
	case r == nil:
		return false
	case err != nil:
		d.Errors = append(d.Errors, EvalError{Path: r.when.path, Expr: r.when.src, Err: err})
		d.Rule = r.name
		d.Reason = fmt.Sprintf("rule %q could not be evaluated, so the call is denied to be safe: %v", r.name, err)
		return true
	}
	d.Rule = r.name
	d.Flow = act.flowFor(r)
	d.Reason = flowReason(fmt.Sprintf("denied by rule %q: %s", r.name, r.reason(ctx, act, d)), d.Flow)
	return true
}

// firstRule evaluates a phase's rules in order and returns the first one
// whose condition matched or failed, with the failure; nil if none did.
func firstRule(ctx context.Context, ph *phase[*rule], act *activation) (*rule, error) {
	var last lastArg
	for c := ph.cursor(act); ; {
		i, ok := c.next()
		if !ok {
			return nil, nil
		}
		r := ph.items[i]
		act.markFlow()
		matched, err := ph.eval(ctx, i, act, &last)
		act.record("rule", r.name, r.when, matched, err)
		if err != nil || matched {
			act.decided("rule", r.name)
			return r, err
		}
	}
}

// grantFor returns the first grant of a scope the principal holds whose
// condition holds, or nil with the denial's reason in d.
func (p *Policy) grantFor(ctx context.Context, pl *plan, act *activation, in *Input, d *Decision) *grant {
	ph := &pl.grantPh
	var last lastArg
	for c := ph.cursor(act); ; {
		i, ok := c.next()
		if !ok {
			break
		}
		cand := ph.items[i]
		if !p.holdsIn(in, cand.scope) {
			continue
		}
		ok, err := ph.eval(ctx, i, act, &last)
		act.record("grant", cand.id, cand.when, ok, err)
		if err != nil {
			d.Errors = append(d.Errors, EvalError{Path: cand.when.path, Expr: cand.when.src, Err: err})
			continue
		}
		if ok {
			return cand
		}
	}
	d.Reason = p.noGrantReason(pl, in)
	if len(d.Errors) > 0 {
		// Say why a condition failed (a NUL byte in a path, a missing
		// argument): it is what the caller has to fix.
		d.Reason += "; evaluating it failed: " + d.Errors[0].Err.Error()
	}
	return nil
}

// askRules evaluates the enforced ask rules of an allowed call; it reports
// whether one failed to evaluate, which denies. The first rule that matches
// asks, unless a human approved it for the rest of the session with the
// same remember key: then the next rules are evaluated, and the call is
// allowed only if none of them asks.
func (p *Policy) askRules(ctx context.Context, pl *plan, act *activation, d *Decision) bool {
	ph := &pl.ask
	var last lastArg
	for c := ph.cursor(act); ; {
		i, ok := c.next()
		if !ok {
			return false
		}
		r := ph.items[i]
		act.markFlow()
		matched, err := ph.eval(ctx, i, act, &last)
		act.record("rule", r.name, r.when, matched, err)
		if err != nil {
			act.decided("rule", r.name)
			d.Errors = append(d.Errors, EvalError{Path: r.when.path, Expr: r.when.src, Err: err})
			d.Effect, d.Rule, d.Remembered = Deny, r.name, nil
			d.Reason = fmt.Sprintf("rule %q could not be evaluated, so the call is denied to be safe: %v", r.name, err)
			return true
		}
		if !matched {
			continue
		}
		act.decided("rule", r.name)
		prev := *d
		d.Effect, d.Rule, d.Remembered, d.RememberKey = Ask, r.name, nil, ""
		d.Flow = act.flowFor(r)
		d.Reason = flowReason(fmt.Sprintf("rule %q requires human approval: %s", r.name, r.reason(ctx, act, d)), d.Flow)
		if !p.remembered(ctx, r, act, d) {
			return true
		}
		if d.Effect == Ask {
			return false
		}
		if prev.Remembered != nil {
			// An earlier rule's remembered approval is the one recorded.
			errs := d.Errors
			*d = prev
			d.Errors = errs
		}
	}
}

// limitKeys evaluates the keys and costs of the allowing grant's limits;
// it reports false, having denied the call, when one fails.
func (p *Policy) limitKeys(ctx context.Context, g *grant, act *activation, d *Decision) bool {
	if len(g.limits) == 0 {
		return true
	}
	d.Limits = make([]LimitUse, 0, len(g.limits))
	for _, l := range g.limits {
		key, err := l.key.evalString(ctx, act)
		if err != nil {
			d.Errors = append(d.Errors, EvalError{Path: l.key.path, Expr: l.key.src, Err: err})
			d.Effect, d.Rule = Deny, ""
			d.Reason = fmt.Sprintf("the key of limit %q could not be evaluated, so the call is denied to be safe: %v", l.Name, err)
			d.Limits = nil
			return false
		}
		cost := int64(1)
		if l.cost != nil {
			cost, err = l.cost.evalInt(ctx, act)
			if err == nil && cost < 0 {
				err = fmt.Errorf("cost %d is negative", cost)
			}
			if err != nil {
				d.Errors = append(d.Errors, EvalError{Path: l.cost.path, Expr: l.cost.src, Err: err})
				d.Effect, d.Rule = Deny, ""
				d.Reason = fmt.Sprintf("the cost of limit %q could not be evaluated, so the call is denied to be safe: %v", l.Name, err)
				d.Limits = nil
				return false
			}
		}
		d.Limits = append(d.Limits, LimitUse{Limit: l.Limit, Key: key, Cost: cost})
	}
	return true
}

// shadow evaluates the shadow rules that apply and appends their results.
func (p *Policy) shadow(ctx context.Context, pl *plan, act *activation, d *Decision) {
	ph := &pl.shadow
	var last lastArg
	for i, r := range ph.items {
		res := ShadowResult{Rule: r.name, Effect: r.effect}
		matched, err := ph.eval(ctx, i, act, &last)
		act.record("rule", r.name, r.when, matched, err)
		switch {
		case err != nil:
			res.Err = err
			res.Matched = r.effect == Deny // an error in a deny rule would deny
		case matched:
			res.Matched = true
			res.Message = r.reason(ctx, act, d)
		}
		d.Shadow = append(d.Shadow, res)
	}
}

// holds reports whether the principal holds scope s, brought or static.
func (p *Policy) holds(pr *Principal, s string) bool {
	if slices.Contains(pr.Scopes, s) {
		return true
	}
	return slices.Contains(p.principals[pr.ID], s)
}

// HeldScopes returns the scopes the principal holds under this policy: the
// ones it brings plus static ones, limited to scopes the policy defines.
func (p *Policy) HeldScopes(pr Principal) []string {
	var out []string
	for _, s := range sortedKeys(p.scopes) {
		if p.holds(&pr, s) {
			out = append(out, s)
		}
	}
	return out
}

// noGrantReason explains a denial for lack of a grant, with what would be
// allowed, so that a model can correct its call.
func (p *Policy) noGrantReason(pl *plan, in *Input) string {
	b := make([]byte, 0, 128)
	b = append(b, "no scope held by "...)
	b = appendQuoted(b, in.Principal.ID)
	b = append(b, " grants tool "...)
	b = appendQuoted(b, in.Tool.Name)
	if len(pl.grants) > 64 {
		return string(p.noGrantTail(b, pl, in))
	}
	var held uint64
	for i, g := range pl.grants {
		if p.holdsIn(in, g.scope) {
			held |= 1 << i
		}
	}
	if tail, ok := pl.reasons.Load(held); ok {
		return string(append(b, tail.(string)...))
	}
	n := len(b)
	b = p.noGrantTail(b, pl, in)
	if pl.nreasons.Add(1) <= maxCachedReasons {
		pl.reasons.Store(held, string(b[n:]))
	}
	return string(b)
}

// noGrantTail appends what would be allowed: the conditions of the grants
// the principal holds, else the scopes that would grant the tool. It
// depends only on which of the plan's grants the principal holds.
func (p *Policy) noGrantTail(b []byte, pl *plan, in *Input) []byte {
	var buf [8]string
	others := buf[:0]
	conds := 0
	for _, g := range pl.grants {
		if !p.holdsIn(in, g.scope) {
			if !slices.Contains(others, g.scope) {
				others = append(others, g.scope)
			}
			continue
		}
		if g.when == nil {
			continue
		}
		if conds == 0 {
			b = append(b, " for these arguments; "...)
		} else {
			b = append(b, "; "...)
		}
		conds++
		b = append(b, "scope "...)
		b = appendQuoted(b, g.scope)
		b = append(b, " allows it only when "...)
		b = append(b, g.when.src...)
	}
	switch {
	case conds > 0:
	case len(others) > 0:
		b = append(b, "; it needs scope "...)
		for i, s := range others {
			if i > 0 {
				b = append(b, " or "...)
			}
			b = appendQuoted(b, s)
		}
	case len(pl.grants) == 0:
		b = append(b, "; no scope grants this tool"...)
	}
	return b
}

// appendQuoted appends s quoted as strconv.Quote does, without its cost
// for the usual plain ASCII names.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return strconv.AppendQuote(b, s)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// reason evaluates a rule's message, falling back to a fixed text. An error
// in the message is recorded but never changes the decision.
func (r *rule) reason(ctx context.Context, act *activation, d *Decision) string {
	if r.message == nil {
		if r.effect == Ask {
			return "this call needs a human's approval"
		}
		return "this call is not allowed"
	}
	s, err := r.message.evalString(ctx, act)
	if err != nil {
		d.Errors = append(d.Errors, EvalError{Path: r.message.path, Expr: r.message.src, Err: err})
		return "this call is not allowed (the rule's message could not be evaluated)"
	}
	return s
}

// evalBool evaluates a condition; a nil expression is true.
func (e *expr) evalBool(ctx context.Context, act *activation) (bool, error) {
	if e == nil {
		return true, nil
	}
	v, err := e.eval(ctx, act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition produced %s, not bool", v.Type().TypeName())
	}
	return bool(b), nil
}

func (e *expr) evalInt(ctx context.Context, act *activation) (int64, error) {
	v, err := e.eval(ctx, act)
	if err != nil {
		return 0, err
	}
	switch n := v.(type) {
	case types.Int:
		return int64(n), nil
	case types.Uint:
		if uint64(n) > math.MaxInt64 {
			return 0, fmt.Errorf("cost %d is too large", uint64(n))
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("expression produced %s, not int", v.Type().TypeName())
}

func (e *expr) evalString(ctx context.Context, act *activation) (string, error) {
	if e.direct != nil {
		return e.direct(act), nil
	}
	v, err := e.eval(ctx, act)
	if err != nil {
		return "", err
	}
	s, ok := v.(types.String)
	if !ok {
		return "", fmt.Errorf("expression produced %s, not string", v.Type().TypeName())
	}
	return string(s), nil
}

func (e *expr) eval(ctx context.Context, act *activation) (v ref.Val, err error) {
	defer func() {
		// A panic inside an extension function must never escape a decision.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("evaluation panicked: %v", r)
		}
	}()
	if e.direct != nil {
		return types.String(e.direct(act)), nil
	}
	if e.loops {
		v, _, err = e.prg.ContextEval(ctx, act)
	} else {
		if act.frame == nil {
			if act.frame, err = interpreter.NewExecutionFrame(act); err != nil {
				return nil, err
			}
		}
		v, _, err = e.prg.Eval(act.frame)
	}
	if err != nil {
		return nil, err
	}
	if types.IsError(v) {
		return nil, v.(*types.Err)
	}
	return v, nil
}

// Visible reports whether a tool belongs in the principal's tool list: some
// scope the principal holds has a grant naming the tool, and no enforced
// deny rule without a condition covers it. Conditions that depend on
// arguments are not evaluated — a visible tool may still be denied for
// particular arguments — so that the list and the calls never disagree about
// tools that can never be called.
func (p *Policy) Visible(pr Principal, tool string) bool {
	if p == nil || pr.ID == "" {
		return false
	}
	pl := p.planFor(tool)
	for _, r := range pl.rules {
		if r.effect == Deny && !r.shadow && r.when == nil {
			return false
		}
	}
	for _, g := range pl.grants {
		if p.holds(&pr, g.scope) {
			return true
		}
	}
	return false
}

// record reports an evaluated condition to the trace, if any.
func (a *activation) record(kind, id string, e *expr, ok bool, err error) {
	if a.trace == nil {
		return
	}
	ev := trace.Event{Kind: kind, ID: id, Result: fmt.Sprint(ok), Err: err}
	if e != nil {
		ev.Path, ev.Expr = e.path, e.src
	} else {
		ev.Expr = "(no condition)"
	}
	if err != nil {
		ev.Result = "error"
	}
	a.trace.Add(ev)
}

func (a *activation) decided(kind, id string) {
	if a.trace != nil {
		a.trace.MarkDecided(kind, id)
	}
}
