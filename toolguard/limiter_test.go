package toolguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const limitsPolicy = `version: 1
scopes:
  s:
    grants:
      - tools: [build]
        limit: builds
      - tools: [upload]
        limit: [uploads, bytes]
      - tools: [stuck]
        limit: builds
limits:
  builds: {concurrency: 2, key: principal.attrs.tenant}
  uploads: {rate: 100/s}
  bytes: {quota: 10/day, cost: size(args.data), key: principal.attrs.tenant}
`

func limitsGuard(t *testing.T, opts ...toolguard.Option) (*toolguard.Guard, *recorder, chan struct{}) {
	t.Helper()
	p, err := scope.Parse([]byte(limitsPolicy))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(p, append([]toolguard.Option{toolguard.WithSink(rec)}, opts...)...)
	require.NoError(t, err)
	gate := make(chan struct{})
	require.NoError(t, g.Register(toolguard.Tool{Name: "build", Handler: func(ctx context.Context, a json.RawMessage) (any, error) {
		if string(a) == `{"panic":true}` {
			panic("build exploded")
		}
		<-gate
		return "built", nil
	}}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "stuck", Handler: func(ctx context.Context, a json.RawMessage) (any, error) {
		<-gate // ignores its context: outlives the tool timeout
		return nil, nil
	}}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "upload", Handler: func(context.Context, json.RawMessage) (any, error) { return "ok", nil }}))
	return g, rec, gate
}

func tenant(id, t string) context.Context {
	return toolguard.WithPrincipal(context.Background(), scope.Principal{ID: id, Scopes: []string{"s"}, Attrs: map[string]any{"tenant": t}})
}

func TestConcurrencyCap(t *testing.T) {
	g, rec, gate := limitsGuard(t)
	var running sync.WaitGroup
	for i := 0; i < 2; i++ {
		running.Add(1)
		go func(i int) {
			defer running.Done()
			_, err := g.Call(tenant(fmt.Sprint("u", i), "acme"), "build", nil)
			assert.NoError(t, err)
		}(i)
	}
	require.Eventually(t, func() bool { return len(rec.records()) == 2 }, 5*time.Second, time.Millisecond)

	// The cap is per tenant: a third acme build is denied, another tenant's runs.
	_, err := g.Call(tenant("u3", "acme"), "build", nil)
	require.ErrorIs(t, err, toolguard.ErrRateLimited)
	assert.Contains(t, err.Error(), `concurrency limit "builds" for "acme" is reached (2 of 2 calls in flight); retry when one finishes`)
	go func() { _, _ = g.Call(tenant("v", "globex"), "build", nil) }()
	require.Eventually(t, func() bool { return len(rec.records()) == 4 }, 5*time.Second, time.Millisecond)

	close(gate)
	running.Wait()
	// Released when the handlers returned.
	_, err = g.Call(tenant("u3", "acme"), "build", nil)
	require.NoError(t, err)

	// And when a handler panics.
	for i := 0; i < 3; i++ {
		_, err = g.Call(tenant("u4", "acme"), "build", json.RawMessage(`{"panic":true}`))
		require.ErrorIs(t, err, toolguard.ErrToolPanic, "a panicking call must not keep its slot")
	}
}

func TestConcurrencySlotHeldUntilHandlerReallyReturns(t *testing.T) {
	g, _, gate := limitsGuard(t, toolguard.WithToolTimeout(10*time.Millisecond))
	ctx := tenant("u", "acme")
	for i := 0; i < 2; i++ {
		_, err := g.Call(ctx, "stuck", nil)
		require.ErrorIs(t, err, toolguard.ErrToolTimeout)
	}
	// The timed-out handlers are still running: their slots are still taken.
	_, err := g.Call(ctx, "stuck", nil)
	require.ErrorIs(t, err, toolguard.ErrRateLimited)
	close(gate)
	require.Eventually(t, func() bool {
		d, err := g.Check(ctx, "stuck", nil)
		return err == nil && d.Allowed()
	}, 5*time.Second, time.Millisecond)
}

