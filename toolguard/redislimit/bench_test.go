package redislimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard/redislimit"
)

// A rate that always allows: the cost measured is the round trip.
var benchRate = scope.Limit{Name: "bench", Kind: scope.LimitRate, Count: 1 << 40, Per: time.Second, Burst: 1 << 40}

func benchLimiter(b *testing.B) *redislimit.Limiter {
	srv := startRedis(b)
	l, err := redislimit.New(srv.Client(), redislimit.Options{Timeout: 5 * time.Second})
	require.NoError(b, err)
	return l
}

func benchTake(b *testing.B, uses []scope.LimitUse) {
	l := benchLimiter(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, release, err := l.Take(ctx, time.Now(), uses, false)
		if err != nil || !res[0].Allowed {
			b.Fatal(err, res)
		}
		if release != nil {
			release()
		}
	}
}

// BenchmarkTake is one allowed rate-limited call: one script round trip on
// loopback.
func BenchmarkTake(b *testing.B) {
	benchTake(b, []scope.LimitUse{{Limit: benchRate, Key: "k", Cost: 1}})
}

// BenchmarkTakeRelease is an allowed call under a rate, a quota and a
// concurrency cap, with the release that follows it: two round trips.
func BenchmarkTakeRelease(b *testing.B) {
	benchTake(b, []scope.LimitUse{
		{Limit: benchRate, Key: "k", Cost: 1},
		{Limit: scope.Limit{Name: "q", Kind: scope.LimitQuota, Count: 1 << 50, Per: time.Hour}, Key: "k", Cost: 1},
		{Limit: scope.Limit{Name: "c", Kind: scope.LimitConcurrency, Count: 1 << 20}, Key: "k", Cost: 1},
	})
}

func BenchmarkTakeParallel(b *testing.B) {
	l := benchLimiter(b)
	uses := []scope.LimitUse{{Limit: benchRate, Key: "k", Cost: 1}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			res, _, err := l.Take(ctx, time.Now(), uses, false)
			if err != nil || !res[0].Allowed {
				b.Error(err, res)
				return
			}
		}
	})
}
