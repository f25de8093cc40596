package scope

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharePolicy names tools a0..a(n-1) one grant each, under the same rules;
// rule only-a0 applies to a0 alone by its tool.name test.
func sharePolicy(n int) string {
	var b strings.Builder
	b.WriteString(`version: 1
rules:
  - {name: only-a0, effect: deny, tools: ["*"], when: 'tool.name == "a0" && args.x == "bad"'}
  - {name: no-secret, effect: deny, tools: ["*"], when: 'args.x.contains("secret")'}
  - {name: ask-big, effect: ask, tools: ["*"], when: 'args.x == "big"'}
scopes:
`)
	for i := range n {
		fmt.Fprintf(&b, "  s%d:\n    grants:\n      - tools: [a%d]\n        when: 'args.x.startsWith(\"ok\") || args.x == \"bad\" || args.x == \"big\" || int(args.x) > 0'\n", i, i)
	}
	return b.String()
}

func decideShare(t *testing.T, p *Policy, tool, x string, scopes ...string) Decision {
	t.Helper()
	return p.Decide(context.Background(), Input{
		Principal: Principal{ID: "u", Scopes: scopes},
		Tool:      Tool{Name: tool},
		Args:      map[string]any{"x": x},
	})
}

// TestRulePartsShared: tools under the same rules share one rule part, a
// rule a tool.name test keeps for one tool only is never shared with
// another, and each decision is the one its own tool's rules give.
func TestRulePartsShared(t *testing.T) {
	p, err := Parse([]byte(sharePolicy(20)))
	require.NoError(t, err)
	d := decideShare(t, p, "a0", "bad", "s0")
	assert.Equal(t, Deny, d.Effect, d.Reason)
	assert.Equal(t, "only-a0", d.Rule)
	for i := 1; i < 20; i++ {
		tool, s := fmt.Sprintf("a%d", i), fmt.Sprintf("s%d", i)
		d := decideShare(t, p, tool, "bad", s)
		assert.Equal(t, Allow, d.Effect, "%s: %s", tool, d.Reason)
		d = decideShare(t, p, tool, "a secret", s)
		assert.Equal(t, "no-secret", d.Rule, tool)
		d = decideShare(t, p, tool, "big", s)
		assert.Equal(t, Ask, d.Effect, tool)
	}
	a0, a1, a2 := p.planFor("a0"), p.planFor("a1"), p.planFor("a2")
	assert.NotSame(t, a0.rulePlan, a1.rulePlan, "only-a0 is in a0's deny phase alone")
	assert.Same(t, a1.rulePlan, a2.rulePlan)
	assert.Len(t, a0.deny.items, 2)
	assert.Len(t, a1.deny.items, 1)
	assert.Len(t, a1.rules, 3, "a plan still lists every rule naming its tool")
}

// TestRulePartsBeyondTheBound: past maxRulePlans distinct rule sets, plans
// build their own rule parts and decide the same.
func TestRulePartsBeyondTheBound(t *testing.T) {
	n := maxRulePlans + 50
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: r%d, effect: deny, tools: [t%d], when: 'args.x == \"v%d\"'}\n", i, i, i)
	}
	b.WriteString("scopes:\n  s:\n    grants:\n      - tools: [\"*\"]\n")
	p, err := Parse([]byte(b.String()))
	require.NoError(t, err)
	for _, i := range []int{0, maxRulePlans - 1, maxRulePlans, n - 1} {
		tool := fmt.Sprintf("t%d", i)
		d := decideShare(t, p, tool, fmt.Sprintf("v%d", i), "s")
		assert.Equal(t, fmt.Sprintf("r%d", i), d.Rule, tool)
		d = decideShare(t, p, tool, fmt.Sprintf("v%d", i+1), "s")
		assert.Equal(t, Allow, d.Effect, "%s: %s", tool, d.Reason)
	}
	for i := range n {
		p.planFor(fmt.Sprintf("t%d", i))
	}
	assert.LessOrEqual(t, len(p.rulePlans.m), maxRulePlans)
	d := decideShare(t, p, fmt.Sprintf("t%d", n-1), fmt.Sprintf("v%d", n-1), "s")
	assert.Equal(t, fmt.Sprintf("r%d", n-1), d.Rule)
}

// TestSharedExpressionKeepsItsPath: grants with the same condition share
// its compiled form, and a failure still names the grant that failed.
func TestSharedExpressionKeepsItsPath(t *testing.T) {
	p, err := Parse([]byte(sharePolicy(3)))
	require.NoError(t, err)
	g1, g2 := p.planFor("a1").grants[0], p.planFor("a2").grants[0]
	assert.Same(t, g1.when.exprCore, g2.when.exprCore)
	d := decideShare(t, p, "a2", "not a number", "s2")
	assert.Equal(t, Deny, d.Effect)
	require.NotEmpty(t, d.Errors)
	assert.Equal(t, "/scopes/s2/grants/0/when", d.Errors[0].Path)
	assert.Contains(t, d.Reason, "evaluating it failed")
}
