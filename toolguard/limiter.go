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

// Limiter applies a policy's limits: rates, concurrency caps and quotas.
// Implementations must be safe for concurrent use. An error means the
// limiter could not decide (a store is down, memory is exhausted): the call
// is denied.
type Limiter interface {
	// Take takes what a call uses of every limit, all or none, at time now:
	// Cost tokens of a rate, Cost units of a quota, one slot of a
	// concurrency cap. It returns one result per use and, if it took
	// concurrency slots, a release function to call once the handler has
	// returned (calling it again does nothing). With dryRun it only
	// reports whether the call would be allowed and takes nothing.
	Take(ctx context.Context, now time.Time, uses []scope.LimitUse, dryRun bool) ([]LimitResult, func(), error)
}

// LimitResult is the state of one limit for one call.
type LimitResult struct {
	Name    string
	Key     string
	Kind    scope.LimitKind
	Allowed bool
	// RetryAfter is how long until the call could be allowed, when it is
	// not; zero for a concurrency cap (a slot frees when a call ends).
	RetryAfter time.Duration
	// Used is the quota used in the current window, or the calls in
	// flight under a concurrency cap, before this call.
	Used int64
	// FailedOpen reports that the limiter could not decide and allowed
	// the call because it is configured to fail open; Err says why.
	FailedOpen bool
	Err        string
}

// ErrLimiterFull is returned by [MemoryLimiter] when it tracks its maximum
// number of keys and none can be evicted.
var ErrLimiterFull = errors.New("toolguard: rate limiter is tracking its maximum number of keys")

// DefaultMaxLimiterKeys is the number of buckets a [MemoryLimiter] tracks
// when MaxKeys is zero.
const DefaultMaxLimiterKeys = 100_000

// MemoryLimiter is the in-process [Limiter]: a token bucket
// (golang.org/x/time/rate) per rate limit and key, a counter per quota window
// and key, an in-flight count per concurrency cap and key.
//
// Memory is bounded: at MaxKeys buckets it evicts the ones that hold no
// state a new bucket would not have — full token buckets, quotas of past
// windows, caps with nothing in flight — so eviction never grants more than
// the configured limits. If none can be evicted, calls that need a new bucket
// are denied with [ErrLimiterFull]. A bucket costs at most 400 bytes of
// heap (277 measured with a million keys), so the default bound of
// 100,000 keys holds under 40 MB.
//
// The zero value is ready to use with DefaultMaxLimiterKeys. A MemoryLimiter
// is safe for concurrent use and must not be copied after first use.
type MemoryLimiter struct {
	// MaxKeys bounds the number of buckets; zero means
	// DefaultMaxLimiterKeys.
	MaxKeys int

	mu        sync.Mutex
	buckets   map[bucketKey]*bucket
	lastSweep time.Time
}

type bucketKey struct{ name, key string }

type bucket struct {
	kind     scope.LimitKind
	lim      *rate.Limiter // rates
	window   time.Time     // quotas: start of the current window
	end      time.Time     // quotas: end of the current window
	used     int64         // quotas: units used in window; caps: calls in flight
	capacity int           // caps: the cap when last seen
}

// Len returns the number of buckets currently tracked.
func (m *MemoryLimiter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.buckets)
}

// Take implements [Limiter].
func (m *MemoryLimiter) Take(ctx context.Context, now time.Time, uses []scope.LimitUse, dryRun bool) ([]LimitResult, func(), error) {
	if len(uses) == 0 {
		return nil, nil, nil
	}
	results := make([]LimitResult, len(uses))
	var one [1]*bucket
	bs := one[:]
	if len(uses) > 1 {
		bs = make([]*bucket, len(uses))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	allowed := true
	for i := range uses {
		u := &uses[i]
		b, err := m.bucket(now, u)
		if err != nil {
			return nil, nil, err
		}
		bs[i] = b
		results[i] = check(b, u, now)
		allowed = allowed && results[i].Allowed
	}
	if dryRun || !allowed {
		return results, nil, nil
	}
	// Everything that takes holds m.mu, so what was checked is still there.
	var held []*bucket
	for i, b := range bs {
		switch b.kind {
		case scope.LimitRate:
			b.lim.AllowN(now, int(uses[i].Cost))
		case scope.LimitQuota:
			b.used += uses[i].Cost
		case scope.LimitConcurrency:
			b.used++
			held = append(held, b)
		}
	}
	if len(held) == 0 {
		return results, nil, nil
	}
	var once sync.Once
	return results, func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, b := range held {
				b.used--
			}
		})
	}, nil
}

// check reports whether u's cost fits in b at now. m.mu is held.
func check(b *bucket, u *scope.LimitUse, now time.Time) LimitResult {
	r := LimitResult{Name: u.Name, Key: u.Key, Kind: u.Kind, Allowed: true}
	switch u.Kind {
	case scope.LimitRate:
		if u.Cost > int64(u.Burst) {
			r.Allowed, r.RetryAfter = false, time.Duration(math.MaxInt64)
			return r
		}
		if b.lim.TokensAt(now) < float64(u.Cost) {
			r.Allowed = false
			res := b.lim.ReserveN(now, int(u.Cost))
			r.RetryAfter = res.DelayFrom(now)
			res.CancelAt(now)
		}
	case scope.LimitQuota:
		start, end := u.Window(now)
		if !b.window.Equal(start) {
			b.window, b.end, b.used = start, end, 0
		}
		r.Used = b.used
		if b.used+u.Cost > int64(u.Count) {
			r.Allowed, r.RetryAfter = false, end.Sub(now)
		}
	case scope.LimitConcurrency:
		b.capacity = u.Count
		r.Used = b.used
		if b.used >= int64(u.Count) {
			r.Allowed = false
		}
	}
	return r
}

// bucket returns the bucket for u, creating it if needed. m.mu is held.
func (m *MemoryLimiter) bucket(now time.Time, u *scope.LimitUse) (*bucket, error) {
	k := bucketKey{u.Name, u.Key}
	if b, ok := m.buckets[k]; ok && b.kind == u.Kind {
		if b.kind == scope.LimitRate {
			want := rateOf(u)
			if b.lim.Limit() != want || b.lim.Burst() != u.Burst { // the policy changed
				b.lim.SetLimitAt(now, want)
				b.lim.SetBurstAt(now, u.Burst)
			}
		}
		return b, nil
	}
	if m.buckets == nil {
		m.buckets = make(map[bucketKey]*bucket)
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
	b := &bucket{kind: u.Kind}
	if u.Kind == scope.LimitRate {
		b.lim = rate.NewLimiter(rateOf(u), u.Burst)
		b.lim.SetLimitAt(now, rateOf(u)) // start the bucket's clock at now, full
	}
	m.buckets[k] = b
	return b, nil
}

func rateOf(u *scope.LimitUse) rate.Limit {
	return rate.Limit(float64(u.Count) / u.Per.Seconds())
}

// sweep evicts buckets a new bucket would equal, at most once per second so
// that a full table of busy buckets cannot make every call scan it.
func (m *MemoryLimiter) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < time.Second && !m.lastSweep.IsZero() {
		return
	}
	m.lastSweep = now
	for k, b := range m.buckets {
		idle := false
		switch b.kind {
		case scope.LimitRate:
			idle = b.lim.TokensAt(now) >= float64(b.lim.Burst())
		case scope.LimitQuota:
			idle = b.used == 0 || !now.Before(b.end)
		case scope.LimitConcurrency:
			idle = b.used == 0
		}
		if idle {
			delete(m.buckets, k)
		}
	}
}
