package scope

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/agentguard/agentguard/internal/glob"
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
func (p *Policy) CheckTools(schemas map[string]json.RawMessage) error {
	if p == nil {
		return nil
	}
	c := compiler{o: &p.opts}
	c.checkSchemas(p, schemas)
	return joinErrs(c.errs)
}

// checkSchemas type-checks every expression of p against the schema of each
// tool it applies to.
func (c *compiler) checkSchemas(p *Policy, schemas map[string]json.RawMessage) {
	names := sortedKeys(schemas)
	type checker struct {
		env *cel.Env
		sp  *schemaProvider
	}
	envs := map[string]*checker{}
	envFor := func(tool string) *checker {
		if ch, ok := envs[tool]; ok {
			return ch
		}
		e, sp, err := schemaEnv(schemas[tool])
		if err != nil {
			c.errorf("", "", "tool %q: %v", tool, err)
			envs[tool] = nil
			return nil
		}
		envs[tool] = &checker{e, sp}
		return envs[tool]
	}
	matching := func(patterns []string) []string {
		var out []string
		for _, n := range names {
			if slices.ContainsFunc(patterns, func(pat string) bool { return glob.Match(pat, n) }) {
				out = append(out, n)
			}
		}
		return out
	}
	// check type-checks e; fields that e, or the condition guarding it,
	// tests with has() may be missing from the schema: has(args.path) is
	// how a rule over "*" skips tools without a path.
	check := func(e *expr, tool string, ch *checker, guard *expr) {
		if e == nil || ch == nil {
			return
		}
		ch.sp.extra = presenceTests(e.src)
		if guard != nil {
			for f := range presenceTests(guard.src) {
				if ch.sp.extra == nil {
					ch.sp.extra = map[string]bool{}
				}
				ch.sp.extra[f] = true
			}
		}
		defer func() { ch.sp.extra = nil }()
		if _, iss := ch.env.Compile(e.src); iss != nil && iss.Err() != nil {
			for _, ce := range iss.Errors() {
				c.celError(e.path, e.src, ce.Location.Line(), ce.Location.Column(),
					fmt.Sprintf("for tool %q: %s", tool, ce.Message))
			}
		}
	}
	for _, r := range p.rules {
		for _, tool := range matching(r.tools) {
			ch := envFor(tool)
			check(r.when, tool, ch, nil)
			check(r.message, tool, ch, r.when)
		}
	}
	for _, g := range p.grants {
		for _, tool := range matching(g.tools) {
			ch := envFor(tool)
			check(g.when, tool, ch, nil)
			for _, l := range g.limits {
				check(l.key, tool, ch, g.when)
				check(l.cost, tool, ch, g.when)
			}
		}
	}
}

// presenceTests returns the field names an expression tests with has().
func presenceTests(src string) map[string]bool {
	env, err := env()
	if err != nil {
		return nil
	}
	parsed, iss := env.Parse(src)
	if iss != nil && iss.Err() != nil {
		return nil
	}
	var out map[string]bool
	for _, n := range celast.MatchDescendants(celast.NavigateAST(parsed.NativeRep()), celast.KindMatcher(celast.SelectKind)) {
		if sel := n.AsSelect(); sel.IsTestOnly() {
			if out == nil {
				out = map[string]bool{}
			}
			out[sel.FieldName()] = true
		}
	}
	return out
}

// schemaEnv builds a type-checking environment for one tool's schema.
func schemaEnv(schema json.RawMessage) (*cel.Env, *schemaProvider, error) {
	doc, err := safejson.Decode(schema, safejson.Limits{})
	if err != nil {
		return nil, nil, fmt.Errorf("input schema: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("input schema is not an object")
	}
	sp := &schemaProvider{types: map[string]*schemaType{}}
	sp.root = sp.typeOf(obj, "args", 0)
	if sp.root.Kind() != types.StructKind {
		sp.root = cel.MapType(cel.StringType, cel.DynType)
	}
	e, err := cel.NewEnv(envOptions(sp)...)
	if err != nil {
		return nil, nil, err
	}
	return e, sp, nil
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
