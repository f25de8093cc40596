package toolguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

type callResult struct {
	out any
	err error
}

// callAsync starts a call and returns where its result arrives.
func callAsync(ctx context.Context, g *toolguard.Guard, tool string, args json.RawMessage) <-chan callResult {
	done := make(chan callResult, 1)
	go func() {
		out, err := g.Call(ctx, tool, args)
		done <- callResult{out, err}
	}()
	return done
}

// nextRequest waits for the queue to announce a request.
func nextRequest(t *testing.T, q *toolguard.Queue) toolguard.ApprovalRequest {
	t.Helper()
	select {
	case req := <-q.Requests():
		return req
	case <-time.After(5 * time.Second):
		t.Fatal("no approval request")
	}
	return toolguard.ApprovalRequest{}
}

func result(t *testing.T, done <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not return")
	}
	return callResult{}
}

func mustParse(t *testing.T, src string) *scope.Policy {
	t.Helper()
	p, err := scope.Parse([]byte(src))
	require.NoError(t, err)
	return p
}

// An approval answers the question the policy asked while the call
// waited. A policy set during the wait that no longer asks exactly that
// (the same rule, for the same binding) voids it, whatever it decides.
func TestApprovalIsVoidAfterPolicyChange(t *testing.T) {
	original, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	tests := []struct {
		name   string
		policy *scope.Policy
		reason string // in the denial
	}{
		{name: "the new policy denies", policy: mustParse(t, `version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - {name: no-mail, effect: deny, tools: [send_email], message: '"mail is switched off"'}
`), reason: `denied by rule "no-mail": mail is switched off; the policy changed while the call waited for approval`},
		{name: "the new policy grants nothing", policy: mustParse(t, "version: 1\n"),
			reason: "the policy changed while the call waited for approval"},
		{name: "the new policy allows without asking", policy: mustParse(t, `version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
`), reason: "call again to have it decided under the new policy"},
		{name: "the new policy asks by another rule", policy: mustParse(t, `version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - {name: all-mail, effect: ask, tools: [send_email]}
`), reason: "the approval does not cover the call under the policy in force"},
		{name: "the same rule name in another policy", policy: mustParse(t, `version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - {name: external-mail, effect: ask, tools: [send_email], when: 'args.to.contains("@")'}
`), reason: "the policy changed while the call waited for approval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
			e := newEnv(t, toolguard.WithApprover(q))
			done := callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test"))
			req := nextRequest(t, q)
			require.Equal(t, original.Revision(), req.PolicyRevision)

			require.NoError(t, e.g.SetPolicy(tt.policy))
			require.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
			r := result(t, done)

			require.Error(t, r.err)
			assert.ErrorIs(t, r.err, toolguard.ErrNotApproved)
			assert.ErrorIs(t, r.err, toolguard.ErrApprovalVoid)
			assert.Contains(t, r.err.Error(), tt.reason)
			var de *toolguard.DeniedError
			require.ErrorAs(t, r.err, &de)
			assert.NotContains(t, de.Decision.Reason, "toolguard", "the reason a model reads names no package")
			assert.Zero(t, e.runs("send_email"), "the tool must not run")

			recs := e.rec.records()
			require.Len(t, recs, 1, "one decision record, no outcome")
			rec := recs[0]
			assert.Equal(t, "deny", rec.Effect)
			assert.Equal(t, string(toolguard.StageApproval), rec.Stage)
			require.NotNil(t, rec.Approval)
			assert.True(t, rec.Approval.Approved, "the human's answer is on record")
			assert.Equal(t, req.Binding, rec.Approval.Binding)
			assert.Contains(t, strings.Join(rec.Errors, "\n"), tt.policy.Revision(), "the record names the policy in force")
			e.rec.verify(t)
		})
	}
}

