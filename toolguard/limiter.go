package toolguard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/agentguard/agentguard/scope"
)

// Limiter applies a policy's rate limits. Implementations must be safe for
// concurrent use. An error means the limiter could not decide (a store is
// down, memory is exhausted): the call is denied.
type Limiter interface {
	// Take takes one event from the bucket of every use at time now, all
	// or none, and returns one result per use. With dryRun it only reports
	// whether the events would be allowed and takes nothing.
	Take(ctx context.Context, now time.Time, uses []scope.LimitUse, dryRun bool) ([]LimitResult, error)
}

// LimitResult is the state of one limit for one call.
type LimitResult struct {
	Name    string
	Key     string
	Allowed bool
	// RetryAfter is how long until an event would be allowed, when not.
	RetryAfter time.Duration
}

// ErrLimiterFull is returned by [MemoryLimiter] when it tracks its maximum
// number of keys and none can be evicted.
var ErrLimiterFull = errors.New("toolguard: rate limiter is tracking its maximum number of keys")

// DefaultMaxLimiterKeys is the number of buckets a [MemoryLimiter] tracks
// when MaxKeys is zero.
const DefaultMaxLimiterKeys = 100_000

// MemoryLimiter is an in-process [Limiter]: one token bucket
// (golang.org/x/time/rate) per limit and key. Memory is bounded: at MaxKeys
// buckets it evicts buckets that are full again (a full bucket is the same as
// a new one, so eviction never grants more than the configured rate); if none
// can be evicted, calls needing a new bucket are denied with [ErrLimiterFull].
//
// The zero value is ready to use with DefaultMaxLimiterKeys. A MemoryLimiter
// is safe for concurrent use and must not be copied after first use.
type MemoryLimiter struct {
	// MaxKeys bounds the number of buckets; zero means
	// DefaultMaxLimiterKeys.
	MaxKeys int

	mu        sync.Mutex
	buckets   map[bucketKey]*rate.Limiter
	lastSweep time.Time
}

type bucketKey struct{ name, key string }

// Len returns the number of buckets currently tracked.
func (m *MemoryLimiter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

// Take implements [Limiter].
func (m *MemoryLimiter) Take(ctx context.Context, now time.Time, uses []scope.LimitUse, dryRun bool) ([]LimitResult, error) {
	if len(uses) == 0 {
		return nil, nil
	}
	results := make([]LimitResult, len(uses))
	var one [1]*rate.Limiter
	lims := one[:]
	if len(uses) > 1 {
		lims = make([]*rate.Limiter, len(uses))
	}
	m.mu.Lock()
	for i := range uses {
		l, err := m.bucket(now, &uses[i])
		if err != nil {
			m.mu.Unlock()
			return nil, err
		}
		lims[i] = l
	}
	m.mu.Unlock()

	if len(lims) == 1 && !dryRun {
		// The common case: one limit, one lock on its bucket.
		results[0] = LimitResult{Name: uses[0].Name, Key: uses[0].Key, Allowed: lims[0].AllowN(now, 1)}
		if !results[0].Allowed {
			results[0].RetryAfter = retryAfter(lims[0], now)
		}
		return results, nil
	}
	allowed := true
	for i, l := range lims {
		results[i] = LimitResult{Name: uses[i].Name, Key: uses[i].Key, Allowed: l.TokensAt(now) >= 1}
		if !results[i].Allowed {
			allowed = false
			results[i].RetryAfter = retryAfter(l, now)
		}
	}
	if dryRun || !allowed {
		return results, nil
	}
	// Several limits: reserve each, and give back what was taken if any
	// fails, so that a denied call consumes nothing.
	rs := make([]*rate.Reservation, 0, len(lims))
	for i, l := range lims {
		r := l.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			results[i].Allowed = false
			results[i].RetryAfter = r.DelayFrom(now)
			r.CancelAt(now)
			for _, prev := range rs {
				prev.CancelAt(now)
			}
			return results, nil
		}
		rs = append(rs, r)
	}
	return results, nil
}

func retryAfter(l *rate.Limiter, now time.Time) time.Duration {
	r := l.ReserveN(now, 1)
	defer r.CancelAt(now)
	if !r.OK() {
		return time.Duration(math.MaxInt64)
	}
	return r.DelayFrom(now)
}

// bucket returns the bucket for u, creating it if needed. m.mu is held.
func (m *MemoryLimiter) bucket(now time.Time, u *scope.LimitUse) (*rate.Limiter, error) {
	want := rate.Limit(float64(u.Count) / u.Per.Seconds())
	k := bucketKey{u.Name, u.Key}
	if l, ok := m.buckets[k]; ok {
		if l.Limit() != want || l.Burst() != u.Burst { // the policy changed
			l.SetLimitAt(now, want)
			l.SetBurstAt(now, u.Burst)
		}
		return l, nil
	}
	if m.buckets == nil {
		m.buckets = make(map[bucketKey]*rate.Limiter)
	}
	max := m.MaxKeys
	if max <= 0 {
		max = DefaultMaxLimiterKeys
	}
	if len(m.buckets) >= max {
		m.sweep(now)
		if len(m.buckets) >= max {
			return nil, fmt.Errorf("%w (%d)", ErrLimiterFull, max)
		}
	}
	l := rate.NewLimiter(want, u.Burst)
	l.SetLimitAt(now, want) // start the bucket's clock at now, full
	m.buckets[k] = l
	return l, nil
}

// sweep evicts full buckets, at most once per second so that a full table of
// busy buckets cannot make every call scan it.
func (m *MemoryLimiter) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < time.Second && !m.lastSweep.IsZero() {
		return
	}
	m.lastSweep = now
	for k, l := range m.buckets {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(m.buckets, k)
		}
	}
}
