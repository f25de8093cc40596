package scope

import (
	"slices"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
)

// An ArgRef is a member of a call's arguments that a policy expression
// reads by name: args.path, has(args.opts.mode), args["x"], "x" in args.
//
// A handler that decodes the arguments with encoding/json matches keys to
// struct fields ignoring letter case, so it reads {"PATH":...} as path
// while the expression, which matches keys exactly, sees no path at all.
// A guard uses ArgRefs to deny such keys (see toolguard).
type ArgRef struct {
	// Path holds the keys from the arguments object down to the member
	// read: args.opts.path is ["opts", "path"].
	Path []string
	// Anywhere reports that the expression reads the key from a value it
	// reached some other way — an element of a list, a comprehension
	// variable, a function's result — so the member may be at any depth.
	// Path then holds that key alone.
	Anywhere bool
}

// ArgRefs returns the members of the arguments that the expressions which
// apply to tool (rule conditions and messages, grant conditions, the keys
// and costs of their limits) read by a constant name. Keys computed at run
// time (args[principal.attrs.field]) are not known and not returned. The
// result is sorted, holds each member once, and must not be modified.
func (p *Policy) ArgRefs(tool string) []ArgRef {
	if p == nil {
		return nil
	}
	pl := p.planFor(tool)
	pl.refsOnce.Do(func() { pl.refs = sortRefs(append(pl.argRefs(), p.resultArgRefs(tool)...)) })
	return pl.refs
}

// resultArgRefs returns what the label and result rules that apply to
// tool read of its arguments: they judge the result in the light of the
// call, and a key the handler reads in another case spells past them too.
func (p *Policy) resultArgRefs(tool string) []ArgRef {
	var all []ArgRef
	for _, lr := range p.labels {
		if lr.when != nil && lr.matches(tool) {
			all = append(all, lr.when.refs...)
		}
	}
	if p.results != nil {
		for _, r := range p.results.rules {
			if !toolMatches(r.tools, tool) {
				continue
			}
			for _, e := range []*expr{r.when, r.message} {
				if e != nil {
					all = append(all, e.refs...)
				}
			}
		}
	}
	return all
}

// argRefs merges the references of every expression of the plan.
func (pl *plan) argRefs() []ArgRef {
	var all []ArgRef
	add := func(e *expr) {
		if e != nil {
			all = append(all, e.refs...)
		}
	}
	for _, r := range pl.rules {
		add(r.when)
		add(r.message)
		add(r.remember)
	}
	for _, g := range pl.grants {
		add(g.when)
		for _, l := range g.limits {
			add(l.key)
			add(l.cost)
		}
	}
	return sortRefs(all)
}

func sortRefs(refs []ArgRef) []ArgRef {
	cmp := func(a, b ArgRef) int {
		if a.Anywhere != b.Anywhere {
			if a.Anywhere {
				return 1
			}
			return -1
		}
		return slices.Compare(a.Path, b.Path)
	}
	slices.SortFunc(refs, cmp)
	return slices.CompactFunc(refs, func(a, b ArgRef) bool { return cmp(a, b) == 0 })
}

// globals are the variables other than args; what is read from them is
// not an argument (unless a comprehension binds the name: see bound).
var globals = map[string]bool{"principal": true, "tool": true, "call": true, "session": true, "task": true, "result": true}

