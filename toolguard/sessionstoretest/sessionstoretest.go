// Package sessionstoretest checks that a [toolguard.SessionStore] keeps
// the contract the guard relies on, as testing/slogtest does for slog
// handlers. Run it from a test of the store:
//
//	func TestConformance(t *testing.T) {
//		sessionstoretest.Run(t, func(t *testing.T) toolguard.SessionStore {
//			return mystore.New(mystore.Options{MaxCalls: 1000, MaxLabels: 32, MaxTokens: 4096})
//		})
//	}
//
// # Bounds
//
// The suite fills sessions until the store refuses them, so the store
// under test must be configured with bounds in these ranges:
//
//   - at most [CallsMin] to [CallsMax] calls per session,
//   - at most [LabelsMin] to [LabelsMax] distinct labels per session,
//   - at most [TokensMin] to [TokensMax] (label, token) pairs per session,
//
// and must keep sessions for at least a minute and hold at least 256
// sessions at once. The suite does not need to know the exact bounds: it checks
// that a store stays within its bounds by refusing ([toolguard.ErrSessionFull])
// somewhere in the range, never earlier.
package sessionstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// The bounds a store under test must be configured with, as ranges: its
// most calls per session in [CallsMin, CallsMax], and so on.
const (
	CallsMin, CallsMax   = 256, 4096
	LabelsMin, LabelsMax = 8, 128
	TokensMin, TokensMax = 1024, 65536
)

// Run runs the suite on stores made by newStore, one for each subtest
// (newStore may also return one shared store: every subtest uses its own
// principals). Each subtest is named after the contract point it checks.
func Run(t *testing.T, newStore func(t *testing.T) toolguard.SessionStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s toolguard.SessionStore, p string)
	}{
		{"EmptySession", testEmpty},
		{"AppendAssignsSeq", testAppendSeq},
		{"ConcurrentAppendSeq", testConcurrentSeq},
		{"EarliestOrigin", testEarliest},
		{"LabelsSorted", testLabelsSorted},
		{"LookupByLabel", testLookupByLabel},
		{"TokensCount", testTokensCount},
		{"Isolation", testIsolation},
		{"HostileIDs", testHostileIDs},
		{"RememberScoped", testRemember},
		{"CallsBound", testCallsBound},
		{"ReserveBound", testReserveBound},
		{"ConcurrentReserve", testConcurrentReserve},
		{"LabelsBound", testLabelsBound},
		{"TokensBound", testTokensBound},
		{"OversizedEvent", testOversizedEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A principal unique to the subtest, in case newStore shares
			// one store between subtests.
			tc.fn(t, newStore(t), "sessionstoretest/"+t.Name())
		})
	}
}

// ev is an event of tool with call id id, bringing labels and tokens.
func ev(tool, id string, labels []string, tokens ...string) toolguard.SessionEvent {
	return toolguard.SessionEvent{Origin: scope.Origin{Tool: tool, CallID: id}, Labels: labels, Tokens: tokens}
}

func mustAppend(t *testing.T, s toolguard.SessionStore, k toolguard.SessionKey, e toolguard.SessionEvent) scope.Origin {
	t.Helper()
	o, err := s.Append(context.Background(), k, e)
	if err != nil {
		t.Fatalf("Append(%+v, %+v): %v", k, e, err)
	}
	if o.Tool != e.Origin.Tool || o.CallID != e.Origin.CallID {
		t.Fatalf("Append(%+v) returned origin %+v, want tool %q call id %q", e, o, e.Origin.Tool, e.Origin.CallID)
	}
	return o
}

func mustLoad(t *testing.T, s toolguard.SessionStore, k toolguard.SessionKey) toolguard.SessionState {
	t.Helper()
	st, err := s.Load(context.Background(), k)
	if err != nil {
		t.Fatalf("Load(%+v): %v", k, err)
	}
	return st
}

func mustLookup(t *testing.T, s toolguard.SessionStore, k toolguard.SessionKey, label string, tokens ...string) map[string]scope.Origin {
	t.Helper()
	m, err := s.Lookup(context.Background(), k, label, tokens)
	if err != nil {
		t.Fatalf("Lookup(%+v, %q, %q): %v", k, label, tokens, err)
	}
	for tok := range m {
		if !slices.Contains(tokens, tok) {
			t.Fatalf("Lookup(%+v, %q, %q) found %q, which was not asked", k, label, tokens, tok)
		}
	}
	return m
}

