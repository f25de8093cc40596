package scope_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

const dataPolicy = `
version: 1
scopes:
  docs:
    grants:
      - resources: ["file:///w/**", "demo://resource/static/**"]
        when: uri.scheme != "file" || uri.path.isUnder(principal.attrs.workspace)
      - prompts: ["simple-*", "args-prompt"]
        when: '!has(args.city) || args.city != "Atlantis"'
  files:
    grants:
      - tools: [read_file]
principals:
  bob: [files]
rules:
  - name: no-secrets
    effect: deny
    resources: ["file:///w/secret/**"]
    message: '"secrets are off limits: " + uri.path'
  - name: no-dotenv
    effect: deny
    resources: ["**"]
    when: uri.path.glob("**/.env*")
  - name: shadow-demo
    effect: deny
    mode: shadow
    resources: ["demo://**"]
  - name: no-tools-rule-on-resources
    effect: deny
    tools: ["*"]
`

func dataPol(t testing.TB) *scope.Policy {
	t.Helper()
	p, err := scope.Parse([]byte(dataPolicy))
	require.NoError(t, err)
	return p
}

var alice = scope.Principal{ID: "alice", Scopes: []string{"docs"}, Attrs: map[string]any{"workspace": "/w"}}

// TestDecideResource: grants allow by canonical URI and condition; deny
// rules catch every spelling; rules over tools never apply to resources;
// a principal without a resource grant reads nothing.
func TestDecideResource(t *testing.T) {
	p := dataPol(t)
	ctx := context.Background()
	for _, c := range []struct {
		pr          scope.Principal
		uri         string
		allow       bool
		rule, grant string
	}{
		{alice, "file:///w/a.txt", true, "", "docs#0"},
		{alice, "FILE://localhost/w/./sub/../a.txt", true, "", "docs#0"},
		{alice, "demo://RESOURCE/static/document/x", true, "", "docs#0"},
		{alice, "file:///w/secret/key", false, "no-secrets", ""},
		{alice, "file:///w/x/../secret/key", false, "no-secrets", ""},
		{alice, "file:///w/%73ecret/key", false, "no-secrets", ""},
		{alice, "file:///w/SECRET/../secret/key", false, "no-secrets", ""},
		{alice, "file:/w/secret%2Fkey", false, "no-secrets", ""},
		{alice, "file:///w/app/.env.local", false, "no-dotenv", ""},
		{alice, "file:///w/app/%2Eenv", false, "no-dotenv", ""},
		{alice, "file:///etc/passwd", false, "", ""},
		{alice, "file:///w/../etc/passwd", false, "", ""},
		{alice, "file:///w/%2e%2e/etc/passwd", false, "", ""},
		{alice, "file:///w/a#/../../etc/passwd", false, "", ""},
		{alice, "file:///w/a?/../../etc/passwd", false, "", ""},
		{alice, "file:///w/%252e%252e/etc/passwd", false, "", ""},
		{alice, "file://evil/w/a.txt", false, "", ""},
		{alice, "demo://resource/dynamic/text/1", false, "", ""},
		{scope.Principal{ID: "alice", Scopes: []string{"docs"}, Attrs: map[string]any{"workspace": "/other"}}, "file:///w/a.txt", false, "", ""},
		{scope.Principal{ID: "bob"}, "file:///w/a.txt", false, "", ""},
		{scope.Principal{Scopes: []string{"docs"}}, "file:///w/a.txt", false, "", ""},
	} {
		d := p.DecideResource(ctx, scope.ResourceInput{Principal: c.pr, URI: c.uri})
		assert.Equal(t, c.allow, d.Effect == scope.Allow, "%s %q: %s", c.pr.ID, c.uri, d.Reason)
		assert.Equal(t, c.rule, d.Rule, "%q", c.uri)
		assert.Equal(t, c.grant, d.GrantID, "%q", c.uri)
		assert.NotEmpty(t, d.Reason)
		assert.NotContains(t, d.Reason, "scope.")
		assert.Equal(t, c.allow, p.ResourceVisible(ctx, c.pr, nil, c.uri), "listing and reading agree on %q", c.uri)
	}
	d := p.DecideResource(ctx, scope.ResourceInput{Principal: alice, URI: "file:///w/secret/key"})
	assert.Equal(t, "secrets are off limits: /w/secret/key", d.Reason)
	d = p.DecideResource(ctx, scope.ResourceInput{Principal: alice, URI: "demo://resource/static/document/x"})
	require.Len(t, d.Shadow, 1, "shadow rules are evaluated and reported")
	assert.True(t, d.Shadow[0].Matched)
	assert.Equal(t, p.Revision(), d.Revision)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	assert.Equal(t, scope.Deny, p.DecideResource(cancelled, scope.ResourceInput{Principal: alice, URI: "file:///w/a.txt"}).Effect)
	var nilPolicy *scope.Policy
	assert.Equal(t, scope.Deny, nilPolicy.DecideResource(ctx, scope.ResourceInput{Principal: alice, URI: "file:///w/a.txt"}).Effect)
}