// exprRefs finds the argument members an expression reads by name, and
// whether it also looks a member of the arguments up by a key computed at
// run time (computed), whose name is not known in advance.
func exprRefs(ast *celast.AST) (refs []ArgRef, computed bool) {
	bound := boundNames(ast)
	read := func(operand celast.Expr, key string) {
		path, rooted, ok := argPath(operand, bound)
		switch {
		case ok && rooted:
			refs = append(refs, ArgRef{Path: append(path, key)})
		case ok:
			// Read from principal, tool or call.
		default:
			refs = append(refs, ArgRef{Path: []string{key}, Anywhere: true})
		}
	}
	nodes := celast.MatchDescendants(celast.NavigateAST(ast), func(e celast.NavigableExpr) bool {
		return e.Kind() == celast.SelectKind || e.Kind() == celast.CallKind
	})
	for _, e := range nodes {
		if e.Kind() == celast.SelectKind {
			read(e.AsSelect().Operand(), e.AsSelect().FieldName())
			continue
		}
		c := e.AsCall()
		args := c.Args()
		if len(args) != 2 {
			continue
		}
		switch c.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
			if key, ok := constString(args[1]); ok {
				read(args[0], key)
			} else if _, rooted, ok := argPath(args[0], bound); rooted && ok && args[1].Kind() != celast.LiteralKind {
				computed = true
			} else if args[0].Kind() == celast.IdentKind && shadows(args[0].AsIdent(), bound) && args[1].Kind() != celast.LiteralKind {
				computed = true
			}
		case operators.In:
			if key, ok := constString(args[0]); ok {
				read(args[1], key)
			} else if _, rooted, ok := argPath(args[1], bound); rooted && ok {
				computed = true // x in args: a key known only at run time
			}
		case operators.Equals, operators.NotEquals:
			// args.opts == {"mode": "x"} reads the keys it spells.
			for i, side := range args {
				if side.Kind() == celast.MapKind {
					for _, key := range mapKeys(side) {
						read(args[1-i], key)
					}
				}
			}
		}
	}
	keys, computedKeys := keyTests(ast, bound)
	return sortRefs(append(refs, keys...)), computed || computedKeys
}

// keyTests finds the keys an expression compares with a comprehension's
// variable over the arguments' keys: args.exists(k, k == "path") reads
// args.path as has(args.path) does. Each comparison counts for the
// comprehensions around it that bind the variable. computed reports a
// variable over the keys of args used in any other way
// (args.exists(k, k.startsWith("p"))): keys known only at run time.
func keyTests(ast *celast.AST, bound map[string]bool) (refs []ArgRef, computed bool) {
	for _, e := range celast.MatchDescendants(celast.NavigateAST(ast), celast.KindMatcher(celast.ComprehensionKind)) {
		c := e.AsComprehension()
		var base ArgRef
		path, rooted, ok := argPath(c.IterRange(), bound)
		switch {
		case rooted && ok:
			base.Path = path
		case boundBase(c.IterRange(), bound) || readsArgs(ast, c.IterRange(), bound):
			// A member reached through another variable, or through a
			// function of args (dyn(args), a conditional).
			base.Anywhere = true
		default:
			continue
		}
		v := c.IterVar()
		tested := map[int64]bool{} // the uses of v that compare it with constants
		for _, call := range celast.MatchDescendants(e, celast.KindMatcher(celast.CallKind)) {
			for _, key := range comparedKeys(call.AsCall(), v, tested) {
				if base.Anywhere {
					refs = append(refs, ArgRef{Path: []string{key}, Anywhere: true})
				} else {
					refs = append(refs, ArgRef{Path: append(slices.Clone(base.Path), key)})
				}
			}
		}
		if rooted && ok && len(path) == 0 {
			for _, use := range celast.MatchDescendants(e, celast.KindMatcher(celast.IdentKind)) {
				if use.AsIdent() == v && !tested[use.ID()] {
					computed = true
				}
			}
		}
	}
	return refs, computed
}

// comparedKeys returns the constants call compares the variable v with
// (v == "k", v != "k", v in ["k"], v in {"k": …}), noting the use of v it
// reads in tested.
func comparedKeys(c celast.CallExpr, v string, tested map[int64]bool) []string {
	switch c.FunctionName() {
	case operators.Equals, operators.NotEquals, operators.In:
	default:
		return nil
	}
	args := c.Args()
	if len(args) != 2 {
		return nil
	}
	for i, side := range args {
		if side.Kind() != celast.IdentKind || side.AsIdent() != v {
			continue
		}
		if i == 1 && c.FunctionName() == operators.In {
			continue // "k" in v: v is a map, not a key
		}
		keys, all := constStrings(args[1-i])
		if all && len(keys) > 0 {
			tested[side.ID()] = true // else a key is known only at run time
		}
		return keys
	}
	return nil
}

// boundBase reports whether e is a comprehension's variable, or a member
// or element of one.
func boundBase(e celast.Expr, bound map[string]bool) bool {
	for {
		switch e.Kind() {
		case celast.IdentKind:
			return bound[e.AsIdent()]
		case celast.SelectKind:
			e = e.AsSelect().Operand()
		case celast.CallKind:
			c := e.AsCall()
			if c.FunctionName() != operators.Index || len(c.Args()) != 2 {
				return false
			}
			e = c.Args()[0]
		default:
			return false
		}
	}
}

