package scope_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestLintPathGlobs(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  files:
    grants:
      - tools: [read]
        when: args.path.isUnder(principal.attrs.workspace)
      - tools: [write]
        when: args.path.resolvesUnder(principal.attrs.workspace)
rules:
  - {name: relative, effect: deny, tools: [read], when: 'args.path.glob("w/secrets/**")'}
  - {name: unclean, effect: deny, tools: [read], when: 'args.path.glob("/w//secrets/./**")'}
  - {name: rooted, effect: ask, tools: ["*"], when: 'args.path.glob("/w/secrets/**")'}
  - {name: dotenv, effect: deny, tools: [read], when: 'args.path.glob("**/.env*")'}
  - {name: resolved-grant, effect: deny, tools: [write], when: 'args.path.glob("/w/keys/**")'}
  - {name: other-field, effect: deny, tools: [read], when: 'args.dest.glob("/w/keys/**")'}
  - {name: shadowed, effect: deny, mode: shadow, tools: [read], when: 'args.path.glob("w/x/**")'}
  - {name: no-slash, effect: deny, tools: [read], when: 'args.path.glob("*.key")'}
  - {name: indexed, effect: deny, tools: [read], when: 'args["path"].glob("w/y/**")'}
  - {name: lexical-deny, effect: deny, tools: [other], when: 'args.path.isUnder("/w/secrets")'}
`), scope.WithFilename("p.yaml"))
	require.NoError(t, err)
	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "glob-uncleaned-path" || f.Code == "glob-lexical-grant" || f.Code == "lexical-path-rule" {
			got = append(got, f.Severity+" "+f.Code+" "+f.Path)
		}
	}
	assert.Equal(t, []string{
		"info glob-lexical-grant /rules/0/when",
		"warning glob-uncleaned-path /rules/1/when",
		"warning glob-lexical-grant /rules/2/when",
		"info glob-lexical-grant /rules/3/when",
		"info glob-lexical-grant /rules/8/when",
		"warning lexical-path-rule /rules/9/when",
	}, got)
}

// The advice of glob-lexical-grant holds: with the isUnder grant a link
// walks around the rooted deny glob, with a resolvesUnder rule it does not.
func TestLintPathGlobAdvice(t *testing.T) {
	dir := fsTree(t)
	ws := dir + "/ws"
	principal := map[string]any{"workspace": ws, "secrets": dir + "/out"}
	decide := func(p *scope.Policy, path string) scope.Effect {
		i := in("u", []string{"files"}, "read", map[string]any{"path": path})
		i.Principal.Attrs = principal
		return p.Decide(t.Context(), i).Effect
	}
	globbed := compile(t, `version: 1
scopes: {files: {grants: [{tools: [read], when: args.path.isUnder(principal.attrs.workspace)}]}}
rules: [{name: no-out, effect: deny, tools: [read], when: 'args.path.glob("`+dir+`/out/**")'}]
`)
	require.NotEmpty(t, scope.Lint(globbed, scope.LintOptions{}))
	assert.Equal(t, scope.Allow, decide(globbed, ws+"/outdir/secret"), "the link walks around the glob")

	lexicalRule := compile(t, `version: 1
scopes: {files: {grants: [{tools: [read], when: args.path.isUnder(principal.attrs.workspace)}]}}
rules: [{name: no-out, effect: deny, tools: [read], when: 'args.path.isUnder(principal.attrs.secrets)'}]
`)
	assert.Equal(t, scope.Allow, decide(lexicalRule, ws+"/outdir/secret"), "the link walks around an isUnder rule")

	resolved := compile(t, `version: 1
scopes: {files: {grants: [{tools: [read], when: args.path.isUnder(principal.attrs.workspace)}]}}
rules: [{name: no-out, effect: deny, tools: [read], when: 'args.path.resolvesUnder(principal.attrs.secrets)'}]
`)
	assert.Equal(t, scope.Deny, decide(resolved, ws+"/outdir/secret"))
	assert.Equal(t, scope.Allow, decide(resolved, ws+"/notes.txt"))
}
