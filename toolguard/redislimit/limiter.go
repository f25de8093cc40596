package redislimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// Defaults for the zero fields of [Options].
const (
	DefaultPrefix   = "agentguard"
	DefaultTimeout  = 50 * time.Millisecond
	DefaultLeaseTTL = 30 * time.Second
)

// ErrUnavailable is wrapped by every error that comes from Redis not
// answering, or answering with an error, within the timeout.
var ErrUnavailable = errors.New("redislimit: redis is unavailable")

// Options configure a [Limiter]. The zero value is all defaults: keys under
// "{agentguard}:", a 50ms timeout, 30s leases, fail closed.
type Options struct {
	// Prefix starts every key, as a hash tag: "{Prefix}:". All the keys of
	// one limiter share it, so that one script can touch them all on a
	// Redis Cluster (they live on one shard). Empty means DefaultPrefix.
	// It must not contain '{' or '}'.
	Prefix string
	// Timeout bounds each Take: a Redis that is slower, or down, is an
	// error, and the call is denied (or let through, with FailOpen). It
	// bounds releasing and renewing leases too. Zero means DefaultTimeout.
	Timeout time.Duration
	// LeaseTTL is how long a concurrency slot outlives a process that dies
	// holding it. A live holder renews its leases every LeaseTTL/3 until
	// the call ends. Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// FailOpen lets calls through when Redis cannot decide, instead of
	// denying them. Every result of such a call has FailedOpen set and
	// Err saying why, and the guard writes both into the decision record.
	FailOpen bool
}

// Limiter is a [toolguard.Limiter] that keeps rates, quotas and
// concurrency caps in Redis, so that they hold across all the processes
// that share it. See the package documentation for the data model.
//
// A Limiter is safe for concurrent use. Create one with [New]; the zero
// Limiter has no Redis client and denies every call that has limits.
type Limiter struct {
	client   redis.UniversalClient
	prefix   string // "{agentguard}:"
	timeout  time.Duration
	leaseTTL time.Duration
	failOpen bool

	leaseBase string // random, per Limiter
	leaseSeq  atomic.Uint64

	// callerClock makes the scripts use the now passed to Take instead of
	// Redis TIME, so that tests can step through quota windows.
	callerClock bool
}

var _ toolguard.Limiter = (*Limiter)(nil)

// New returns a Limiter that keeps its state in client. The client's own
// retries and timeouts apply inside Options.Timeout; set its
// ContextTimeoutEnabled so that a request abandoned at the timeout stops
// too.
func New(client redis.UniversalClient, opts Options) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: nil client")
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redislimit: prefix %q must not contain braces", opts.Prefix)
	}
	if opts.Timeout < 0 || opts.LeaseTTL < 0 {
		return nil, errors.New("redislimit: negative timeout or lease time")
	}
	if opts.LeaseTTL > 0 && opts.LeaseTTL < 3*time.Millisecond {
		return nil, errors.New("redislimit: lease time under 3ms")
	}
	l := &Limiter{
		client:   client,
		prefix:   "{" + cmpOr(opts.Prefix, DefaultPrefix) + "}:",
		timeout:  cmpOr(opts.Timeout, DefaultTimeout),
		leaseTTL: cmpOr(opts.LeaseTTL, DefaultLeaseTTL),
		failOpen: opts.FailOpen,
	}
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	l.leaseBase = hex.EncodeToString(b[:]) + "-"
	return l, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Take implements [toolguard.Limiter]: one script evaluates every use of
