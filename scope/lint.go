package scope

import (
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/agentguard/agentguard/internal/glob"
)

// LintOptions configure [Lint].
type LintOptions struct {
	// Tools are the tools the policy will guard, with their annotations.
	// Without them, findings about tools are not reported.
	Tools []Tool
	// ServesData says the guarded server offers resources or prompts: a
	// policy that grants none of them is then reported (no-data-grants).
	ServesData bool
}

// Finding is one problem Lint found.
type Finding struct {
	// Code identifies the kind of finding: unknown-tool, ungranted-tool,
	// never-matches, always-true-destructive, destructive-unguarded,
	// unheld-scope, shadowed-rule, costly-expression, non-canonical-host,
	// glob-uncleaned-path, glob-lexical-grant, glob-literal-bracket,
	// lexical-path-rule, computed-arg-key, wide-resource-grant,
	// no-data-grants.
	Code string
	// Severity is "warning" or "info".
	Severity string
	// Path is the JSON pointer of the element; Line and Column its position
	// when the policy came from a file.
	Path         string
	Line, Column int
	Message      string
}

// String formats the finding as file-less "line:col: severity: message [code]".
func (f Finding) String() string {
	pos := f.Path
	if f.Line > 0 {
		pos = fmt.Sprintf("%d:%d", f.Line, f.Column)
	}
	return fmt.Sprintf("%s: %s: %s [%s]", pos, f.Severity, f.Message, f.Code)
}

// Lint reports likely mistakes in a policy that compile fine: tools named in
// grants or rules that no registered tool matches, registered tools that no
// scope can grant ([Policy.CanGrant]), grants that can never
// match, unconditional grants of destructive tools, destructive tools with
// neither a limit nor an ask rule, scopes no static principal holds, rules
// that earlier rules shadow, expressions whose worst-case cost exceeds
// the cost limit, hosts compared in a form urlHost never returns, and deny
// or ask rules whose glob on a path argument can be walked around: a
// pattern that is not itself clean (a path pattern with "." or "..", a URL
// pattern whose scheme, host or port is not in canonical form), a rule beside a grant that admits the
// same argument by the lexical isUnder, and a rule that stops a path by
// isUnder, and expressions that look an argument up by a key computed at
// run time (args[principal.attrs.field]), whose spellings in other letter
// case the guard cannot know to deny. Findings are grouped by kind, each
// kind in policy order.
func Lint(p *Policy, opts LintOptions) []Finding {
	if p == nil {
		return nil
	}
	l := linter{p: p, opts: opts}
	l.tools()
	l.ungranted()
	l.grants()
	l.destructive()
	l.scopes()
	l.shadowed()
	l.costs()
	l.hosts()
	l.paths()
	l.computedKeys()
	l.data()
	return l.out
}

type linter struct {
	p    *Policy
	opts LintOptions
	out  []Finding
}

func (l *linter) add(code, severity, path, format string, args ...any) {
	f := Finding{Code: code, Severity: severity, Path: path, Message: fmt.Sprintf(format, args...)}
	for q := path; q != ""; q = q[:max(strings.LastIndexByte(q, '/'), 0)] {
		if ps, ok := l.p.opts.pos[q]; ok {
			f.Line, f.Column = ps.line, ps.col
			break
		}
	}
	l.out = append(l.out, f)
}

func (l *linter) matchesAny(pattern string) bool {
	return slices.ContainsFunc(l.opts.Tools, func(t Tool) bool { return glob.Match(pattern, t.Name) })
}

func (l *linter) tools() {
	if len(l.opts.Tools) == 0 {
		return
	}
	for _, r := range l.p.rules {
		for j, t := range r.tools {
			if !l.matchesAny(t) {
				l.add("unknown-tool", "warning", fmt.Sprintf("/rules/%d/tools/%d", r.index, j), "rule %q names %q, which matches no registered tool", r.name, t)
			}
		}
	}
	for _, g := range l.p.grants {
		for j, t := range g.tools {
			if !l.matchesAny(t) {
				l.add("unknown-tool", "warning", fmt.Sprintf("%s/tools/%d", grantPath(g), j), "grant %s names %q, which matches no registered tool", g.id, t)
			}
		}
	}
}

// ungranted reports the registered tools no grant can allow: every call to
// one is denied, which is rarely what registering it meant.
func (l *linter) ungranted() {
	for _, t := range l.opts.Tools {
		if !l.p.CanGrant(t.Name) {
			l.add("ungranted-tool", "warning", "/scopes", "tool %q is registered, but no scope grants it: every call to it is denied", t.Name)
		}
	}
}

