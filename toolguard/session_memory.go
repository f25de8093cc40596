package toolguard

import (
	"container/list"
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/agentguard/agentguard/scope"
)

// MemorySessionOptions bound a [MemorySessions] store. Zero fields mean
// the defaults.
type MemorySessionOptions struct {
	// MaxSessions is the most sessions held at once (default 10,000).
	// Beyond it the least recently used session is dropped, and later
	// calls in it are denied as dropped. Only many principals together
	// reach it: see MaxSessionsPerPrincipal.
	MaxSessions int
	// MaxSessionsPerPrincipal is the most sessions one principal holds at
	// once (default a tenth of MaxSessions, at least 1). A principal's
	// new session beyond it drops that principal's own least recently
	// used session, never another principal's: one principal opening
	// sessions in a loop cannot push another's session, and the labels
	// it holds, out of the store.
	MaxSessionsPerPrincipal int
	// TTL is how long an idle session is kept (default 24h). A call in a
	// session idle for longer is denied as expired rather than given an
	// empty history.
	TTL time.Duration
	// MaxCalls is the most calls one session may run (default 100,000).
	// Calls running at once count too: each takes its place (Reserve)
	// before its handler runs, so a call that would go over is denied
	// before it runs.
	MaxCalls int
	// MaxLabels is the most distinct labels one session may hold
	// (default 64).
	MaxLabels int
	// MaxTokens is the most provenance tokens one session may hold
	// (default 100,000; see BenchmarkSessionMemory for the bytes a token
	// costs).
	MaxTokens int
}

func (o *MemorySessionOptions) defaults() {
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10_000
	}
	if o.MaxSessionsPerPrincipal <= 0 {
		o.MaxSessionsPerPrincipal = max(1, o.MaxSessions/10)
	}
	o.MaxSessionsPerPrincipal = min(o.MaxSessionsPerPrincipal, o.MaxSessions)
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 100_000
	}
	if o.MaxLabels <= 0 {
		o.MaxLabels = 64
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 100_000
	}
}

// MemorySessions is the in-memory [SessionStore], the default of a
// [Guard]. It holds sessions of one process, bounded in number (least
// recently used first out), idle time and size; a session over a bound is
// never silently forgotten: its calls are denied with [ErrSessionFull]
// saying which bound, and the caller starts a new session.
//
// A session dropped (idle for TTL, or for room) is remembered as dropped,
// by a digest of its key, and its calls are denied ("the session was
// dropped"), never given an empty history. Each principal's drops are
// remembered apart: the last 4×MaxSessionsPerPrincipal of its own, and
// only the drops of all principals together beyond 4×MaxSessions push
// out the oldest of anyone's. So one principal can neither evict another
// principal's session nor make another's dropped session look new; at
// most it forgets its own, which it could as well replace with a new
// session.
//
// Every method takes time independent of how long a session has run.
// A MemorySessions is safe for concurrent use; create one with
// [NewMemorySessions].
type MemorySessions struct {
	opts MemorySessionOptions
	seed maphash.Seed
	now  func() time.Time

	mu         sync.Mutex
	sessions   map[SessionKey]*memSession
	lru        list.List // of *memSession; front: most recently used
	principals map[string]*memPrincipal
	gone       map[uint64]goneSession // dropped sessions, by keyHash
	goneQ      []goneRef              // every principal's, oldest first
	goneSeq    uint64
}

// memPrincipal is what the store holds for one principal: its live
// sessions and the sessions of it remembered as dropped.
type memPrincipal struct {
	lru   list.List // of *memSession; front: most recently used
	goneQ []goneRef // its own, oldest first; may hold refs already gone
	goneN int       // of its sessions in gone
}

type goneSession struct {
	why string
	seq uint64 // tells a ref to this drop from one to an earlier drop
}

type goneRef struct {
	hash, seq uint64
	principal string
}

