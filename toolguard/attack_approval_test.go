package toolguard_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestApprovalABA: the policy goes away and comes back, byte for byte,
// while the call waits. A revision names a policy's content, so the policy
// in force asks the very question the human answered, and the approval
// holds; the record names that revision. (Accepted: the approval is for
// this call under this content, not under a moment in time.)
func TestApprovalABA(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q))
	done := callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test"))
	req := nextRequest(t, q)
	require.NoError(t, e.g.SetPolicy(mustParse(t, "version: 1\n")))
	src, err := os.ReadFile("testdata/policy.yaml")
	require.NoError(t, err)
	back := mustParse(t, string(src))
	require.Equal(t, req.PolicyRevision, back.Revision())
	require.NoError(t, e.g.SetPolicy(back))
	require.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
	r := result(t, done)
	require.NoError(t, r.err)
	assert.Equal(t, int32(1), e.runs("send_email"))
	recs := e.rec.records()
	require.Equal(t, req.PolicyRevision, recs[0].Policy)
}

// TestApprovalOneAnswerOneCall: two calls with identical arguments wait at
// once; they share a binding but not a request. One answer runs one call;
// the answer cannot be replayed to the other's request id, and a second
// answer to the first is refused.
func TestApprovalOneAnswerOneCall(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q))
	d1 := callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test"))
	d2 := callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test"))
	r1, r2 := nextRequest(t, q), nextRequest(t, q)
	require.Equal(t, r1.Binding, r2.Binding)
	require.NotEqual(t, r1.ID, r2.ID)
	require.NoError(t, q.Answer(r1.ID, toolguard.Approval{Approved: true, By: "ops", Binding: r1.Binding}))
	require.ErrorIs(t, q.Answer(r1.ID, toolguard.Approval{Approved: true, By: "ops", Binding: r1.Binding}), toolguard.ErrUnknownRequest)
	// Which call made which request is not known: one of them returns.
	var res callResult
	other := d2
	select {
	case res = <-d1:
	case res = <-d2:
		other = d1
	case <-time.After(5 * time.Second):
		t.Fatal("the approved call did not return")
	}
	require.NoError(t, res.err)
	assert.Equal(t, int32(1), e.runs("send_email"))
	require.Len(t, q.Pending(), 1, "the other call still waits")
	require.Equal(t, r2.ID, q.Pending()[0].ID)
	require.NoError(t, q.Answer(r2.ID, toolguard.Approval{Approved: false, By: "ops", Reason: "once is enough"}))
	res = result(t, other)
	require.ErrorIs(t, res.err, toolguard.ErrNotApproved)
	assert.Equal(t, int32(1), e.runs("send_email"))
}

// TestPreapprovalIsSingleUseUnderRace: one pre-approval, many identical
// calls at once: exactly one runs, the others wait and are denied at the
// timeout.
func TestPreapprovalIsSingleUseUnderRace(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 300 * time.Millisecond})
	e := newEnv(t, toolguard.WithApprover(q))
	q.Preapprove(bindingOf(t, e, mail("alice@partner.test")), "ops")
	const n = 8
	var dones []<-chan callResult
	for range n {
		dones = append(dones, callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test")))
	}
	ok := 0
	for _, d := range dones {
		if r := result(t, d); r.err == nil {
			ok++
		} else {
			require.ErrorIs(t, r.err, toolguard.ErrNotApproved)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, int32(1), e.runs("send_email"))
}

// TestAnswerAfterTheCallGaveUp: the guard's approval timeout ends the
// wait; an answer arriving after it is refused, and the call, already
// denied and recorded, does not run.
func TestAnswerAfterTheCallGaveUp(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q), toolguard.WithApprovalTimeout(100*time.Millisecond))
	done := callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test"))
	req := nextRequest(t, q)
	r := result(t, done)
	require.ErrorIs(t, r.err, toolguard.ErrNotApproved)
	err := q.Answer(req.ID, toolguard.Approval{Approved: true, By: "late", Binding: req.Binding})
	require.ErrorIs(t, err, toolguard.ErrUnknownRequest)
	assert.Zero(t, e.runs("send_email"))
	recs := e.rec.records()
	require.Len(t, recs, 1)
	assert.Equal(t, "deny", recs[0].Effect)
}

// TestPreapprovalRaceWithSetPolicy: the policy changes between the
// decision and the approver's answer, and the answer is a pre-approval
// taken at once. The binding named the old revision, so the approval is
// void under the new policy, even though the new one asks too.
func TestPreapprovalRaceWithSetPolicy(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: time.Second})
	var g *toolguard.Guard
	changed := mustParse(t, `version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - {name: external-mail, effect: ask, tools: [send_email], when: 'true'}
`)
	racing := toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		require.NoError(t, g.SetPolicy(changed))
		return q.Approve(ctx, req)
	})
	e := newEnv(t, toolguard.WithApprover(racing))
	g = e.g
	q.Preapprove(bindingOf(t, e, mail("alice@partner.test")), "ops")
	_, err := e.g.Call(e.ctx, "send_email", mail("alice@partner.test"))
	require.ErrorIs(t, err, toolguard.ErrApprovalVoid)
	assert.Zero(t, e.runs("send_email"))
}

// TestCheckEffectOnAsk: a caller that reads Decision.Effect instead of
// the error sees Ask, never Allow, for a call a human must approve; and
// the error is set. (Accepted: code testing Effect != Deny skips the human;
// Check's documentation says to test the error, or Effect == Allow.)
func TestCheckEffectOnAsk(t *testing.T) {
	e := newEnv(t)
	d, err := e.g.Check(e.ctx, "send_email", mail("alice@partner.test"))
	require.ErrorIs(t, err, toolguard.ErrApprovalRequired)
	require.Equal(t, scope.Ask, d.Effect)
	require.NotEqual(t, scope.Allow, d.Effect)
	assert.NotEmpty(t, d.Binding)
	assert.Zero(t, e.runs("send_email"))
}

// TestApproverSeesWhatRuns: the approver is shown the canonical arguments
// (keys sorted, escapes decoded, numbers in one form); the handler gets
// the caller's bytes. Read back, both are the same value: a spelling the
// human cannot see (an escape, another key order, 1e2 for 100) changes
// nothing the tool reads.
func TestApproverSeesWhatRuns(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q))
	raw := `{"body":"pay 1e2 \u0045UR","to":"\u0061lice@partner.test"}`
	done := callAsync(e.ctx, e.g, "send_email", []byte(raw))
	req := nextRequest(t, q)
	require.Empty(t, req.Hidden)
	require.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
	r := result(t, done)
	require.NoError(t, r.err)
	var shown, ran map[string]any
	require.NoError(t, json.Unmarshal(req.Args, &shown))
	require.NoError(t, json.Unmarshal([]byte(r.out.(string)), &ran))
	require.Equal(t, shown, ran)
	require.Equal(t, "alice@partner.test", shown["to"])
}
