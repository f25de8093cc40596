package scope_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// conditions the random policies draw from: constant tests the index
// uses, conditions that fail (a missing argument, a number compared with
// a string, a division by zero, a loop over its cost limit), and mixes.
var randConds = []string{
	``,
	`args.kind == "a"`,
	`"b" == args.kind`,
	`args.kind in ["a", "c"]`,
	`args["kind"] == "c"`,
	`args.kind == "a" && args.n > 3`,
	`args.n > 3 && args.kind == "b"`,
	`args.kind == "b" && args.missing == "x"`,
	`args.missing == "x" && args.kind == "a"`,
	`args.path.contains("/secret/")`,
	`args.path.startsWith("/w/") && args.kind == "c"`,
	`args.path.endsWith(".env") || args.kind == "a"`,
	`tool.name == "t1"`,
	`tool.name in ["t2", "t3"] && args.kind == "a"`,
	`tool.name == "t1" && 1 / (args.n - args.n) == 1`,
	`args.kind == "a" && args.items.all(i, i > 0)`,
	`args.items.exists(i, i == 2) && args.kind == "c"`,
	`has(args.kind) && args.kind == "b"`,
	`args.kind == 1`,
	`!(args.kind == "a")`,
	`args.kind == "a" && args.kind == "b"`,
	`args.kind in ["a", "b"] && args.path.contains("x")`,
	`args.kind == "\u00e9"`,
	`has(args.kind) || args.path.contains("x")`,
	`args.kind == "a" || args.n > 3`,
	`tool.name == "t1" || args.kind == "b"`,
	`args.path.startsWith("/w/") || args.path.endsWith(".env")`,
	`has(args.path) && (args.path.contains("/../") || args.path.endsWith("/.."))`,
	`has(args.kind)`,
	`has(args.missing) || args.kind in ["a"]`,
	`args.kind == "a" || args.kind == "b" || args.kind == "c"`,
	`(args.kind == "a" || args.path == "/w/a") && tool.name in ["t1", "x_tool"]`,
}

var randTools = []string{"t1", "t2", "t3", "x_tool", "*", "t*", "x_*"}

// randPolicy returns a random policy: deny, ask and shadow rules and
// grants over a few tools with conditions from randConds.
func randPolicy(r *rand.Rand) scope.Def {
	d := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{}}
	pick := func() string { return randConds[r.IntN(len(randConds))] }
	tools := func() []string {
		n := 1 + r.IntN(2)
		out := make([]string, n)
		for i := range out {
			out[i] = randTools[r.IntN(len(randTools))]
		}
		return out
	}
	for i := range 1 + r.IntN(12) {
		rd := scope.RuleDef{Name: fmt.Sprintf("r%d", i), Effect: "deny", Tools: tools(), When: pick()}
		switch r.IntN(4) {
		case 0:
			rd.Effect = "ask"
		case 1:
			rd.Mode = "shadow"
		}
		if r.IntN(3) == 0 {
			rd.Message = `"rule " + args.kind`
		}
		d.Rules = append(d.Rules, rd)
	}
	for i := range 1 + r.IntN(4) {
		var gs []scope.GrantDef
		for range 1 + r.IntN(4) {
			gs = append(gs, scope.GrantDef{Tools: tools(), When: pick()})
		}
		d.Scopes[fmt.Sprintf("s%d", i)] = scope.ScopeDef{Grants: gs}
	}
	return d
}

// randInput returns a random call: kind a string, a number, a bool, null
// or missing, and so on.
func randInput(r *rand.Rand) scope.Input {
	args := map[string]any{}
	kinds := []any{"a", "b", "c", "d", "\u00e9", json.Number("1"), json.Number("1.5"), true, nil, map[string]any{"x": "a"}, []any{"a"}}
	if r.IntN(6) > 0 {
		args["kind"] = kinds[r.IntN(len(kinds))]
	}
	paths := []any{"/w/a", "/w/secret/k", "/x/.env", "x", "", json.Number("3")}
	if r.IntN(4) > 0 {
		args["path"] = paths[r.IntN(len(paths))]
	}
	if r.IntN(3) > 0 {
		args["n"] = json.Number(fmt.Sprint(r.IntN(6)))
	}
	if r.IntN(3) > 0 {
		items := []any{}
		for range r.IntN(4) {
			items = append(items, json.Number(fmt.Sprint(r.IntN(3))))
		}
		args["items"] = items
	}
	var scopes []string
	for i := range 4 {
		if r.IntN(2) == 0 {
			scopes = append(scopes, fmt.Sprintf("s%d", i))
		}
	}
	return scope.Input{
		Principal: scope.Principal{ID: "p", Scopes: scopes},
		Tool:      scope.Tool{Name: []string{"t1", "t2", "t3", "x_tool", "x_other", "y"}[r.IntN(6)]},
		Args:      args,
		Call:      scope.Call{ID: "c", Time: time.Unix(1700000000, 0)},
	}
}