type memSession struct {
	key  SessionKey
	last time.Time
	el   *list.Element // in MemorySessions.lru
	pel  *list.Element // in its memPrincipal's lru
	// state is replaced, never modified, on each Append: a Load hands it
	// out without copying.
	state   SessionState
	origins []scope.Origin // of calls whose results carried a label
	tokens  map[uint64]uint32
	memo    map[string]scope.Origin // remembered approvals: rule \0 key
	// reserved holds the calls reserved and not yet appended.
	reserved map[string]struct{}
	full     error
}

// NewMemorySessions returns an empty in-memory session store.
func NewMemorySessions(o MemorySessionOptions) *MemorySessions {
	o.defaults()
	return &MemorySessions{opts: o, seed: maphash.MakeSeed(), now: time.Now,
		sessions: map[SessionKey]*memSession{}, principals: map[string]*memPrincipal{}, gone: map[uint64]goneSession{}}
}

// get returns the live session of k, or nil for one never seen; an error
// for a session dropped or over its bounds. Called with mu held.
func (m *MemorySessions) get(k SessionKey, now time.Time) (*memSession, error) {
	s, ok := m.sessions[k]
	if !ok {
		if g, dropped := m.gone[m.keyHash(k)]; dropped {
			return nil, fmt.Errorf("%w: the session %s", ErrSessionFull, g.why)
		}
		return nil, nil
	}
	if now.Sub(s.last) > m.opts.TTL {
		m.drop(s, fmt.Sprintf("expired after %s without calls", m.opts.TTL))
		return nil, fmt.Errorf("%w: the session expired after %s without calls", ErrSessionFull, m.opts.TTL)
	}
	if s.full != nil {
		return nil, s.full
	}
	s.last = now
	m.lru.MoveToFront(s.el)
	m.principals[k.Principal].lru.MoveToFront(s.pel)
	return s, nil
}

func (m *MemorySessions) keyHash(k SessionKey) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(k.Principal)
	h.WriteByte(0)
	h.WriteString(k.Session)
	return h.Sum64()
}

// drop forgets a session, remembering that it was dropped and why: in
// its principal's own memory of drops, bounded per principal, and in the
// memory of all drops, bounded in all.
func (m *MemorySessions) drop(s *memSession, why string) {
	p := m.principals[s.key.Principal]
	m.lru.Remove(s.el)
	p.lru.Remove(s.pel)
	delete(m.sessions, s.key)
	h := m.keyHash(s.key)
	if _, ok := m.gone[h]; !ok {
		p.goneN++
	}
	m.goneSeq++
	ref := goneRef{hash: h, seq: m.goneSeq, principal: s.key.Principal}
	m.gone[h] = goneSession{why: why, seq: ref.seq}
	p.goneQ = append(p.goneQ, ref)
	m.goneQ = append(m.goneQ, ref)
	for p.goneN > 4*m.opts.MaxSessionsPerPrincipal {
		m.forget(p.goneQ[0])
		p.goneQ = p.goneQ[1:]
	}
	if len(p.goneQ) > 8*m.opts.MaxSessionsPerPrincipal {
		// Refs forgotten through m.goneQ pile up: keep the live ones.
		p.goneQ = slices.DeleteFunc(p.goneQ, func(r goneRef) bool { return m.gone[r.hash].seq != r.seq })
	}
	for len(m.gone) > 4*m.opts.MaxSessions {
		m.forget(m.goneQ[0])
		m.goneQ = m.goneQ[1:]
	}
	if len(m.goneQ) > 8*m.opts.MaxSessions {
		m.goneQ = slices.DeleteFunc(m.goneQ, func(r goneRef) bool { return m.gone[r.hash].seq != r.seq })
	}
}

// forget forgets the drop ref names, unless the session was dropped again
// since, and the principal once nothing of it is left.
func (m *MemorySessions) forget(ref goneRef) {
	g, ok := m.gone[ref.hash]
	if !ok || g.seq != ref.seq {
		return
	}
	delete(m.gone, ref.hash)
	p := m.principals[ref.principal]
	p.goneN--
	if p.goneN == 0 && p.lru.Len() == 0 {
		delete(m.principals, ref.principal)
	}
}

