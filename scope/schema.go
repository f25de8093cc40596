package scope

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/agentguard/agentguard/internal/safejson"
)

// WithToolSchemas type-checks the policy against the input JSON Schemas of
// the tools it will guard, by tool name: in every expression that applies
// to a tool, args has that tool's argument types, so that a misspelt
// argument (args.pth where the schema has path) or a comparison of a string
// property with a number is a load error with its position, not a condition
// that silently never holds. Properties not declared in a schema are errors.
func WithToolSchemas(schemas map[string]json.RawMessage) Option {
	return func(o *options) { o.schemas = schemas }
}

// CheckTools type-checks the policy's expressions against tool input
// schemas, as [WithToolSchemas] does at load. It reports every problem, with
// positions when the policy came from a file. A guard calls it when tools are
// registered.
//
// Only the rules and grants that apply to each tool are checked, and a
// check that passed for the same schema and expression before is not
// repeated, so registering tools one at a time costs time proportional to
// what each tool touches.
func (p *Policy) CheckTools(schemas map[string]json.RawMessage) error {
	if p == nil {
		return nil
	}
	c := compiler{o: &p.opts}
	c.checkSchemas(p, schemas)
	return joinErrs(c.errs)
}

// checkCache keeps, per policy, the type-checking environments and the
// checks that passed, by the CEL types a schema gives args (its
// signature), not by its text: schemas that differ only in descriptions,
// titles, formats or bounds type-check alike. The check of an expression
// that only selects fields of args is kept by the types of those fields
// (see fieldsSignature), so that schemas that differ in properties it
// does not read share it too.
type checkCache struct {
	mu     sync.Mutex
	obj    *checker            // the environment for schemas whose args is an object type
	envs   map[string]*checker // by signature, for the other schemas
	passed map[checkKey]struct{}
	// fnDecls declare the application functions (functions.go).
	fnDecls []cel.EnvOption
}

type checker struct {
	env *cel.Env
	sp  *schemaProvider
	sig string // the signature of the schema checked now
	err error
}

type checkKey struct{ sig, src, guard string }

// Bounds of the check cache: a guard registering many tools with distinct
// schemas keeps only this many environments and passed checks.
const (
	maxCheckEnvs   = 64
	maxCheckPassed = 1 << 16
)

// checkSchemas type-checks every expression of p against the schema of each
// tool it applies to.
func (c *compiler) checkSchemas(p *Policy, schemas map[string]json.RawMessage) {
	cc := &p.check
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, tool := range sortedKeys(schemas) {
		pl := p.planFor(tool)
		if !plHasExprs(pl) {
			continue
		}
		schema := string(schemas[tool])
		ch := cc.envFor(schema)
		if ch.err != nil {
			c.errorf("", "", "tool %q: %v", tool, ch.err)
			continue
		}
		for _, r := range pl.rules {
			c.checkExpr(cc, ch, tool, r.when, nil)
			c.checkExpr(cc, ch, tool, r.message, r.when)
		}
		for _, g := range pl.grants {
			c.checkExpr(cc, ch, tool, g.when, nil)
			for _, l := range g.limits {
				c.checkExpr(cc, ch, tool, l.key, g.when)
				c.checkExpr(cc, ch, tool, l.cost, g.when)
			}
		}
	}
}

// plHasExprs reports whether any expression applies to the plan's tool.
func plHasExprs(pl *plan) bool {
	for _, r := range pl.rules {
		if r.when != nil || r.message != nil {
			return true
		}
	}
	for _, g := range pl.grants {
		if g.when != nil || len(g.limits) > 0 {
			return true
		}
	}
	return false
}

// envFor returns the checking environment of a schema. Every schema whose
// args is an object type shares one environment, built on first use: its
// args is declared as the same type name, and the object types behind that
// name — which the checker looks up in the provider on every check — are
// set to this schema's before it returns. Other schemas (args a map) get an
// environment each, cached by signature. cc.mu is held, and must stay held
// while the returned checker is used.
func (cc *checkCache) envFor(schema string) *checker {
	sp, err := schemaTypes(json.RawMessage(schema))
	if err != nil {
		return &checker{err: err}
	}
	sig := sp.signature()
	if sp.root.Kind() == types.StructKind {
		if cc.obj == nil {
			e, err := cel.NewEnv(cc.envOptions(sp)...)
			cc.obj = &checker{env: e, sp: sp, err: err}
		}
		cc.obj.sp.types, cc.obj.sig = sp.types, sig
		return cc.obj
	}
	if ch, ok := cc.envs[sig]; ok {
		return ch
	}
	if cc.envs == nil || len(cc.envs) >= maxCheckEnvs {
		cc.envs = map[string]*checker{}
	}
	e, err := cel.NewEnv(cc.envOptions(sp)...)
	ch := &checker{env: e, sp: sp, sig: sig, err: err}
	cc.envs[sig] = ch
	return ch
}

// envOptions are the options of a checking environment: the policy's
// variables and the application functions it declares.
func (cc *checkCache) envOptions(sp *schemaProvider) []cel.EnvOption {
	return append(envOptions(sp), cc.fnDecls...)
}