// constStrings returns the string constants e is, lists, or has as keys,
// and whether they are all it holds.
func constStrings(e celast.Expr) (out []string, all bool) {
	if s, ok := constString(e); ok {
		return []string{s}, true
	}
	var items []celast.Expr
	switch e.Kind() {
	case celast.ListKind:
		items = e.AsList().Elements()
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			items = append(items, en.AsMapEntry().Key())
		}
	default:
		return nil, false
	}
	all = true
	for _, it := range items {
		if s, ok := constString(it); ok {
			out = append(out, s)
		} else {
			all = false
		}
	}
	return out, all
}

// mapKeys returns the string keys of a map literal.
func mapKeys(e celast.Expr) []string {
	keys, _ := constStrings(e)
	return keys
}

// readsArgs reports whether e reads args (or a variable bound to it)
// anywhere inside it.
func readsArgs(ast *celast.AST, e celast.Expr, bound map[string]bool) bool {
	nav := celast.NavigateExpr(ast, e)
	for _, id := range celast.MatchDescendants(nav, celast.KindMatcher(celast.IdentKind)) {
		if name := id.AsIdent(); name == "args" || shadows(name, bound) {
			return true
		}
	}
	return false
}

// boundNames returns the names the expression's comprehensions bind.
// A comprehension may bind the name of a variable — [args].all(call,
// call.path …) — and then what is read through that name inside it is
// an argument; without tracking scopes, every use of a bound name is
// taken as an element of the arguments, whose members may be anywhere.
func boundNames(ast *celast.AST) map[string]bool {
	var bound map[string]bool
	for _, e := range celast.MatchDescendants(celast.NavigateAST(ast), celast.KindMatcher(celast.ComprehensionKind)) {
		c := e.AsComprehension()
		if bound == nil {
			bound = map[string]bool{}
		}
		bound[c.IterVar()], bound[c.AccuVar()] = true, true
		if c.HasIterVar2() {
			bound[c.IterVar2()] = true
		}
	}
	return bound
}

// shadows reports that a comprehension binds name, which is args or
// another variable, so that it may stand for the arguments.
func shadows(name string, bound map[string]bool) bool {
	return bound[name] && (name == "args" || globals[name])
}

// argPath reads e as a chain of constant member names. rooted is true for
// a chain starting at args (path holds its keys), false for one starting
// at another variable; ok is false for anything else (a comprehension
// variable, an element, a function's result, a variable's name a
// comprehension binds), whose members may be anywhere in the arguments.
func argPath(e celast.Expr, bound map[string]bool) (path []string, rooted, ok bool) {
	switch e.Kind() {
	case celast.IdentKind:
		name := e.AsIdent()
		if bound[name] {
			return nil, false, false
		}
		if name == "args" {
			return nil, true, true
		}
		return nil, false, globals[name]
	case celast.SelectKind:
		path, rooted, ok = argPath(e.AsSelect().Operand(), bound)
		return append(path, e.AsSelect().FieldName()), rooted, ok
	case celast.CallKind:
		c := e.AsCall()
		switch c.FunctionName() {
		case operators.Index, operators.OptIndex, operators.OptSelect:
			if len(c.Args()) != 2 {
				return nil, false, false
			}
			path, rooted, ok = argPath(c.Args()[0], bound)
			if !ok {
				return nil, false, false
			}
			key, isStr := constString(c.Args()[1])
			if !isStr {
				// An element of a list, or a key computed at run time:
				// below it, nothing is known about args, but a global
				// stays a global.
				return nil, false, !rooted
			}
			return append(path, key), rooted, true
		}
	}
	return nil, false, false
}

func constString(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// String returns the reference as CEL would read it: args.opts.path, or
// ….path for a member anywhere.
func (r ArgRef) String() string {
	var b strings.Builder
	if r.Anywhere {
		b.WriteString("…")
	} else {
		b.WriteString("args")
	}
	for _, k := range r.Path {
		b.WriteByte('.')
		b.WriteString(k)
	}
	return b.String()
}