func mustRemembered(t *testing.T, s toolguard.SessionStore, k toolguard.SessionKey, rule, key string) (scope.Origin, bool) {
	t.Helper()
	o, ok, err := s.Remembered(context.Background(), k, rule, key)
	if err != nil {
		t.Fatalf("Remembered(%+v, %q, %q): %v", k, rule, key, err)
	}
	return o, ok
}

// wantEmpty fails t unless st is the state of a session never seen.
func wantEmpty(t *testing.T, what string, st toolguard.SessionState) {
	t.Helper()
	if st.Calls != 0 || len(st.Labels) != 0 || len(st.Tools) != 0 || st.Tokens != 0 {
		t.Fatalf("%s: state %+v, want an empty session", what, st)
	}
}

// wantLabels fails t unless st holds exactly want, in that order.
func wantLabels(t *testing.T, st toolguard.SessionState, want ...scope.LabelOrigin) {
	t.Helper()
	if !slices.Equal(st.Labels, want) {
		t.Fatalf("labels %+v, want %+v", st.Labels, want)
	}
}

// wantFull fails t unless err matches ErrSessionFull.
func wantFull(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, toolguard.ErrSessionFull) {
		t.Fatalf("%s: error %v, want one matching toolguard.ErrSessionFull", what, err)
	}
}

func testEmpty(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "never-seen"}
	wantEmpty(t, "Load", mustLoad(t, s, k))
	if m := mustLookup(t, s, k, "untrusted", "alice@example.com", "x"); len(m) != 0 {
		t.Fatalf("Lookup in an empty session found %v", m)
	}
	if m := mustLookup(t, s, k, "untrusted"); len(m) != 0 {
		t.Fatalf("Lookup of no tokens found %v", m)
	}
	if o, ok := mustRemembered(t, s, k, "ask-invite", "dora@example.com"); ok {
		t.Fatalf("Remembered in an empty session: %+v", o)
	}
	// Asking about a session does not create it with content.
	wantEmpty(t, "Load after reads", mustLoad(t, s, k))
}

func testAppendSeq(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	tools := []string{"read_email", "get_balance", "read_email", "send_email"}
	for i, tool := range tools {
		e := ev(tool, fmt.Sprintf("rec-%d", i), nil)
		e.Origin.Seq = 99 // the store assigns Seq, whatever the caller set
		o := mustAppend(t, s, k, e)
		if o.Seq != uint64(i+1) {
			t.Fatalf("call %d got Seq %d, want %d", i, o.Seq, i+1)
		}
	}
	st := mustLoad(t, s, k)
	if st.Calls != uint64(len(tools)) {
		t.Fatalf("Calls = %d, want %d", st.Calls, len(tools))
	}
	want := map[string]int{"read_email": 2, "get_balance": 1, "send_email": 1}
	if len(st.Tools) != len(want) {
		t.Fatalf("Tools = %v, want %v", st.Tools, want)
	}
	for tool, n := range want {
		if st.Tools[tool] != n {
			t.Fatalf("Tools = %v, want %v", st.Tools, want)
		}
	}
	if len(st.Labels) != 0 || st.Tokens != 0 {
		t.Fatalf("calls without labels or tokens left %+v", st)
	}
	// A later append does not change a state handed out before it.
	mustAppend(t, s, k, ev("send_email", "rec-4", []string{"private"}, "x"))
	if st.Calls != uint64(len(tools)) || st.Tools["send_email"] != 1 || len(st.Labels) != 0 || st.Tokens != 0 {
		t.Fatalf("a state handed out changed with a later append: %+v", st)
	}
}

