package scope

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/agentguard/agentguard/internal/substr"
)

// A condition is decided without running its CEL program only when the
// answer is certain and error-free, so that the shortcut cannot change a
// decision: a deny rule whose condition would fail still denies. The
// shortcut applies to loop-free conditions (no cost limit, no
// interruption) whose top-level conjuncts — terms joined by && — are
// clauses: one test, or tests joined by ||, each of which
//
//	has(args.f)          args.f == "k"             args.f in ["k1", "k2"]
//	tool.name == "t"     args.f.contains("k")      args.f.startsWith("k")
//	args.f.endsWith("k") (and the same on tool.name, or args["f"])
//
// A test is certain when its value is a string — tool.name always is,
// args.f when the call has the argument as a JSON string — and has() is
// always certain. CEL's && is false when either side is false, and its ||
// true when either side is true, whatever the other side gives, errors
// included. So a condition is false when one clause has only certain,
// false tests; and true when every conjunct is a clause with a certain,
// true test. Otherwise — an argument missing or a number, a conjunct of
// another form — the condition is evaluated as written.

type testOp uint8

const (
	testIn testOp = iota // the value is one of vals
	testContains
	testPrefix
	testSuffix
	testHas // the argument is present
)

// argTest is one test.
type argTest struct {
	tool  bool   // the value is tool.name, else args[field]
	field string // the argument's name
	op    testOp
	vals  []string
	set   map[string]struct{} // vals, when there are many
}

// clause is tests joined by ||.
type clause []argTest

// verdict is what the tests say about a condition.
type verdict int8

const (
	unknown verdict = iota
	isFalse
	isTrue
)

func verdictOf(b bool) verdict {
	if b {
		return isTrue
	}
	return isFalse
}

// accepts reports whether the test holds for the string v.
func (t *argTest) accepts(v string) bool {
	switch t.op {
	case testContains:
		return strings.Contains(v, t.vals[0])
	case testPrefix:
		return strings.HasPrefix(v, t.vals[0])
	case testSuffix:
		return strings.HasSuffix(v, t.vals[0])
	}
	if t.set != nil {
		_, ok := t.set[v]
		return ok
	}
	for _, k := range t.vals {
		if k == v {
			return true
		}
	}
	return false
}

// eval evaluates the test for this call.
func (t *argTest) eval(act *activation, last *lastArg) verdict {
	if t.tool {
		return verdictOf(t.accepts(act.tool.Name))
	}
	v, isString, present := last.get(act, t.field)
	switch {
	case t.op == testHas:
		return verdictOf(present)
	case !isString:
		return unknown
	}
	return verdictOf(t.accepts(v))
}

// eval evaluates the clause for this call.
func (c clause) eval(act *activation, last *lastArg) verdict {
	v := isFalse
	for i := range c {
		switch c[i].eval(act, last) {
		case isTrue:
			return isTrue
		case unknown:
			v = unknown
		}
	}
	return v
}

// quick evaluates a condition from its tests, if they are certain.
func (e *expr) quick(act *activation, last *lastArg) verdict {
	if len(e.clauses) == 0 {
		return unknown
	}
	all := true
	for _, c := range e.clauses {
		switch c.eval(act, last) {
		case isFalse:
			return isFalse
		case unknown:
			all = false
		}
	}
	if all && e.complete {
		return isTrue
	}
	return unknown
}

// lastArg remembers the argument read last: tests in a row tend to read
// the same one.
type lastArg struct {
	field                   string
	v                       string
	isString, present, read bool
}

// get returns args[field] if it is a string, and whether it is present.
func (l *lastArg) get(act *activation, field string) (v string, isString, present bool) {
	if !l.read || l.field != field {
		var x any
		x, l.present = act.args.m[field]
		l.v, l.isString = x.(string)
		l.field, l.read = field, true
	}
	return l.v, l.isString, l.present
}

// clausesOf returns the clauses among the top-level conjuncts of a checked
// expression, and whether they are all of it.
func clausesOf(e celast.Expr, fields map[string]string) ([]clause, bool) {
	var out []clause
	complete := true
	var walk func(e celast.Expr)
	walk = func(e celast.Expr) {
		if e.Kind() == celast.CallKind {
			call := e.AsCall()
			if call.FunctionName() == "_&&_" && !call.IsMemberFunction() && len(call.Args()) == 2 {
				walk(call.Args()[0])
				walk(call.Args()[1])
				return
			}
		}
		if c, ok := clauseOf(e, fields, nil); ok {
			out = append(out, c)
		} else {
			complete = false
		}
	}
	walk(e)
	return out, complete
}

// clauseOf recognises tests joined by ||, appending them to c.
func clauseOf(e celast.Expr, fields map[string]string, c clause) (clause, bool) {
	if e.Kind() == celast.CallKind {
		call := e.AsCall()
		if call.FunctionName() == "_||_" && !call.IsMemberFunction() && len(call.Args()) == 2 {
			c, ok := clauseOf(call.Args()[0], fields, c)
			if !ok {
				return nil, false
			}
			return clauseOf(call.Args()[1], fields, c)
		}
	}
	t, ok := testOf(e, fields)
	if !ok {
		return nil, false
	}
	return append(c, t), true
}