// the call on the Redis server, all or none. The time is the Redis
// server's (TIME), not now, so that processes with skewed clocks agree;
// now is ignored.
//
// When Redis does not answer within the timeout, or fails, Take returns an
// error wrapping [ErrUnavailable], or, with FailOpen, allows the call and
// marks every result FailedOpen. A cancelled ctx is returned as an error
// either way.
func (l *Limiter) Take(ctx context.Context, now time.Time, uses []scope.LimitUse, dryRun bool) ([]toolguard.LimitResult, func(), error) {
	if len(uses) == 0 {
		return nil, nil, nil
	}
	if l == nil || l.client == nil {
		return nil, nil, errors.New("redislimit: Limiter has no client (use New)")
	}
	req, err := l.newTakeRequest(now, uses, dryRun)
	if err != nil {
		return nil, nil, err
	}
	// If the answer comes after Take has given up and says the call was
	// allowed, the leases it took are given back at once.
	var abandoned func([]int64)
	if req.lease != "" {
		leaseKeys, lease := req.leaseKeys, req.lease
		abandoned = func(v []int64) {
			if len(v) > 0 && v[0] == 1 {
				l.release(leaseKeys, lease)
			}
		}
	}
	v, err := l.run(ctx, takeScript, req.keys, req.args, abandoned)
	if err == nil && len(v) != 1+3*len(uses) {
		err = fmt.Errorf("%w: unexpected reply of %d values to %d limits", ErrUnavailable, len(v), len(uses))
	}
	if err != nil {
		if !l.failOpen || ctx.Err() != nil {
			return nil, nil, err
		}
		return failedOpenResults(uses, err), nil, nil
	}
	results := takeResults(uses, v)
	if v[0] != 1 || req.lease == "" {
		return results, nil, nil
	}
	return results, l.hold(req.leaseKeys, req.lease), nil
}

// takeRequest is the input of takeScript for the uses of one call.
type takeRequest struct {
	keys      []string // one Redis key per use
	args      []any    // dry run, caller clock, lease, lease TTL, then five per use
	leaseKeys []string // the concurrency keys that take a lease
	lease     string   // the lease id; "" when no lease is taken
}

// newTakeRequest builds the keys and arguments of takeScript for uses. It
// returns an error for a negative cost or an unknown kind of limit.
func (l *Limiter) newTakeRequest(now time.Time, uses []scope.LimitUse, dryRun bool) (takeRequest, error) {
	req := takeRequest{keys: make([]string, len(uses))}
	args := make([]any, 4, 4+5*len(uses))
	args[0] = "0"
	if dryRun {
		args[0] = "1"
	}
	args[1] = ""
	if l.callerClock {
		args[1] = now.UnixMicro()
	}
	args[3] = l.leaseTTL.Microseconds()
	buf := make([]byte, 0, 64)
	for i := range uses {
		u := &uses[i]
		kind, p1, p2, err := limitParams(u)
		if err != nil {
			return takeRequest{}, err
		}
		buf = appendKey(buf[:0], l.prefix, kind, u.Name, u.Key)
		req.keys[i] = string(buf)
		if kind == 'c' && !dryRun {
			req.leaseKeys = append(req.leaseKeys, req.keys[i])
		}
		args = append(args, string(kind), u.Count, p1, p2, u.Cost)
	}
	if len(req.leaseKeys) > 0 {
		req.lease = l.leaseBase + strconv.FormatUint(l.leaseSeq.Add(1), 36)
	}
	args[2] = req.lease
	req.args = args
	return req, nil
}

// limitParams returns the kind letter of u for takeScript ('r' rate, 'q'
// quota, 'c' concurrency) and its two kind-specific parameters: for a rate
// the interval between events in microseconds and the burst, for a quota
// its window length and offset. It returns an error for a negative cost or
// an unknown kind.
func limitParams(u *scope.LimitUse) (kind byte, p1, p2 any, err error) {
	if u.Cost < 0 {
		return 0, nil, nil, fmt.Errorf("redislimit: limit %q: negative cost %d", u.Name, u.Cost)
	}
	p1, p2 = 0, 0
	switch u.Kind {
	case scope.LimitRate:
		interval := 0.0
		if u.Count > 0 {
			interval = float64(u.Per.Nanoseconds()) / float64(u.Count) / 1e3
		}
		return 'r', interval, u.Burst, nil
	case scope.LimitQuota:
		p1, p2 = window(u.Limit)
		return 'q', p1, p2, nil
	case scope.LimitConcurrency:
		return 'c', p1, p2, nil
	}
	return 0, nil, nil, fmt.Errorf("redislimit: limit %q has unknown kind %d", u.Name, u.Kind)
}

// failedOpenResults returns the results of a call allowed because Redis
// failed with err: every use allowed and marked FailedOpen.
func failedOpenResults(uses []scope.LimitUse, err error) []toolguard.LimitResult {
	results := make([]toolguard.LimitResult, len(uses))
	msg := err.Error()
	for i := range uses {
		u := &uses[i]
		results[i] = toolguard.LimitResult{Name: u.Name, Key: u.Key, Kind: u.Kind, Allowed: true, FailedOpen: true, Err: msg}
	}
	return results
}