// comparable renders a decision with its errors as text.
func comparable(d scope.Decision) string {
	return fmt.Sprintf("%+v", d)
}

// TestIndexedAgreesWithUnindexed compares decisions of random policies
// compiled with and without the index on random calls: they must be the
// same in every field, errors included.
func TestIndexedAgreesWithUnindexed(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	skipped := 0
	for i := range 400 {
		def := randPolicy(r)
		indexed, err := scope.Compile(def, scope.WithCostLimit(50))
		require.NoError(t, err)
		plain, err := scope.Compile(def, scope.WithCostLimit(50), scope.WithoutIndex())
		require.NoError(t, err)
		for range 40 {
			in := randInput(r)
			want := plain.Decide(ctx, in)
			got := indexed.Decide(ctx, in)
			require.Equal(t, comparable(want), comparable(got), "policy %d: %+v\ninput %+v", i, def, in)
			if len(got.Errors) > 0 {
				skipped++
			}
		}
	}
	assert.Positive(t, skipped, "some decisions met evaluation errors")
}

// TestIndexNeverSkipsAFailingDenyRule shows that a deny rule is skipped
// only when its constant test is false on a string: a missing argument, a
// number in place of the string, a failing other conjunct, or a loop over
// its cost limit still deny.
func TestIndexNeverSkipsAFailingDenyRule(t *testing.T) {
	p, err := scope.Compile(scope.Def{
		Version: 1,
		Scopes:  map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{{Tools: []string{"*"}}}}},
		Rules: []scope.RuleDef{
			{Name: "kind-k", Effect: "deny", Tools: []string{"*"}, When: `args.items.all(i, i >= 0) && args.kind == "k"`},
			{Name: "missing", Effect: "deny", Tools: []string{"*"}, When: `args.other == "x" && args.kind == "k"`},
			{Name: "tool-t", Effect: "deny", Tools: []string{"*"}, When: `tool.name == "t" && args.kind == "k"`},
		},
	}, scope.WithCostLimit(20))
	require.NoError(t, err)
	ctx := context.Background()
	decide := func(tool string, args map[string]any) scope.Decision {
		return p.Decide(ctx, scope.Input{Principal: scope.Principal{ID: "p", Scopes: []string{"s"}}, Tool: scope.Tool{Name: tool}, Args: args})
	}
	many := make([]any, 100)
	for i := range many {
		many[i] = json.Number("1")
	}
	// A string that is not "k" and a small list: nothing fails, allowed.
	d := decide("u", map[string]any{"kind": "j", "other": "y", "items": []any{}})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	// The loop runs over its cost limit before kind is compared: the
	// error denies although kind is not "k".
	d = decide("u", map[string]any{"kind": "j", "other": "y", "items": many})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "kind-k", d.Rule)
	// other is missing: args.other fails, && gives false only because
	// kind is a string other than "k" — skipping is right.
	d = decide("u", map[string]any{"kind": "j", "items": []any{}})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	// kind missing: the rules are evaluated, and the first fails and
	// denies.
	d = decide("u", map[string]any{"items": []any{}})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "kind-k", d.Rule)
	assert.Contains(t, d.Reason, "could not be evaluated")
	// kind a number: evaluated as written; 1 == "k" is false, which
	// absorbs the missing other.
	d = decide("u", map[string]any{"kind": json.Number("1"), "items": []any{}})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	// The tool is t and kind is k: the third rule denies.
	d = decide("t", map[string]any{"kind": "k", "other": "x", "items": []any{}})
	assert.Equal(t, "kind-k", d.Rule)
}

