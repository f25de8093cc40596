package redissession

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// Defaults for the zero fields of [Options].
const (
	DefaultPrefix    = "agentguard"
	DefaultTTL       = 24 * time.Hour
	DefaultTimeout   = 50 * time.Millisecond
	DefaultMaxCalls  = 100_000
	DefaultMaxLabels = 1024
	DefaultMaxTokens = 100_000
)

// maxBound is the largest bound New accepts: sequence numbers stay exact
// integers in the scripts' Lua numbers and in their decimal form.
const maxBound = 1 << 40

// ErrUnavailable is wrapped by every error that comes from Redis not
// answering, or answering with an error, within the timeout.
var ErrUnavailable = errors.New("redissession: redis is unavailable")

// Options configure a [Store]. The zero value is all defaults.
type Options struct {
	// Prefix starts every key, inside the session's hash tag:
	// "{Prefix:<session hash>}:". It must not contain '{' or '}'. Empty
	// means DefaultPrefix. It may be shared with a redislimit.Limiter:
	// their keys never collide.
	Prefix string
	// TTL is how long a session is kept after its last use: every
	// operation on a session, refused ones included, extends all of its
	// keys to TTL. Zero means DefaultTTL; under a millisecond is an error.
	TTL time.Duration
	// ExpiredFor is how long, once a session has expired, its calls are
	// still refused ([toolguard.ErrSessionFull]: the session expired)
	// rather than started again from an empty history, as the in-memory
	// store does. A refused call extends it. Zero means 4*TTL.
	ExpiredFor time.Duration
	// Timeout bounds each operation, whatever the client's own timeouts:
	// a Redis that is slower, or down, is an error wrapping
	// ErrUnavailable. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxCalls is the most calls a session holds. Load refuses a session
	// that holds MaxCalls calls, and Reserve one whose calls that ran and
	// calls running reach it, so the next call is denied before it runs.
	// It also bounds the approvals a session remembers. Zero means
	// DefaultMaxCalls.
	MaxCalls int
	// MaxLabels is the most distinct labels a session holds. Zero means
	// DefaultMaxLabels.
	MaxLabels int
	// MaxTokens is the most (label, token) pairs a session's provenance
	// index holds. Zero means DefaultMaxTokens.
	MaxTokens int
}

// Store is a [toolguard.SessionStore] that keeps sessions in Redis, so that
// every replica sharing the Redis sees the same sessions. See the package
// documentation for the data model.
//
// A Store is safe for concurrent use. Create one with [New]; the zero Store
// has no client and every method returns an error.
type Store struct {
	client                         redis.UniversalClient
	prefix                         string // "{agentguard:"
	ttl                            string // milliseconds, for PEXPIRE
	gone                           string // milliseconds: TTL + ExpiredFor
	ttlD                           time.Duration
	timeout                        time.Duration
	maxCalls, maxLabels, maxTokens int
}

var _ toolguard.SessionStore = (*Store)(nil)

// New returns a Store that keeps its sessions in client. The client's own
// retries and timeouts apply inside Options.Timeout; set its
// ContextTimeoutEnabled so that a request abandoned at the timeout stops
// too.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redissession: nil client")
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redissession: prefix %q must not contain braces", opts.Prefix)
	}
	if opts.TTL < 0 || opts.Timeout < 0 || opts.ExpiredFor < 0 {
		return nil, errors.New("redissession: negative time to live, refusal time or timeout")
	}
	if opts.TTL > 0 && opts.TTL < time.Millisecond {
		return nil, errors.New("redissession: time to live under 1ms")
	}
	for _, b := range []int{opts.MaxCalls, opts.MaxLabels, opts.MaxTokens} {
		if b < 0 || b > maxBound {
			return nil, fmt.Errorf("redissession: bound %d out of range [0, %d]", b, maxBound)
		}
	}
	ttl := cmpOr(opts.TTL, DefaultTTL)
	gone := ttl + cmpOr(opts.ExpiredFor, 4*ttl)
	return &Store{
		client:    client,
		prefix:    "{" + cmpOr(opts.Prefix, DefaultPrefix) + ":",
		ttl:       fmt.Sprint(ttl.Milliseconds()),
		gone:      fmt.Sprint(gone.Milliseconds()),
		ttlD:      ttl,
		timeout:   cmpOr(opts.Timeout, DefaultTimeout),
		maxCalls:  cmpOr(opts.MaxCalls, DefaultMaxCalls),
		maxLabels: cmpOr(opts.MaxLabels, DefaultMaxLabels),
		maxTokens: cmpOr(opts.MaxTokens, DefaultMaxTokens),
	}, nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// errFull is the error of an operation on a session refused for why, a
