package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// scaledDef is a policy of n tools, each granted by a scope of its own
// under a condition on its path, plus two deny rules over every tool; with
// globs, each scope grants a pattern ("svc_00042_*") instead of a name.
func scaledDef(n int, globs bool) scope.Def {
	d := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{}, Rules: []scope.RuleDef{
		{Name: "no-dotenv", Effect: "deny", Tools: []string{"*"}, When: `has(args.path) && args.path.contains("/.env")`},
		{Name: "no-traversal", Effect: "deny", Tools: []string{"*"}, When: `has(args.path) && args.path.contains("/../")`},
	}}
	for i := range n {
		pat := scaledToolName(i)
		if globs {
			pat = fmt.Sprintf("svc_%05d_*", i)
		}
		d.Scopes[fmt.Sprintf("scope_%05d", i)] = scope.ScopeDef{Grants: []scope.GrantDef{
			{Tools: []string{pat}, When: `args.path.startsWith("/workspace/")`},
		}}
	}
	return d
}

func scaledToolName(i int) string { return fmt.Sprintf("svc_%05d_read", i) }

const scaledSchema = `{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`

// registerAll registers n tools on a fresh guard and returns the CPU time
// the registrations took. The schemas are, by mode: "shared" (or none
// given), the same bytes for every tool; "distinct", the same shape with a
// description naming the tool (compiled once, as descriptions do not
// change what a schema accepts); "shapes", a property of its own for each
// tool, so that every schema is compiled.
func registerAll(tb testing.TB, p *scope.Policy, n int, mode ...string) (*toolguard.Guard, time.Duration) {
	tb.Helper()
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(tb, err)
	h := func(context.Context, json.RawMessage) (any, error) { return "ok", nil }
	schemas := make([]json.RawMessage, n)
	for i := range schemas {
		schemas[i] = json.RawMessage(scaledSchema)
		switch {
		case len(mode) == 0:
		case mode[0] == "distinct":
			schemas[i] = fmt.Appendf(nil, `{"type":"object","description":"reads for %s","properties":{"path":{"type":"string"}},"required":["path"]}`, scaledToolName(i))
		case mode[0] == "shapes":
			schemas[i] = fmt.Appendf(nil, `{"type":"object","properties":{"path":{"type":"string"},"opt_%d":{"type":"integer"}},"required":["path"]}`, i)
		}
	}
	start := cpuTime()
	for i := range n {
		if err := g.Register(toolguard.Tool{Name: scaledToolName(i), InputSchema: schemas[i], Handler: h}); err != nil {
			tb.Fatal(err)
		}
	}
	return g, cpuTime() - start
}

// TestRegisterScalesLinearly registers 1,000 and 10,000 tools, each
// granted by its own scope and with a schema of its own, in the same run:
// ten times the tools must take less than 20 times the CPU time. Work
// quadratic in the tools would take about 100 times; what exceeds 10 is
// the allocator and collector working over a heap ten times larger (a
// profile at 10,000 tools shows no part of Register growing with n).
func TestRegisterScalesLinearly(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("registers 11,000 tools, and times them (not under -short or -race)")
	}
	// Each tool has a schema of its own shape, so each registration
	// compiles one. Collections are made rarer, so that the CPU time measures the
	// registrations more than when the collector happens to run.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, globs := range []bool{false, true} {
		t.Run(fmt.Sprintf("globs=%v", globs), func(t *testing.T) {
			var took [2]time.Duration
			for i, n := range []int{1000, 10000} {
				// Take the median of three runs of each size, each under a
				// policy of its own (a policy remembers the checks that
				// passed): the first run of the larger size also pays the
				// system for the heap it grows to the first time, which
				// is not work that grows with the tools.
				var runs []time.Duration
				var g *toolguard.Guard
				for range 3 {
					p, err := scope.Compile(scaledDef(n, globs))
					require.NoError(t, err)
					runtime.GC()
					var d time.Duration
					g, d = registerAll(t, p, n, "shapes")
					runs = append(runs, d)
				}
				slices.Sort(runs)
				took[i] = runs[len(runs)/2]
				// Registered tools are guarded by the policy: the last one
				// is allowed for its scope and denied without it.
				last := scaledToolName(n - 1)
				ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{fmt.Sprintf("scope_%05d", n-1)}})
				_, err := g.Call(ctx, last, json.RawMessage(`{"path":"/workspace/a"}`))
				require.NoError(t, err)
				ctx = toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"scope_00000"}})
				_, err = g.Call(ctx, last, json.RawMessage(`{"path":"/workspace/a"}`))
				require.ErrorIs(t, err, toolguard.ErrDenied)
			}
			ratio := float64(took[1]) / float64(took[0])
			t.Logf("register 1,000: %v CPU; 10,000: %v CPU; ratio %.1f", took[0], took[1], ratio)
			require.Less(t, ratio, 20.0, "registering 10x the tools took %.1fx as long", ratio)
		})
	}
}

