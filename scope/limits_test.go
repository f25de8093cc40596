package scope_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestLimitKinds(t *testing.T) {
	p := compile(t, `version: 1
scopes:
  s:
    grants:
      - tools: [write_file]
        limit: [writes, builds, bytes]
limits:
  writes: {rate: 10/m}
  builds: {concurrency: 2, key: principal.attrs.tenant}
  bytes: {quota: 1000000/day, cost: size(args.content), key: principal.attrs.tenant}
`)
	d := p.Decide(context.Background(), scope.Input{
		Principal: scope.Principal{ID: "u", Scopes: []string{"s"}, Attrs: map[string]any{"tenant": "acme"}},
		Tool:      scope.Tool{Name: "write_file"},
		Args:      map[string]any{"content": "hello"},
	})
	require.Equal(t, scope.Allow, d.Effect, d.Reason)
	require.Len(t, d.Limits, 3)
	byName := map[string]scope.LimitUse{}
	for _, l := range d.Limits {
		byName[l.Name] = l
	}
	assert.Equal(t, scope.LimitRate, byName["writes"].Kind)
	assert.EqualValues(t, 1, byName["writes"].Cost)
	assert.Equal(t, "u", byName["writes"].Key)
	assert.Equal(t, scope.LimitConcurrency, byName["builds"].Kind)
	assert.Equal(t, 2, byName["builds"].Count)
	assert.Equal(t, "acme", byName["builds"].Key)
	assert.Equal(t, scope.LimitQuota, byName["bytes"].Kind)
	assert.EqualValues(t, 5, byName["bytes"].Cost)
	assert.Equal(t, 24*time.Hour, byName["bytes"].Per)
	assert.Equal(t, "quota", byName["bytes"].Kind.String())
}

func TestLimitCostFailsClosed(t *testing.T) {
	p := compile(t, `version: 1
scopes:
  s: {grants: [{tools: [t], limit: q}]}
limits:
  q: {quota: 10/hour, cost: args.n}
`)
	in := func(n any) scope.Input {
		return scope.Input{Principal: scope.Principal{ID: "u", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}, Args: map[string]any{"n": n}}
	}
	assert.Equal(t, scope.Allow, p.Decide(context.Background(), in(json.Number("3"))).Effect)
	d := p.Decide(context.Background(), in(json.Number("-3")))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, "negative")
	d = p.Decide(context.Background(), in("three"))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, `the cost of limit "q" could not be evaluated`)
}

func TestLimitDefErrors(t *testing.T) {
	for src, want := range map[string]string{
		"limits:\n  l: {rate: 1/s, concurrency: 2}\n":   "exactly one of rate, concurrency or quota",
		"limits:\n  l: {key: principal.id}\n":           "exactly one of rate, concurrency or quota",
		"limits:\n  l: {concurrency: 2, burst: 3}\n":    "burst applies only to a rate",
		"limits:\n  l: {quota: 5/month}\n":              "the window must be hour, day or week",
		"limits:\n  l: {quota: many/day}\n":             "positive integer",
		"limits:\n  l: {concurrency: -1}\n":             "concurrency must be positive",
		"limits:\n  l: {concurrency: 1, cost: '2'}\n":   "cost applies only to a rate or a quota",
		"limits:\n  l: {quota: 5/day, cost: '\"x\"'}\n": "want int",
	} {
		_, err := scope.Parse([]byte("version: 1\n" + src))
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want, src)
	}
}

func TestQuotaWindows(t *testing.T) {
	at := time.Date(2026, 11, 22, 21, 40, 5, 0, time.FixedZone("X", 3600)) // 20:40:05 UTC, a Sunday
	tests := []struct {
		per        time.Duration
		start, end string
	}{
		{time.Hour, "2026-11-22T20:00:00Z", "2026-11-22T21:00:00Z"},
		{24 * time.Hour, "2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z"},
		{7 * 24 * time.Hour, "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"},
	}
	for _, tt := range tests {
		s, e := scope.Limit{Kind: scope.LimitQuota, Per: tt.per}.Window(at)
		assert.Equal(t, tt.start, s.Format(time.RFC3339), tt.per)
		assert.Equal(t, tt.end, e.Format(time.RFC3339), tt.per)
	}
}

// TestLimitKeysReadDirectly checks that the keys read without running a
// program (principal.id, tool.name, call.id) equal what the program gives,
// and that anything else still runs the program.
func TestLimitKeysReadDirectly(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [t]
        limit: [a, b, c, d, e]
limits:
  a: {rate: 1/s}
  b: {rate: 1/s, key: tool.name}
  c: {rate: 1/s, key: call.id}
  d: {rate: 1/s, key: principal.id + "/" + tool.name + "/" + call.id}
  e: {rate: 1/s, key: 'has(principal.id) ? "set" : "unset"'}
`))
	require.NoError(t, err)
	d := p.Decide(context.Background(), scope.Input{
		Principal: scope.Principal{ID: "u1", Scopes: []string{"s"}},
		Tool:      scope.Tool{Name: "t"},
		Call:      scope.Call{ID: "c9"},
	})
	require.Equal(t, scope.Allow, d.Effect, d.Reason)
	keys := map[string]string{}
	for _, l := range d.Limits {
		keys[l.Name] = l.Key
	}
	assert.Equal(t, map[string]string{"a": "u1", "b": "t", "c": "c9", "d": "u1/t/c9", "e": "set"}, keys)
}