// script's reason.
func (s *Store) errFull(why any) error {
	var msg string
	switch why {
	case "calls":
		msg = fmt.Sprintf("the session has run its limit of %d calls", s.maxCalls)
	case "running":
		msg = fmt.Sprintf("the session has run or is running its limit of %d calls", s.maxCalls)
	case "labels":
		msg = fmt.Sprintf("the session holds its limit of %d labels", s.maxLabels)
	case "tokens":
		msg = fmt.Sprintf("the session holds its limit of %d values from earlier results", s.maxTokens)
	case "approvals":
		msg = fmt.Sprintf("the session holds its limit of %d remembered approvals", s.maxCalls)
	case "expired":
		msg = fmt.Sprintf("the session expired after %s without calls", s.ttlD)
	default:
		msg = "the session is full"
	}
	// The same text as the in-memory store's: the reason reads the same
	// whichever store the guard has.
	return fmt.Errorf("%w: %s", toolguard.ErrSessionFull, msg)
}

// Load implements [toolguard.SessionStore]. A session never seen is empty
// and is not created. A session that holds MaxCalls calls, or that an
// Append or Remember found over its bounds, is an error matching
// [toolguard.ErrSessionFull].
func (s *Store) Load(ctx context.Context, k toolguard.SessionKey) (toolguard.SessionState, error) {
	if err := s.check(); err != nil {
		return toolguard.SessionState{}, err
	}
	v, err := s.run(ctx, loadScript, k, s.ttl, s.gone, s.maxCalls)
	if err != nil {
		return toolguard.SessionState{}, err
	}
	if err := s.refused(v); err != nil {
		return toolguard.SessionState{}, err
	}
	st, err := decodeState(v)
	if err != nil {
		return toolguard.SessionState{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return st, nil
}

// Lookup implements [toolguard.SessionStore] with one round trip whose
// cost grows with len(tokens), not with the session.
func (s *Store) Lookup(ctx context.Context, k toolguard.SessionKey, label string, tokens []string) (map[string]scope.Origin, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	args := make([]any, 0, 3+len(tokens))
	args = append(args, s.ttl, s.gone, fieldPrefix(label))
	for _, t := range tokens {
		args = append(args, t)
	}
	v, err := s.run(ctx, lookupScript, k, args...)
	if err != nil {
		return nil, err
	}
	if err := s.refused(v); err != nil {
		return nil, err
	}
	if len(v) != 1+len(tokens) {
		return nil, fmt.Errorf("%w: unexpected reply of %d values to %d tokens", ErrUnavailable, len(v), len(tokens))
	}
	found := make(map[string]scope.Origin)
	for i, t := range tokens {
		if v[1+i] == nil {
			continue
		}
		o, err := decodeOrigin(v[1+i])
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		found[t] = o
	}
	return found, nil
}

// Reserve implements [toolguard.SessionStore]: one script counts the
// calls that ran and the live reservations and, if they are under
// MaxCalls, reserves one for callID, so that replicas and goroutines
// calling at once cannot together exceed MaxCalls. A reservation lasts
// TTL unless the call's Append or Release ends it first, so that one left
// by a replica that died does not hold the call forever.
func (s *Store) Reserve(ctx context.Context, k toolguard.SessionKey, callID string) error {
	if err := s.check(); err != nil {
		return err
	}
	v, err := s.run(ctx, reserveScript, k, s.ttl, s.gone, s.maxCalls, callID)
	if err != nil {
		return err
	}
	return s.refused(v)
}

// Release implements [toolguard.SessionStore].
func (s *Store) Release(ctx context.Context, k toolguard.SessionKey, callID string) error {
	if err := s.check(); err != nil {
		return err
	}
	_, err := s.run(ctx, releaseScript, k, callID)
	return err
}

// Append implements [toolguard.SessionStore]: one script checks every
// bound and then, only if the event fits, assigns the next Seq and adds the
// call, its labels and its tokens, keeping the earliest origin of each
// label and (label, token) pair. An event that does not fit changes
// nothing but marks the session full.
func (s *Store) Append(ctx context.Context, k toolguard.SessionKey, ev toolguard.SessionEvent) (scope.Origin, error) {
	if err := s.check(); err != nil {
		return scope.Origin{}, err
	}
	labels := dedup(ev.Labels)
	tokens := dedup(ev.Tokens)
	args := make([]any, 0, 8+len(labels)+len(tokens))
	args = append(args, s.ttl, s.gone, s.maxCalls, s.maxLabels, s.maxTokens, ev.Origin.Tool, ev.Origin.CallID, len(labels))
	for _, l := range labels {
		args = append(args, l)
	}
	for _, t := range tokens {
		args = append(args, t)
	}
	v, err := s.run(ctx, appendScript, k, args...)
	if err != nil {
		return scope.Origin{}, err
	}
	if err := s.refused(v); err != nil {
		return scope.Origin{}, err
	}
	if len(v) != 2 {
		return scope.Origin{}, fmt.Errorf("%w: unexpected reply of %d values to an append", ErrUnavailable, len(v))
	}
	seq, ok := v[1].(int64)
	if !ok || seq < 1 {
		return scope.Origin{}, fmt.Errorf("%w: unexpected sequence number %v", ErrUnavailable, v[1])
	}
	o := ev.Origin
	o.Seq = uint64(seq)
	return o, nil
}

// Remember implements [toolguard.SessionStore]. The first approval stored
// for rule and key is kept; a session remembers at most MaxCalls
// approvals, and one more marks it full.
func (s *Store) Remember(ctx context.Context, k toolguard.SessionKey, rule, key string, o scope.Origin) error {
	if err := s.check(); err != nil {
		return err
	}
	v, err := s.run(ctx, rememberScript, k, s.ttl, s.gone, s.maxCalls, fieldPrefix(rule)+key, encodeOrigin(o))
	if err != nil {
		return err
	}
	if err := s.refused(v); err != nil {
		return err
	}
	return nil
}

// Remembered implements [toolguard.SessionStore].
func (s *Store) Remembered(ctx context.Context, k toolguard.SessionKey, rule, key string) (scope.Origin, bool, error) {
	if err := s.check(); err != nil {
		return scope.Origin{}, false, err
	}
	v, err := s.run(ctx, rememberedScript, k, s.ttl, s.gone, fieldPrefix(rule)+key)
	if err != nil {
		return scope.Origin{}, false, err
	}
	if err := s.refused(v); err != nil {
		return scope.Origin{}, false, err
	}
	if len(v) != 2 {
		return scope.Origin{}, false, fmt.Errorf("%w: unexpected reply of %d values", ErrUnavailable, len(v))
	}
	if v[1] == nil {
		return scope.Origin{}, false, nil
	}
	o, err := decodeOrigin(v[1])
	if err != nil {
		return scope.Origin{}, false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return o, true, nil
}

// dedup returns the distinct strings of in, in their first order, without
// copying when they are already distinct.
func dedup(in []string) []string {
	if len(in) < 2 {
		return in
	}
	if len(in) <= 8 {
		for i := 1; i < len(in); i++ {
			if slices.Contains(in[:i], in[i]) {
				return dedupMap(in)
			}
		}
		return in
	}
	return dedupMap(in)
}

func dedupMap(in []string) []string {
	seen := make(map[string]struct{}, len(in))
	out := make([]string, 0, len(in))
	for _, s := range in {
		if _, ok := seen[s]; !ok {
			seen[s] = struct{}{}
			out = append(out, s)
		}
	}
	return out
}

// check returns an error for a Store not made by New.
func (s *Store) check() error {
	if s == nil || s.client == nil {
		return errors.New("redissession: Store has no client (use New)")
	}
	return nil
}

// refused returns the error for a script's reply that refuses the session,
// or nil: every script replies {1, ...} when it did its work and {0, why}
// when it refused.
func (s *Store) refused(v []any) error {
	if v[0] != int64(0) {
		return nil
	}
	var why any
	if len(v) > 1 {
		why = v[1]
	}
	return s.errFull(why)
}

// run runs a script on the keys of session k, waiting at most the timeout
// whatever the client's own settings. If it gives up, the script may still
// run; its answer is then dropped.
func (s *Store) run(ctx context.Context, sc *redis.Script, k toolguard.SessionKey, args ...any) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	type reply struct {
		v   any
		err error
	}
	ch := make(chan reply, 1)
	var state atomic.Int32 // 0 running, 1 answered, 2 abandoned
	keys := s.keys(k)
	go func() {
		v, err := sc.Run(ctx, s.client, keys[:], args...).Result()
		if state.CompareAndSwap(0, 1) {
			ch <- reply{v, err}
		}
	}()
	var r reply
	select {
	case r = <-ch:
	case <-ctx.Done():
		if state.CompareAndSwap(0, 2) {
			if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("redissession: %w", err)
			}
			return nil, fmt.Errorf("%w: no answer within %v", ErrUnavailable, s.timeout)
		}
		r = <-ch
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, r.err)
	}
	v, ok := r.v.([]any)
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("%w: unexpected reply %T", ErrUnavailable, r.v)
	}
	return v, nil
}
