package scope_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// scaledTools is a policy of n tools, each granted by a scope of its own
// under a condition on its path, plus two deny rules over every tool. With
// globs each scope grants a pattern ("svc_00042_*") that the called name
// ("svc_00042_read") matches, so no name is in the policy.
func scaledTools(n int, globs bool) scope.Def {
	d := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{}, Rules: []scope.RuleDef{
		{Name: "no-dotenv", Effect: "deny", Tools: []string{"*"}, When: `has(args.path) && args.path.contains("/.env")`},
		{Name: "no-traversal", Effect: "deny", Tools: []string{"*"}, When: `has(args.path) && (args.path.contains("/../") || args.path.endsWith("/.."))`},
	}}
	for i := range n {
		pat := scaledName(i)
		if globs {
			pat = fmt.Sprintf("svc_%05d_*", i)
		}
		d.Scopes[fmt.Sprintf("scope_%05d", i)] = scope.ScopeDef{Grants: []scope.GrantDef{
			{Tools: []string{pat}, When: `args.path.startsWith("/workspace/")`},
		}}
	}
	return d
}

func scaledName(i int) string { return fmt.Sprintf("svc_%05d_read", i) }

// BenchmarkDecideTools times an allowed decision on policies of n tools
// after every tool has been decided once (so that plan caches are as full
// as they get): "last" calls the last tool — past any bound on cached
// plans — and "cycle" calls each tool in turn. heap-B is the heap the
// compiled policy and its plans for all n tools take (not counting the
// definition it was compiled from, nor the calls). "floor" makes no
// decision: in the same cycle it looks the called name up in a Go map of
// the n names and reads one cache line of data of that tool's own — the
// least that any decision finding a tool's data by name does, and so what
// the memory of the machine alone adds to "cycle" as n grows.
func BenchmarkDecideTools(b *testing.B) {
	ctx := context.Background()
	for _, names := range []string{"literal", "glob"} {
		for _, n := range []int{10, 1000, 10000, 100000} {
			ins := make([]scope.Input, n)
			for i := range ins {
				ins[i] = scope.Input{
					Principal: scope.Principal{ID: "agent", Scopes: []string{"scope_00000", "scope_00001", fmt.Sprintf("scope_%05d", i)}},
					Tool:      scope.Tool{Name: scaledName(i)},
					Args:      map[string]any{"path": "/workspace/docs/guide.md"},
				}
			}
			def := scaledTools(n, names == "glob")
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, err := scope.Compile(def, scope.WithMaxPolicyBytes(64<<20))
			if err != nil {
				b.Fatal(err)
			}
			for i := range ins {
				if d := p.Decide(ctx, ins[i]); d.Effect != scope.Allow {
					b.Fatal(d.Reason)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap := float64(after.HeapAlloc - before.HeapAlloc)
			b.Run(fmt.Sprintf("names=%s/tools=%d/call=last", names, n), func(b *testing.B) {
				in := ins[n-1]
				b.ReportAllocs()
				for b.Loop() {
					if d := p.Decide(ctx, in); d.Effect != scope.Allow {
						b.Fatal(d.Reason)
					}
				}
				b.ReportMetric(heap, "heap-B")
			})
			b.Run(fmt.Sprintf("names=%s/tools=%d/call=cycle", names, n), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if d := p.Decide(ctx, ins[i]); d.Effect != scope.Allow {
						b.Fatal(d.Reason)
					}
					if i++; i == n {
						i = 0
					}
				}
			})
			b.Run(fmt.Sprintf("names=%s/tools=%d/call=floor", names, n), func(b *testing.B) {
				benchLookupFloor(b, ins)
			})
			runtime.KeepAlive(p)
			runtime.KeepAlive(def)
		}
	}
}

// toolLine is one cache line of a tool's own data.
type toolLine [8]uint64

// benchLookupFloor times, for each input in turn, a lookup of its tool
// name in a map built from separately allocated copies of the names, and
// a read of the line the map gives. The line holds the index of the next
// input, so that each lookup waits for the one before, as a decision's
// does (a decision is too long for the processor to start the next one's
// lookup early).
func benchLookupFloor(b *testing.B, ins []scope.Input) {
	m := make(map[string]*toolLine, len(ins))
	for i, in := range ins {
		m[string([]byte(in.Tool.Name))] = &toolLine{uint64((i + 1) % len(ins))}
	}
	b.ReportAllocs()
	i, calls := uint64(0), 0
	for b.Loop() {
		i = m[ins[i].Tool.Name][0]
		calls++
	}
	if want := uint64(calls % len(ins)); i != want {
		b.Fatalf("ended at input %d, not %d", i, want)
	}
}