// signature describes the types the provider declares: equal signatures
// type-check every expression alike.
func (sp *schemaProvider) signature() string {
	var b strings.Builder
	b.WriteString(sp.root.String())
	for _, name := range sortedKeys(sp.types) {
		st := sp.types[name]
		b.WriteString("\n")
		b.WriteString(strconv.Quote(name))
		for _, f := range st.names {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(f))
			b.WriteByte(':')
			b.WriteString(strconv.Quote(st.fields[f].String()))
		}
	}
	return b.String()
}

// fieldsSignature describes the types of the named fields of args, and
// of the object types they lead to: schemas with equal field signatures
// type-check alike every expression that uses args only to select those
// fields (see argFields), whatever their other properties are.
func (sp *schemaProvider) fieldsSignature(fields []string) string {
	var b strings.Builder
	b.WriteString("fields\n") // never a signature's first line
	b.WriteString(sp.root.String())
	root, ok := sp.types[sp.root.TypeName()]
	if sp.root.Kind() != types.StructKind || !ok {
		// args is a map: its fields are all dyn.
		return b.String()
	}
	reached := map[string]bool{}
	var reach func(t *types.Type)
	reach = func(t *types.Type) {
		if t.Kind() == types.StructKind {
			st, ok := sp.types[t.TypeName()]
			if !ok || reached[t.TypeName()] {
				return
			}
			reached[t.TypeName()] = true
			for _, f := range st.names {
				reach(st.fields[f])
			}
			return
		}
		for _, p := range t.Parameters() {
			reach(p)
		}
	}
	for _, f := range fields {
		b.WriteString("\n")
		b.WriteString(strconv.Quote(f))
		t, ok := root.fields[f]
		if !ok {
			b.WriteString(" absent")
			continue
		}
		b.WriteByte(':')
		b.WriteString(strconv.Quote(t.String()))
		reach(t)
	}
	for _, name := range sortedKeys(reached) {
		st := sp.types[name]
		b.WriteString("\n")
		b.WriteString(strconv.Quote(name))
		for _, f := range st.names {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(f))
			b.WriteByte(':')
			b.WriteString(strconv.Quote(st.fields[f].String()))
		}
	}
	return b.String()
}

// argFields returns the fields of args that an expression selects by name
// (args.f, has(args.f)), sorted, and whether that is the only way it uses
// args. Then checking it against a schema looks up, of the types the
// schema gives args, only those fields and the object types they lead to.
// An expression that uses args whole (passes it to a function, indexes,
// compares or iterates it, selects args.?f) or names a type of the schema
// (agentguard.schema..., in an identifier or a struct literal, which name
// lookups reach) reports false: its check may depend on every property.
func argFields(a *celast.AST) (fields []string, ok bool) {
	isArgs := func(e celast.Expr) bool {
		return e.Kind() == celast.IdentKind && strings.TrimPrefix(e.AsIdent(), ".") == "args"
	}
	ok = true
	idents, selects := 0, 0
	celast.MatchDescendants(celast.NavigateAST(a), func(e celast.NavigableExpr) bool {
		switch e.Kind() {
		case celast.IdentKind:
			if isArgs(e) {
				idents++
			}
			if strings.Contains(e.AsIdent(), "agentguard") {
				ok = false
			}
		case celast.SelectKind:
			if isArgs(e.AsSelect().Operand()) {
				selects++
				fields = append(fields, e.AsSelect().FieldName())
			}
		case celast.StructKind:
			ok = false
		}
		return false
	})
	if !ok || idents != selects {
		return nil, false
	}
	slices.Sort(fields)
	return slices.Compact(fields), true
}

// checkExpr type-checks e for one tool. Fields that e, or the condition
// guarding it, tests with has() may be missing from the schema:
// has(args.path) is how a rule over "*" skips tools without a path. cc.mu
// is held.
func (c *compiler) checkExpr(cc *checkCache, ch *checker, tool string, e, guard *expr) {
	if e == nil {
		return
	}
	key := checkKey{sig: ch.sig, src: e.src}
	if e.fieldsOnly {
		key.sig = ch.sp.fieldsSignature(e.argFields)
	}
	if guard != nil {
		key.guard = guard.src
	}
	if _, ok := cc.passed[key]; ok {
		return
	}
	ch.sp.extra = e.has
	if guard != nil && len(guard.has) > 0 {
		ch.sp.extra = maps.Clone(guard.has)
		if ch.sp.extra == nil {
			ch.sp.extra = map[string]bool{}
		}
		maps.Copy(ch.sp.extra, e.has)
	}
	defer func() { ch.sp.extra = nil }()
	if iss := ch.check(e); iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			c.celError(e.path, e.src, ce.Location.Line(), ce.Location.Column(),
				fmt.Sprintf("for tool %q: %s", tool, ce.Message))
		}
		return
	}
	if cc.passed == nil || len(cc.passed) >= maxCheckPassed {
		cc.passed = map[checkKey]struct{}{}
	}
	cc.passed[key] = struct{}{}
}

