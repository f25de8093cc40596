package sessionstoretest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/sessionstoretest"
)

// refStore is a plain, locked, in-memory store written from the contract,
// so that the suite can be run here, and broken on purpose (bug) to check
// that the suite notices.
type refStore struct {
	bug string

	mu       sync.Mutex
	sessions map[string]*refSession
}

type refSession struct {
	calls    uint64
	full     bool
	labels   map[string]scope.Origin
	tools    map[string]int
	tokens   map[[2]string]scope.Origin
	approved map[[2]string]scope.Origin
	pairs    int
	reserved map[string]bool
}

// The bounds of refStore: inside the ranges the suite needs.
const (
	refCalls  = 300
	refLabels = 16
	refTokens = 2000
)

func newRefStore(bug string) *refStore {
	return &refStore{bug: bug, sessions: map[string]*refSession{}}
}

func (s *refStore) key(k toolguard.SessionKey) string {
	switch s.bug {
	case "ignore-principal":
		return k.Session
	case "joined-key":
		return k.Principal + ":" + k.Session
	}
	return fmt.Sprintf("%d:%s%s", len(k.Principal), k.Principal, k.Session)
}

func (s *refStore) get(k toolguard.SessionKey, create bool) *refSession {
	ss := s.sessions[s.key(k)]
	if ss == nil && create {
		ss = &refSession{labels: map[string]scope.Origin{}, tools: map[string]int{},
			tokens: map[[2]string]scope.Origin{}, approved: map[[2]string]scope.Origin{}, reserved: map[string]bool{}}
		s.sessions[s.key(k)] = ss
	}
	return ss
}

func (s *refStore) Load(_ context.Context, k toolguard.SessionKey) (toolguard.SessionState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.get(k, false)
	if ss == nil {
		return toolguard.SessionState{}, nil
	}
	if ss.full && s.bug != "forgets-full" {
		return toolguard.SessionState{}, toolguard.ErrSessionFull
	}
	st := toolguard.SessionState{Calls: ss.calls, Tools: map[string]int{}, Tokens: ss.pairs}
	if s.bug == "shared-state" {
		st.Tools = ss.tools // changed in place by later appends
	} else {
		for t, n := range ss.tools {
			st.Tools[t] = n
		}
	}
	for l, o := range ss.labels {
		st.Labels = append(st.Labels, scope.LabelOrigin{Label: l, Origin: o})
	}
	if s.bug != "unsorted-labels" {
		slices.SortFunc(st.Labels, func(a, b scope.LabelOrigin) int { return strings.Compare(a.Label, b.Label) })
	}
	return st, nil
}

func (s *refStore) Lookup(_ context.Context, k toolguard.SessionKey, label string, tokens []string) (map[string]scope.Origin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]scope.Origin{}
	ss := s.get(k, false)
	if ss == nil {
		return out, nil
	}
	for _, t := range tokens {
		if s.bug == "any-label" {
			for p, o := range ss.tokens {
				if p[1] == t {
					out[t] = o
				}
			}
			continue
		}
		if s.bug == "case-folded" {
			for p, o := range ss.tokens {
				if p[0] == label && strings.EqualFold(p[1], t) {
					out[t] = o
				}
			}
			continue
		}
		if o, ok := ss.tokens[[2]string{label, t}]; ok {
			out[t] = o
		}
	}
	return out, nil
}

func (s *refStore) Reserve(_ context.Context, k toolguard.SessionKey, callID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.get(k, true)
	if ss.full {
		return toolguard.ErrSessionFull
	}
	if ss.reserved[callID] {
		return nil
	}
	running := len(ss.reserved)
	if s.bug == "reserve-ignores-running" {
		running = 0
	}
	if s.bug != "unbounded" && ss.calls+uint64(running) >= refCalls {
		return toolguard.ErrSessionFull
	}
	ss.reserved[callID] = true
	return nil
}

func (s *refStore) Release(_ context.Context, k toolguard.SessionKey, callID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.get(k, false); ss != nil && s.bug != "release-ignored" {
		delete(ss.reserved, callID)
	}
	return nil
}

func (s *refStore) Append(_ context.Context, k toolguard.SessionKey, ev toolguard.SessionEvent) (scope.Origin, error) {
	if s.bug == "racy-seq" {
		s.mu.Lock()
		ss := s.get(k, true)
		seq := ss.calls + 1
		s.mu.Unlock()
		time.Sleep(10 * time.Microsecond)
		s.mu.Lock()
		ss.calls = seq
		ss.tools[ev.Origin.Tool]++
		s.mu.Unlock()
		o := ev.Origin
		o.Seq = seq
		return o, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.get(k, true)
	if ss.full {
		return scope.Origin{}, toolguard.ErrSessionFull
	}
	delete(ss.reserved, ev.Origin.CallID)
	newLabels, newPairs := 0, 0
	seen := map[[2]string]bool{}
	for i, l := range ev.Labels {
		if _, ok := ss.labels[l]; !ok && !slices.Contains(ev.Labels[:i], l) {
			newLabels++
		}
		for _, t := range ev.Tokens {
			p := [2]string{l, t}
			if _, ok := ss.tokens[p]; (!ok && !seen[p]) || s.bug == "count-repeats" {
				newPairs++
			}
			seen[p] = true
		}
	}
	if s.bug != "unbounded" && (ss.calls+1 > refCalls || len(ss.labels)+newLabels > refLabels || ss.pairs+newPairs > refTokens) {
		if s.bug != "forgets-full" {
			ss.full = true
		}
		return scope.Origin{}, toolguard.ErrSessionFull
	}
	ss.calls++
	o := ev.Origin
	o.Seq = ss.calls
	ss.tools[o.Tool]++
	for _, l := range ev.Labels {
		if _, ok := ss.labels[l]; !ok || s.bug == "latest-origin" {
			ss.labels[l] = o
		}
		for _, t := range ev.Tokens {
			if _, ok := ss.tokens[[2]string{l, t}]; !ok || s.bug == "latest-origin" {
				ss.tokens[[2]string{l, t}] = o
			}
		}
	}
	ss.pairs += newPairs
	return o, nil
}

func (s *refStore) Remember(_ context.Context, k toolguard.SessionKey, rule, key string, o scope.Origin) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bug == "remember-key-only" {
		rule = ""
	}
	s.get(k, true).approved[[2]string{rule, key}] = o
	return nil
}

func (s *refStore) Remembered(_ context.Context, k toolguard.SessionKey, rule, key string) (scope.Origin, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.get(k, false)
	if ss == nil {
		return scope.Origin{}, false, nil
	}
	if s.bug == "remember-key-only" {
		rule = ""
	}
	o, ok := ss.approved[[2]string{rule, key}]
	return o, ok, nil
}

var (
	_ toolguard.SessionStore = (*refStore)(nil)
	_                        = sessionstoretest.CallsMin
)