// Many goroutines append to one session at once, and to sessions of their
// own: the shared session numbers its calls 1..n, each once.
func testConcurrentSeq(t *testing.T, s toolguard.SessionStore, p string) {
	const workers, each = 8, 25
	shared := toolguard.SessionKey{Principal: p, Session: "shared"}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs []uint64
		errs []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := toolguard.SessionKey{Principal: p, Session: fmt.Sprintf("own-%d", w)}
			for i := range each {
				e := ev(fmt.Sprintf("tool-%d", w), fmt.Sprintf("w%d-%d", w, i), []string{"untrusted"}, fmt.Sprintf("tok-%d-%d", w, i))
				o, err := s.Append(context.Background(), shared, e)
				o2, err2 := s.Append(context.Background(), own, e)
				mu.Lock()
				if err != nil || err2 != nil {
					errs = append(errs, errors.Join(err, err2))
				} else if o2.Seq != uint64(i+1) {
					errs = append(errs, fmt.Errorf("worker %d's own session gave call %d Seq %d", w, i, o2.Seq))
				}
				seqs = append(seqs, o.Seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d appends failed, first: %v", len(errs), errs[0])
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("concurrent appends got sequence numbers %v, want 1..%d each once", seqs, workers*each)
		}
	}
	st := mustLoad(t, s, shared)
	if st.Calls != workers*each || st.Tokens != workers*each || len(st.Tools) != workers {
		t.Fatalf("after %d concurrent appends: Calls %d, Tokens %d, %d tools", workers*each, st.Calls, st.Tokens, len(st.Tools))
	}
	for w := range workers {
		if n := st.Tools[fmt.Sprintf("tool-%d", w)]; n != each {
			t.Fatalf("tool-%d ran %d times, want %d", w, n, each)
		}
		own := mustLoad(t, s, toolguard.SessionKey{Principal: p, Session: fmt.Sprintf("own-%d", w)})
		if own.Calls != each || len(own.Tools) != 1 {
			t.Fatalf("worker %d's own session: %+v", w, own)
		}
	}
	// The label's origin is the call numbered 1, whichever worker made it.
	if len(st.Labels) != 1 || st.Labels[0].Seq != 1 {
		t.Fatalf("labels %+v, want untrusted from the call with Seq 1", st.Labels)
	}
}

func testEarliest(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	first := mustAppend(t, s, k, ev("read_email", "r1", []string{"untrusted"}, "iban:de89", "mallory@evil.example"))
	second := mustAppend(t, s, k, ev("get_balance", "r2", []string{"private"}, "iban:de89"))
	third := mustAppend(t, s, k, ev("get_webpage", "r3", []string{"untrusted", "private"}, "iban:de89", "mallory@evil.example", "https://evil.example/x"))

	// Labels sorted by label, each with the call that first brought it.
	wantLabels(t, mustLoad(t, s, k),
		scope.LabelOrigin{Label: "private", Origin: second},
		scope.LabelOrigin{Label: "untrusted", Origin: first})

	got := mustLookup(t, s, k, "untrusted", "iban:de89", "mallory@evil.example", "https://evil.example/x")
	want := map[string]scope.Origin{"iban:de89": first, "mallory@evil.example": first, "https://evil.example/x": third}
	if !mapsEqual(got, want) {
		t.Fatalf("Lookup untrusted = %+v, want %+v", got, want)
	}
	got = mustLookup(t, s, k, "private", "iban:de89", "mallory@evil.example")
	want = map[string]scope.Origin{"iban:de89": second, "mallory@evil.example": third}
	if !mapsEqual(got, want) {
		t.Fatalf("Lookup private = %+v, want %+v", got, want)
	}
}

// Load lists labels sorted byte-wise, whatever order they came in.
func testLabelsSorted(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	in := []string{"untrusted", "b", "private", "a", "Z", "é", "a:b", "", "zz", "a\x00"}
	o1 := mustAppend(t, s, k, ev("t", "r1", in[:5]))
	o2 := mustAppend(t, s, k, ev("t", "r2", in))
	var want []scope.LabelOrigin
	for i, l := range in {
		o := o1
		if i >= 5 {
			o = o2
		}
		want = append(want, scope.LabelOrigin{Label: l, Origin: o})
	}
	slices.SortFunc(want, func(a, b scope.LabelOrigin) int { return strings.Compare(a.Label, b.Label) })
	wantLabels(t, mustLoad(t, s, k), want...)
}

