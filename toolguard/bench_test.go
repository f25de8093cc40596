package toolguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// benchPolicy has four CEL expressions on the path of an allowed
// write_file call: a deny rule, an ask rule, the grant's condition and the
// limit key.
const benchPolicy = `version: 1
scopes:
  fs.write:
    grants:
      - tools: [write_file]
        when: args.path.isUnder(principal.attrs.workspace) && size(args.content) <= 65536
        limit: writes
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
  - name: big-writes
    effect: ask
    tools: [write_file]
    when: size(args.content) > 60000
limits:
  writes: {rate: 1000000000/s, burst: 1000000000, key: principal.id}
`

func benchGuard(b *testing.B) (*toolguard.Guard, context.Context) {
	b.Helper()
	p, err := scope.Parse([]byte(benchPolicy))
	require.NoError(b, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.NewLog(io.Discard)))
	require.NoError(b, err)
	require.NoError(b, g.Register(toolguard.Tool{
		Name:        "write_file",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","minLength":1},"content":{"type":"string","maxLength":65536},"mode":{"type":"integer","minimum":0}},"required":["path","content"],"additionalProperties":false}`),
		Handler:     func(context.Context, json.RawMessage) (any, error) { return nil, nil },
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{
		ID: "bench-agent", Scopes: []string{"fs.write"}, Attrs: map[string]any{"workspace": "/w"},
	})
	return g, ctx
}

var benchArgs = json.RawMessage(`{"path":"/w/out/report.txt","content":"hello, world","mode":420}`)

// BenchmarkCall measures an allowed call end to end: decode, schema, four
// CEL expressions, the limiter, the decision and outcome records to a
// hash-chained log on io.Discard, and a no-op handler.
func BenchmarkCall(b *testing.B) {
	g, ctx := benchGuard(b)
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Call(ctx, "write_file", benchArgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := g.Call(ctx, "write_file", benchArgs); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkCheck measures deciding an allowed call without running or
// recording it.
func BenchmarkCheck(b *testing.B) {
	g, ctx := benchGuard(b)
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Check(ctx, "write_file", benchArgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := g.Check(ctx, "write_file", benchArgs); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkCallDenied measures a call denied by a deny rule, including its
// record.
func BenchmarkCallDenied(b *testing.B) {
	g, ctx := benchGuard(b)
	args := json.RawMessage(`{"path":"/w/.env","content":"x"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Call(ctx, "write_file", args); err == nil {
			b.Fatal("want denial")
		}
	}
}

// BenchmarkMemoryLimiter measures taking one token from an in-memory rate
// limit, on one key and spread over many.
func BenchmarkMemoryLimiter(b *testing.B) {
	lim := scope.Limit{Name: "l", Kind: scope.LimitRate, Count: 1_000_000_000, Per: time.Second, Burst: 1_000_000_000}
	now := time.Now()
	b.Run("one-key", func(b *testing.B) {
		var m toolguard.MemoryLimiter
		uses := []scope.LimitUse{{Limit: lim, Key: "k", Cost: 1}}
		b.ReportAllocs()
		for b.Loop() {
			if res, _, err := m.Take(context.Background(), now, uses, false); err != nil || !res[0].Allowed {
				b.Fatal(err)
			}
		}
	})
	b.Run("10k-keys-parallel", func(b *testing.B) {
		var m toolguard.MemoryLimiter
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			uses := []scope.LimitUse{{Limit: lim, Cost: 1}}
			for i := 0; pb.Next(); i++ {
				uses[0].Key = keys[i%len(keys)]
				if _, _, err := m.Take(context.Background(), now, uses, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

var keys = func() []string {
	k := make([]string, 10_000)
	for i := range k {
		k[i] = fmt.Sprint("key-", i)
	}
	return k
}()