// The control: reloading a policy with the same content keeps the revision,
// so the policy in force asks the same question and the approval holds.
func TestApprovalHoldsWhenThePolicyAsksTheSame(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q))
	done := callAsync(e.ctx, e.g, "send_email", mail("alice@partner.test"))
	req := nextRequest(t, q)
	same, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	require.NoError(t, e.g.SetPolicy(same))
	require.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
	r := result(t, done)
	require.NoError(t, r.err)
	assert.EqualValues(t, 1, e.runs("send_email"))
}

// An answer that says yes approves only if it names the call's binding.
func TestApprovalWithoutTheCallsBindingNeverApproves(t *testing.T) {
	alice, mallory := mail("alice@partner.test"), mail("mallory@evil.test")
	tests := []struct {
		name   string
		answer func(req toolguard.ApprovalRequest, aliceBinding string) toolguard.Approval
		reason string
	}{
		{name: "empty binding", reason: "does not name the call it is for",
			answer: func(toolguard.ApprovalRequest, string) toolguard.Approval {
				return toolguard.Approval{Approved: true, By: "ops"}
			}},
		{name: "another pending call's binding", reason: "was for another call",
			answer: func(_ toolguard.ApprovalRequest, aliceBinding string) toolguard.Approval {
				return toolguard.Approval{Approved: true, By: "ops", Binding: aliceBinding}
			}},
		{name: "the binding with other letter case", reason: "was for another call",
			answer: func(req toolguard.ApprovalRequest, _ string) toolguard.Approval {
				return toolguard.Approval{Approved: true, By: "ops", Binding: strings.ToUpper(req.Binding)}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var aliceBinding string
			e := newEnv(t, toolguard.WithApprover(toolguard.ApproverFunc(
				func(_ context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
					return tt.answer(req, aliceBinding), nil
				})))
			aliceBinding = bindingOf(t, e, alice)
			_, err := e.g.Call(e.ctx, "send_email", mallory)
			require.Error(t, err)
			assert.ErrorIs(t, err, toolguard.ErrNotApproved)
			assert.ErrorIs(t, err, toolguard.ErrWrongBinding)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Zero(t, e.runs("send_email"))
			recs := e.rec.records()
			require.Len(t, recs, 1)
			assert.Equal(t, "deny", recs[0].Effect)
		})
	}
}

// The handler runs on the arguments the human approved, even when the
// caller reuses its buffer while the call waits.
func TestApprovedCallRunsOnAPrivateCopyOfTheArguments(t *testing.T) {
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	e := newEnv(t, toolguard.WithApprover(q))
	buf := []byte(`{"to":"alice@partner.test"}`)
	done := callAsync(e.ctx, e.g, "send_email", buf)
	req := nextRequest(t, q)
	assert.Equal(t, `{"to":"alice@partner.test"}`, string(req.Args))

	// The caller reuses its buffer for the next message, same length.
	copy(buf, `{"to":"evilx@attack.test"}`+" ")
	require.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
	r := result(t, done)
	require.NoError(t, r.err)
	assert.Equal(t, `{"to":"alice@partner.test"}`, r.out, "the handler saw what was approved")
}

// What the approver is shown stays what it was asked about, even if it
// keeps the request after the call is over and the guard goes on.
func TestApprovalRequestOwnsItsArguments(t *testing.T) {
	var mu sync.Mutex
	var kept []toolguard.ApprovalRequest
	e := newEnv(t, toolguard.WithApprover(toolguard.ApproverFunc(
		func(_ context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
			mu.Lock()
			kept = append(kept, req)
			mu.Unlock()
			return toolguard.Approval{By: "ops", Reason: "later"}, nil
		})))
	_, err := e.g.Call(e.ctx, "send_email", mail("alice@partner.test"))
	require.ErrorIs(t, err, toolguard.ErrNotApproved)
	for i := range 50 {
		_, _ = e.g.Call(e.ctx, "read_file", json.RawMessage(fmt.Sprintf(`{"path":"/w/%08d.txt"}`, i)))
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, kept, 1)
	assert.Equal(t, `{"to":"alice@partner.test"}`, string(kept[0].Args))
}