// TestRegisterStillChecksSchemas shows that the cache of passed checks is
// per schema: a tool whose schema lacks the argument a grant reads is
// refused even after many tools with the argument passed.
func TestRegisterStillChecksSchemas(t *testing.T) {
	p, err := scope.Compile(scaledDef(100, true))
	require.NoError(t, err)
	g, _ := registerAll(t, p, 100)
	err = g.Register(toolguard.Tool{Name: scaledToolName(100) + "x", InputSchema: json.RawMessage(scaledSchema),
		Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }})
	require.NoError(t, err, "no grant applies: nothing to check")
	err = g.Register(toolguard.Tool{Name: "svc_00007_write", InputSchema: json.RawMessage(`{"type":"object","properties":{"pth":{"type":"string"}}}`),
		Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }})
	require.ErrorContains(t, err, "does not fit the policy")
	require.ErrorContains(t, err, "path")
}

// BenchmarkRegister times registering n tools on a fresh guard whose
// policy grants each of them by name: ns/op is the wall time of all n,
// cpu-ns/op the CPU time they took (on a busy machine the steadier
// figure). schemas=shared gives every tool the same schema bytes;
// schemas=distinct gives each its own description (both compiled once);
// schemas=shapes gives each a property of its own (each compiled). compile-ns is the time
// scope.Compile took for the policy of n tools, once, before the
// registrations.
func BenchmarkRegister(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		start := time.Now()
		p, err := scope.Compile(scaledDef(n, false), scope.WithMaxPolicyBytes(64<<20))
		compile := time.Since(start)
		require.NoError(b, err)
		for _, schemas := range []string{"shared", "distinct", "shapes"} {
			b.Run(fmt.Sprintf("schemas=%s/tools=%d", schemas, n), func(b *testing.B) {
				var cpu time.Duration
				for b.Loop() {
					_, d := registerAll(b, p, n, schemas)
					cpu += d
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(compile.Nanoseconds()), "compile-ns")
			})
		}
	}
}

// TestSharedSchemaToolsStayApart: tools registered with the same schema
// bytes each validate their own calls, and a refusal names the tool
// called.
func TestSharedSchemaToolsStayApart(t *testing.T) {
	p, err := scope.Compile(scaledDef(2, false))
	require.NoError(t, err)
	g, _ := registerAll(t, p, 2)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"scope_00000", "scope_00001"}})
	for i := range 2 {
		_, err = g.Call(ctx, scaledToolName(i), json.RawMessage(`{"path":"/workspace/a"}`))
		require.NoError(t, err)
		_, err = g.Call(ctx, scaledToolName(i), json.RawMessage(`{"path":7}`))
		require.ErrorIs(t, err, toolguard.ErrDenied)
		require.ErrorContains(t, err, scaledToolName(i))
		require.NotContains(t, err.Error(), scaledToolName(1-i))
	}
}

// TestShapesStayApart: tools whose schemas have different shapes — each
// compiled on its own, on first use — judge the same arguments each by its
// own schema: opt_00001 is an integer for svc_00001_read, and undeclared,
// so anything, for svc_00002_read. Concurrent first calls share one
// compile.
func TestShapesStayApart(t *testing.T) {
	p, err := scope.Compile(scaledDef(3, false))
	require.NoError(t, err)
	g, _ := registerAll(t, p, 3, "shapes")
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"scope_00001", "scope_00002"}})
	call := func(tool int, args string) error {
		_, err := g.Call(ctx, scaledToolName(tool), json.RawMessage(args))
		return err
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			err := call(1, `{"path":"/workspace/a","opt_1":"x"}`)
			assert.ErrorIs(t, err, toolguard.ErrInvalidArguments)
			assert.ErrorContains(t, err, "/opt_1")
		})
	}
	wg.Wait()
	require.NoError(t, call(2, `{"path":"/workspace/a","opt_1":"x"}`))
	require.NoError(t, call(1, `{"path":"/workspace/a","opt_1":7}`))
	err = call(2, `{"path":"/workspace/a","opt_2":"x"}`)
	require.ErrorIs(t, err, toolguard.ErrInvalidArguments)
	require.ErrorContains(t, err, scaledToolName(2))
	require.NoError(t, call(2, `{"path":"/workspace/a","opt_2":7}`))
	// Valid for the fast validator's subset but not the schema: a number
	// that is not an integer.
	require.ErrorIs(t, call(1, `{"path":"/workspace/a","opt_1":7.5}`), toolguard.ErrInvalidArguments)
}

