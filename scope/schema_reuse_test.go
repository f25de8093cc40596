package scope_test

import (
	"encoding/json"
	"fmt"
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
