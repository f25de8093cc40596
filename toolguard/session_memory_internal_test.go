package toolguard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentguard/agentguard/scope"
)

// An idle session expires: its next call is refused, saying so, and is
// not given an empty history; a session in use does not expire.
func TestMemorySessionsTTL(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemorySessions(MemorySessionOptions{TTL: time.Hour})
	m.now = func() time.Time { return now }
	ctx := context.Background()
	k := SessionKey{Principal: "p", Session: "s"}
	busy := SessionKey{Principal: "p", Session: "busy"}
	if _, err := m.Append(ctx, k, SessionEvent{Origin: scope.Origin{Tool: "read", CallID: "c1"}, Labels: []string{"untrusted"}, Tokens: []string{"tok1"}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := m.Append(ctx, busy, SessionEvent{Origin: scope.Origin{Tool: "read", CallID: "b"}}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(50 * time.Minute)
	}
	if _, err := m.Load(ctx, busy); err != nil {
		t.Fatalf("a session used every 50 minutes expired: %v", err)
	}
	_, err := m.Load(ctx, k)
	if !errors.Is(err, ErrSessionFull) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Load after 150 idle minutes = %v, want expired", err)
	}
	for _, f := range []func() error{
		func() error { _, err := m.Load(ctx, k); return err },
		func() error { _, err := m.Append(ctx, k, SessionEvent{}); return err },
		func() error { _, err := m.Lookup(ctx, k, "untrusted", []string{"tok1"}); return err },
		func() error { _, _, err := m.Remembered(ctx, k, "r", "k"); return err },
	} {
		if err := f(); !errors.Is(err, ErrSessionFull) {
			t.Fatalf("an expired session answered: %v", err)
		}
	}
}

// Dropped sessions are remembered only so far: the memory of drops is
// bounded too.
func TestMemorySessionsDropsAreBounded(t *testing.T) {
	m := NewMemorySessions(MemorySessionOptions{MaxSessions: 2})
	ctx := context.Background()
	for i := range 100 {
		k := SessionKey{Principal: "p", Session: string(rune('a'+i%26)) + strings.Repeat("x", i)}
		if _, err := m.Append(ctx, k, SessionEvent{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.sessions) != 1 || len(m.gone) != 4 || len(m.goneQ) > 16 || len(m.principals["p"].goneQ) > 8 {
		t.Fatalf("sessions %d, dropped remembered %d/%d", len(m.sessions), len(m.gone), len(m.goneQ))
	}
	// Many principals: the memory of all drops is bounded too, and forgets
	// principals with nothing left.
	for i := range 100 {
		k := SessionKey{Principal: fmt.Sprint("q", i), Session: "s"}
		if _, err := m.Append(ctx, k, SessionEvent{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(m.sessions) != 2 || len(m.gone) != 8 || len(m.goneQ) > 16 || len(m.principals) > 10 {
		t.Fatalf("sessions %d, dropped remembered %d/%d, principals %d", len(m.sessions), len(m.gone), len(m.goneQ), len(m.principals))
	}
}
