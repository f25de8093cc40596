package scope_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestArgRefs(t *testing.T) {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  s:
    grants:
      - tools: [write]
        when: >-
          args.path.isUnder(principal.attrs.workspace) &&
          args["opts"].mode != "x" && has(args.meta.owner) &&
          "force" in args && args.files.all(f, f.name != "") &&
          args.list[0].item == 1 && principal.attrs["team"] == "a"
        limit: [spend]
      - tools: [other]
        when: args.unrelated == 1
limits:
  spend: {quota: 100/day, key: args.account, cost: int(args.amount)}
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.target) && args.target.glob("**/.env*")
    message: '"no " + args.msg'
`))
	require.NoError(t, err)
	var got []string
	for _, r := range p.ArgRefs("write") {
		got = append(got, r.String())
	}
	assert.Equal(t, []string{
		"args.account", "args.amount", "args.files", "args.force", "args.list",
		"args.meta", "args.meta.owner", "args.msg", "args.opts", "args.opts.mode",
		"args.path", "args.target",
		"….item", "….name",
	}, got)
	// Only the rule applies to an unknown tool; grants of other tools do
	// not count.
	got = nil
	for _, r := range p.ArgRefs("nothing") {
		got = append(got, r.String())
	}
	assert.Equal(t, []string{"args.msg", "args.target"}, got)
	assert.Nil(t, (*scope.Policy)(nil).ArgRefs("write"))
}

// TestLintComputedArgKey: a lookup by a key computed at run time is
// flagged; constant keys and list indexes are not.
func TestLintComputedArgKey(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: args[principal.attrs.field] == "x" && args["a"] == "y" && args.l[0] == 1
      - tools: [u]
        when: args["a"] == "y" && principal.attrs[args.a] == "z"
`))
	require.NoError(t, err)
	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "computed-arg-key" {
			got = append(got, f.Path)
		}
	}
	assert.Equal(t, []string{"/scopes/s/grants/0/when"}, got)
}

// TestArgRefsEveryExpression: the remember key of an ask rule, label
// conditions and result rules' conditions and messages read arguments
// too; each is a reference, so a case-folded spelling of its key cannot
// walk past it.
func TestArgRefsEveryExpression(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s: {grants: [{tools: [send, fetch]}]}
rules:
  - name: confirm
    effect: ask
    tools: [send]
    remember: args.recipient
labels:
  - {tools: [fetch], add: [untrusted], when: 'args.url.startsWith("http:")'}
results:
  rules:
    - name: hide
      effect: withhold
      tools: [fetch]
      when: 'has(args.secret) && result.is_error'
      message: '"no " + args.reason'
`))
	require.NoError(t, err)
	refs := func(tool string) []string {
		var got []string
		for _, r := range p.ArgRefs(tool) {
			got = append(got, r.String())
		}
		return got
	}
	assert.Equal(t, []string{"args.recipient"}, refs("send"))
	assert.Equal(t, []string{"args.reason", "args.secret", "args.url"}, refs("fetch"))
}

// TestArgRefsShadowedVariables: a comprehension may bind the name of a
// variable to the arguments; what is read through it is then a member of
// the arguments, reported as anywhere.
func TestArgRefsShadowedVariables(t *testing.T) {
	for _, when := range []string{
		`[args].all(call, call.path.startsWith("/tmp"))`,
		`[args].all(principal, principal.path.startsWith("/tmp"))`,
		`[args].all(tool, tool.path.startsWith("/tmp"))`,
		`[args.opts].all(args, args.path.startsWith("/tmp"))`,
		`[args].exists(session, session["path"] == "/tmp")`,
	} {
		p, err := scope.Parse([]byte(`version: 1
scopes:
  s: {grants: [{tools: [t], when: '` + when + `'}]}
`))
		require.NoError(t, err, when)
		assert.Contains(t, p.ArgRefs("t"), scope.ArgRef{Path: []string{"path"}, Anywhere: true}, when)
	}
}

// TestArgRefsKeyComparisons: a key compared with a comprehension's
// variable over the arguments, or spelled in a map literal compared with
// them, is read as has(args.key) reads it; a variable tested with "in
// args" is a key computed at run time.
func TestArgRefsKeyComparisons(t *testing.T) {
	for when, want := range map[string]string{
		`args.exists(k, k == "path")`:                "args.path",
		`args.all(k, k != "path")`:                   "args.path",
		`args.exists_one(k, "path" == k)`:            "args.path",
		`args.filter(k, k == "path").size() > 0`:     "args.path",
		`args.exists(k, k in ["path", "dir"])`:       "args.path",
		`args == {"path": "/etc"}`:                   "args.path",
		`args.opts.exists(k, k == "mode")`:           "args.opts.mode",
		`args.opts != {"mode": "x"}`:                 "args.opts.mode",
		`[args].exists(a, a.exists(k, k == "path"))`: "….path",
		`args.exists(k, k in {"force": 1})`:          "args.force",
		// The same name bound by two comprehensions: each comparison
		// counts for its own.
		`args.opts.exists(k, k == "mode") && args.exists(k, k == "path")`: "args.opts.mode",
		`args.exists(k, k == "path") && args.opts.exists(k, k == "mode")`: "args.path",
		// A range that is a function of args: the member may be anywhere.
		`dyn(args).exists(k, k == "path")`:          "….path",
		`(true ? args : {}).exists(k, k == "path")`: "….path",
	} {
		p, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t], when: '" + when + "'}]}\n"))
		require.NoError(t, err, when)
		var got []string
		for _, r := range p.ArgRefs("t") {
			got = append(got, r.String())
		}
		assert.Contains(t, got, want, when)
	}
	// Keys tested in other ways are known only at run time: Lint says so.
	lint := func(when string) []string {
		p, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t], when: '" + when + "'}]}\n"))
		require.NoError(t, err, when)
		var codes []string
		for _, f := range scope.Lint(p, scope.LintOptions{}) {
			codes = append(codes, f.Code)
		}
		return codes
	}
	for _, when := range []string{
		`["path"].exists(k, k in args)`,
		`args.exists(k, k.matches("^force$"))`,
		`args.exists(k, k.startsWith("forc"))`,
		`args.exists(k, {"force": true}[k])`,
		`args.exists(k, ["path"].exists(p, p == k))`,
		`args.map(k, k).exists(x, x == "force")`,
		`args.exists(k, k in ["path", principal.attrs.f])`,
		`args.exists(k, k in {"path": 1, principal.attrs.f: 2})`,
	} {
		assert.Contains(t, lint(when), "computed-arg-key", when)
	}
	for _, when := range []string{`args.exists(k, k == "path")`, `has(args.path)`, `args.files.all(f, f.path != "")`} {
		assert.NotContains(t, lint(when), "computed-arg-key", when)
	}
}
