package scope

import (
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// A condition is skipped only when it is certainly false without an
// error, so that skipping it cannot change a decision: a deny rule whose
// condition would fail still denies. That holds for a loop-free condition
// (no cost limit, no interruption) with a top-level conjunct — a term
// joined to the rest by && — that compares a string with constants:
//
//	args.f == "k"        args.f in ["k1", "k2"]      tool.name == "t"
//	args.f.contains("k") args.f.startsWith("k")      args.f.endsWith("k")
//
// and whose string is a string: tool.name always is; args.f is when the
// call has the argument and it is a JSON string. CEL's && is false when
// either side is false, whatever the other side gives, errors included.
// Otherwise — the argument missing, a number, an object — the condition is
// evaluated as written.

type testOp uint8

const (
	testIn testOp = iota // the value is one of vals
	testContains
	testPrefix
	testSuffix
)

// argTest is one such conjunct.
type argTest struct {
	tool  bool   // the value is tool.name, else args[field]
	field string // the argument's name
	op    testOp
	vals  []string
	set   map[string]struct{} // vals, when there are many
}

// rejects reports whether the conjunct is false for the string v.
func (t *argTest) rejects(v string) bool {
	switch t.op {
	case testContains:
		return !strings.Contains(v, t.vals[0])
	case testPrefix:
		return !strings.HasPrefix(v, t.vals[0])
	case testSuffix:
		return !strings.HasSuffix(v, t.vals[0])
	}
	if t.set != nil {
		_, ok := t.set[v]
		return !ok
	}
	for _, k := range t.vals {
		if k == v {
			return false
		}
	}
	return true
}

// rejectsCall reports whether the conjunct is false for this call.
func (t *argTest) rejectsCall(act *activation, last *lastArg) bool {
	if t.tool {
		return t.rejects(act.tool.Name)
	}
	v, ok := last.get(act, t.field)
	return ok && t.rejects(v)
}

// lastArg remembers the argument read last: conditions in a row tend to
// test the same one.
type lastArg struct {
	field     string
	v         string
	ok, valid bool
}

// get returns args[field] if it is a string.
func (l *lastArg) get(act *activation, field string) (string, bool) {
	if !l.valid || l.field != field {
		l.v, l.ok = act.args.m[field].(string)
		l.field, l.valid = field, true
	}
	return l.v, l.ok
}

// conjunctTests returns the tests among the top-level conjuncts of a
// checked expression.
func conjunctTests(e celast.Expr, fields map[string]string) []argTest {
	var out []argTest
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		if e.Kind() != celast.CallKind {
			return
		}
		call := e.AsCall()
		if call.FunctionName() == "_&&_" && !call.IsMemberFunction() && len(call.Args()) == 2 {
			walk(call.Args()[0])
			walk(call.Args()[1])
			return
		}
		if t, ok := testOf(call, fields); ok {
			out = append(out, t)
		}
	}
	walk(e)
	return out
}

// testOf recognises one conjunct.
func testOf(call celast.CallExpr, fields map[string]string) (argTest, bool) {
	args := call.Args()
	var t argTest
	switch fn := call.FunctionName(); {
	case fn == "_==_" && !call.IsMemberFunction() && len(args) == 2:
		subj, k := args[0], args[1]
		if _, ok := stringLit(subj); ok {
			subj, k = k, subj
		}
		s, ok := stringLit(k)
		if !ok {
			return t, false
		}
		t.op, t.vals = testIn, []string{s}
		return t, subject(subj, &t, fields)
	case fn == "@in" && !call.IsMemberFunction() && len(args) == 2:
		vals, ok := stringList(args[1])
		if !ok {
			return t, false
		}
		t.op, t.vals = testIn, vals
		if len(vals) > 8 {
			t.set = make(map[string]struct{}, len(vals))
			for _, v := range vals {
				t.set[v] = struct{}{}
			}
		}
		return t, subject(args[0], &t, fields)
	case call.IsMemberFunction() && len(args) == 1:
		switch fn {
		case "contains":
			t.op = testContains
		case "startsWith":
			t.op = testPrefix
		case "endsWith":
			t.op = testSuffix
		default:
			return t, false
		}
		s, ok := stringLit(args[0])
		if !ok {
			return t, false
		}
		t.vals = []string{s}
		return t, subject(call.Target(), &t, fields)
	}
	return t, false
}

