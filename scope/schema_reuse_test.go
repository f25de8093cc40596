package scope_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// TestCheckToolsSchemasInTurn checks tools one at a time with schemas that
// alternate between fitting the policy and not: the type-checking
// environment is shared by object schemas and its types swapped per
// schema, and the passed checks are remembered by the types a schema gives
// args, so a schema that fits must never make a later one pass that does
// not, nor the other way round.
func TestCheckToolsSchemasInTurn(t *testing.T) {
	p, err := scope.Compile(scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{
		{Tools: []string{"*"}, When: `args.path.startsWith("/w") && args.opts.depth < 3`},
	}}}})
	require.NoError(t, err)
	fits := `{"type":"object","description":"%s","properties":{"path":{"type":"string"},"opts":{"type":"object","properties":{"depth":{"type":"integer"}}}}}`
	cases := []struct {
		schema string
		want   string // "" when it fits
	}{
		{fits, ""},
		{`{"type":"object","properties":{"path":{"type":"integer"},"opts":{"type":"object","properties":{"depth":{"type":"integer"}}}}}`, "startsWith"},
		{fits, ""},
		{`{"type":"object","properties":{"path":{"type":"string"},"opts":{"type":"object","properties":{"depth":{"type":"string"}}}}}`, "_<_"},
		{`{"type":"object","properties":{"path":{"type":"string"},"opts":{"type":"object","properties":{"deep":{"type":"integer"}}}}}`, "undefined field 'depth'"},
		{`{"type":"object","properties":{"pth":{"type":"string"},"opts":{"type":"object","properties":{"depth":{"type":"integer"}}}}}`, "undefined field 'path'"},
		{`{"type":"object","description":"another text, same types","properties":{"path":{"type":"string","maxLength":9},"opts":{"type":"object","properties":{"depth":{"type":"integer"}}}}}`, ""},
		{`{"type":"object","additionalProperties":{"type":"string"}}`, ""}, // without properties args is a map of dyn
		{fits, ""},
		{`{"type":"object"}`, ""}, // free-form: args is dyn
		{`[1]`, "not an object"},
		{fits, ""},
	}
	for i, c := range cases {
		schema := c.schema
		if schema == fits {
			schema = fmt.Sprintf(fits, fmt.Sprint("tool ", i))
		}
		err := p.CheckTools(map[string]json.RawMessage{"t": json.RawMessage(schema)})
		switch c.want {
		case "":
			require.NoError(t, err, "case %d", i)
		default:
			require.ErrorContains(t, err, c.want, "case %d", i)
		}
	}
}

// TestCheckToolsSharesByFieldsRead: a passed check is shared between
// schemas that differ only in properties the expression does not read,
// and never between schemas that differ in a property it reads (its type,
// its presence, or the types below it), nor, for an expression that uses
// args other than by selecting fields, between any schemas whose types
// differ.
func TestCheckToolsSharesByFieldsRead(t *testing.T) {
	cases := []struct {
		name, when string
		schemas    []string // checked in turn; those marked "!" must fail
	}{
		{"the type of a field read", `args.n > 5`, []string{
			`{"type":"object","properties":{"n":{"type":"integer"},"a":{"type":"string"}}}`,
			`{"type":"object","properties":{"n":{"type":"integer"},"b":{"type":"boolean"}}}`,
			`!{"type":"object","properties":{"n":{"type":"string"},"c":{"type":"integer"}}}`,
			`!{"type":"object","properties":{"n":{"type":"string"},"a":{"type":"string"}}}`,
			`!{"type":"object","properties":{"m":{"type":"integer"},"a":{"type":"string"}}}`,
			`{"type":"object","properties":{"n":{"type":"integer"},"d":{"type":"string"}}}`,
		}},
		{"a type below a field read", `args.o.depth < 3`, []string{
			`{"type":"object","properties":{"o":{"type":"object","properties":{"depth":{"type":"integer"}}},"x":{"type":"string"}}}`,
			`!{"type":"object","properties":{"o":{"type":"object","properties":{"depth":{"type":"string"}}},"y":{"type":"string"}}}`,
			`!{"type":"object","properties":{"o":{"type":"array","items":{"type":"object","properties":{"depth":{"type":"integer"}}}},"x":{"type":"string"}}}`,
			`{"type":"object","properties":{"o":{"type":"object","properties":{"depth":{"type":"integer"},"z":{"type":"string"}}},"x":{"type":"string"}}}`,
		}},
		{"a list of objects read", `args.l.all(e, e.k.startsWith("/"))`, []string{
			`{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"k":{"type":"string"}}}},"x":{"type":"string"}}}`,
			`!{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"k":{"type":"integer"}}}},"y":{"type":"string"}}}`,
			`!{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"kk":{"type":"string"}}}},"x":{"type":"string"}}}`,
		}},
		{"a field tested with has", `has(args.p) && args.p.startsWith("/")`, []string{
			`{"type":"object","properties":{"q":{"type":"string"}}}`,
			`{"type":"object","properties":{"p":{"type":"string"}}}`,
			`!{"type":"object","properties":{"p":{"type":"integer"}}}`,
			`{"type":"object","properties":{"r":{"type":"string"}}}`,
		}},
		{"args reached other than by a field", `[args][0].q.startsWith("/")`, []string{
			`{"type":"object","properties":{"q":{"type":"string"},"a":{"type":"string"}}}`,
			`!{"type":"object","properties":{"q":{"type":"integer"},"b":{"type":"string"}}}`,
			`!{"type":"object","properties":{"r":{"type":"string"}}}`,
		}},
		{"args used whole", `size(args) > 0`, []string{
			`{"type":"object","additionalProperties":{"type":"string"}}`,
			`!{"type":"object","properties":{"p":{"type":"string"}}}`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := scope.Compile(scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{
				{Tools: []string{"*"}, When: c.when},
			}}}})
			require.NoError(t, err)
			// Twice over: the second round finds the passed checks of the
			// first remembered.
			for round := range 2 {
				for i, s := range c.schemas {
					schema, fail := strings.CutPrefix(s, "!")
					err := p.CheckTools(map[string]json.RawMessage{fmt.Sprint("t", i): json.RawMessage(schema)})
					if fail {
						require.Error(t, err, "round %d, schema %d", round, i)
					} else {
						require.NoError(t, err, "round %d, schema %d", round, i)
					}
				}
			}
		})
	}
}
