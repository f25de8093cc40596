package bench_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/bench"
)

// TestAgreement checks that the three engines decide every call of the
// shared table as expected, through both the prepared and the JSON input,
// before any of their timings mean anything.
func TestAgreement(t *testing.T) {
	ctx := context.Background()
	engines, err := bench.Engines(ctx, bench.Shared())
	require.NoError(t, err)
	indexed, err := bench.NewCedar(bench.CedarPolicy, true)
	require.NoError(t, err)
	engines = append(engines, indexed)
	for _, c := range bench.Calls {
		for _, e := range engines {
			t.Run(c.Name+"/"+e.Name(), func(t *testing.T) {
				p, err := e.Prepare(c)
				require.NoError(t, err)
				got, err := p.Explain(ctx)
				require.NoError(t, err)
				assert.Equal(t, bench.Result{Allow: c.Allow, DenyRule: c.DenyRule}, got, "%s: %s", c.Why, c.Args)
				ok, err := p.Decide(ctx)
				require.NoError(t, err)
				assert.Equal(t, c.Allow, ok)
				ok, err = e.DecideJSON(ctx, &c)
				require.NoError(t, err)
				assert.Equal(t, c.Allow, ok)
			})
		}
	}
}

// TestCallTableCoversEveryOutcome guards the table itself: it must hold
// allowed calls, calls denied for want of a scope, by a deny rule and by a
// grant's condition.
func TestCallTableCoversEveryOutcome(t *testing.T) {
	kinds := map[string]int{}
	for _, c := range bench.Calls {
		switch {
		case c.Allow:
			kinds["allow"]++
		case c.DenyRule != "":
			kinds["rule"]++
		case c.Why == "no scope":
			kinds["scope"]++
		default:
			kinds["condition"]++
		}
	}
	for _, k := range []string{"allow", "rule", "scope", "condition"} {
		assert.Positive(t, kinds[k], k)
	}
}

// TestScaledAgreement checks the generated policies of the scaling
// benchmarks: the benchmarked call is allowed by every engine, and a call to
// a tool the principal holds no scope for is denied by every engine.
func TestScaledAgreement(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{1, 10, 100} {
		p := bench.Scaled(n)
		engines, err := bench.Engines(ctx, p)
		require.NoError(t, err)
		indexed, err := bench.NewCedar(p.Cedar, true)
		require.NoError(t, err)
		engines = append(engines, indexed)
		allowed := bench.ScaledCall(n)
		denied := allowed
		denied.Tool = bench.ScaledTool(n) // no such tool
		dotenv := allowed
		dotenv.Args = `{"path":"/workspace/.env"}`
		for _, e := range engines {
			for _, tc := range []struct {
				c    bench.Call
				want bench.Result
			}{
				{allowed, bench.Result{Allow: true}},
				{denied, bench.Result{}},
				{dotenv, bench.Result{DenyRule: "no-dotenv"}},
			} {
				t.Run(fmt.Sprintf("n=%d/%s/%s/%s", n, e.Name(), tc.c.Tool, tc.c.Args), func(t *testing.T) {
					pr, err := e.Prepare(tc.c)
					require.NoError(t, err)
					got, err := pr.Explain(ctx)
					require.NoError(t, err)
					assert.Equal(t, tc.want, got)
				})
			}
		}
	}
	for _, k := range RuleSizes {
		for _, fam := range ruleFamilies {
			p := fam.policy(k)
			engines, err := bench.Engines(ctx, p)
			require.NoError(t, err)
			indexed, err := bench.NewCedar(p.Cedar, true)
			require.NoError(t, err)
			engines = append(engines, indexed)
			// Every call of the shared table decides as on the shared
			// policy, and a call each rule denies is denied by that rule.
			type tc struct {
				c    bench.Call
				want bench.Result
			}
			var cases []tc
			for _, c := range bench.Calls {
				cases = append(cases, tc{c, bench.Result{Allow: c.Allow, DenyRule: c.DenyRule}})
			}
			allowed := bench.CallNamed("read-allowed")
			for _, i := range []int{0, k / 2, k - 1} {
				c := allowed
				c.Args = fmt.Sprintf(`{"path":%q}`, fam.hit(i))
				cases = append(cases, tc{c, bench.Result{DenyRule: fmt.Sprintf(fam.rule, i)}})
			}
			// The same path on another tool: the rules name read_file only.
			other := bench.CallNamed("list-root")
			other.Args = fmt.Sprintf(`{"path":%q}`, fam.hit(k-1))
			cases = append(cases, tc{other, bench.Result{Allow: true}})
			for _, e := range engines {
				t.Run(fmt.Sprintf("rules=%d/%s/%s", k, fam.name, e.Name()), func(t *testing.T) {
					for _, c := range cases {
						pr, err := e.Prepare(c.c)
						require.NoError(t, err)
						got, err := pr.Explain(ctx)
						require.NoError(t, err)
						assert.Equal(t, c.want, got, "%s %s", c.c.Tool, c.c.Args)
						ok, err := pr.Decide(ctx)
						require.NoError(t, err)
						assert.Equal(t, c.want.Allow, ok, "%s %s", c.c.Tool, c.c.Args)
					}
				})
			}
		}
	}
}

// RuleSizes are the rule counts of the rule-scaling benchmarks and their
// agreement tests.
var RuleSizes = []int{10, 100, 1000}

// ruleFamilies are the two rule-scaling policies: deny rules testing a
// substring of the path ([bench.WithRules]) and deny rules naming exact
// paths ([bench.KeyedRules]); hit(i) is a path rule i denies.
var ruleFamilies = []struct {
	name   string
	policy func(int) bench.Policies
	rule   string
	hit    func(int) string
}{
	{"contains", bench.WithRules, "secret-%d", func(i int) string { return fmt.Sprintf("/workspace/secret-%d/key", i) }},
	{"keyed", bench.KeyedRules, "blocked-%d", bench.BlockedPath},
}
