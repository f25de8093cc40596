package toolguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/provenance"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// sessionBench is a guard on flowPolicy, with no audit I/O, whose store
// holds a session "long" of n earlier calls: every other one a labelled
// read whose result holds 20 distinct values.
func sessionBench(b *testing.B, n int) (*toolguard.Guard, *toolguard.MemorySessions, context.Context) {
	b.Helper()
	p, err := scope.Parse([]byte(flowPolicy))
	require.NoError(b, err)
	store := toolguard.NewMemorySessions(toolguard.MemorySessionOptions{MaxCalls: 1 << 40, MaxTokens: 1 << 30})
	g, err := toolguard.New(p, toolguard.WithSink(audit.NewLog(io.Discard)), toolguard.WithSessions(store))
	require.NoError(b, err)
	for _, name := range []string{"read_email", "send_email", "send_money"} {
		require.NoError(b, g.Register(toolguard.Tool{Name: name, Handler: func(context.Context, json.RawMessage) (any, error) { return "ok", nil }}))
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bench", Scopes: []string{"assistant"}})
	fill(b, store, "long", n)
	return g, store, ctx
}

func fill(b *testing.B, store *toolguard.MemorySessions, session string, n int) {
	k := toolguard.SessionKey{Principal: "bench", Session: session}
	for i := range n {
		ev := toolguard.SessionEvent{Origin: scope.Origin{Tool: "send_email", CallID: "c" + strconv.Itoa(i)}}
		if i%2 == 0 {
			ev.Origin.Tool = "read_email"
			ev.Labels = []string{"untrusted"}
			ev.Tokens = provenance.Tokens(fmt.Sprintf("mail %d from sender%d@shop.test about order %08d, see https://shop.test/o/%d, account %d-%d", i, i, i, i, 1000000+i, i))
			for j := range 14 {
				ev.Tokens = append(ev.Tokens, fmt.Sprintf("word%dx%d", i, j))
			}
		}
		_, err := store.Append(context.Background(), k, ev)
		require.NoError(b, err)
	}
}

// BenchmarkSessionDecision compares, side by side, the decision on a call
// whose rules read the session (labels and value provenance) in a session
// of 10,000 earlier calls with the same decision in a session with no
// history (stateless), both by Guard.Check; and Guard.Call in each, which
// also records and feeds the session.
func BenchmarkSessionDecision(b *testing.B) {
	g, _, ctx := sessionBench(b, 10_000)
	long := toolguard.WithSession(ctx, "long")
	none := toolguard.WithSession(ctx, "never-seen")
	money := json.RawMessage(`{"iban":"GB82WEST12345698765432"}`)
	mail := json.RawMessage(`{"to":"carol@example.com","body":"the summary"}`)
	for _, c := range []struct {
		name string
		ctx  context.Context
		tool string
		args json.RawMessage
	}{
		{"check/provenance/stateless", none, "send_money", money},
		{"check/provenance/session-10000", long, "send_money", money},
		{"check/labels/stateless", none, "send_email", mail},
		{"check/labels/session-10000", long, "send_email", mail},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Check(c.ctx, c.tool, c.args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("call/session-10000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Call(long, "send_money", money); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("call/fresh-session", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := g.Call(toolguard.WithSession(ctx, "fresh"+strconv.Itoa(i%1000)), "send_money", money); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProvenanceLookup measures x.from("untrusted") for a value that
// is not in the session (every token looked up, none found) and one that
// is, after 10 and after 10,000 earlier results: the index makes it flat.
func BenchmarkProvenanceLookup(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		g, _, ctx := sessionBench(b, 2*n)
		long := toolguard.WithSession(ctx, "long")
		for _, c := range []struct{ name, iban string }{{"absent", "GB82WEST12345698765432"}, {"present", "sender4@shop.test"}} {
			args := json.RawMessage(`{"iban":"` + c.iban + `"}`)
			b.Run(fmt.Sprintf("%s/results-%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_, err := g.Check(long, "send_money", args)
					if (err == nil) != (c.name == "absent") {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSessionMemory reports the heap a session holds: per session of
// 1,000 labelled results of 20 values each, and per value.
func BenchmarkSessionMemory(b *testing.B) {
	const results = 1000
	b.ReportAllocs()
	var perSession float64
	for b.Loop() {
		store := toolguard.NewMemorySessions(toolguard.MemorySessionOptions{MaxTokens: 1 << 30})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fill(b, store, "s", 2*results)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSession = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		runtime.KeepAlive(store)
	}
	b.ReportMetric(perSession, "B/session")
	b.ReportMetric(perSession/(results*20), "B/token")
}

// BenchmarkSessionRatios runs the pairs above interleaved, call by call,
// so that a noisy machine slows both sides alike, and reports the ratio
// of their total times: session-10000/stateless for the decision, and
// results-10000/results-10 for the provenance lookup (targets: ≤ 1.3 and
// flat).
func BenchmarkSessionRatios(b *testing.B) {
	g, _, ctx := sessionBench(b, 10_000)
	g10, _, ctx10 := sessionBench(b, 20)
	g10k, _, ctx10k := sessionBench(b, 20_000)
	long := toolguard.WithSession(ctx, "long")
	none := toolguard.WithSession(ctx, "never-seen")
	money := json.RawMessage(`{"iban":"GB82WEST12345698765432"}`)
	mail := json.RawMessage(`{"to":"carol@example.com","body":"the summary"}`)
	present := json.RawMessage(`{"iban":"sender4@shop.test"}`)
	type side struct {
		g    *toolguard.Guard
		ctx  context.Context
		tool string
		args json.RawMessage
	}
	for _, pair := range []struct {
		name string
		a, b side // b is the baseline
	}{
		{"labels-session-10000/stateless", side{g, long, "send_email", mail}, side{g, none, "send_email", mail}},
		{"provenance-session-10000/stateless", side{g, long, "send_money", money}, side{g, none, "send_money", money}},
		{"lookup-absent-10000/10", side{g10k, toolguard.WithSession(ctx10k, "long"), "send_money", money}, side{g10, toolguard.WithSession(ctx10, "long"), "send_money", money}},
		{"lookup-present-10000/10", side{g10k, toolguard.WithSession(ctx10k, "long"), "send_money", present}, side{g10, toolguard.WithSession(ctx10, "long"), "send_money", present}},
	} {
		b.Run(pair.name, func(b *testing.B) {
			b.ReportAllocs()
			var ta, tb time.Duration
			for b.Loop() {
				start := time.Now()
				_, _ = pair.a.g.Check(pair.a.ctx, pair.a.tool, pair.a.args)
				mid := time.Now()
				_, _ = pair.b.g.Check(pair.b.ctx, pair.b.tool, pair.b.args)
				ta += mid.Sub(start)
				tb += time.Since(mid)
			}
			b.ReportMetric(float64(ta)/float64(tb), "ratio")
		})
	}
}

// BenchmarkMemorySessionsParallel is the store's share of calls in many
// sessions at once: each goroutine loads, reserves and appends in a
// session of its own (one of 64 principals), under the store's one lock.
// Compare -cpu 1,2,4,…: time per operation that stops falling with more
// CPUs means the lock is the bottleneck.
func BenchmarkMemorySessionsParallel(b *testing.B) {
	m := toolguard.NewMemorySessions(toolguard.MemorySessionOptions{MaxCalls: 1 << 30})
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := next.Add(1)
		k := toolguard.SessionKey{Principal: fmt.Sprint("p", n%64), Session: fmt.Sprint("s", n)}
		ev := toolguard.SessionEvent{Origin: scope.Origin{Tool: "read", CallID: "c"}, Labels: []string{"untrusted"}, Tokens: []string{"tok"}}
		for pb.Next() {
			if _, err := m.Load(ctx, k); err != nil {
				b.Error(err)
				return
			}
			if err := m.Reserve(ctx, k, "c"); err != nil {
				b.Error(err)
				return
			}
			if _, err := m.Append(ctx, k, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