func mapsEqual(a, b map[string]scope.Origin) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Tokens are found only under the labels their results carried, byte for
// byte; a (label, token) pair never matches another pair that spells the
// same text when joined.
func testLookupByLabel(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	o := mustAppend(t, s, k, ev("read_channel", "r1", []string{"untrusted"}, "acct-123", "c"))
	mustAppend(t, s, k, ev("get_balance", "r2", []string{"a:b"}, "c"))
	mustAppend(t, s, k, ev("no_labels", "r3", nil, "only-unlabelled"))

	if got := mustLookup(t, s, k, "untrusted", "acct-123", "nope"); len(got) != 1 || got["acct-123"] != o {
		t.Fatalf("Lookup untrusted = %+v, want only acct-123 from %+v", got, o)
	}
	for _, probe := range []struct{ label, token string }{
		{"private", "acct-123"},          // another label
		{"Untrusted", "acct-123"},        // labels are exact
		{"untrusted ", "acct-123"},       // no trimming
		{"untrusted", "ACCT-123"},        // tokens are exact: the caller normalises
		{"untrusted", "acct-12"},         // no prefixes
		{"untrusted", "acct-1234"},       // no extensions
		{"untrusted", ""},                // the empty token
		{"", "acct-123"},                 // the empty label
		{"a", "b:c"},                     // ("a:b", "c") joined differently
		{"a:", "bc"},                     //
		{"a:b:", "c"},                    //
		{"untrusted", "only-unlabelled"}, // tokens of a result without labels are not indexed
		{"", "only-unlabelled"},
	} {
		if got := mustLookup(t, s, k, probe.label, probe.token); len(got) != 0 {
			t.Fatalf("Lookup(%q, %q) found %+v", probe.label, probe.token, got)
		}
	}
	if got := mustLookup(t, s, k, "a:b", "c"); len(got) != 1 {
		t.Fatalf("Lookup(a:b, c) = %+v, want one origin", got)
	}
	// Asking for the same token twice is harmless.
	if got := mustLookup(t, s, k, "untrusted", "acct-123", "acct-123"); len(got) != 1 {
		t.Fatalf("Lookup of a repeated token = %+v", got)
	}
}

// Tokens counts distinct (label, token) pairs: the same token again under
// the same label costs nothing. (An event holds each label and token once:
// the guard removes repeats.)
func testTokensCount(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	mustAppend(t, s, k, ev("read_email", "r1", []string{"untrusted"}, "a", "b", "c"))
	mustAppend(t, s, k, ev("read_email", "r2", []string{"untrusted"}, "c", "b", "d"))
	mustAppend(t, s, k, ev("read_email", "r3", []string{"untrusted"}, "a"))
	if st := mustLoad(t, s, k); st.Tokens != 4 {
		t.Fatalf("Tokens = %d after tokens a b c d under one label, want 4", st.Tokens)
	}
	mustAppend(t, s, k, ev("get_balance", "r4", []string{"private"}, "a", "e"))
	if st := mustLoad(t, s, k); st.Tokens != 6 {
		t.Fatalf("Tokens = %d after a, e under a second label, want 6 (pairs)", st.Tokens)
	}
}

// No state passes between principals, nor between sessions of one
// principal: the same session id under two principals is two sessions.
func testIsolation(t *testing.T, s toolguard.SessionStore, p string) {
	alice := toolguard.SessionKey{Principal: p + "/alice", Session: "chat-1"}
	others := []toolguard.SessionKey{
		{Principal: p + "/mallory", Session: "chat-1"}, // same session id, other principal
		{Principal: p + "/alice", Session: "chat-2"},   // same principal, other session
		{Principal: p + "/alice", Session: "chat-1 "},
		{Principal: p + "/alice", Session: "Chat-1"},
		{Principal: p + "/Alice", Session: "chat-1"},
		{Principal: p + "/alicechat-1", Session: ""}, // the same text joined differently
		{Principal: p + "/alice" + "chat", Session: "-1"},
		{Principal: p, Session: "/alice" + "chat-1"},
	}
	mustAppend(t, s, alice, ev("read_email", "r1", []string{"untrusted"}, "secret-token"))
	if err := s.Remember(context.Background(), alice, "ask-invite", "dora@example.com", scope.Origin{Tool: "invite", CallID: "r2", Seq: 2}); err != nil {
		t.Fatalf("Remember: %v", err)
	}
	for _, o := range others {
		wantEmpty(t, fmt.Sprintf("Load(%q)", o), mustLoad(t, s, o))
		if got := mustLookup(t, s, o, "untrusted", "secret-token"); len(got) != 0 {
			t.Fatalf("session %+v sees alice's token: %+v", o, got)
		}
		if _, ok := mustRemembered(t, s, o, "ask-invite", "dora@example.com"); ok {
			t.Fatalf("session %+v sees alice's approval", o)
		}
		// Appending elsewhere does not change alice's session.
		mustAppend(t, s, o, ev("post", "x", []string{"private"}, "secret-token"))
	}
	st := mustLoad(t, s, alice)
	if st.Calls != 1 || len(st.Labels) != 1 || st.Labels[0].Label != "untrusted" || st.Tokens != 1 {
		t.Fatalf("alice's session changed through other sessions: %+v", st)
	}
	if got := mustLookup(t, s, alice, "private", "secret-token"); len(got) != 0 {
		t.Fatalf("alice's session sees another session's label: %+v", got)
	}
}