// takeResults decodes the reply v of takeScript, three values per use
// after the overall verdict: allowed, retry after in microseconds (negative
// for never) and the amount used.
func takeResults(uses []scope.LimitUse, v []int64) []toolguard.LimitResult {
	results := make([]toolguard.LimitResult, len(uses))
	for i := range uses {
		u := &uses[i]
		r := toolguard.LimitResult{Name: u.Name, Key: u.Key, Kind: u.Kind, Allowed: v[1+3*i] == 1, Used: v[3+3*i]}
		switch retry := v[2+3*i]; {
		case retry < 0:
			r.RetryAfter = time.Duration(math.MaxInt64)
		case retry > 0:
			r.RetryAfter = time.Duration(retry) * time.Microsecond
		}
		results[i] = r
	}
	return results
}

// hold keeps the lease on keys alive, renewing it every third of the
// lease TTL, and returns the function that releases it.
func (l *Limiter) hold(keys []string, lease string) func() {
	h := &holder{l: l, keys: keys, id: lease}
	h.mu.Lock()
	h.timer = time.AfterFunc(l.leaseTTL/3, h.renew)
	h.mu.Unlock()
	return h.release
}

// window returns a quota's calendar window as a length and an offset from
// the Unix epoch, both in microseconds: windows start at offset + k*length.
// It mirrors [scope.Limit.Window]: hours, weeks starting on Monday, and
// days for anything else, in UTC (Unix time has no leap seconds, so every
// day is 86400 seconds long).
func window(l scope.Limit) (length, offset int64) {
	const day = int64(24 * time.Hour / time.Microsecond)
	switch l.Per {
	case time.Hour:
		return int64(time.Hour / time.Microsecond), 0
	case 7 * 24 * time.Hour:
		return 7 * day, 4 * day // 1970-01-05 was a Monday
	}
	return day, 0
}

// run runs a script, waiting at most the timeout whatever the client's own
// settings. If it gives up, the script may still run; abandoned, if not
// nil, then gets its reply.
func (l *Limiter) run(ctx context.Context, s *redis.Script, keys []string, args []any, abandoned func([]int64)) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	type reply struct {
		v   []int64
		err error
	}
	ch := make(chan reply, 1)
	var state atomic.Int32 // 0 running, 1 answered, 2 abandoned
	go func() {
		v, err := s.Run(ctx, l.client, keys, args...).Int64Slice()
		if state.CompareAndSwap(0, 1) {
			ch <- reply{v, err}
			return
		}
		if err == nil && abandoned != nil {
			abandoned(v)
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		if !state.CompareAndSwap(0, 2) {
			r := <-ch
			if r.err != nil {
				return nil, fmt.Errorf("%w: %w", ErrUnavailable, r.err)
			}
			return r.v, nil
		}
		if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("redislimit: %w", err)
		}
		return nil, fmt.Errorf("%w: no answer within %v", ErrUnavailable, l.timeout)
	}
}

// release gives back the leases of one call. If Redis cannot be reached,
// they expire after the lease time.
func (l *Limiter) release(keys []string, lease string) {
	_, _ = l.run(context.Background(), releaseScript, keys, []any{lease}, nil)
}

// holder keeps the leases of one call alive until it releases them.
type holder struct {
	l    *Limiter
	keys []string
	id   string

	mu    sync.Mutex
	done  bool
	timer *time.Timer
}

func (h *holder) release() {
	h.mu.Lock()
	if h.done {
		h.mu.Unlock()
		return
	}
	h.done = true
	h.timer.Stop()
	h.mu.Unlock()
	h.l.release(h.keys, h.id)
}

func (h *holder) renew() {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done {
		return
	}
	var now any = ""
	if h.l.callerClock {
		now = time.Now().UnixMicro()
	}
	// The script extends only leases that still exist, so a renewal that
	// races a release cannot bring a lease back.
	v, err := h.l.run(context.Background(), renewScript, h.keys, []any{now, h.l.leaseTTL.Microseconds(), h.id}, nil)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || (err == nil && (len(v) != 1 || v[0] == 0)) { // gone: stop
		return
	}
	h.timer.Reset(h.l.leaseTTL / 3)
}