// testOf recognises one test.
func testOf(e celast.Expr, fields map[string]string) (argTest, bool) {
	var t argTest
	if e.Kind() == celast.SelectKind && e.AsSelect().IsTestOnly() {
		sel := e.AsSelect()
		if op := sel.Operand(); op.Kind() != celast.IdentKind || op.AsIdent() != "args" {
			return t, false
		}
		t.op, t.field = testHas, intern(fields, sel.FieldName())
		return t, true
	}
	if e.Kind() != celast.CallKind {
		return t, false
	}
	call := e.AsCall()
	args := call.Args()
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

// intern returns the interned copy of an argument name, so that equal
// names share their bytes and compare fast.
func intern(fields map[string]string, name string) string {
	if f, ok := fields[name]; ok {
		return f
	}
	fields[name] = name
	return name
}

// subject recognises tool.name, args.f and args["f"], filling t.
func subject(e celast.Expr, t *argTest, fields map[string]string) bool {
	switch e.Kind() {
	case celast.SelectKind:
		sel := e.AsSelect()
		op := sel.Operand()
		if sel.IsTestOnly() || op.Kind() != celast.IdentKind {
			return false
		}
		switch op.AsIdent() {
		case "tool":
			t.tool = true
			return sel.FieldName() == "name"
		case "args":
			t.field = intern(fields, sel.FieldName())
			return true
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
		t.field = intern(fields, s)
		return true
	}
	return false
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
//
// A second index serves rules that look for substrings (a blocklist of
// path fragments): the items not keyed on field whose condition has a
// clause args[sfield].contains("k") are found by running one matcher of
// all their constants over the argument, so that a call looks only at
// those whose constant occurs in it (the others are false, certainly).
type phase[T conditional] struct {
	items   []T
	noIndex bool
	field   string  // the indexed argument; "" for none
	rest    []int32 // items on neither index
	keyed   map[string][]int32

	sfield string    // the argument of the substring index; "" for none
	sub    *subIndex // the substring index; nil for none
}

// subIndex finds the items of a phase whose substring occurs in a value.
type subIndex struct {
	m     *substr.Matcher // the constants
	subOf [][]int32       // per constant, its items
}

// subCache shares substring indexes between the plans of a policy: a rule
// naming every tool is in every tool's plan, and one index serves them all.
type subCache struct {
	m sync.Map // string (the index's constants and items) → *subIndex
	n atomic.Int32
}

// maxSubIndexes bounds the substring indexes a policy shares; beyond it a
// plan builds its own.
const maxSubIndexes = 1024

// get returns the index of patterns and subOf, shared if one like it was
// built before.
func (c *subCache) get(patterns []string, subOf [][]int32) *subIndex {
	var b strings.Builder
	for k, pat := range patterns {
		b.WriteString(strconv.Quote(pat))
		for _, i := range subOf[k] {
			b.WriteByte(' ')
			b.WriteString(strconv.Itoa(int(i)))
		}
		b.WriteByte('\n')
	}
	key := b.String()
	if v, ok := c.m.Load(key); ok {
		return v.(*subIndex)
	}
	si := &subIndex{m: substr.New(patterns), subOf: subOf}
	if c.n.Load() < maxSubIndexes {
		if v, loaded := c.m.LoadOrStore(key, si); loaded {
			return v.(*subIndex)
		}
		c.n.Add(1)
	}
	return si
}

// minSubstringIndex is the number of substring tests on one argument from
// which a phase indexes them: below it, testing each is as fast.
const minSubstringIndex = 8

// conditional is a rule or a grant.
type conditional interface{ condition() *expr }

func (r *rule) condition() *expr  { return r.when }
func (g *grant) condition() *expr { return g.when }

// eqTestOf returns the equality test on an argument that is a clause of
// an item's condition: on field, or on any argument when field is "".
func eqTestOf[T conditional](it T, field string) *argTest {
	e := it.condition()
	if e == nil {
		return nil
	}
	for _, c := range e.clauses {
		if t := &c[0]; len(c) == 1 && !t.tool && t.op == testIn && (field == "" || t.field == field) {
			return t
		}
	}
	return nil
}

// newPhase builds a phase over items. With noIndex every item is
// evaluated.
func newPhase[T conditional](items []T, noIndex bool, subs *subCache) phase[T] {
	ph := phase[T]{items: items, noIndex: noIndex}
	if noIndex || len(items) < 2 {
		return ph
	}
	type fieldCount struct {
		field string
		n     int
	}
	var counts []fieldCount
	for _, it := range items {
		t := eqTestOf(it, "")
		if t == nil {
			continue
		}
		j := 0
		for j < len(counts) && counts[j].field != t.field {
			j++
		}
		if j == len(counts) {
			counts = append(counts, fieldCount{field: t.field})
		}
		counts[j].n++
	}
	best := 0
	for _, fc := range counts {
		if fc.n > best || fc.n == best && fc.field < ph.field {
			ph.field, best = fc.field, fc.n
		}
	}
	if best < 2 {
		ph.field = ""
	} else {
		ph.keyed = map[string][]int32{}
	}
	var rest []int32
	for i, it := range items {
		t := eqTestOf(it, ph.field)
		if t == nil || ph.field == "" {
			rest = append(rest, int32(i))
			continue
		}
		for _, v := range t.vals {
			ph.keyed[v] = append(ph.keyed[v], int32(i))
		}
	}
	ph.rest = ph.indexSubstrings(rest, subs)
	return ph
}

// containsTestOf returns the substring test on an argument that is a
// clause of an item's condition: on field, or on any argument when field
// is "". A test for the empty string (always true) is not one.
func containsTestOf[T conditional](it T, field string) *argTest {
	e := it.condition()
	if e == nil {
		return nil
	}
	for _, c := range e.clauses {
		if t := &c[0]; len(c) == 1 && !t.tool && t.op == testContains && t.vals[0] != "" && (field == "" || t.field == field) {
			return t
		}
	}
	return nil
}

// indexSubstrings builds the substring index over the items of rest, if
// enough of them test one argument for substrings, and returns the items
// left on neither index.
func (ph *phase[T]) indexSubstrings(rest []int32, subs *subCache) []int32 {
	counts := map[string]int{}
	for _, i := range rest {
		if t := containsTestOf(ph.items[i], ""); t != nil {
			counts[t.field]++
		}
	}
	best := 0
	for f, n := range counts {
		if n > best || n == best && f < ph.sfield {
			ph.sfield, best = f, n
		}
	}
	if best < minSubstringIndex {
		ph.sfield = ""
		return rest
	}
	var left []int32
	var patterns []string
	var subOf [][]int32
	at := map[string]int{}
	for _, i := range rest {
		t := containsTestOf(ph.items[i], ph.sfield)
		if t == nil {
			left = append(left, i)
			continue
		}
		k, ok := at[t.vals[0]]
		if !ok {
			k = len(patterns)
			at[t.vals[0]] = k
			patterns = append(patterns, t.vals[0])
			subOf = append(subOf, nil)
		}
		subOf[k] = append(subOf[k], i)
	}
	ph.sub = subs.get(patterns, subOf)
	return left
}

// cursor walks the items that can apply to a call, in order.
type cursor struct {
	a, b, c []int32 // three ascending lists to merge
	i, n    int32   // or every item, i up to n
	all     bool
}

// cursor returns a cursor over the items that can apply to the call. It
// may use act's scratch list, so a phase's cursor must be done with before
// the next is made.
func (ph *phase[T]) cursor(act *activation) cursor {
	if ph.keyed == nil && ph.sub == nil {
		return cursor{n: int32(len(ph.items)), all: true}
	}
	cur := cursor{a: ph.rest}
	if ph.keyed != nil {
		v, ok := act.args.m[ph.field].(string)
		if !ok {
			return cursor{n: int32(len(ph.items)), all: true}
		}
		cur.b = ph.keyed[v]
	}
	if ph.sub != nil {
		v, ok := act.args.m[ph.sfield].(string)
		if !ok {
			return cursor{n: int32(len(ph.items)), all: true}
		}
		cur.c = ph.substringItems(act, v)
	}
	return cur
}

// substringItems returns, in order, the items of the substring index whose
// constant occurs in v, in act's scratch list.
func (ph *phase[T]) substringItems(act *activation, v string) []int32 {
	hits := ph.sub.m.AppendMatches(act.hits[:0], v)
	if len(hits) == 0 {
		act.hits = hits
		return nil
	}
	n := len(hits)
	for _, k := range hits[:n] {
		hits = append(hits, ph.sub.subOf[k]...)
	}
	items := hits[n:]
	slices.Sort(items)
	items = slices.Compact(items)
	act.hits = hits
	return items
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
	l := &c.a
	if len(c.b) > 0 && (len(*l) == 0 || c.b[0] < (*l)[0]) {
		l = &c.b
	}
	if len(c.c) > 0 && (len(*l) == 0 || c.c[0] < (*l)[0]) {
		l = &c.c
	}
	if len(*l) == 0 {
		return 0, false
	}
	i := (*l)[0]
	*l = (*l)[1:]
	return int(i), true
}

// eval evaluates item i's condition: from its tests when they are
// certain, else by running it.
func (ph *phase[T]) eval(ctx context.Context, i int, act *activation, last *lastArg) (bool, error) {
	e := ph.items[i].condition()
	if e == nil {
		return true, nil
	}
	if !ph.noIndex {
		switch e.quick(act, last) {
		case isFalse:
			return false, nil
		case isTrue:
			return true, nil
		}
	}
	return e.evalBool(ctx, act)
}