// TestDecideResourceEvalErrorDenies: a condition that fails to evaluate
// never allows, and in a deny rule it denies.
func TestDecideResourceEvalErrorDenies(t *testing.T) {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  s:
    grants:
      - resources: ["file:///**"]
        when: uri.path.isUnder(principal.attrs.workspace)
rules:
  - name: r
    effect: deny
    resources: ["file:///x/**"]
    when: principal.attrs.blocked
`))
	require.NoError(t, err)
	noAttrs := scope.Principal{ID: "p", Scopes: []string{"s"}}
	d := p.DecideResource(context.Background(), scope.ResourceInput{Principal: noAttrs, URI: "file:///w/a"})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.NotEmpty(t, d.Errors)
	d = p.DecideResource(context.Background(), scope.ResourceInput{Principal: noAttrs, URI: "file:///x/a"})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "r", d.Rule, "an erroring deny rule denies")
}

func TestDecidePrompt(t *testing.T) {
	p := dataPol(t)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		args  map[string]string
		allow bool
	}{
		{"simple-prompt", nil, true},
		{"args-prompt", map[string]string{"city": "Paris"}, true},
		{"args-prompt", map[string]string{"city": "Atlantis"}, false},
		{"completable-prompt", nil, false},
		{"Simple-prompt", nil, false},
		{"simple-prompt ", nil, true}, // a glob: "simple-*" names it; the server decides whether it exists
		{"", nil, false},
	} {
		d := p.DecidePrompt(ctx, scope.PromptInput{Principal: alice, Name: c.name, Args: c.args})
		assert.Equal(t, c.allow, d.Effect == scope.Allow, "%q %v: %s", c.name, c.args, d.Reason)
	}
	assert.True(t, p.PromptVisible(alice, nil, "args-prompt"), "a condition over arguments is not evaluated for the list")
	assert.False(t, p.PromptVisible(alice, nil, "completable-prompt"))
	assert.False(t, p.PromptVisible(scope.Principal{ID: "bob"}, nil, "simple-prompt"))
}

func TestResourceTemplateVisible(t *testing.T) {
	p := dataPol(t)
	for tmpl, want := range map[string]bool{
		"demo://resource/static/document/{name}": true,
		"demo://resource/{+rest}":                true, // can produce granted URIs; each read is decided
		"DEMO://Resource/static/{x}":             true,
		"demo://resource/dynamic/text/{id}":      false,
		"file:///{+path}":                        true,
		"file:///etc/{name}":                     false,
		"https://example.com/{x}":                false,
		"file:///w/a.txt":                        true,
		"file:///w/a#x":                          false,
	} {
		assert.Equal(t, want, p.ResourceTemplateVisible(alice, nil, tmpl), tmpl)
	}
	assert.False(t, p.ResourceTemplateVisible(scope.Principal{ID: "bob"}, nil, "file:///{+path}"))
	assert.False(t, p.ResourceTemplateVisible(scope.Principal{}, nil, "file:///{+path}"))
}

// TestOldPoliciesLoadAndGrantNoData: a policy written before resources and
// prompts were governed loads, decides tools as before, keeps its revision
// (the canonical form gains no member), and grants no resource or prompt.
func TestOldPoliciesLoadAndGrantNoData(t *testing.T) {
	src := `
version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
principals:
  p: [all]
`
	p, err := scope.Parse([]byte(src))
	require.NoError(t, err)
	b, err := json.Marshal(p.Def())
	require.NoError(t, err)
	assert.NotContains(t, string(b), "resources")
	assert.NotContains(t, string(b), "prompts")
	assert.Equal(t, "801e5e39ae126404530cf4994bafa711bbb280fe639a2faca1956e5672cd15b9", p.Revision(), "the revision of an old policy is the one the previous version computed")
	pr := scope.Principal{ID: "p"}
	assert.Equal(t, scope.Allow, p.Decide(context.Background(), scope.Input{Principal: pr, Tool: scope.Tool{Name: "x"}}).Effect)
	assert.False(t, p.GrantsData())
	d := p.DecideResource(context.Background(), scope.ResourceInput{Principal: pr, URI: "file:///a"})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, "no scope held by")
	assert.Equal(t, scope.Deny, p.DecidePrompt(context.Background(), scope.PromptInput{Principal: pr, Name: "x"}).Effect)
	assert.False(t, p.PromptVisible(pr, nil, "x"))
	assert.False(t, p.ResourceTemplateVisible(pr, nil, "file:///{+p}"))
}

// TestDataPolicyRevision: resource and prompt patterns are part of the
// revision.
func TestDataPolicyRevision(t *testing.T) {
	a, err := scope.Parse([]byte("version: 1\nscopes: {s: {grants: [{resources: [\"file:///a/**\"]}]}}"))
	require.NoError(t, err)
	b, err := scope.Parse([]byte("version: 1\nscopes: {s: {grants: [{resources: [\"file:///b/**\"]}]}}"))
	require.NoError(t, err)
	c, err := scope.Parse([]byte("version: 1\nscopes: {s: {grants: [{prompts: [\"file:///a/**\"]}]}}"))
	require.NoError(t, err)
	assert.NotEqual(t, a.Revision(), b.Revision())
	assert.NotEqual(t, a.Revision(), c.Revision())
}

// TestDataPolicyLoadErrors: resource and prompt grants and rules are
// checked at load like everything else.
func TestDataPolicyLoadErrors(t *testing.T) {
	for src, want := range map[string]string{
		`{resources: ["file:///w/**"], tools: [x]}`:               "not several kinds",
		`{resources: ["file:///w/**"], prompts: [x]}`:             "not several kinds",
		`{resources: ["FILE:///w/**"]}`:                           "not in canonical form",
		`{resources: ["file:///w/../etc/**"]}`:                    "not in canonical form",
		`{resources: ["file:///w/a b"]}`:                          "not in canonical form",
		`{resources: ["*"]}`:                                      "not a URI pattern",
		`{resources: ["w/**"]}`:                                   "not a URI pattern",
		`{resources: ["file:///w/a#x"]}`:                          "fragment",
		`{resources: ["file:///w/**"], when: "args.path == 'x'"}`: "undeclared reference to 'args'",
		`{resources: ["file:///w/**"], when: "tool.name == 'x'"}`: "undeclared reference to 'tool'",
		`{resources: ["file:///w/**"], when: "uri.nope == 'x'"}`:  "nope",
		`{resources: ["file:///w/**"], when: "uri.path"}`:         "want bool",
		`{resources: ["file:///w/**"], limit: l}`:                 "limits apply to tool grants only",
		`{prompts: ["p"], when: "uri.path == 'x'"}`:               "undeclared reference to 'uri'",
		`{prompts: ["p"], when: "args.x == 1"}`:                   "no matching overload",
		`{prompts: ["p\\"]}`:                                      "bad prompt pattern",
	} {
		_, err := scope.Parse([]byte("version: 1\nlimits: {l: {rate: 1/s}}\nscopes:\n  s:\n    grants:\n      - " + src + "\n"))
		if assert.Error(t, err, src) {
			assert.Contains(t, err.Error(), want, src)
			assert.Contains(t, err.Error(), "6:", "the error points into the file: %s", src)
		}
	}
	_, err := scope.Parse([]byte("version: 1\nrules:\n  - {name: r, effect: ask, resources: [\"file:///**\"]}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "can only deny")
	_, err = scope.Parse([]byte("version: 1\nrules:\n  - {name: r, effect: deny, prompts: [p], message: \"uri.path\"}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undeclared reference to 'uri'")
}

func TestLintResourceGrants(t *testing.T) {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  s:
    grants:
      - resources: ["**"]
      - resources: ["file:///**", "file:///w/**", "https://*.example.com/**"]
      - resources: ["demo://h/**"]
        when: principal.id == "x"
`))
	require.NoError(t, err)
	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{ServesData: true}) {
		got = append(got, f.Severity+" "+f.Code+" "+f.Path)
	}
	assert.Equal(t, []string{
		"warning wide-resource-grant /scopes/s/grants/0/resources/0",
		"warning wide-resource-grant /scopes/s/grants/1/resources/0",
		"warning wide-resource-grant /scopes/s/grants/1/resources/2",
		"info wide-resource-grant /scopes/s/grants/2/resources/0",
	}, got)

	old, err := scope.Parse([]byte("version: 1\nscopes: {s: {grants: [{tools: [x]}]}}"))
	require.NoError(t, err)
	var codes []string
	for _, f := range scope.Lint(old, scope.LintOptions{ServesData: true}) {
		codes = append(codes, f.Code)
	}
	assert.Contains(t, codes, "no-data-grants")
	for _, f := range scope.Lint(old, scope.LintOptions{}) {
		assert.NotEqual(t, "no-data-grants", f.Code, "reported only for a server that offers resources or prompts")
	}
	assert.True(t, strings.HasPrefix(scope.Lint(p, scope.LintOptions{})[0].Message, "grant s#0 lets its holders read every resource"))
}

// TestRulePathsWithDataRules: rules over resources and prompts do not shift
// the paths of tool rules in lint findings and elements.
func TestRulePathsWithDataRules(t *testing.T) {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  s:
    grants:
      - tools: [x]
rules:
  - {name: d, effect: deny, resources: ["file:///x/**"]}
  - {name: a, effect: deny, tools: ["*"]}
  - {name: b, effect: deny, tools: [x]}
`))
	require.NoError(t, err)
	var paths []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "shadowed-rule" {
			paths = append(paths, f.Path)
		}
	}
	assert.Equal(t, []string{"/rules/2"}, paths)
}