// check type-checks e in the checker's environment. The expression is
// parsed once and its parse kept: a fresh copy of it (checking rewrites
// the tree it is given) is checked against each schema.
func (ch *checker) check(e *expr) *cel.Issues {
	if e.parsed == nil {
		_, iss := ch.env.Compile(e.src)
		return iss
	}
	pe := e.parsed.Load()
	if pe == nil {
		a, iss := ch.env.Parse(e.src)
		if iss != nil && iss.Err() != nil {
			return iss
		}
		pe, _ = cel.AstToParsedExpr(a)
		if pe == nil {
			_, iss := ch.env.Check(a)
			return iss
		}
		e.parsed.Store(pe)
	}
	_, iss := ch.env.Check(cel.ParsedExprToAstWithSource(pe, common.NewTextSource(e.src)))
	return iss
}

// presenceTests returns the field names an expression tests with has().
func presenceTests(a *celast.AST) map[string]bool {
	var out map[string]bool
	for _, n := range celast.MatchDescendants(celast.NavigateAST(a), celast.KindMatcher(celast.SelectKind)) {
		if sel := n.AsSelect(); sel.IsTestOnly() {
			if out == nil {
				out = map[string]bool{}
			}
			out[sel.FieldName()] = true
		}
	}
	return out
}

// schemaTypes derives the CEL types of args from one tool's schema.
func schemaTypes(schema json.RawMessage) (*schemaProvider, error) {
	doc, err := safejson.Decode(schema, safejson.Limits{})
	if err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("input schema is not an object")
	}
	sp := &schemaProvider{types: map[string]*schemaType{}}
	sp.root = sp.typeOf(obj, "args", 0)
	if sp.root.Kind() != types.StructKind {
		sp.root = cel.MapType(cel.StringType, cel.DynType)
	}
	return sp, nil
}

// schemaProvider declares an object type for every JSON Schema object with
// properties, so that the checker knows the fields of args.
type schemaProvider struct {
	base  types.Provider
	root  *cel.Type
	types map[string]*schemaType
	extra map[string]bool // fields allowed as dyn while checking one expression
}

type schemaType struct {
	typ    *types.Type
	fields map[string]*types.Type
	names  []string
}

const maxSchemaDepth = 32

// typeOf maps a JSON Schema to a CEL type. Numbers are dyn: JSON does not
// say whether 5 is an int or a double, and at run time integral numbers are
// ints.
func (sp *schemaProvider) typeOf(s map[string]any, name string, depth int) *types.Type {
	if depth > maxSchemaDepth {
		return types.DynType
	}
	t, _ := s["type"].(string)
	props, hasProps := s["properties"].(map[string]any)
	switch {
	case t == "string":
		return types.StringType
	case t == "integer":
		return types.IntType
	case t == "boolean":
		return types.BoolType
	case t == "array":
		if items, ok := s["items"].(map[string]any); ok {
			return types.NewListType(sp.typeOf(items, name+"_item", depth+1))
		}
		return types.NewListType(types.DynType)
	case (t == "object" || t == "") && hasProps:
		st := &schemaType{typ: types.NewObjectType("agentguard.schema." + strings.ReplaceAll(name, "/", "_")), fields: map[string]*types.Type{}}
		sp.types[st.typ.TypeName()] = st
		for _, k := range sortedKeys(props) {
			ps, _ := props[k].(map[string]any)
			if ps == nil {
				st.fields[k] = types.DynType
			} else {
				st.fields[k] = sp.typeOf(ps, name+"."+k, depth+1)
			}
			st.names = append(st.names, k)
		}
		return st.typ
	case t == "object":
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			return types.NewMapType(types.StringType, sp.typeOf(ap, name+"_value", depth+1))
		}
		return types.NewMapType(types.StringType, types.DynType)
	}
	return types.DynType
}

func (sp *schemaProvider) EnumValue(name string) ref.Val { return sp.base.EnumValue(name) }

func (sp *schemaProvider) FindIdent(name string) (ref.Val, bool) { return sp.base.FindIdent(name) }

func (sp *schemaProvider) FindStructType(name string) (*types.Type, bool) {
	if st, ok := sp.types[name]; ok {
		return types.NewTypeTypeWithParam(st.typ), true
	}
	return sp.base.FindStructType(name)
}

func (sp *schemaProvider) FindStructFieldNames(name string) ([]string, bool) {
	if st, ok := sp.types[name]; ok {
		return st.names, true
	}
	return sp.base.FindStructFieldNames(name)
}

func (sp *schemaProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if st, ok := sp.types[name]; ok {
		t, ok := st.fields[field]
		if !ok {
			if !sp.extra[field] {
				return nil, false
			}
			t = types.DynType
		}
		return &types.FieldType{Type: t}, true
	}
	return sp.base.FindStructFieldType(name, field)
}

func (sp *schemaProvider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	return sp.base.NewValue(name, fields)
}
