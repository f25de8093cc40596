package scope

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/agentguard/agentguard/internal/glob"
)

// sessionVars is the CEL variable session: what earlier calls of the
// caller's session did. It is filled from [Input.Session] the first time
// a decision reads it.
type sessionVars struct {
	ID     string           `cel:"id"`
	Labels []string         `cel:"labels"`
	Calls  int64            `cel:"calls"`
	Tools  map[string]int64 `cel:"tools"`

	view  Session
	ready bool
	// hits are the calls whose results held a value a from() call asked
	// about and found, in evaluation order; mark is where the rule being
	// evaluated started.
	hits []Origin
	mark int
}

// ToolCounter is implemented by a [Session] that can list its tools: the
// CEL map session.tools is built from it. A Session without it has an
// empty session.tools, and ToolCount answers nothing else.
type ToolCounter interface {
	// ToolCounts returns how many earlier calls ran each tool. The map
	// must not be modified by the caller or later by the Session.
	ToolCounts() map[string]int
}

const sessionTypeName = "scope.sessionVars"

// sessionOptions declares the session and task variables and the from
// function.
func sessionOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Variable("session", cel.ObjectType(sessionTypeName)),
		cel.Variable("task", cel.ObjectType("scope.Task")),
		// x.from(label) reads the session: the macro passes it along, so
		// the function needs no state of its own.
		cel.Macros(cel.ReceiverMacro("from", 1,
			func(eh cel.MacroExprFactory, target celast.Expr, args []celast.Expr) (celast.Expr, *cel.Error) {
				return eh.NewCall("@from", eh.NewIdent("session"), target, args[0]), nil
			})),
		cel.Function("@from",
			cel.Overload("session_from_string_string",
				[]*cel.Type{cel.ObjectType(sessionTypeName), cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(celFrom))),
	}
}

// nativeSessionTypes are the Go types behind session and task.
func nativeSessionTypes() []any {
	return []any{reflect.TypeFor[sessionVars](), reflect.TypeFor[Task]()}
}

func celFrom(args ...ref.Val) ref.Val {
	if len(args) != 3 {
		return types.NoSuchOverloadErr()
	}
	sv, ok := args[0].Value().(*sessionVars)
	value, ok1 := args[1].(types.String)
	label, ok2 := args[2].(types.String)
	if !ok || !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	if sv.view == nil {
		return types.False
	}
	o, found, err := sv.view.From(string(value), string(label))
	if err != nil {
		return types.WrapErr(fmt.Errorf("from: the session could not answer: %w", err))
	}
	if found {
		sv.hits = append(sv.hits, o)
	}
	return types.Bool(found)
}

// fill reads the session view into the CEL variable, once per decision.
func (sv *sessionVars) fill() {
	if sv.ready {
		return
	}
	sv.ready = true
	if sv.view == nil {
		return
	}
	sv.ID = sv.view.ID()
	sv.Calls = int64(sv.view.Calls())
	for _, l := range sv.view.Labels() {
		sv.Labels = append(sv.Labels, l.Label)
	}
	if tc, ok := sv.view.(ToolCounter); ok {
		m := tc.ToolCounts()
		sv.Tools = make(map[string]int64, len(m))
		for k, v := range m {
			sv.Tools[k] = int64(v)
		}
	}
}

// reset clears the variable for reuse, keeping its buffers.
func (sv *sessionVars) reset(view Session) {
	clear(sv.Labels)
	*sv = sessionVars{Labels: sv.Labels[:0], hits: sv.hits[:0], view: view}
}

// readsSession reports whether a compiled expression reads the session
// (session.x or v.from(label)).
func readsSession(ast *celast.AST) bool {
	return len(celast.MatchDescendants(celast.NavigateAST(ast), func(e celast.NavigableExpr) bool {
		return e.Kind() == celast.IdentKind && e.AsIdent() == "session"
	})) > 0
}

// readsSessionLabels reports whether an expression reads session.labels.
func readsSessionLabels(ast *celast.AST) bool {
	return len(celast.MatchDescendants(celast.NavigateAST(ast), func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.SelectKind {
			return false
		}
		s := e.AsSelect()
		return s.FieldName() == "labels" && s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == "session"
	})) > 0
}

// stringLiterals returns the string constants of an expression: the labels
// a flow rule names.
func stringLiterals(ast *celast.AST) []string {
	var out []string
	for _, e := range celast.MatchDescendants(celast.NavigateAST(ast), celast.KindMatcher(celast.LiteralKind)) {
		if s, ok := e.AsLiteral().(types.String); ok && !slices.Contains(out, string(s)) {
			out = append(out, string(s))
		}
	}
	return out
}

// needsSession reports whether an enforced rule, a grant or a limit key
// applying to the plan's tool reads the session.
func (pl *plan) computeNeedsSession() bool {
	reads := func(e *expr) bool { return e != nil && e.session }
	for _, r := range pl.rules {
		if !r.shadow && (reads(r.when) || reads(r.message) || reads(r.remember)) {
			return true
		}
	}
	for _, g := range pl.grants {
		if reads(g.when) {
			return true
		}
		for _, l := range g.limits {
			if reads(l.key) || reads(l.cost) {
				return true
			}
		}
	}
	return false
}

// needsSessionReason is the denial of a call without a session to a tool
// whose policy reads the session.
const needsSessionReason = "the policy for this tool reads the session (what earlier calls did), and the call belongs to no session, so it is denied to be safe; call it within a session"