// Load implements [SessionStore].
func (m *MemorySessions) Load(_ context.Context, k SessionKey) (SessionState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.get(k, m.now())
	if err != nil || s == nil {
		return SessionState{}, err
	}
	return s.state, nil
}

// Lookup implements [SessionStore].
func (m *MemorySessions) Lookup(_ context.Context, k SessionKey, label string, tokens []string) (map[string]scope.Origin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.get(k, m.now())
	if err != nil || s == nil {
		return nil, err
	}
	var out map[string]scope.Origin
	for _, t := range tokens {
		if i, ok := s.tokens[m.tokenHash(label, t)]; ok {
			if out == nil {
				out = map[string]scope.Origin{}
			}
			out[t] = s.origins[i]
		}
	}
	return out, nil
}

func (m *MemorySessions) tokenHash(label, token string) uint64 {
	var h maphash.Hash
	h.SetSeed(m.seed)
	h.WriteString(label)
	h.WriteByte(0)
	h.WriteString(token)
	return h.Sum64()
}

// Reserve implements [SessionStore]: the calls that ran and those
// reserved together stay within MaxCalls.
func (m *MemorySessions) Reserve(_ context.Context, k SessionKey, callID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s, err := m.get(k, now)
	if err != nil {
		return err
	}
	if s == nil {
		if s, err = m.create(k, now); err != nil {
			return err
		}
	}
	if _, ok := s.reserved[callID]; ok {
		return nil
	}
	if s.state.Calls >= uint64(m.opts.MaxCalls) {
		s.full = fmt.Errorf("%w: the session has run its limit of %d calls", ErrSessionFull, m.opts.MaxCalls)
		return s.full
	}
	if s.state.Calls+uint64(len(s.reserved)) >= uint64(m.opts.MaxCalls) {
		return fmt.Errorf("%w: the session has run or is running its limit of %d calls", ErrSessionFull, m.opts.MaxCalls)
	}
	if s.reserved == nil {
		s.reserved = map[string]struct{}{}
	}
	s.reserved[callID] = struct{}{}
	return nil
}

// Release implements [SessionStore].
func (m *MemorySessions) Release(_ context.Context, k SessionKey, callID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[k]; ok {
		delete(s.reserved, callID)
	}
	return nil
}

// Append implements [SessionStore].
func (m *MemorySessions) Append(_ context.Context, k SessionKey, ev SessionEvent) (scope.Origin, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s, err := m.get(k, now)
	if err != nil {
		return scope.Origin{}, err
	}
	if s == nil {
		if s, err = m.create(k, now); err != nil {
			return scope.Origin{}, err
		}
	}
	delete(s.reserved, ev.Origin.CallID)
	o := ev.Origin
	o.Seq = s.state.Calls + 1
	labels := newLabels(s.state.Labels, ev.Labels, o)
	newTokens := 0
	if len(ev.Labels) > 0 {
		for _, t := range ev.Tokens {
			for _, l := range ev.Labels {
				if _, ok := s.tokens[m.tokenHash(l, t)]; !ok {
					newTokens++
				}
			}
		}
	}
	switch {
	case o.Seq > uint64(m.opts.MaxCalls):
		s.full = fmt.Errorf("%w: the session has run its limit of %d calls", ErrSessionFull, m.opts.MaxCalls)
	case len(labels) > m.opts.MaxLabels:
		s.full = fmt.Errorf("%w: the session holds its limit of %d labels", ErrSessionFull, m.opts.MaxLabels)
	case s.state.Tokens+newTokens > m.opts.MaxTokens:
		s.full = fmt.Errorf("%w: the session holds its limit of %d values from earlier results", ErrSessionFull, m.opts.MaxTokens)
	}
	if s.full != nil {
		return scope.Origin{}, s.full
	}
	st := SessionState{Calls: o.Seq, Labels: labels, Tools: make(map[string]int, len(s.state.Tools)+1), Tokens: s.state.Tokens + newTokens}
	for t, n := range s.state.Tools {
		st.Tools[t] = n
	}
	st.Tools[o.Tool]++
	if len(ev.Labels) > 0 && len(ev.Tokens) > 0 {
		idx := uint32(len(s.origins))
		s.origins = append(s.origins, o)
		for _, t := range ev.Tokens {
			for _, l := range ev.Labels {
				h := m.tokenHash(l, t)
				if _, ok := s.tokens[h]; !ok {
					s.tokens[h] = idx
				}
			}
		}
	}
	s.state = st
	return o, nil
}