func TestQuotaWithCostAndAllOrNone(t *testing.T) {
	g, rec, _ := limitsGuard(t)
	ctx := tenant("u", "acme")
	_, err := g.Call(ctx, "upload", json.RawMessage(`{"data":"123456"}`))
	require.NoError(t, err)
	_, err = g.Call(ctx, "upload", json.RawMessage(`{"data":"12345"}`))
	require.ErrorIs(t, err, toolguard.ErrRateLimited)
	assert.Contains(t, err.Error(), `quota "bytes" for "acme" is used up (6 of 10 used in this window, the call needs 5); it renews in`)
	_, err = g.Call(ctx, "upload", json.RawMessage(`{"data":"1234"}`))
	require.NoError(t, err, "what is left of the quota can still be used")
	_, err = g.Call(tenant("w", "globex"), "upload", json.RawMessage(`{"data":"1234567890"}`))
	require.NoError(t, err, "quotas are per key")

	var denied audit.Record
	for _, r := range rec.records() {
		if r.Effect == "deny" {
			denied = r
		}
	}
	require.Len(t, denied.Limits, 2)
	assert.True(t, denied.Limits[0].Allowed, "the rate allowed it")
	assert.False(t, denied.Limits[1].Allowed)
	assert.Positive(t, denied.Limits[1].RetryAfterMS)
}

func TestMemoryLimiterDirect(t *testing.T) {
	var m toolguard.MemoryLimiter
	day := scope.Limit{Name: "q", Kind: scope.LimitQuota, Count: 3, Per: 24 * time.Hour}
	rateL := scope.Limit{Name: "r", Kind: scope.LimitRate, Count: 1, Per: time.Hour, Burst: 1}
	t0 := time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)
	take := func(now time.Time, uses ...scope.LimitUse) []toolguard.LimitResult {
		res, _, err := m.Take(context.Background(), now, uses, false)
		require.NoError(t, err)
		return res
	}
	q := scope.LimitUse{Limit: day, Key: "k", Cost: 2}
	assert.True(t, take(t0, q)[0].Allowed)
	res := take(t0, q)
	assert.False(t, res[0].Allowed)
	assert.Equal(t, time.Minute, res[0].RetryAfter, "the day ends in a minute")
	assert.True(t, take(t0.Add(2*time.Minute), q)[0].Allowed, "a new window")

	// All or none: the quota refuses, so the rate's token is not taken.
	r := scope.LimitUse{Limit: rateL, Key: "k", Cost: 1}
	big := scope.LimitUse{Limit: day, Key: "k2", Cost: 4}
	res = take(t0, r, big)
	assert.True(t, res[0].Allowed)
	assert.False(t, res[1].Allowed)
	assert.True(t, take(t0, r)[0].Allowed, "the rate still has its token")
	assert.False(t, take(t0, r)[0].Allowed)

	// A cost above the burst can never be allowed.
	res = take(t0, scope.LimitUse{Limit: rateL, Key: "k3", Cost: 2})
	assert.False(t, res[0].Allowed)
}

// Eviction never grants more than the limits: a key evicted while idle
// starts exactly as a new one would, and busy keys are never evicted.
func TestMemoryLimiterBoundedAndSafe(t *testing.T) {
	m := &toolguard.MemoryLimiter{MaxKeys: 100}
	rateL := scope.Limit{Name: "r", Kind: scope.LimitRate, Count: 1, Per: time.Hour, Burst: 1}
	t0 := time.Unix(1_800_000_000, 0)
	var allowed atomic.Int64
	for i := 0; i < 100; i++ {
		res, _, err := m.Take(context.Background(), t0, []scope.LimitUse{{Limit: rateL, Key: fmt.Sprint(i), Cost: 1}}, false)
		require.NoError(t, err)
		if res[0].Allowed {
			allowed.Add(1)
		}
	}
	assert.EqualValues(t, 100, allowed.Load())
	assert.Equal(t, 100, m.Len())
	// Every bucket is empty (busy): a new key cannot evict any, so it is
	// denied — fail closed — rather than reset someone's bucket.
	_, _, err := m.Take(context.Background(), t0.Add(time.Minute), []scope.LimitUse{{Limit: rateL, Key: "new", Cost: 1}}, false)
	require.ErrorIs(t, err, toolguard.ErrLimiterFull)
	// Key 0 is still limited: nothing was evicted.
	res, _, err := m.Take(context.Background(), t0.Add(time.Minute), []scope.LimitUse{{Limit: rateL, Key: "0", Cost: 1}}, false)
	require.NoError(t, err)
	assert.False(t, res[0].Allowed)
	// An hour later the buckets are full again, equal to new ones: evicted.
	res, _, err = m.Take(context.Background(), t0.Add(2*time.Hour), []scope.LimitUse{{Limit: rateL, Key: "new", Cost: 1}}, false)
	require.NoError(t, err)
	assert.True(t, res[0].Allowed)
	assert.LessOrEqual(t, m.Len(), 100)
}