// TestShapesCheckedByTypesRead: a rule reading args.n is checked against
// the type each tool's schema gives n, however many tools with other
// shapes and an integer n passed before: a tool whose n is a string is
// refused, one without n too.
func TestShapesCheckedByTypesRead(t *testing.T) {
	p, err := scope.Compile(scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{
		{Tools: []string{"*"}, When: `args.n > 5`},
	}}}})
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	h := func(context.Context, json.RawMessage) (any, error) { return "ok", nil }
	register := func(name, schema string) error {
		return g.Register(toolguard.Tool{Name: name, InputSchema: json.RawMessage(schema), Handler: h})
	}
	for i := range 50 {
		require.NoError(t, register(fmt.Sprint("int_", i), fmt.Sprintf(`{"type":"object","properties":{"n":{"type":"integer"},"opt_%d":{"type":"string"}}}`, i)))
	}
	err = register("str", `{"type":"object","properties":{"n":{"type":"string"},"opt_1":{"type":"string"}}}`)
	require.ErrorContains(t, err, "does not fit the policy")
	require.ErrorContains(t, err, "_>_")
	err = register("none", `{"type":"object","properties":{"m":{"type":"integer"},"opt_1":{"type":"string"}}}`)
	require.ErrorContains(t, err, "undefined field 'n'")
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})
	_, err = g.Call(ctx, "int_7", json.RawMessage(`{"n":6}`))
	require.NoError(t, err)
	_, err = g.Call(ctx, "int_7", json.RawMessage(`{"n":5}`))
	require.ErrorIs(t, err, toolguard.ErrDenied)
}

// TestRegisterRefusesBadSchemasNow: schemas close to those whose full
// compile waits for the first call, but that do not compile, are refused
// at registration, as they always were.
func TestRegisterRefusesBadSchemasNow(t *testing.T) {
	p, err := scope.Compile(scope.Def{Version: 1})
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard), toolguard.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	h := func(context.Context, json.RawMessage) (any, error) { return "ok", nil }
	for _, schema := range []string{
		`{"type":"object","$id":"%zz"}`,
		`{"type":"object","properties":{"a":{"pattern":"("}}}`,
		`{"type":"object","properties":{"a":{"type":"strng"}}}`,
		`{"type":"object","required":["a","a"]}`,
		`{"type":"object","properties":{"a":{"maxLength":1.5}}}`,
		`{"type":"object","properties":{"a":{"minimum":"0"}}}`,
		`{"type":"object","properties":{"a":{"items":{"minItems":-1}}}}`,
		`{"type":"object","description":7}`,
		`{"type":"object","properties":{"a":{"$schema":"https://json-schema.org/draft/2020-12/schema","format":"x"}},"$defs":{"b":{"type":[]}}}`,
	} {
		err := g.Register(toolguard.Tool{Name: "t", InputSchema: json.RawMessage(schema), Handler: h})
		require.ErrorContains(t, err, `tool "t": input schema`, schema)
	}
	// Fit for a compile on first use; the first call that needs it
	// compiles it.
	require.NoError(t, g.Register(toolguard.Tool{Name: "t", InputSchema: json.RawMessage(`{"type":"object","$id":"https://example.com/t","properties":{"a":{"pattern":"^x"}}}`), Handler: h}))
}

// BenchmarkCallInvalidArgs times a call whose arguments the fast validator
// does not accept, so that the full validator decides and reports: first,
// the first such call to a tool just registered, which compiles the
// schema; later, one after that.
func BenchmarkCallInvalidArgs(b *testing.B) {
	p, err := scope.Compile(scaledDef(1, true))
	require.NoError(b, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(b, err)
	h := func(context.Context, json.RawMessage) (any, error) { return "ok", nil }
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"scope_00000"}})
	args := json.RawMessage(`{"path":7}`)
	n := 0
	register := func() string {
		n++
		name := fmt.Sprintf("svc_00000_%d", n)
		schema := fmt.Appendf(nil, `{"type":"object","properties":{"path":{"type":"string"},"opt_%d":{"type":"integer"}},"required":["path"]}`, n)
		require.NoError(b, g.Register(toolguard.Tool{Name: name, InputSchema: schema, Handler: h}))
		return name
	}
	b.Run("first", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			name := register()
			b.StartTimer()
			if _, err := g.Call(ctx, name, args); !errors.Is(err, toolguard.ErrInvalidArguments) {
				b.Fatal(err)
			}
		}
	})
	b.Run("later", func(b *testing.B) {
		name := register()
		_, _ = g.Call(ctx, name, args)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Call(ctx, name, args); !errors.Is(err, toolguard.ErrInvalidArguments) {
				b.Fatal(err)
			}
		}
	})
}