// subject recognises tool.name, args.f and args["f"], filling t; field
// names are interned in fields so that equal names share their bytes.
func subject(e celast.Expr, t *argTest, fields map[string]string) bool {
	var field string
	switch e.Kind() {
	case celast.SelectKind:
		sel := e.AsSelect()
		op := sel.Operand()
		if sel.IsTestOnly() || op.Kind() != celast.IdentKind {
			return false
		}
		switch op.AsIdent() {
		case "tool":
			if sel.FieldName() != "name" {
				return false
			}
			t.tool = true
			return true
		case "args":
			field = sel.FieldName()
		default:
			return false
		}
	case celast.CallKind:
		call := e.AsCall()
		a := call.Args()
		if call.FunctionName() != "_[_]" || call.IsMemberFunction() || len(a) != 2 ||
			a[0].Kind() != celast.IdentKind || a[0].AsIdent() != "args" {
			return false
		}
		s, ok := stringLit(a[1])
		if !ok {
			return false
		}
		field = s
	default:
		return false
	}
	if f, ok := fields[field]; ok {
		field = f
	} else {
		fields[field] = field
	}
	t.field = field
	return true
}

func stringLit(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func stringList(e celast.Expr) ([]string, bool) {
	if e.Kind() != celast.ListKind || len(e.AsList().OptionalIndices()) > 0 {
		return nil, false
	}
	var out []string
	for _, el := range e.AsList().Elements() {
		s, ok := stringLit(el)
		if !ok {
			return nil, false
		}
		if !containsStr(out, s) {
			out = append(out, s)
		}
	}
	return out, len(out) > 0
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// phase is the conditions of one step of a decision (the deny rules, the
// grants, the ask rules) for one tool, in policy order, with an index on
// the argument that most of them compare with constants: a call whose
// argument is a string looks only at the conditions that do not test it
// and those whose constants include its value.
type phase[T any] struct {
	items []T
	tests [][]argTest // per item
	field string      // the indexed argument; "" for none
	rest  []int32     // items without an equality test on field
	keyed map[string][]int32
}

// newPhase builds a phase over items; when gives an item's condition.
// With noIndex every item is evaluated.
func newPhase[T any](items []T, when func(T) *expr, noIndex bool) phase[T] {
	ph := phase[T]{items: items}
	if noIndex {
		return ph
	}
	ph.tests = make([][]argTest, len(items))
	count := map[string]int{}
	for i, it := range items {
		if e := when(it); e != nil {
			ph.tests[i] = e.tests
		}
		for _, t := range ph.tests[i] {
			if !t.tool && t.op == testIn {
				count[t.field]++
				break
			}
		}
	}
	best := 0
	for f, n := range count {
		if n > best || n == best && f < ph.field {
			ph.field, best = f, n
		}
	}
	if best < 2 {
		ph.field = ""
		return ph
	}
	ph.keyed = map[string][]int32{}
	for i := range items {
		t := ph.eqTest(i)
		if t == nil {
			ph.rest = append(ph.rest, int32(i))
			continue
		}
		for _, v := range t.vals {
			ph.keyed[v] = append(ph.keyed[v], int32(i))
		}
	}
	return ph
}

// eqTest returns item i's equality test on the indexed argument.
func (ph *phase[T]) eqTest(i int) *argTest {
	for j := range ph.tests[i] {
		if t := &ph.tests[i][j]; !t.tool && t.op == testIn && t.field == ph.field {
			return t
		}
	}
	return nil
}

// cursor walks the items that can apply to a call, in order.
type cursor struct {
	a, b []int32 // two ascending lists to merge
	i, n int32   // or every item, i up to n
	all  bool
}

func (ph *phase[T]) cursor(act *activation) cursor {
	if ph.keyed != nil {
		if v, ok := act.args.m[ph.field].(string); ok {
			return cursor{a: ph.rest, b: ph.keyed[v]}
		}
	}
	return cursor{n: int32(len(ph.items)), all: true}
}

// next returns the next item's index, or false at the end.
func (c *cursor) next() (int, bool) {
	if c.all {
		if c.i >= c.n {
			return 0, false
		}
		c.i++
		return int(c.i - 1), true
	}
	var i int32
	switch {
	case len(c.a) == 0 && len(c.b) == 0:
		return 0, false
	case len(c.b) == 0 || len(c.a) > 0 && c.a[0] < c.b[0]:
		i, c.a = c.a[0], c.a[1:]
	default:
		i, c.b = c.b[0], c.b[1:]
	}
	return int(i), true
}

// skip reports whether item i is certainly false for this call.
func (ph *phase[T]) skip(i int, act *activation, last *lastArg) bool {
	if ph.tests == nil {
		return false
	}
	tests := ph.tests[i]
	for j := range tests {
		if tests[j].rejectsCall(act, last) {
			return true
		}
	}
	return false
}
