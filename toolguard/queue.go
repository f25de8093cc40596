package toolguard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agentguard/agentguard/internal/canonjson"
)

// Binding returns the hash an approval is bound to: SHA-256 over the
// canonical JSON of the principal ID, the tool, the SHA-256 of the canonical
// arguments and the policy revision. An approval for one binding never
// approves another call: other arguments, another tool, another principal,
// or the same call under another policy.
func Binding(principal, tool, argsSHA256, policyRevision string) string {
	b, _ := canonjson.Marshal(map[string]any{
		"principal": principal, "tool": tool, "args_sha256": argsSHA256, "policy": policyRevision,
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Errors of the approval queue.
var (
	ErrUnknownRequest  = errors.New("toolguard: no pending approval request with that id")
	ErrApprovalExpired = errors.New("toolguard: approval expired")

	// ErrWrongBinding: an approval names another call's binding, or
	// names none.
	ErrWrongBinding = errors.New("toolguard: approval is for another call")
)

// QueueOptions configure a [Queue]. The zero value is usable.
type QueueOptions struct {
	// Timeout is how long a call waits for an answer; zero means 2 minutes.
	// The call's context may end the wait sooner.
	Timeout time.Duration
	// TTL is how long a pre-approval stays valid; zero means 10 minutes.
	TTL time.Duration
	// Buffer is the capacity of the Requests channel; zero means 64. When
	// it is full, new requests are still pending (see Pending) but not
	// announced on the channel.
	Buffer int
}

// Queue is an [Approver] for out-of-band approval: each asked call waits
// until a human answers its request by id (from a UI, a chat message, a
// CLI), until the timeout, or until the call's context ends — and then it
// is denied. A human may also approve one exact call ahead of time
// ([Queue.Preapprove]), for flows where the agent is told approval is needed
// and retries. Every approval is single-use and bound to its call
// ([Binding]).
//
// A Queue is safe for concurrent use. Create it with [NewQueue].
type Queue struct {
	opts     QueueOptions
	requests chan ApprovalRequest
	now      func() time.Time

	mu      sync.Mutex
	pending map[string]*pendingRequest
	pre     map[string][]preapproval // binding → single-use approvals
}

type pendingRequest struct {
	req    ApprovalRequest
	answer chan Approval
}

type preapproval struct {
	a       Approval
	expires time.Time
}

// NewQueue returns an empty queue.
func NewQueue(opts QueueOptions) *Queue {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Minute
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	return &Queue{
		opts:     opts,
		requests: make(chan ApprovalRequest, opts.Buffer),
		now:      time.Now,
		pending:  map[string]*pendingRequest{},
		pre:      map[string][]preapproval{},
	}
}

// Requests announces new approval requests.
func (q *Queue) Requests() <-chan ApprovalRequest { return q.requests }

// Pending returns the requests waiting for an answer.
func (q *Queue) Pending() []ApprovalRequest {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]ApprovalRequest, 0, len(q.pending))
	for _, p := range q.pending {
		out = append(out, p.req)
	}
	return out
}

// Approve implements [Approver]: a matching pre-approval is consumed at
// once; otherwise the request waits for [Queue.Answer].
func (q *Queue) Approve(ctx context.Context, req ApprovalRequest) (Approval, error) {
	now := q.now()
	if req.Binding == "" {
		return Approval{}, errors.New("toolguard: approval request without a binding")
	}
	q.mu.Lock()
	if a, ok := q.takePre(req.Binding, now); ok {
		q.mu.Unlock()
		return a, nil
	}
	id := req.ID
	if id == "" {
		id = randomID()
		req.ID = id
	}
	if req.Expires.IsZero() || req.Expires.After(now.Add(q.opts.Timeout)) {
		req.Expires = now.Add(q.opts.Timeout)
	}
	p := &pendingRequest{req: req, answer: make(chan Approval, 1)}
	q.pending[id] = p
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.pending, id)
		q.mu.Unlock()
	}()

	select {
	case q.requests <- req:
	default:
	}
	timer := time.NewTimer(req.Expires.Sub(now))
	defer timer.Stop()
	select {
	case a := <-p.answer:
		return a, nil
	case <-timer.C:
		return Approval{}, fmt.Errorf("no answer within %s", q.opts.Timeout)
	case <-ctx.Done():
		return Approval{}, fmt.Errorf("stopped waiting for approval: %w", ctx.Err())
	}
}

// Answer answers the pending request id. An answer that names a binding
// must name the request's own. A request can be answered once; an unknown,
// expired or already answered request is an error.
func (q *Queue) Answer(id string, a Approval) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	p, ok := q.pending[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownRequest, id)
	}
	if q.now().After(p.req.Expires) {
		return fmt.Errorf("%w: request %q", ErrApprovalExpired, id)
	}
	if a.Binding != "" && a.Binding != p.req.Binding {
		return fmt.Errorf("%w: request %q", ErrWrongBinding, id)
	}
	a.Binding = p.req.Binding
	delete(q.pending, id)
	p.answer <- a
	return nil
}

// Preapprove approves, once and until the TTL passes, the next call whose
// binding is binding (see [Binding] and DeniedError's decision, which
// carries it). It is how an asynchronous flow works: the agent's call waits
// or is denied, a human approves that exact call, the agent retries it.
func (q *Queue) Preapprove(binding, by string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pre[binding] = append(q.pre[binding], preapproval{
		a:       Approval{Approved: true, By: by, Binding: binding},
		expires: q.now().Add(q.opts.TTL),
	})
}

// takePre consumes a valid pre-approval for binding. q.mu is held.
func (q *Queue) takePre(binding string, now time.Time) (Approval, bool) {
	list := q.pre[binding]
	for len(list) > 0 {
		p := list[0]
		list = list[1:]
		if now.Before(p.expires) {
			if len(list) == 0 {
				delete(q.pre, binding)
			} else {
				q.pre[binding] = list
			}
			return p.a, true
		}
	}
	delete(q.pre, binding)
	return Approval{}, false
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