// Ids are opaque: separators, braces, newlines, NUL, invalid UTF-8 and
// very long ids name distinct sessions and work like any other.
func testHostileIDs(t *testing.T, s toolguard.SessionStore, p string) {
	ids := []string{"", ":", "::", "{", "}", "{x}", "}{", "a:b", "a\nb", "a\r\nb", "\x00", "a\x00b",
		"\xff\xfe", "é", "e\u0301", "*", "?", "[a]", " ", strings.Repeat("s", 10000),
		"session:1:labels", "}:m", "{" + p + "}"}
	var keys []toolguard.SessionKey
	for _, pr := range []string{p, p + ":", p + "}", p + "\n"} {
		for _, id := range ids {
			keys = append(keys, toolguard.SessionKey{Principal: pr, Session: id})
		}
	}
	for i, k := range keys {
		for j := 0; j <= i%3; j++ {
			mustAppend(t, s, k, ev(fmt.Sprintf("tool-%d", i), "r", []string{fmt.Sprintf("label-%d", i)}, fmt.Sprintf("tok-%d", i)))
		}
	}
	for i, k := range keys {
		st := mustLoad(t, s, k)
		if st.Calls != uint64(i%3+1) || len(st.Tools) != 1 || st.Tools[fmt.Sprintf("tool-%d", i)] != i%3+1 ||
			len(st.Labels) != 1 || st.Labels[0].Label != fmt.Sprintf("label-%d", i) || st.Tokens != 1 {
			t.Fatalf("session %q of %q holds %+v, want only its own %d calls", k.Session, k.Principal, st, i%3+1)
		}
		if got := mustLookup(t, s, k, fmt.Sprintf("label-%d", i), fmt.Sprintf("tok-%d", i), fmt.Sprintf("tok-%d", (i+1)%len(keys))); len(got) != 1 {
			t.Fatalf("session %q of %q: Lookup = %+v", k.Session, k.Principal, got)
		}
	}
}

// An approval is remembered for its rule and key only, in its session only.
func testRemember(t *testing.T, s toolguard.SessionStore, p string) {
	ctx := context.Background()
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	o := scope.Origin{Tool: "invite_user", CallID: "rec-7", Seq: 7}
	if err := s.Remember(ctx, k, "ask-invite", "dora@example.com", o); err != nil {
		t.Fatalf("Remember: %v", err)
	}
	if got, ok := mustRemembered(t, s, k, "ask-invite", "dora@example.com"); !ok || got != o {
		t.Fatalf("Remembered = %+v, %v; want %+v", got, ok, o)
	}
	for _, probe := range []struct{ rule, key string }{
		{"ask-invite", "mallory@evil.example"},
		{"ask-invite", "Dora@example.com"},
		{"ask-invite", "dora@example.com "},
		{"ask-invite", ""},
		{"ask-send", "dora@example.com"},
		{"", "dora@example.com"},
		{"ask-invite:dora@example.com", ""}, // rule and key joined differently
		{"ask-invite:dora", "@example.com"},
		{"ask", "-invitedora@example.com"},
	} {
		if got, ok := mustRemembered(t, s, k, probe.rule, probe.key); ok {
			t.Fatalf("Remembered(%q, %q) = %+v, but only (ask-invite, dora@example.com) was approved", probe.rule, probe.key, got)
		}
	}
	// An empty key is a key like any other.
	o2 := scope.Origin{Tool: "t", CallID: "r9", Seq: 9}
	if err := s.Remember(ctx, k, "ask-any", "", o2); err != nil {
		t.Fatalf("Remember with an empty key: %v", err)
	}
	if got, ok := mustRemembered(t, s, k, "ask-any", ""); !ok || got != o2 {
		t.Fatalf("Remembered(ask-any, \"\") = %+v, %v", got, ok)
	}
	if _, ok := mustRemembered(t, s, k, "ask-invite", ""); ok {
		t.Fatal("an approval with an empty key leaked to another rule")
	}
	// Approvals do not count as calls.
	if st := mustLoad(t, s, k); st.Calls != 0 {
		t.Fatalf("Remember added calls: %+v", st)
	}
}