// TestIndexedBuckets: with many rules keyed on one argument, each value
// reaches its own rule, rules on other arguments still apply, and a value
// that is not a string reaches them all.
func TestIndexedBuckets(t *testing.T) {
	def := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{{Tools: []string{"*"}}}}}}
	for i := range 300 {
		def.Rules = append(def.Rules, scope.RuleDef{Name: fmt.Sprintf("k%d", i), Effect: "deny", Tools: []string{"*"},
			When: fmt.Sprintf(`args.kind in ["v%d", "w%d"]`, i, i)})
	}
	def.Rules = append(def.Rules, scope.RuleDef{Name: "path", Effect: "deny", Tools: []string{"*"}, When: `args.path.contains("/x/")`})
	p, err := scope.Compile(def)
	require.NoError(t, err)
	ctx := context.Background()
	decide := func(args map[string]any) scope.Decision {
		return p.Decide(ctx, scope.Input{Principal: scope.Principal{ID: "p", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "any"}, Args: args})
	}
	for _, i := range []int{0, 1, 150, 299} {
		assert.Equal(t, fmt.Sprintf("k%d", i), decide(map[string]any{"kind": fmt.Sprintf("w%d", i)}).Rule)
	}
	assert.Equal(t, scope.Allow, decide(map[string]any{"kind": "v300", "path": "/a"}).Effect)
	assert.Equal(t, "path", decide(map[string]any{"kind": "v300", "path": "/a/x/b"}).Rule)
	// A number: every rule is evaluated; 1 == "v0" is false in CEL.
	d := decide(map[string]any{"kind": json.Number("1"), "path": "/a"})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	// No kind: the first rule fails, and its error denies.
	d = decide(map[string]any{"path": "/a"})
	assert.Equal(t, "k0", d.Rule)
	assert.True(t, strings.Contains(d.Reason, "could not be evaluated"), d.Reason)
}

// FuzzIndexAgrees parses a policy twice, with and without the index, and
// decides calls with the fuzzed strings in their arguments: the decisions
// must be the same.
func FuzzIndexAgrees(f *testing.F) {
	f.Add([]byte(`{"version":1,"scopes":{"s":{"grants":[{"tools":["*"],"when":"args.path == \"/w\" || args.path.startsWith(\"/w/\")"}]}},`+
		`"rules":[{"name":"r","effect":"deny","tools":["*"],"when":"has(args.path) && (args.path.contains(\"/../\") || args.path.endsWith(\"/..\"))"},`+
		`{"name":"k","effect":"ask","tools":["t*"],"when":"args.kind in [\"a\", \"b\"] && args.n > 1"}]}`), "a", "/w/x")
	f.Add([]byte(`{"version":1,"scopes":{"s":{"grants":[{"tools":["t"],"when":"tool.name == \"t\" && args[\"kind\"] == \"x\""}]}},`+
		`"rules":[{"name":"r","effect":"deny","tools":["*"],"when":"args.kind == \"k\" && args.items.all(i, i > 0)"}]}`), "k", "")
	f.Add([]byte(`{"version":1,"scopes":{"s":{"grants":[{"tools":["*"]}]}},"rules":[{"name":"r","effect":"deny","tools":["*"],"mode":"shadow","when":"\"b\" == args.kind || has(args.path)"}]}`), "b", "p")
	f.Fuzz(func(t *testing.T, src []byte, kind, path string) {
		indexed, err := scope.Parse(src, scope.WithCostLimit(1000))
		if err != nil {
			return
		}
		plain, err := scope.Parse(src, scope.WithCostLimit(1000), scope.WithoutIndex())
		if err != nil {
			t.Fatalf("parses with the index but not without: %v", err)
		}
		argSets := []map[string]any{
			{"kind": kind, "path": path, "n": json.Number("2"), "items": []any{json.Number("1")}},
			{"kind": kind},
			{"path": path, "kind": json.Number("1")},
			{},
		}
		for _, tool := range []string{"t", "t1", "x", kind} {
			for _, args := range argSets {
				in := scope.Input{Principal: scope.Principal{ID: "u", Scopes: []string{"s"}}, Tool: scope.Tool{Name: tool}, Args: args}
				want, got := plain.Decide(context.Background(), in), indexed.Decide(context.Background(), in)
				if comparable(want) != comparable(got) {
					t.Fatalf("tool %q args %v:\nunindexed %s\nindexed   %s", tool, args, comparable(want), comparable(got))
				}
			}
		}
	})
}

