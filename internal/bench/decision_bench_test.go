package bench_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/internal/bench"
	"github.com/agentguard/agentguard/scope"
)

// engines caches loaded engines by policy name across benchmark runs
// (-count): loading 10,000 rules takes seconds and is not what is timed.
var engines = struct {
	sync.Mutex
	m map[string][]bench.Engine
}{m: map[string][]bench.Engine{}}

// loadEngines returns agentguard, opa, cedar and cedar-indexed loaded with
// the policy, loading it on first use.
func loadEngines(b *testing.B, name string, p func() bench.Policies) []bench.Engine {
	b.Helper()
	engines.Lock()
	defer engines.Unlock()
	if es, ok := engines.m[name]; ok {
		return es
	}
	pol := p()
	es, err := bench.Engines(context.Background(), pol)
	if err != nil {
		b.Fatal(err)
	}
	idx, err := bench.NewCedar(pol.Cedar, true)
	if err != nil {
		b.Fatal(err)
	}
	es = append(es, idx)
	engines.m[name] = es
	return es
}

// prepare prepares c for e and checks the engine's answer before timing.
func prepare(b *testing.B, e bench.Engine, c bench.Call) bench.Prepared {
	b.Helper()
	p, err := e.Prepare(c)
	if err != nil {
		b.Fatal(err)
	}
	got, err := p.Explain(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if got != (bench.Result{Allow: c.Allow, DenyRule: c.DenyRule}) {
		b.Fatalf("%s on %s: got %+v", e.Name(), c.Name, got)
	}
	return p
}

func runDecide(b *testing.B, p bench.Prepared, want bool) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.Decide(ctx); ok != want || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkDecision times one decision by each engine on the shared
// policy, with the input already in the engine's own form.
func BenchmarkDecision(b *testing.B) {
	es := loadEngines(b, "shared", bench.Shared)[:3]
	for _, call := range []string{"read-allowed", "read-dotenv", "write-no-scope", "search-allowed"} {
		c := bench.CallNamed(call)
		for _, e := range es {
			b.Run(fmt.Sprintf("call=%s/engine=%s", call, e.Name()), func(b *testing.B) {
				runDecide(b, prepare(b, e, c), c.Allow)
			})
		}
	}
	// Every call of the table in turn.
	for _, e := range es {
		b.Run("call=table/engine="+e.Name(), func(b *testing.B) {
			ps := make([]bench.Prepared, len(bench.Calls))
			for i, c := range bench.Calls {
				ps[i] = prepare(b, e, c)
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if ok, err := ps[i].Decide(ctx); ok != bench.Calls[i].Allow || err != nil {
					b.Fatal(bench.Calls[i].Name, ok, err)
				}
				if i++; i == len(ps) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkDecisionParallel times an allowed decision from all Ps at once.
func BenchmarkDecisionParallel(b *testing.B) {
	es := loadEngines(b, "shared", bench.Shared)[:3]
	c := bench.CallNamed("read-allowed")
	for _, e := range es {
		b.Run("call=read-allowed/engine="+e.Name(), func(b *testing.B) {
			p := prepare(b, e, c)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if ok, err := p.Decide(ctx); !ok || err != nil {
						b.Error(ok, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDecisionJSON times an allowed decision from the raw JSON
// arguments: each engine converts them to its own input on every call.
func BenchmarkDecisionJSON(b *testing.B) {
	es := loadEngines(b, "shared", bench.Shared)[:3]
	c := bench.CallNamed("read-allowed")
	for _, e := range es {
		b.Run("call=read-allowed/engine="+e.Name(), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if ok, err := e.DecideJSON(ctx, &c); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// ScaleSizes are the policy sizes of BenchmarkScaleTools.
var ScaleSizes = []int{10, 100, 1000, 10000}

// BenchmarkScaleTools times an allowed decision on policies of n tools and
// n scopes. cedar-indexed hands cedar-go only the called tool's policies.
func BenchmarkScaleTools(b *testing.B) {
	for _, n := range ScaleSizes {
		es := loadEngines(b, fmt.Sprint("tools-", n), func() bench.Policies { return bench.Scaled(n) })
		c := bench.ScaledCall(n)
		for _, e := range es {
			b.Run(fmt.Sprintf("tools=%d/engine=%s", n, e.Name()), func(b *testing.B) {
				runDecide(b, prepare(b, e, c), true)
			})
		}
	}
}

// BenchmarkScaleRules times an allowed read on the shared policy plus k deny
// rules that apply to the tool, each testing a substring of the path and
// all false.
// agentguard-nocostlimit is agentguard with the runtime cost limit lifted
// (scope.WithCostLimit(math.MaxUint64)), to show what cost tracking costs;
// it is not a configuration to deploy.
func BenchmarkScaleRules(b *testing.B) {
	c := bench.CallNamed("read-allowed")
	for _, k := range []int{1, 10, 100, 1000} {
		es := loadEngines(b, fmt.Sprint("rules-", k), func() bench.Policies { return bench.WithRules(k) })
		nl, err := bench.NewAgentguard(bench.WithRules(k).Agentguard, scope.WithCostLimit(math.MaxUint64))
		if err != nil {
			b.Fatal(err)
		}
		nl.Label = "agentguard-nocostlimit"
		for _, e := range append(es[:len(es):len(es)], nl) {
			b.Run(fmt.Sprintf("rules=%d/engine=%s", k, e.Name()), func(b *testing.B) {
				runDecide(b, prepare(b, e, c), true)
			})
		}
	}
}

// BenchmarkScaleRulesKeyed times an allowed read on the shared policy plus
// k deny rules on read_file, each naming one blocked path exactly
// ([bench.KeyedRules]): none applies to the read.
func BenchmarkScaleRulesKeyed(b *testing.B) {
	c := bench.CallNamed("read-allowed")
	for _, k := range RuleSizes {
		es := loadEngines(b, fmt.Sprint("keyed-", k), func() bench.Policies { return bench.KeyedRules(k) })
		for _, e := range es {
			b.Run(fmt.Sprintf("rules=%d/engine=%s", k, e.Name()), func(b *testing.B) {
				runDecide(b, prepare(b, e, c), true)
			})
		}
	}
}
