package scope_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// fragments the substring rules and the random paths are made of: some
// overlap (one is a part of another), one is empty.
var fragments = []string{"/secret/", "secret", "/s", "cret/", "a", "\u00e9", ".env", "/../", "", "k/"}

// substringPolicy returns a random policy with many rules testing
// substrings of path (enough to be indexed), mixed with rules keyed on
// kind, rules that fail, and rules in other forms.
func substringPolicy(r *rand.Rand) scope.Def {
	d := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{{Tools: []string{"*"}}}}}}
	forms := []func(f string) string{
		func(f string) string { return fmt.Sprintf("args.path.contains(%q)", f) },
		func(f string) string { return fmt.Sprintf("args.path.contains(%q) && args.kind == \"a\"", f) },
		func(f string) string { return fmt.Sprintf("args.n > 3 && args.path.contains(%q)", f) },
		func(f string) string { return fmt.Sprintf("args.path.contains(%q) && args.missing == \"x\"", f) },
		func(f string) string { return fmt.Sprintf("args.path.contains(%q) || args.kind == \"b\"", f) },
		func(f string) string { return fmt.Sprintf("args.kind == %q", f) },
		func(f string) string { return fmt.Sprintf("args.other.contains(%q)", f) },
		func(f string) string { return fmt.Sprintf("args.path.contains(%q) && args.items.all(i, i > 0)", f) },
	}
	for i := range 8 + r.IntN(40) {
		form := forms[0]
		if r.IntN(3) == 0 {
			form = forms[r.IntN(len(forms))]
		}
		rd := scope.RuleDef{Name: fmt.Sprintf("r%d", i), Effect: "deny", Tools: []string{"*"}, When: form(fragments[r.IntN(len(fragments))])}
		switch r.IntN(5) {
		case 0:
			rd.Effect = "ask"
		case 1:
			rd.Mode = "shadow"
		}
		d.Rules = append(d.Rules, rd)
	}
	return d
}

func substringInput(r *rand.Rand) scope.Input {
	args := map[string]any{}
	var b strings.Builder
	for range r.IntN(5) {
		b.WriteString(fragments[r.IntN(len(fragments))])
	}
	switch r.IntN(8) {
	case 0: // no path
	case 1:
		args["path"] = json.Number("7")
	default:
		args["path"] = b.String()
	}
	if r.IntN(2) == 0 {
		args["kind"] = []string{"a", "b", "secret"}[r.IntN(3)]
	}
	if r.IntN(2) == 0 {
		args["other"] = b.String()
	}
	if r.IntN(2) == 0 {
		args["n"] = json.Number(fmt.Sprint(r.IntN(6)))
	}
	if r.IntN(2) == 0 {
		args["items"] = []any{json.Number(fmt.Sprint(r.IntN(2)))}
	}
	return scope.Input{Principal: scope.Principal{ID: "p", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}, Args: args}
}

// TestSubstringIndexAgreesWithUnindexed compares decisions of random
// policies with many substring rules, with and without the index, in
// every field, errors included.
func TestSubstringIndexAgreesWithUnindexed(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	denied, failed := 0, 0
	for i := range 300 {
		def := substringPolicy(r)
		indexed, err := scope.Compile(def, scope.WithCostLimit(50))
		require.NoError(t, err)
		plain, err := scope.Compile(def, scope.WithCostLimit(50), scope.WithoutIndex())
		require.NoError(t, err)
		for range 40 {
			in := substringInput(r)
			want := plain.Decide(ctx, in)
			got := indexed.Decide(ctx, in)
			require.Equal(t, comparable(want), comparable(got), "policy %d: %+v\ninput %+v", i, def, in)
			if got.Effect == scope.Deny {
				denied++
			}
			if len(got.Errors) > 0 || strings.Contains(got.Reason, "could not be evaluated") {
				failed++
			}
		}
	}
	assert.Positive(t, denied, "some calls were denied by a substring rule")
	assert.Positive(t, failed, "some rules failed to evaluate")
}

// TestSubstringIndexOrder: with many substring rules, the first rule in
// policy order whose substring occurs denies, whichever occurs first in
// the path; a path that is not a string reaches every rule.
func TestSubstringIndexOrder(t *testing.T) {
	def := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{{Tools: []string{"*"}}}}}}
	for i := range 20 {
		def.Rules = append(def.Rules, scope.RuleDef{Name: fmt.Sprintf("frag-%d", i), Effect: "deny", Tools: []string{"*"}, When: fmt.Sprintf("args.path.contains(\"/f%d/\")", i)})
	}
	def.Rules = append(def.Rules, scope.RuleDef{Name: "no-path", Effect: "deny", Tools: []string{"*"}, When: `!has(args.path) || args.path.size() > 100`})
	p, err := scope.Compile(def)
	require.NoError(t, err)
	decide := func(path any) scope.Decision {
		return p.Decide(context.Background(), scope.Input{Principal: scope.Principal{ID: "p", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}, Args: map[string]any{"path": path}})
	}
	assert.Equal(t, "frag-3", decide("/f17/x/f3/y").Rule, "policy order, not position in the path")
	assert.Equal(t, "frag-17", decide("/f17/").Rule)
	assert.Equal(t, scope.Allow, decide("/f1x/7/").Effect)
	assert.Equal(t, "no-path", decide("/"+strings.Repeat("x", 200)).Rule, "rules outside the index still apply")
	d := decide(json.Number("5"))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "frag-0", d.Rule, "a number reaches every rule, and the first fails")
	assert.Contains(t, d.Reason, "could not be evaluated")
}

// TestSubstringIndexShared: substring rules naming every tool are in every
// tool's plan; the plans share one index rather than build one each.
func TestSubstringIndexShared(t *testing.T) {
	def := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{"s": {Grants: []scope.GrantDef{{Tools: []string{"*"}}}}}}
	for i := range 200 {
		def.Rules = append(def.Rules, scope.RuleDef{Name: fmt.Sprintf("frag-%d", i), Effect: "deny", Tools: []string{"*"}, When: fmt.Sprintf("args.path.contains(\"/f%d/\")", i)})
	}
	p, err := scope.Compile(def)
	require.NoError(t, err)
	for i := range 2000 {
		d := p.Decide(context.Background(), scope.Input{Principal: scope.Principal{ID: "p", Scopes: []string{"s"}},
			Tool: scope.Tool{Name: fmt.Sprintf("tool_%d", i)}, Args: map[string]any{"path": fmt.Sprintf("/f%d/", i%300)}})
		if i%300 < 200 {
			require.Equal(t, fmt.Sprintf("frag-%d", i%300), d.Rule)
		} else {
			require.Equal(t, scope.Allow, d.Effect, d.Reason)
		}
	}
	assert.Equal(t, 1, scope.SubstringIndexes(p), "2,000 tools' plans share one index")
}