// TestInventedToolNamesAreBounded: names the policy does not spell out
// fill the plan cache only up to its bound, and names past it are still
// decided by the globs they match.
func TestInventedToolNamesAreBounded(t *testing.T) {
	p, err := scope.Compile(scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{
		"s": {Grants: []scope.GrantDef{{Tools: []string{"fs_*"}}, {Tools: []string{"named"}}}},
	}})
	require.NoError(t, err)
	ctx := context.Background()
	decide := func(tool string) scope.Decision {
		return p.Decide(ctx, scope.Input{Principal: scope.Principal{ID: "p", Scopes: []string{"s"}}, Tool: scope.Tool{Name: tool}})
	}
	for i := range 12_000 {
		d := decide(fmt.Sprintf("fs_%d", i))
		require.Equal(t, scope.Allow, d.Effect, d.Reason)
		require.Equal(t, scope.Deny, decide(fmt.Sprintf("x_%d", i)).Effect)
	}
	n := scope.CachedNames(p)
	assert.LessOrEqual(t, n, 10_000+2*2, "cached names")
	assert.GreaterOrEqual(t, n, 10_000)
	assert.Equal(t, scope.Allow, decide("named").Effect, "a name the policy spells out is cached past the bound")
	assert.Equal(t, n+1, scope.CachedNames(p))
}

// TestFirstDecisionsConcurrent: goroutines deciding names no call has
// used yet — named ones, whose plans are built on first use, and invented
// ones the globs match — all at once, get the decisions the policy's text
// says and one goroutine gets from a fresh copy (run it with -race).
func TestFirstDecisionsConcurrent(t *testing.T) {
	def := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{}, Rules: []scope.RuleDef{
		{Name: "no-secrets", Effect: "deny", Tools: []string{"svc_*"}, When: `args.path.contains("secret")`},
	}}
	for i := range 50 {
		def.Scopes[fmt.Sprintf("s%d", i)] = scope.ScopeDef{Grants: []scope.GrantDef{
			{Tools: []string{fmt.Sprintf("svc_%d_read", i)}, When: `args.path.startsWith("/w/")`},
			{Tools: []string{fmt.Sprintf("svc_%d_*", i)}, When: `args.path.startsWith("/pub/")`},
		}}
	}
	held := []string{"s3", "s7", "s42"}
	type call struct {
		in        scope.Input
		wantScope string // "" for a denial
	}
	var calls []call
	for i := range 50 {
		s := fmt.Sprintf("s%d", i)
		for _, path := range []string{"/w/a", "/pub/b", "/w/secret"} {
			for _, verb := range []string{"read", "write"} {
				want := ""
				if slices.Contains(held, s) && (path == "/pub/b" || path == "/w/a" && verb == "read") {
					want = s
				}
				calls = append(calls, call{scope.Input{Principal: scope.Principal{ID: "p", Scopes: held},
					Tool: scope.Tool{Name: fmt.Sprintf("svc_%d_%s", i, verb)}, Args: map[string]any{"path": path}}, want})
			}
		}
	}
	ctx := context.Background()
	ref, err := scope.Compile(def)
	require.NoError(t, err)
	want := make([]string, len(calls))
	for i, c := range calls {
		want[i] = comparable(ref.Decide(ctx, c.in))
	}
	p, err := scope.Compile(def)
	require.NoError(t, err)
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range calls {
				i := (k + w*len(calls)/workers) % len(calls) // each starts elsewhere
				c := calls[i]
				d := p.Decide(ctx, c.in)
				if c.wantScope == "" {
					assert.Equal(t, scope.Deny, d.Effect, "%s %v", c.in.Tool.Name, c.in.Args)
				} else {
					assert.Equal(t, scope.Allow, d.Effect, "%s %v: %s", c.in.Tool.Name, c.in.Args, d.Reason)
					assert.Equal(t, c.wantScope, d.Scope)
				}
				assert.Equal(t, want[i], comparable(d))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 100, scope.CachedNames(p), "every name once")
}
