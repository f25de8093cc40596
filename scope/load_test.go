package scope_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestLoadErrorsHavePositions(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring of the error
		line int
		col  int
	}{
		{name: "undeclared variable in when", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: argz.path == "x"
`, want: "undeclared reference to 'argz'", line: 6, col: 15},
		{name: "quoted expression column", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: "args.path == principal.atrs"
`, want: "undefined field 'atrs'", line: 6, col: 38},
		{name: "block scalar expression", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: |
          args.path == "x" &&
            principal.nope == 1
`, want: "undefined field 'nope'", line: 8, col: 22},
		{name: "when must be bool", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: args.path + "x"
`, want: "want bool", line: 6, col: 15},
		{name: "message must be string", src: `version: 1
rules:
  - name: r
    effect: deny
    tools: [t]
    message: 42
`, want: "want string", line: 6, col: 14},
		{name: "syntax error", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: args.path ==
`, want: "Syntax error", line: 6},
		{name: "unknown field", src: `version: 1
scopes:
  s:
    gants: []
`, want: "field gants not found", line: 4},
		{name: "duplicate key", src: `version: 1
scopes:
  s:
    grants: [{tools: [a]}]
  s:
    grants: [{tools: [b]}]
`, want: "already defined", line: 5},
		{name: "wrong version", src: `version: 2
`, want: "unsupported policy version 2", line: 1, col: 10},
		{name: "unknown limit", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        limit: nope
`, want: `unknown limit "nope"`, line: 6, col: 16},
		{name: "bad rate", src: `version: 1
limits:
  l: {rate: ten/m}
`, want: "count must be a positive integer", line: 3, col: 13},
		{name: "unknown effect", src: `version: 1
rules:
  - name: r
    effect: allow
    tools: [t]
`, want: `effect must be "deny" or "ask"`, line: 4, col: 13},
		{name: "duplicate rule", src: `version: 1
rules:
  - {name: r, effect: deny, tools: [t]}
  - {name: r, effect: deny, tools: [t]}
`, want: `rule name "r" is used twice`, line: 4, col: 12},
		{name: "principal with unknown scope", src: `version: 1
principals:
  bot: [nope]
`, want: `unknown scope "nope"`, line: 3, col: 9},
		{name: "rule without tools", src: `version: 1
rules:
  - {name: r, effect: deny}
`, want: "no tools named"},
		{name: "bad tool glob", src: `version: 1
rules:
  - {name: r, effect: deny, tools: ['a\']}
`, want: "bad tool pattern"},
		{name: "bad mode", src: `version: 1
rules:
  - {name: r, effect: deny, tools: [t], mode: audit}
`, want: `mode must be "enforce" or "shadow"`},
		{name: "wrong type", src: `version: 1
scopes: [1, 2]
`, want: "cannot unmarshal", line: 2},
		{name: "empty", src: ``, want: "policy is empty"},
		{name: "two documents", src: "version: 1\n---\nversion: 1\n", want: "more than one YAML document"},
		{name: "cost bomb", src: `version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: '[1,2,3,4,5,6,7,8,9,10].map(a, [1,2,3,4,5,6,7,8,9,10].map(b, [1,2,3,4,5,6,7,8,9,10].map(c, [1,2,3,4,5,6,7,8,9,10].map(d, [1,2,3,4,5,6,7,8,9,10].map(e, a+b+c+d+e))))).size() > 0'
`, want: "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scope.Parse([]byte(tt.src), scope.WithFilename("p.yaml"))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "p.yaml")
			if tt.line > 0 {
				var pe *scope.Error
				require.True(t, errors.As(err, &pe), "want *scope.Error, got %T", err)
				assert.Equal(t, tt.line, pe.Line, "line in %s", err)
				if tt.col > 0 {
					assert.Equal(t, tt.col, pe.Column, "column in %s", err)
				}
			}
		})
	}
}

func TestLoadReportsAllErrors(t *testing.T) {
	_, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: a == 1
      - tools: [t]
        when: b == 1
`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "'a'")
	assert.Contains(t, err.Error(), "'b'")
}

func TestLoadFile(t *testing.T) {
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	assert.Len(t, p.Revision(), 64)

	_, err = scope.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestJSONPolicy(t *testing.T) {
	p, err := scope.Parse([]byte(`{"version": 1, "scopes": {"s": {"grants": [{"tools": ["t"], "when": "args.x == 1", "limit": ["l"]}]}},
		"limits": {"l": {"rate": "5/10s"}}}`))
	require.NoError(t, err)
	l, ok := p.Limit("l")
	require.True(t, ok)
	assert.Equal(t, 5, l.Count)
	assert.Equal(t, 5, l.Burst, "burst defaults to the count")
	assert.Equal(t, "principal.id", l.KeyExpr, "key defaults to principal.id")
}

func TestRevisionIgnoresLayout(t *testing.T) {
	a := compile(t, `version: 1
scopes:
  s: {grants: [{tools: [t], when: "args.x == 1"}]}
  r: {grants: [{tools: [u]}]}
`)
	b := compile(t, `# same policy, other layout
scopes:
  r:
    grants:
      - tools: [u]
  s:
    grants:
      - when: "args.x == 1"
        tools: [t]
version: 1
`)
	c := compile(t, `version: 1
scopes:
  s: {grants: [{tools: [t], when: "args.x == 2"}]}
  r: {grants: [{tools: [u]}]}
`)
	assert.Equal(t, a.Revision(), b.Revision())
	assert.NotEqual(t, a.Revision(), c.Revision())
}

func TestCompileInGo(t *testing.T) {
	p, err := scope.Compile(scope.Def{
		Version: 1,
		Scopes: map[string]scope.ScopeDef{
			"s": {Grants: []scope.GrantDef{{Tools: []string{"t"}, When: `args.x == "y"`}}},
		},
	})
	require.NoError(t, err)
	assert.Equal(t, scope.Allow, p.Decide(t.Context(), in("u", []string{"s"}, "t", map[string]any{"x": "y"})).Effect)

	_, err = scope.Compile(scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{
		"s": {Grants: []scope.GrantDef{{Tools: []string{"t"}, When: `args.x ==`}}},
	}})
	require.Error(t, err)
	var pe *scope.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "/scopes/s/grants/0/when", pe.Path)
	assert.Equal(t, 0, pe.Line, "no positions for a policy built in code")
}

func TestPolicyTooLarge(t *testing.T) {
	big := make([]byte, scope.MaxPolicyBytes+1)
	_, err := scope.Parse(big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than")
}