// wantStaysFull checks that a session refused once keeps refusing, and
// that the other sessions of its principal do not.
func wantStaysFull(t *testing.T, s toolguard.SessionStore, k toolguard.SessionKey) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 {
		_, err := s.Load(ctx, k)
		wantFull(t, fmt.Sprintf("Load %d of a full session", i), err)
		_, err = s.Append(ctx, k, ev("small", "r", nil))
		wantFull(t, fmt.Sprintf("Append %d of a call without labels to a full session", i), err)
	}
	other := toolguard.SessionKey{Principal: k.Principal, Session: k.Session + "-other"}
	mustAppend(t, s, other, ev("t", "r", []string{"untrusted"}, "x"))
	if st := mustLoad(t, s, other); st.Calls != 1 {
		t.Fatalf("another session of the principal: %+v", st)
	}
}

func testCallsBound(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	ctx := context.Background()
	n := 0
	for ; ; n++ {
		o, err := s.Append(ctx, k, ev("t", fmt.Sprint(n), nil))
		if err != nil {
			wantFull(t, fmt.Sprintf("Append %d", n+1), err)
			break
		}
		if o.Seq != uint64(n+1) {
			t.Fatalf("call %d got Seq %d", n+1, o.Seq)
		}
		if n > CallsMax {
			t.Fatalf("the session took %d calls; the suite needs a store bounded to at most %d", n+1, CallsMax)
		}
	}
	if n < CallsMin {
		t.Fatalf("the session refused call %d; the suite needs a store that takes at least %d calls", n+1, CallsMin)
	}
	wantStaysFull(t, s, k)
}

func testLabelsBound(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	ctx := context.Background()
	n := 0
	for ; ; n++ {
		// The labels already held cost nothing: only new ones count.
		_, err := s.Append(ctx, k, ev("t", fmt.Sprint(n), []string{"label-0", fmt.Sprintf("label-%d", n)}))
		if err != nil {
			wantFull(t, fmt.Sprintf("Append with label %d", n+1), err)
			break
		}
		if n > LabelsMax {
			t.Fatalf("the session took %d labels; the suite needs a store bounded to at most %d", n+1, LabelsMax)
		}
	}
	if n < LabelsMin {
		t.Fatalf("the session refused label %d; the suite needs a store that takes at least %d labels", n+1, LabelsMin)
	}
	wantStaysFull(t, s, k)
}

func testTokensBound(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	ctx := context.Background()
	const batch = 512
	held := 0
	for call := 0; ; call++ {
		tokens := make([]string, batch)
		for i := range tokens {
			tokens[i] = fmt.Sprintf("tok-%d", held+i)
		}
		// The first token is held already: it costs nothing.
		if held > 0 {
			tokens[0] = "tok-0"
		}
		next := held + batch
		if held > 0 {
			next--
		}
		_, err := s.Append(ctx, k, ev("t", fmt.Sprint(call), []string{"untrusted"}, tokens...))
		if err != nil {
			wantFull(t, fmt.Sprintf("Append that would hold %d tokens", next), err)
			if next <= TokensMin {
				t.Fatalf("the session refused to hold %d tokens; the suite needs a store that takes at least %d", next, TokensMin)
			}
			break
		}
		held = next
		if st := mustLoad(t, s, k); st.Tokens != held {
			t.Fatalf("Tokens = %d, want %d", st.Tokens, held)
		}
		if held > TokensMax {
			t.Fatalf("the session took %d tokens; the suite needs a store bounded to at most %d", held, TokensMax)
		}
	}
	wantStaysFull(t, s, k)
}