// taskAdmits applies a task's tool restriction; it reports false, having
// denied the call, when the task does not include the tool.
func taskAdmits(in *Input, d *Decision) bool {
	t := in.Task
	if t == nil || t.Tools == nil {
		return true
	}
	for _, pat := range t.Tools {
		if glob.Match(pat, in.Tool.Name) {
			return true
		}
	}
	d.Reason = fmt.Sprintf("the current task%s does not include tool %s", taskName(t), quoteShort(in.Tool.Name))
	return false
}

func taskName(t *Task) string {
	if t.ID == "" {
		return ""
	}
	return " " + quoteShort(t.ID)
}

// holdsIn reports whether the principal holds scope s and the task, if
// any, keeps it: a task only removes scopes.
func (p *Policy) holdsIn(in *Input, s string) bool {
	if t := in.Task; t != nil && t.Scopes != nil && !slices.Contains(t.Scopes, s) {
		return false
	}
	return p.holds(&in.Principal, s)
}

// flowFor returns the earlier calls a deciding rule read: those whose
// results held the values its from() calls found, and those that brought
// in the session labels it names (every label, if it names none that the
// session holds).
func (a *activation) flowFor(r *rule) []Origin {
	if !r.reads() {
		return nil
	}
	sv := &a.sess
	flow := slices.Clone(sv.hits[sv.mark:])
	if sv.view == nil || !r.when.sessLabels {
		return flow
	}
	all := sv.view.Labels()
	named := 0
	for _, l := range all {
		if slices.Contains(r.when.literals, l.Label) {
			named++
		}
	}
	for _, l := range all {
		if named == 0 || slices.Contains(r.when.literals, l.Label) {
			flow = appendOrigin(flow, l.Origin)
		}
	}
	return flow
}

func appendOrigin(flow []Origin, o Origin) []Origin {
	if slices.Contains(flow, o) {
		return flow
	}
	return append(flow, o)
}

// reads reports whether the rule's condition reads the session.
func (r *rule) reads() bool { return r.when != nil && r.when.session }

// markFlow notes where the next rule's evaluation starts in the hits.
func (a *activation) markFlow() { a.sess.mark = len(a.sess.hits) }

// remembered applies a remembered approval to an ask decision: the rule's
// remember key is evaluated, and if a human approved that key for the rest
// of the session the call is allowed. It reports false, having denied the
// call, when the key or the session cannot be read.
func (p *Policy) remembered(ctx context.Context, r *rule, act *activation, d *Decision) bool {
	if r.remember == nil {
		return true
	}
	key, err := r.remember.evalString(ctx, act)
	if err != nil {
		d.Errors = append(d.Errors, EvalError{Path: r.remember.path, Expr: r.remember.src, Err: err})
		d.Effect = Deny
		d.Reason = fmt.Sprintf("the remember key of rule %q could not be evaluated, so the call is denied to be safe: %v", r.name, err)
		return false
	}
	d.RememberKey = key
	view := act.sess.view
	if view == nil {
		return true
	}
	o, ok, err := view.Remembered(r.memID, key)
	if err != nil {
		d.Effect = Deny
		d.Reason = fmt.Sprintf("the session could not say whether rule %q was approved for the rest of the session, so the call is denied to be safe: %v", r.name, err)
		return false
	}
	if ok {
		d.Effect = Allow
		d.Remembered = &o
		d.Reason = fmt.Sprintf("allowed by an approval given for the rest of the session in call %s (tool %s; rule %q, key %s)",
			quoteShort(o.CallID), quoteShort(o.Tool), r.name, quoteShort(key))
	}
	return true
}

// RememberID returns the identity under which approvals of the named ask
// rule are remembered for a session: its name and a digest of what it
// decides (tools, condition, remember key), so that changing the rule
// voids approvals given under the old one. It returns "" when the policy
// has no ask rule of that name with a remember key.
func (p *Policy) RememberID(rule string) string {
	if p == nil {
		return ""
	}
	for _, r := range p.rules {
		if r.name == rule && r.remember != nil {
			return r.memID
		}
	}
	return ""
}

// memID computes a rule's RememberID.
func memID(rd RuleDef) string {
	h := sha256.New()
	for _, s := range append(slices.Clone(rd.Tools), "\x00", rd.When, "\x00", rd.Remember, "\x00", rd.Effect, rd.Mode) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return rd.Name + "@" + hex.EncodeToString(h.Sum(nil)[:8])
}

// rememberExpr compiles a rule's remember key.
func (c *compiler) rememberExpr(path string, rd RuleDef, r *rule) {
	if rd.Remember == "" {
		return
	}
	if rd.Effect != "ask" {
		c.errorf(path+"/remember", "", "rule %q: remember applies only to ask rules", rd.Name)
		return
	}
	r.remember = c.expr(path+"/remember", rd.Remember, cel.StringType)
	r.memID = memID(rd)
}

// flowReason adds the earlier calls a flow decision read to its reason.
func flowReason(reason string, flow []Origin) string {
	if len(flow) == 0 {
		return reason
	}
	var b strings.Builder
	b.WriteString(reason)
	b.WriteString(" (because of earlier ")
	for i, o := range flow {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 3 {
			fmt.Fprintf(&b, "and %d more", len(flow)-3)
			break
		}
		fmt.Fprintf(&b, "call %s to %s", quoteShort(o.CallID), quoteShort(o.Tool))
	}
	b.WriteString(")")
	return b.String()
}