// newLabels returns labels with those of ev added (by o, if not held
// yet), sorted; it returns labels itself when nothing is new.
func newLabels(held []scope.LabelOrigin, add []string, o scope.Origin) []scope.LabelOrigin {
	out := held
	for _, l := range add {
		if slices.ContainsFunc(out, func(x scope.LabelOrigin) bool { return x.Label == l }) {
			continue
		}
		if len(out) == len(held) {
			out = slices.Clone(held)
		}
		out = append(out, scope.LabelOrigin{Label: l, Origin: o})
	}
	if len(out) != len(held) {
		slices.SortFunc(out, func(a, b scope.LabelOrigin) int {
			switch {
			case a.Label < b.Label:
				return -1
			case a.Label > b.Label:
				return 1
			}
			return 0
		})
	}
	return out
}

// create starts session k, dropping first the principal's own least
// recently used session if it holds its quota, or else the least recently
// used session of all if the store is full.
func (m *MemorySessions) create(k SessionKey, now time.Time) (*memSession, error) {
	p := m.principals[k.Principal]
	if p == nil {
		p = &memPrincipal{}
		m.principals[k.Principal] = p
	}
	if p.lru.Len() >= m.opts.MaxSessionsPerPrincipal {
		m.drop(p.lru.Back().Value.(*memSession), fmt.Sprintf("was dropped to make room for newer sessions of the same principal (at most %d are kept per principal)", m.opts.MaxSessionsPerPrincipal))
	}
	for len(m.sessions) >= m.opts.MaxSessions {
		m.drop(m.lru.Back().Value.(*memSession), fmt.Sprintf("was dropped to make room for newer sessions (at most %d are kept)", m.opts.MaxSessions))
	}
	// A drop above may have forgotten the last of the principal's drops,
	// and with them the principal: it has a session again.
	m.principals[k.Principal] = p
	s := &memSession{key: k, last: now, tokens: map[uint64]uint32{}}
	s.el = m.lru.PushFront(s)
	s.pel = p.lru.PushFront(s)
	m.sessions[k] = s
	return s, nil
}

// Remember implements [SessionStore].
func (m *MemorySessions) Remember(_ context.Context, k SessionKey, rule, key string, o scope.Origin) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	s, err := m.get(k, now)
	if err != nil {
		return err
	}
	if s == nil {
		if s, err = m.create(k, now); err != nil {
			return err
		}
	}
	if s.memo == nil {
		s.memo = map[string]scope.Origin{}
	}
	mk := rule + "\x00" + key
	if _, ok := s.memo[mk]; !ok {
		if len(s.memo) >= m.opts.MaxLabels*16 {
			return fmt.Errorf("%w: the session holds its limit of %d remembered approvals", ErrSessionFull, m.opts.MaxLabels*16)
		}
		s.memo[mk] = o
	}
	return nil
}

// Remembered implements [SessionStore].
func (m *MemorySessions) Remembered(_ context.Context, k SessionKey, rule, key string) (scope.Origin, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.get(k, m.now())
	if err != nil || s == nil {
		return scope.Origin{}, false, err
	}
	o, ok := s.memo[rule+"\x00"+key]
	return o, ok, nil
}