// One event over a bound is refused whole: the session does not keep the
// part that fitted.
func testOversizedEvent(t *testing.T, s toolguard.SessionStore, p string) {
	ctx := context.Background()
	labels := make([]string, LabelsMax+1)
	for i := range labels {
		labels[i] = fmt.Sprintf("label-%d", i)
	}
	tokens := make([]string, TokensMax+1)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("tok-%d", i)
	}
	for _, c := range []struct {
		name string
		e    toolguard.SessionEvent
	}{
		{"labels", ev("t", "r", labels)},
		{"tokens", ev("t", "r", []string{"untrusted"}, tokens...)},
	} {
		k := toolguard.SessionKey{Principal: p, Session: c.name}
		mustAppend(t, s, k, ev("first", "r0", []string{"first"}, "first"))
		_, err := s.Append(ctx, k, c.e)
		wantFull(t, "Append of too many "+c.name+" at once", err)
		wantStaysFull(t, s, k)
	}
}

// Reservations count against the calls bound before the calls run: the
// store refuses the reservation that would let the calls that ran and
// those running exceed it, and every call reserved then fits when it is
// appended. A released reservation frees its call; one used up by an
// Append does not come back.
func testReserveBound(t *testing.T, s toolguard.SessionStore, p string) {
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	ctx := context.Background()
	mustAppend(t, s, k, ev("t", "ran", nil))
	n := 1
	for ; ; n++ {
		err := s.Reserve(ctx, k, fmt.Sprint("r", n))
		if err != nil {
			wantFull(t, fmt.Sprintf("Reserve %d", n), err)
			break
		}
		if n > CallsMax {
			t.Fatalf("the session reserved %d calls; the suite needs a store bounded to at most %d", n, CallsMax)
		}
	}
	if n < CallsMin {
		t.Fatalf("the session refused reservation %d; the suite needs a store that takes at least %d calls", n, CallsMin)
	}
	if err := s.Reserve(ctx, k, "r1"); err != nil {
		t.Fatalf("reserving a call reserved already: %v", err)
	}
	// Releasing one frees one call, once.
	if err := s.Release(ctx, k, "r1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := s.Release(ctx, k, "r1"); err != nil {
		t.Fatalf("Release twice: %v", err)
	}
	if err := s.Reserve(ctx, k, "again"); err != nil {
		t.Fatalf("Reserve after a release: %v", err)
	}
	err := s.Reserve(ctx, k, "one-more")
	wantFull(t, "Reserve after the released call was taken again", err)
	// Every call reserved fits.
	for i := 2; i < n; i++ {
		mustAppend(t, s, k, ev("t", fmt.Sprint("r", i), nil))
	}
	if o := mustAppend(t, s, k, ev("t", "again", nil)); o.Seq != uint64(n) {
		t.Fatalf("the last reserved call got Seq %d, want %d", o.Seq, n)
	}
	// A release after the Append does not give the call back.
	if err := s.Release(ctx, k, "again"); err != nil {
		t.Fatalf("Release after Append: %v", err)
	}
	err = s.Reserve(ctx, k, "over")
	wantFull(t, "Reserve in a session that ran its limit", err)
}

// Many goroutines reserve calls in one session at once, as concurrent
// calls of one agent do: no more are granted than the bound, and each
// granted call fits when it is appended.
func testConcurrentReserve(t *testing.T, s toolguard.SessionStore, p string) {
	const workers = 16
	k := toolguard.SessionKey{Principal: p, Session: "s"}
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted int
		errs    []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Reserve(ctx, k, id); err != nil {
					if !errors.Is(err, toolguard.ErrSessionFull) {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					return
				}
				_, err := s.Append(ctx, k, ev("t", id, nil))
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, fmt.Errorf("a reserved call did not fit: %w", err))
				case granted >= CallsMax:
					err = fmt.Errorf("the session took over %d calls; the suite needs a store bounded to at most %d", CallsMax, CallsMax)
					errs = append(errs, err)
				default:
					granted++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d errors, first: %v", len(errs), errs[0])
	}
	if granted < CallsMin || granted > CallsMax {
		t.Fatalf("%d calls granted; the bound must be in [%d, %d]", granted, CallsMin, CallsMax)
	}
}
