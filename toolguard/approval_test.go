package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func mail(to string) json.RawMessage { return json.RawMessage(`{"to":"` + to + `"}`) }

// bindingOf asks the guard which binding an approval for this call needs.
func bindingOf(t *testing.T, e *env, args json.RawMessage) string {
	t.Helper()
	d, err := e.g.Check(e.ctx, "send_email", args)
	require.ErrorIs(t, err, toolguard.ErrApprovalRequired)
	require.Equal(t, scope.Ask, d.Effect)
	require.Len(t, d.Binding, 64)
	return d.Binding
}

func TestQueueAnswers(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q))
	go func() {
		req := <-q.Requests()
		assert.Equal(t, "send_email", req.Tool)
		assert.Len(t, req.Binding, 64)
		assert.Len(t, q.Pending(), 1)
		// Answering with another call's binding is refused; the right one
		// is accepted once.
		assert.ErrorIs(t, q.Answer(req.ID, toolguard.Approval{Approved: true, Binding: "0000"}), toolguard.ErrWrongBinding)
		assert.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
		assert.ErrorIs(t, q.Answer(req.ID, toolguard.Approval{Approved: true}), toolguard.ErrUnknownRequest, "single use")
	}()
	_, err := e.g.Call(e.ctx, "send_email", mail("alice@partner.test"))
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.runs("send_email"))
	assert.Empty(t, q.Pending())
	assert.ErrorIs(t, q.Answer("nope", toolguard.Approval{Approved: true}), toolguard.ErrUnknownRequest)
}

func TestPreapprovalIsBoundToTheExactCall(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 50 * time.Millisecond})
	e := newEnv(t, toolguard.WithApprover(q))
	alice := mail("alice@partner.test")
	q.Preapprove(bindingOf(t, e, alice), "ops")

	// Approving mail to alice never approves mail to mallory.
	_, err := e.g.Call(e.ctx, "send_email", mail("mallory@evil.test"))
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)
	assert.Contains(t, err.Error(), "no answer within 50ms")

	// Nor the same mail from another principal.
	other := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent-8", Scopes: []string{"mail"}})
	_, err = e.g.Call(other, "send_email", alice)
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)

	// The approved call runs, once.
	_, err = e.g.Call(e.ctx, "send_email", alice)
	require.NoError(t, err)
	_, err = e.g.Call(e.ctx, "send_email", alice)
	assert.ErrorIs(t, err, toolguard.ErrNotApproved, "a used approval is refused")
	assert.EqualValues(t, 1, e.runs("send_email"))
}

func TestPreapprovalExpires(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 20 * time.Millisecond, TTL: 10 * time.Millisecond})
	e := newEnv(t, toolguard.WithApprover(q))
	alice := mail("alice@partner.test")
	q.Preapprove(bindingOf(t, e, alice), "ops")
	time.Sleep(30 * time.Millisecond)
	_, err := e.g.Call(e.ctx, "send_email", alice)
	assert.ErrorIs(t, err, toolguard.ErrNotApproved, "an expired approval is refused")
	assert.Zero(t, e.runs("send_email"))
}

func TestPreapprovalDoesNotSurviveAPolicyChange(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 20 * time.Millisecond})
	e := newEnv(t, toolguard.WithApprover(q))
	alice := mail("alice@partner.test")
	q.Preapprove(bindingOf(t, e, alice), "ops")
	p, err := scope.Parse([]byte(`version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - {name: all-mail, effect: ask, tools: [send_email]}
`))
	require.NoError(t, err)
	require.NoError(t, e.g.SetPolicy(p))
	_, err = e.g.Call(e.ctx, "send_email", alice)
	assert.ErrorIs(t, err, toolguard.ErrNotApproved, "the approval was for the call under the old policy")
}

func TestApprovalTimeoutDenies(t *testing.T) {
	blocking := toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		assert.False(t, req.Expires.IsZero())
		<-ctx.Done()
		return toolguard.Approval{}, ctx.Err()
	})
	e := newEnv(t, toolguard.WithApprover(blocking), toolguard.WithApprovalTimeout(30*time.Millisecond))
	start := time.Now()
	_, err := e.g.Call(e.ctx, "send_email", mail("x@evil.test"))
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)
	assert.True(t, errors.Is(err, context.DeadlineExceeded))
	assert.Less(t, time.Since(start), 3*time.Second)
	recs := e.rec.records()
	require.Len(t, recs, 1)
	require.NotNil(t, recs[0].Approval)
	assert.False(t, recs[0].Approval.Approved)
	assert.Contains(t, recs[0].Reason, "the approval failed")
}

func TestApproverAnsweringForAnotherCall(t *testing.T) {
	wrong := toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		return toolguard.Approval{Approved: true, Binding: toolguard.Binding("agent-7", "send_email", "x", "y")}, nil
	})
	e := newEnv(t, toolguard.WithApprover(wrong))
	_, err := e.g.Call(e.ctx, "send_email", mail("x@evil.test"))
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)
	assert.ErrorIs(t, err, toolguard.ErrWrongBinding)
	assert.Zero(t, e.runs("send_email"))
}
