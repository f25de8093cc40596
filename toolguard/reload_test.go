package toolguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func TestCandidatePolicy(t *testing.T) {
	candidate, err := scope.Parse([]byte(`version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.attrs.workspace) && !args.path.endsWith(".log")
  mail:
    grants:
      - tools: [send_email]
rules:
  - {name: no-dotenv, effect: deny, tools: ["*"], when: 'has(args.path) && args.path.glob("**/.env*")'}
  - {name: no-tmp, effect: deny, tools: [read_file], when: 'args.path.startsWith("/w/tmp/")'}
  - {name: mail-asks, effect: ask, tools: [send_email]}
`))
	require.NoError(t, err)
	e := newEnv(t, toolguard.WithCandidate(candidate), toolguard.WithApprover(toolguard.ApproverFunc(
		func(_ context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
			return toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}, nil
		})))
	calls := []struct{ tool, args string }{
		{"read_file", `{"path":"/w/a.txt"}`},      // agree: allow
		{"read_file", `{"path":"/w/b.txt"}`},      // agree: allow
		{"read_file", `{"path":"/w/.env"}`},       // agree: deny by no-dotenv
		{"read_file", `{"path":"/w/tmp/x"}`},      // allow → deny (no-tmp)
		{"read_file", `{"path":"/w/app.log"}`},    // allow → deny (no grant)
		{"read_file", `{"path":"/etc/passwd"}`},   // agree: deny, no grant
		{"send_email", `{"to":"a@example.com"}`},  // allow → ask (mail-asks)
		{"send_email", `{"to":"b@partner.test"}`}, // ask → ask, but another rule: "rule"
		{"read_file", `{"path":42}`},              // never reaches the policy
	}
	for _, c := range calls {
		_, _ = e.g.Call(e.ctx, c.tool, json.RawMessage(c.args))
	}
	sum := e.g.ShadowSummary()
	assert.Equal(t, candidate.Revision(), sum.Candidate)
	assert.Equal(t, 8, sum.Calls)
	assert.Equal(t, 4, sum.Agree)
	assert.Equal(t, map[string]int{"allow→deny": 2, "allow→ask": 1, "rule": 1}, sum.Disagree)
	assert.Equal(t, map[string]int{"no-tmp": 1, "no grant": 1, "mail-asks": 2}, sum.ByRule)
	assert.EqualValues(t, 2, e.runs("send_email"), "the candidate is never enforced")

	e.g.SetCandidate(nil)
	_, _ = e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/tmp/x"}`))
	assert.Zero(t, e.g.ShadowSummary().Calls)
}

// While 16 goroutines call, the policy is swapped 1,000 times. Every record
// must name the revision that decided it, and its decision must be that
// revision's; no call may be lost or recorded twice; the log must verify.
func TestReloadUnderLoad(t *testing.T) {
	open, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [read_file]}]}\n"))
	require.NoError(t, err)
	closed, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [read_file]}]}\nrules:\n  - {name: lockdown, effect: deny, tools: ['*']}\n"))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(open, toolguard.WithSink(rec))
	require.NoError(t, err)
	var ran atomic.Int64
	require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", Handler: func(context.Context, json.RawMessage) (any, error) {
		ran.Add(1)
		return "ok", nil
	}}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})

	stop := make(chan struct{})
	var calls, allowed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if _, err := g.Call(ctx, "read_file", json.RawMessage(fmt.Sprintf(`{"n":"%d-%d"}`, i, n))); err == nil {
					allowed.Add(1)
				}
			}
		}(i)
	}
	for i := 0; i < 1000; i++ {
		p := open
		if i%2 == 0 {
			p = closed
		}
		require.NoError(t, g.SetPolicy(p))
	}
	close(stop)
	wg.Wait()

	byID := map[string]int{}
	decisions := 0
	for _, r := range rec.records() {
		if r.Kind != audit.KindDecision {
			continue
		}
		decisions++
		byID[r.ID]++
		switch r.Policy {
		case open.Revision():
			assert.Equal(t, "allow", r.Effect, "record %s", r.ID)
		case closed.Revision():
			assert.Equal(t, "deny", r.Effect, "record %s", r.ID)
			assert.Equal(t, "lockdown", r.Rule)
		default:
			t.Fatalf("record %s names unknown revision %q", r.ID, r.Policy)
		}
	}
	assert.EqualValues(t, calls.Load(), decisions, "every call has exactly one decision record")
	for id, n := range byID {
		require.Equal(t, 1, n, "call %s recorded %d times", id, n)
	}
	sum := rec.verify(t)
	assert.EqualValues(t, allowed.Load(), sum.Allowed)
	assert.EqualValues(t, allowed.Load(), sum.Outcomes)
	assert.EqualValues(t, ran.Load(), allowed.Load())
	t.Logf("%d calls across 1,000 reloads, %d allowed", calls.Load(), allowed.Load())
}
