// Package bench compares agentguard's policy decisions with OPA and
// cedar-go on one policy, and measures the guard's full pipeline, how it
// scales with policy size, and what its parts cost alone.
//
// It is a module of its own (internal/bench/go.mod, with a replace of
// agentguard to ../..), so that agentguard's users never download OPA,
// Cedar or the plotting library.
//
// # One policy, three engines
//
// [AgentguardPolicy], [RegoPolicy] and [CedarPolicy] are the same policy: four
// scopes over six tools, a path-in-workspace condition, a numeric bound
// against a principal attribute and two deny rules. [Calls] is a table of
// calls with the decision every engine must reach, and TestAgreement checks
// that all three reach it, through prepared inputs and through raw JSON,
// before any benchmark result means anything. The doc comments of the
// policies say where the languages differ and how the policies avoid it.
//
// [Engine] loads a policy into one engine; [Engine.Prepare] converts a call
// to that engine's native input once, so [Prepared.Decide] times evaluation
// alone:
//
//	engines, err := bench.Engines(ctx, bench.Shared())
//	for _, e := range engines {
//		p, err := e.Prepare(bench.Calls[0])
//		ok, err := p.Decide(ctx)
//	}
//
// [Scaled], [WithRules] and [KeyedRules] generate the policies of the
// scaling benchmarks, again in all three languages; TestScaledAgreement
// checks that the engines agree on them at 10, 100 and 1,000 rules.
//
// # Running
//
// The agreement tests:
//
//	cd internal/bench && go test ./...
//
// Everything, and BENCHMARKS.md at the repository root with its chart:
//
//	cd internal/bench && go run ./cmd/report
//
// Single benchmarks run as usual, e.g.
//
//	go test -run '^$' -bench 'Decision/call=read-allowed' -count 10 . | go tool benchstat -col /engine -
package bench
