package policytest

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/scope/scopetest"
	"github.com/agentguard/agentguard/toolguard"
)

var (
	// -update rewrites testdata/coverage.golden (scopetest looks this flag up).
	_ = flag.Bool("update", false, "rewrite golden files")
	// -record rewrites testdata/decisions.jsonl under testdata/policy-v1.yaml.
	record = flag.Bool("record", false, "record testdata/decisions.jsonl again")
)

// TestPolicy runs the case file against the policy alone, requiring every
// rule and grant to be exercised, and keeps the coverage report as a golden
// file.
func TestPolicy(t *testing.T) {
	p, err := scope.Load("policy.yaml")
	require.NoError(t, err)
	cov := scopetest.Run(t, p, "testdata/cases.yaml",
		scopetest.MinCoverage(1),
		scopetest.Golden("testdata/coverage.golden"))
	t.Log(cov)
}

// TestPolicyWithTools runs the same cases through a guard, so the tools'
// schemas take part: the policy is type-checked against them when the tools
// are registered, and lint finds nothing to warn about.
func TestPolicyWithTools(t *testing.T) {
	p, err := scope.Load("policy.yaml")
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	require.NoError(t, RegisterTools(g))
	scopetest.Run(t, g, "testdata/cases.yaml")

	var tools []scope.Tool
	for _, ti := range g.Tools() {
		tools = append(tools, scope.Tool{Name: ti.Name, Annotations: ti.Annotations})
	}
	for _, f := range scope.Lint(p, scope.LintOptions{Tools: tools}) {
		assert.NotEqual(t, "warning", f.Severity, f.String())
	}
}

// Table tests for the cases that matter most.
func TestRefunds(t *testing.T) {
	p, err := scope.Load("policy.yaml")
	require.NoError(t, err)
	bot := scope.Principal{ID: "refund-bot", Attrs: map[string]any{"refund_limit_cents": 20000}}
	refund := func(cents int) scopetest.Call {
		return scopetest.Call{Principal: bot, Tool: "issue_refund", Args: map[string]any{"ticket": "T-9", "amount_cents": cents}}
	}
	scopetest.Expect(t, p, refund(10000)).AllowedBy("refunds")
	scopetest.Expect(t, p, refund(10001)).AsksBy("big-refunds").ReasonContains("needs a supervisor")
	scopetest.Expect(t, p, refund(20001)).Denied()
}

var principals = map[string]scope.Principal{
	"refund-bot": {ID: "refund-bot", Attrs: map[string]any{"refund_limit_cents": 20000}},
}

// TestReplay replays a decision log recorded under the previous policy
// against this one: the report lists exactly the decisions the change
// alters.
func TestReplay(t *testing.T) {
	if *record {
		recordLog(t)
	}
	p, err := scope.Load("policy.yaml")
	require.NoError(t, err)
	f, err := os.Open("testdata/decisions.jsonl")
	require.NoError(t, err)
	defer f.Close()
	rep, err := scopetest.Replay(context.Background(), p, f, scopetest.ReplayOptions{
		Principal: func(id string) (scope.Principal, bool) { pr, ok := principals[id]; return pr, ok },
	})
	require.NoError(t, err)
	t.Log(rep)
	assert.Equal(t, 8, rep.Decisions)
	assert.Equal(t, 4, rep.Unchanged)
	assert.Equal(t, map[string]int{"allow→deny": 2, "allow→ask": 1, "rule": 1}, rep.Counts)
}

// recordLog runs the calls of the recorded log under the previous policy.
func recordLog(t *testing.T) {
	old, err := scope.Load("testdata/policy-v1.yaml")
	require.NoError(t, err)
	require.NoError(t, os.Remove("testdata/decisions.jsonl"))
	log, err := audit.OpenFile("testdata/decisions.jsonl", audit.FileOptions{})
	require.NoError(t, err)
	defer func() { require.NoError(t, log.Close()) }()
	g, err := toolguard.New(old, toolguard.WithSink(log))
	require.NoError(t, err)
	require.NoError(t, RegisterTools(g))
	support := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "support-bot"})
	refunds := toolguard.WithPrincipal(context.Background(), principals["refund-bot"])
	for _, c := range []struct {
		ctx        context.Context
		tool, args string
	}{
		{support, "get_ticket", `{"id":"T-1"}`},
		{support, "search_tickets", `{"query":"refund","fields":["subject","card_number"]}`},
		{support, "close_ticket", `{"id":"T-1"}`},
		{refunds, "issue_refund", `{"ticket":"T-2","amount_cents":15000}`},
		{refunds, "issue_refund", `{"ticket":"T-3","amount_cents":30000}`},
		{refunds, "issue_refund", `{"ticket":"T-4","amount_cents":60000}`},
		{support, "comment_ticket", `{"id":"T-1","body":"On it."}`},
		{refunds, "get_ticket", `{"id":"T-2"}`},
	} {
		_, _ = g.Call(c.ctx, c.tool, json.RawMessage(c.args))
	}
}