// CanGrant reports whether some grant of the policy can ever allow a call
// of the named tool: a grant names it (by name or glob) and its condition is
// not constantly false. It says nothing about rules, limits or principals: a
// tool it reports false for is denied to every caller ("no scope grants
// this tool"); package toolguard warns when such a tool is registered.
func (p *Policy) CanGrant(tool string) bool {
	if p == nil {
		return false
	}
	for _, g := range p.planFor(tool).grants {
		if v, ok := constant(g.when); !ok || v {
			return true
		}
	}
	return false
}

func grantPath(g *grant) string {
	return fmt.Sprintf("/scopes/%s/grants/%d", escPtr(g.scope), g.index)
}

// constant evaluates an expression that reads no variables; ok is false if
// it reads any.
func constant(e *expr) (v bool, ok bool) {
	if e == nil {
		return true, true
	}
	out, _, err := e.prg.Eval(interpreter.EmptyActivation())
	if err != nil {
		return false, false
	}
	b, isBool := out.(types.Bool)
	return bool(b), isBool
}

func (l *linter) grants() {
	for _, g := range l.p.grants {
		if v, ok := constant(g.when); ok && !v {
			l.add("never-matches", "warning", grantPath(g)+"/when", "grant %s can never match: its condition is always false", g.id)
		}
		if len(l.opts.Tools) > 0 && !slices.ContainsFunc(g.tools, l.matchesAny) {
			l.add("never-matches", "warning", grantPath(g), "grant %s can never match: none of its tools is registered", g.id)
		}
	}
}

func destructive(t Tool) bool {
	v, _ := t.Annotations["destructiveHint"].(bool)
	return v
}

func (l *linter) destructive() {
	for _, t := range l.opts.Tools {
		if !destructive(t) {
			continue
		}
		var granting []*grant
		for _, g := range l.p.grants {
			if slices.ContainsFunc(g.tools, func(pat string) bool { return glob.Match(pat, t.Name) }) {
				granting = append(granting, g)
			}
		}
		asked := slices.ContainsFunc(l.p.rules, func(r *rule) bool {
			return r.effect == Ask && !r.shadow && slices.ContainsFunc(r.tools, func(pat string) bool { return glob.Match(pat, t.Name) })
		})
		for _, g := range granting {
			if v, ok := constant(g.when); ok && v {
				l.add("always-true-destructive", "warning", grantPath(g), "grant %s allows the destructive tool %q unconditionally", g.id, t.Name)
			}
			if len(g.limits) == 0 && !asked {
				l.add("destructive-unguarded", "warning", grantPath(g), "grant %s allows the destructive tool %q with neither a limit nor an ask rule", g.id, t.Name)
			}
		}
	}
}

func (l *linter) scopes() {
	if len(l.p.principals) == 0 {
		return
	}
	held := map[string]bool{}
	for _, scopes := range l.p.principals {
		for _, s := range scopes {
			held[s] = true
		}
	}
	for _, name := range sortedKeys(l.p.scopes) {
		if !held[name] {
			l.add("unheld-scope", "info", "/scopes/"+escPtr(name), "scope %q is held by no principal listed in the policy; only callers that bring it can use it", name)
		}
	}
}

// covers reports whether every tool that pattern b matches is matched by a.
func covers(a, b string) bool {
	if a == b || a == "*" || a == "**" {
		return true
	}
	if glob.Literal(b) {
		return glob.Match(a, b)
	}
	return false
}

func (l *linter) shadowed() {
	for i, r := range l.p.rules {
		if r.shadow {
			continue
		}
		for j := 0; j < i; j++ {
			prev := l.p.rules[j]
			if prev.shadow || prev.effect != Deny {
				continue
			}
			v, ok := constant(prev.when)
			unconditional := ok && v
			same := prev.when != nil && r.when != nil && prev.when.src == r.when.src && r.effect == Deny
			if !unconditional && !same {
				continue
			}
			all := !slices.ContainsFunc(r.tools, func(t string) bool {
				return !slices.ContainsFunc(prev.tools, func(pt string) bool { return covers(pt, t) })
			})
			if all {
				l.add("shadowed-rule", "warning", fmt.Sprintf("/rules/%d", r.index), "rule %q can never decide: rule %q before it already denies every call it applies to", r.name, prev.name)
				break
			}
		}
	}
}

func (l *linter) costs() {
	check := func(e *expr, what string) {
		if e != nil && e.loops && e.cost.Max > l.p.costLimit {
			l.add("costly-expression", "info", e.path, "%s may cost up to %d on large arguments, over the limit of %d: such calls are denied", what, e.cost.Max, l.p.costLimit)
		}
	}
	for _, r := range l.p.rules {
		check(r.when, fmt.Sprintf("rule %q", r.name))
	}
	for _, g := range l.p.grants {
		check(g.when, "grant "+g.id)
	}
}
