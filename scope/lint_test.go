package scope_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestLint(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  files:
    grants:
      - tools: [read_file, reed_file]
        when: args.path.startsWith("/w")
      - tools: [delete_file]
      - tools: [write_file]
        when: 1 == 2
  admin:
    grants:
      - tools: [drop_database]
        when: "true"
rules:
  - {name: lockdown, effect: deny, tools: ["*"], when: "principal.attrs.locked == true"}
  - {name: no-drop, effect: deny, tools: [drop_database]}
  - {name: no-drop-again, effect: deny, tools: [drop_database]}
  - name: big
    effect: deny
    tools: [read_file]
    when: args.items.exists(a, args.items.exists(b, a == b && a != 0))
principals:
  bot: [files]
`), scope.WithFilename("p.yaml"))
	require.NoError(t, err)
	findings := scope.Lint(p, scope.LintOptions{Tools: []scope.Tool{
		{Name: "read_file", Annotations: map[string]any{"readOnlyHint": true}},
		{Name: "write_file"},
		{Name: "delete_file", Annotations: map[string]any{"destructiveHint": true}},
		{Name: "drop_database", Annotations: map[string]any{"destructiveHint": true}},
		{Name: "send_mail"},
	}})
	var got []string
	for _, f := range findings {
		got = append(got, f.String())
	}
	assert.Equal(t, []string{
		`5:28: warning: grant files#0 names "reed_file", which matches no registered tool [unknown-tool]`,
		`3:3: warning: tool "write_file" is registered, but no scope grants it: every call to it is denied [ungranted-tool]`,
		`3:3: warning: tool "send_mail" is registered, but no scope grants it: every call to it is denied [ungranted-tool]`,
		`9:15: warning: grant files#2 can never match: its condition is always false [never-matches]`,
		`7:9: warning: grant files#1 allows the destructive tool "delete_file" unconditionally [always-true-destructive]`,
		`7:9: warning: grant files#1 allows the destructive tool "delete_file" with neither a limit nor an ask rule [destructive-unguarded]`,
		`12:9: warning: grant admin#0 allows the destructive tool "drop_database" unconditionally [always-true-destructive]`,
		`12:9: warning: grant admin#0 allows the destructive tool "drop_database" with neither a limit nor an ask rule [destructive-unguarded]`,
		`11:5: info: scope "admin" is held by no principal listed in the policy; only callers that bring it can use it [unheld-scope]`,
		`17:5: warning: rule "no-drop-again" can never decide: rule "no-drop" before it already denies every call it applies to [shadowed-rule]`,
		`21:11: info: rule "big" may cost up to 115301386365698051 on large arguments, over the limit of 100000: such calls are denied [costly-expression]`,
	}, got)

	for _, f := range scope.Lint(loadTestPolicy(t), scope.LintOptions{Tools: []scope.Tool{
		{Name: "read_text_file"}, {Name: "list_directory"}, {Name: "write_file"}, {Name: "mail_send"},
	}}) {
		assert.Equal(t, "info", f.Severity, "the test policy has no warnings: %s", f)
	}
}

func TestCanGrant(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  files:
    grants:
      - tools: [read_*]
        when: args.path.startsWith("/w")
      - tools: [write_file]
        when: 1 == 2
      - tools: [append_file]
        when: "false"
  ops:
    grants:
      - tools: [append_file]
        when: principal.id == "ops"
rules:
  - {name: lockdown, effect: deny, tools: [read_secret]}
`))
	require.NoError(t, err)
	for tool, want := range map[string]bool{
		"read_file":   true,  // by a glob, under a condition
		"read_secret": true,  // granted; a rule denies it, which is deliberate
		"append_file": true,  // one grant never matches, another can
		"write_file":  false, // its only grant never matches
		"send_mail":   false, // named by no grant
		"read":        false, // "read_*" needs the underscore
	} {
		assert.Equal(t, want, p.CanGrant(tool), tool)
	}
	var nilPolicy *scope.Policy
	assert.False(t, nilPolicy.CanGrant("read_file"))
}
