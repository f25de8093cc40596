package redissession_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redissession"
)

// benchStore returns a store whose bounds hold the benchmarks' sessions.
func benchStore(b *testing.B) (*redissession.Store, *redis.Client) {
	srv := startRedis(b)
	client := srv.Client()
	s, err := redissession.New(client, redissession.Options{Timeout: 5 * time.Second, MaxCalls: 1 << 30, MaxTokens: 1 << 30})
	require.NoError(b, err)
	return s, client
}

// fill appends calls calls to k, each bringing the label untrusted and
// ten tokens of its own, as a session that read that many documents.
func fill(b *testing.B, s *redissession.Store, k toolguard.SessionKey, calls int) {
	b.Helper()
	tokens := make([]string, 10)
	for i := range calls {
		for j := range tokens {
			tokens[j] = fmt.Sprintf("tok-%d-%d@example.com", i, j)
		}
		labels := []string{"untrusted"}
		if i%2 == 1 {
			labels = []string{"private"}
		}
		if _, err := s.Append(context.Background(), k, event(fmt.Sprintf("tool-%d", i%8), fmt.Sprint("rec-", i), labels, tokens...)); err != nil {
			b.Fatal(err)
		}
	}
}

var sessionSizes = []int{10, 10_000}

// serverStats resets Redis's command statistics, and returns a function
// that reports, after the loop, the server's own time per script call
// (less noisy than the round trip on a busy machine) and the memory the
// session's keys use.
func serverStats(b *testing.B, client *redis.Client, k toolguard.SessionKey) func() {
	ctx := context.Background()
	require.NoError(b, client.ConfigResetStat(ctx).Err())
	return func() {
		b.StopTimer()
		info := client.Info(ctx, "commandstats").Val()
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:"); ok {
				for _, kv := range strings.Split(rest, ",") {
					if v, ok := strings.CutPrefix(kv, "usec_per_call="); ok {
						f, _ := strconv.ParseFloat(v, 64)
						b.ReportMetric(f, "server-µs/op")
					}
				}
			}
		}
		var bytes int64
		for _, key := range client.Keys(ctx, "*").Val() {
			bytes += client.MemoryUsage(ctx, key, 0).Val()
		}
		b.ReportMetric(float64(bytes), "redis-B/session")
	}
}

// BenchmarkLookup asks for three tokens (one found) in a session with 10
// and with 10,000 earlier calls: one round trip, flat in the session's
// size.
func BenchmarkLookup(b *testing.B) {
	for _, n := range sessionSizes {
		b.Run(fmt.Sprint("calls=", n), func(b *testing.B) {
			s, client := benchStore(b)
			k := toolguard.SessionKey{Principal: "alice", Session: "s"}
			fill(b, s, k, n)
			tokens := []string{"tok-0-3@example.com", "mallory@evil.example", "de89370400440532013000"}
			ctx := context.Background()
			report := serverStats(b, client, k)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				found, err := s.Lookup(ctx, k, "untrusted", tokens)
				if err != nil || len(found) != 1 {
					b.Fatal(err, found)
				}
			}
			report()
		})
	}
}

// BenchmarkAppend adds a call with a label and ten tokens to a session
// with 10 and with 10,000 earlier calls. The small session is refilled
// every 100 appends (timer stopped), so it stays between 10 and 110 calls.
func BenchmarkAppend(b *testing.B) {
	for _, n := range sessionSizes {
		b.Run(fmt.Sprint("calls=", n), func(b *testing.B) {
			s, client := benchStore(b)
			k := toolguard.SessionKey{Principal: "alice", Session: "s"}
			fill(b, s, k, n)
			ctx := context.Background()
			tokens := make([]string, 10)
			report := serverStats(b, client, k)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if n < 1000 && i > 0 && i%100 == 0 {
					b.StopTimer()
					require.NoError(b, client.FlushAll(ctx).Err())
					fill(b, s, k, n)
					b.StartTimer()
				}
				for j := range tokens {
					tokens[j] = fmt.Sprintf("new-%d-%d", i, j)
				}
				if _, err := s.Append(ctx, k, event("read_email", "rec", []string{"untrusted"}, tokens...)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			report()
		})
	}
}

// BenchmarkLoad reads the summary of a session with 10 and with 10,000
// earlier calls over eight tools and two labels: it grows with the labels
// and tools, not with the calls.
func BenchmarkLoad(b *testing.B) {
	for _, n := range sessionSizes {
		b.Run(fmt.Sprint("calls=", n), func(b *testing.B) {
			s, client := benchStore(b)
			k := toolguard.SessionKey{Principal: "alice", Session: "s"}
			fill(b, s, k, n)
			ctx := context.Background()
			report := serverStats(b, client, k)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				st, err := s.Load(ctx, k)
				if err != nil || st.Calls < uint64(n) {
					b.Fatal(err, st.Calls)
				}
			}
			report()
		})
	}
}

// BenchmarkLookupSideBySide alternates Lookups in a session with 10 and
// one with 10,000 earlier calls, in one loop on one Redis, so that both
// see the same machine load; it reports each one's mean round trip and
// their ratio.
func BenchmarkLookupSideBySide(b *testing.B) {
	s, _ := benchStore(b)
	small := toolguard.SessionKey{Principal: "alice", Session: "small"}
	large := toolguard.SessionKey{Principal: "alice", Session: "large"}
	fill(b, s, small, 10)
	fill(b, s, large, 10_000)
	tokens := []string{"tok-0-3@example.com", "mallory@evil.example", "de89370400440532013000"}
	ctx := context.Background()
	var took [2]time.Duration
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i, k := range []toolguard.SessionKey{small, large} {
			start := time.Now()
			found, err := s.Lookup(ctx, k, "untrusted", tokens)
			took[i] += time.Since(start)
			if err != nil || len(found) != 1 {
				b.Fatal(err, found)
			}
		}
		n++
	}
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(n), "ns/lookup-10")
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(n), "ns/lookup-10000")
	b.ReportMetric(float64(took[1])/float64(took[0]), "ratio")
}

// BenchmarkAppendSideBySide alternates Appends to a session with 10 and
// one with 10,000 earlier calls, timing each, in one loop on one Redis.
// Every 100 appends the small session is replaced by a new one of 10
// calls (not timed), so it stays small; ns/op includes those refills, the
// per-size metrics do not.
func BenchmarkAppendSideBySide(b *testing.B) {
	s, _ := benchStore(b)
	small := toolguard.SessionKey{Principal: "alice", Session: "small-0"}
	large := toolguard.SessionKey{Principal: "alice", Session: "large"}
	fill(b, s, small, 10)
	fill(b, s, large, 10_000)
	ctx := context.Background()
	tokens := make([]string, 10)
	var took [2]time.Duration
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n > 0 && n%100 == 0 {
			small.Session = fmt.Sprint("small-", n)
			fill(b, s, small, 10)
		}
		for i, k := range []toolguard.SessionKey{small, large} {
			for j := range tokens {
				tokens[j] = fmt.Sprintf("new-%d-%d-%d", n, i, j)
			}
			start := time.Now()
			_, err := s.Append(ctx, k, event("read_email", "rec", []string{"untrusted"}, tokens...))
			took[i] += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(n), "ns/append-10")
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(n), "ns/append-10000")
	b.ReportMetric(float64(took[1])/float64(took[0]), "ratio")
}