// Promise: a pre-approval for one tool never approves another tool called
// with the same arguments by the same principal under the same policy —
// the binding covers the tool.
func TestPreapprovalForOneToolNeverApprovesAnother(t *testing.T) {
	p := mustParse(t, `version: 1
scopes:
  notify: {grants: [{tools: [send_email, post_message]}]}
rules:
  - {name: outbound, effect: ask, tools: [send_email, post_message]}
`)
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 30 * time.Millisecond})
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec), toolguard.WithApprover(q))
	require.NoError(t, err)
	ran := map[string]int{}
	var mu sync.Mutex
	schema := json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`)
	for _, name := range []string{"send_email", "post_message"} {
		require.NoError(t, g.Register(toolguard.Tool{Name: name, InputSchema: schema,
			Handler: func(context.Context, json.RawMessage) (any, error) {
				mu.Lock()
				ran[name]++
				mu.Unlock()
				return "sent", nil
			}}))
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent-7", Scopes: []string{"notify"}})
	args := json.RawMessage(`{"to":"alice@partner.test"}`)

	d, err := g.Check(ctx, "send_email", args)
	require.ErrorIs(t, err, toolguard.ErrApprovalRequired)
	other, err := g.Check(ctx, "post_message", args)
	require.ErrorIs(t, err, toolguard.ErrApprovalRequired)
	require.Equal(t, d.ArgsSHA256, other.ArgsSHA256, "the same arguments")
	assert.NotEqual(t, d.Binding, other.Binding)
	q.Preapprove(d.Binding, "ops")

	_, err = g.Call(ctx, "post_message", args)
	require.ErrorIs(t, err, toolguard.ErrNotApproved, "the pre-approval was for send_email")
	_, err = g.Call(ctx, "send_email", args)
	require.NoError(t, err, "the pre-approval is still there for its own tool")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"send_email": 1}, ran)
}

// A secret-looking string inside a recipient hides only itself: the record
// and the approver still show the recipient, and the approver is told what
// is hidden and why.
func TestApproverSeesTheRecipientBesideARedactedSecret(t *testing.T) {
	p := mustParse(t, `version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - {name: outbound, effect: ask, tools: [send_email]}
`)
	q := toolguard.NewQueue(toolguard.QueueOptions{Timeout: 5 * time.Second})
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec), toolguard.WithApprover(q), toolguard.WithRedactionKey([]byte("k")))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "send_email",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"},"password":{"type":"string","writeOnly":true}},"required":["to"]}`),
		Handler:     func(context.Context, json.RawMessage) (any, error) { return "sent", nil }}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent-7", Scopes: []string{"mail"}})

	done := callAsync(ctx, g, "send_email", json.RawMessage(`{"to":"mallory@evil.test, Bearer abcdefghijkl","password":"hunter2"}`))
	req := nextRequest(t, q)
	shown := string(req.Args)
	assert.Contains(t, shown, `"to":"mallory@evil.test, redacted:hmac-sha256:`, "the approver sees the recipient")
	assert.NotContains(t, shown, "abcdefghijkl")
	assert.NotContains(t, shown, "hunter2")
	assert.Equal(t, []audit.Redaction{
		{Pointer: "/password", Whole: true, Why: "it is marked sensitive"},
		{Pointer: "/to", Whole: false, Why: "it holds a bearer token"},
	}, req.Hidden)
	require.NoError(t, q.Answer(req.ID, toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}))
	require.NoError(t, result(t, done).err)

	recs := rec.records()
	require.Len(t, recs, 2)
	assert.Equal(t, shown, string(recs[0].Args), "the record holds what the approver saw")
	assert.Equal(t, []string{"/password", "/to"}, recs[0].Redacted)
}
