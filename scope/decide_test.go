package scope_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func loadTestPolicy(t *testing.T) *scope.Policy {
	t.Helper()
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	return p
}

func in(id string, scopes []string, tool string, args map[string]any) scope.Input {
	return scope.Input{
		Principal: scope.Principal{ID: id, Scopes: scopes, Attrs: map[string]any{"workspace": "/w"}},
		Tool:      scope.Tool{Name: tool},
		Args:      args,
		Call:      scope.Call{ID: "c1", Time: time.Unix(1700000000, 0)},
	}
}

func TestDecide(t *testing.T) {
	p := loadTestPolicy(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		in         scope.Input
		effect     scope.Effect
		rule       string
		scope      string
		reason     string // substring
		limits     int
		shadowHits int
	}{
		{name: "grant allows", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/a.txt"}),
			effect: scope.Allow, scope: "fs.read", reason: `allowed by scope "fs.read"`},
		{name: "static principal scopes", in: in("support-bot", nil, "list_directory", map[string]any{"path": "/w"}),
			effect: scope.Allow, scope: "fs.read"},
		{name: "condition false says what is allowed", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/etc/passwd"}),
			effect: scope.Deny, reason: `allows it only when args.path.isUnder(principal.attrs.workspace)`},
		{name: "dot-dot cannot escape", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/../etc/passwd"}),
			effect: scope.Deny},
		{name: "prefix trick cannot escape", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w2/secret"}),
			effect: scope.Deny},
		{name: "scope not held names the scope needed", in: in("u", []string{"fs.read"}, "write_file", map[string]any{"path": "/w/out/a", "content": "x"}),
			effect: scope.Deny, reason: `it needs scope "fs.write"`},
		{name: "no scope grants the tool", in: in("u", []string{"fs.read"}, "rm_rf", map[string]any{}),
			effect: scope.Deny, reason: "no scope grants this tool"},
		{name: "deny rule beats grant", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/.env"}),
			effect: scope.Deny, rule: "no-dotenv", reason: "secret files are off limits: /w/.env"},
		{name: "deny rule applies in nested dirs", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/a/b/.env.local"}),
			effect: scope.Deny, rule: "no-dotenv"},
		{name: "glob grant", in: in("u", []string{"mail"}, "mail_send", map[string]any{"to": "a@example.com"}),
			effect: scope.Allow, scope: "mail"},
		{name: "ask rule", in: in("u", []string{"mail"}, "mail_send", map[string]any{"to": "x@evil.test"}),
			effect: scope.Ask, rule: "external-mail", scope: "mail", reason: "mail to x@evil.test leaves the company"},
		{name: "ask needs a grant first", in: in("u", nil, "mail_send", map[string]any{"to": "x@evil.test"}),
			effect: scope.Deny},
		{name: "limits with keys", in: in("u", []string{"fs.write"}, "write_file", map[string]any{"path": "/w/out/a", "content": "x"}),
			effect: scope.Allow, scope: "fs.write", limits: 1},
		{name: "shadow rule recorded, not enforced", in: in("u", []string{"fs.write"}, "write_file", map[string]any{"path": "/w/out/a", "content": strings.Repeat("x", 2000)}),
			effect: scope.Allow, scope: "fs.write", limits: 1, shadowHits: 1},
		{name: "no principal", in: in("", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/a"}),
			effect: scope.Deny, reason: "no principal"},
		{name: "unknown scope brought is ignored", in: in("u", []string{"admin"}, "read_text_file", map[string]any{"path": "/w/a"}),
			effect: scope.Deny},
		{name: "missing argument is an error, grant does not match", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{}),
			effect: scope.Deny},
		{name: "wrong argument type makes the deny rule fail: denied", in: in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": json.Number("42")}),
			effect: scope.Deny, rule: "no-dotenv", reason: "could not be evaluated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(ctx, tt.in)
			assert.Equal(t, tt.effect, d.Effect, "reason: %s", d.Reason)
			assert.Equal(t, tt.rule, d.Rule)
			if tt.scope != "" {
				assert.Equal(t, tt.scope, d.Scope)
			}
			assert.Contains(t, d.Reason, tt.reason)
			assert.Len(t, d.Limits, tt.limits)
			assert.Equal(t, p.Revision(), d.Revision)
			hits := 0
			for _, s := range d.Shadow {
				if s.Matched {
					hits++
				}
			}
			assert.Equal(t, tt.shadowHits, hits)
		})
	}
}

func TestDecideLimitKey(t *testing.T) {
	p := loadTestPolicy(t)
	d := p.Decide(context.Background(), in("alice", []string{"fs.write"}, "write_file", map[string]any{"path": "/w/out/a", "content": "x"}))
	require.Equal(t, scope.Allow, d.Effect, d.Reason)
	require.Len(t, d.Limits, 1)
	assert.Equal(t, "writes", d.Limits[0].Name)
	assert.Equal(t, "alice", d.Limits[0].Key)
	assert.Equal(t, 10, d.Limits[0].Count)
	assert.Equal(t, time.Minute, d.Limits[0].Per)
	assert.Equal(t, 5, d.Limits[0].Burst)
	assert.Equal(t, 6*time.Second, d.Limits[0].Every())
}

func compile(t *testing.T, src string, opts ...scope.Option) *scope.Policy {
	t.Helper()
	p, err := scope.Parse([]byte(src), opts...)
	require.NoError(t, err)
	return p
}

// A CEL error never allows: in a deny rule it denies, in a grant the grant
// does not match, in an ask rule it denies.
func TestEvaluationErrorsFailClosed(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: args.n / args.d > 0
      - tools: [u]
rules:
  - name: r
    effect: deny
    tools: [u]
    when: args.missing == "x"
  - name: a
    effect: ask
    tools: [v]
    when: args.missing == "x"
`)
	p2 := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [v]
rules:
  - name: a
    effect: ask
    tools: [v]
    when: args.missing == "x"
`)
	ctx := context.Background()
	d := p.Decide(ctx, in("u", []string{"s"}, "t", map[string]any{"n": json.Number("1"), "d": json.Number("0")}))
	assert.Equal(t, scope.Deny, d.Effect)
	require.Len(t, d.Errors, 1)
	assert.Contains(t, d.Errors[0].Error(), "division by zero")

	d = p.Decide(ctx, in("u", []string{"s"}, "u", map[string]any{}))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "r", d.Rule)
	assert.Contains(t, d.Reason, "could not be evaluated")
	require.Len(t, d.Errors, 1)

	d = p2.Decide(ctx, in("u", []string{"s"}, "v", map[string]any{}))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "a", d.Rule)
}

func TestCostOverrunFailsClosed(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: args.items.map(x, args.items.map(y, x + y)).size() >= 0
rules:
  - name: bomb
    effect: deny
    tools: [u]
    when: args.items.map(x, args.items.map(y, x + y)).size() < 0
  - name: allow-u
    effect: deny
    tools: [never]
`, scope.WithCostLimit(10_000))
	items := make([]any, 300)
	for i := range items {
		items[i] = json.Number("1")
	}
	ctx := context.Background()
	small := map[string]any{"items": []any{json.Number("1")}}
	big := map[string]any{"items": items}

	d := p.Decide(ctx, in("u", []string{"s"}, "t", small))
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)

	d = p.Decide(ctx, in("u", []string{"s"}, "t", big))
	assert.Equal(t, scope.Deny, d.Effect)
	require.NotEmpty(t, d.Errors)
	assert.Contains(t, d.Errors[0].Error(), "cost limit")

	// The deny rule blows its budget: denied, even though it would not match.
	pu := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [u]
rules:
  - name: bomb
    effect: deny
    tools: [u]
    when: args.items.map(x, args.items.map(y, x + y)).size() < 0
`, scope.WithCostLimit(10_000))
	d = pu.Decide(ctx, in("u", []string{"s"}, "u", big))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, "bomb", d.Rule)
	d = pu.Decide(ctx, in("u", []string{"s"}, "u", small))
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
}

func TestDecideCancelledContext(t *testing.T) {
	p := loadTestPolicy(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := p.Decide(ctx, in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/a"}))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, "cancelled")
}

func TestNilPolicyDenies(t *testing.T) {
	var p *scope.Policy
	d := p.Decide(context.Background(), in("u", []string{"fs.read"}, "read_text_file", map[string]any{"path": "/w/a"}))
	assert.Equal(t, scope.Deny, d.Effect)
	var zero scope.Decision
	assert.Equal(t, scope.Deny, zero.Effect, "the zero Decision denies")
}

func TestToolAndCallVariables(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: ["*"]
        when: tool.annotations.readOnlyHint == true && call.id != "" && call.time > timestamp("2020-01-01T00:00:00Z")
`)
	i := in("u", []string{"s"}, "anything", map[string]any{})
	i.Tool.Annotations = map[string]any{"readOnlyHint": true}
	assert.Equal(t, scope.Allow, p.Decide(context.Background(), i).Effect)
	i.Tool.Annotations = map[string]any{"readOnlyHint": false}
	assert.Equal(t, scope.Deny, p.Decide(context.Background(), i).Effect)
}

func TestNumbersFromJSON(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: args.n <= 10 && args.f < 2 && args.big > 1
`)
	ok := map[string]any{"n": json.Number("10"), "f": json.Number("1.5"), "big": json.Number("18446744073709551615")}
	assert.Equal(t, scope.Allow, p.Decide(context.Background(), in("u", []string{"s"}, "t", ok)).Effect)
	bad := map[string]any{"n": json.Number("11"), "f": json.Number("1.5"), "big": json.Number("2")}
	assert.Equal(t, scope.Deny, p.Decide(context.Background(), in("u", []string{"s"}, "t", bad)).Effect)
}

func TestHeldScopes(t *testing.T) {
	p := loadTestPolicy(t)
	assert.Equal(t, []string{"fs.read", "mail"}, p.HeldScopes(scope.Principal{ID: "support-bot", Scopes: []string{"mail", "nonexistent"}}))
}

func TestVisible(t *testing.T) {
	p := compile(t, `version: 1
scopes:
  read: {grants: [{tools: [read_file, "list_*"], when: 'args.path.startsWith("/w")'}]}
  admin: {grants: [{tools: [delete_file, read_file]}]}
rules:
  - {name: no-deletes, effect: deny, tools: [delete_file]}
  - {name: no-secrets, effect: deny, tools: ["*"], when: 'args.path.contains("secret")'}
`)
	reader := scope.Principal{ID: "r", Scopes: []string{"read"}}
	admin := scope.Principal{ID: "a", Scopes: []string{"admin"}}
	assert.True(t, p.Visible(reader, "read_file"), "conditions on arguments are not evaluated")
	assert.True(t, p.Visible(reader, "list_directory"))
	assert.False(t, p.Visible(reader, "delete_file"), "not granted")
	assert.False(t, p.Visible(admin, "delete_file"), "granted, but an unconditional deny removes it")
	assert.True(t, p.Visible(admin, "read_file"))
	assert.False(t, p.Visible(scope.Principal{Scopes: []string{"read"}}, "read_file"), "no principal, nothing visible")
}

// TestVariableAccess pins down every way a condition reads principal, tool,
// call and args — fields, presence tests, whole values, comprehensions, and
// each kind of JSON leaf — against both outcomes.
func TestVariableAccess(t *testing.T) {
	call := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := func() scope.Input {
		return scope.Input{
			Principal: scope.Principal{ID: "u", Scopes: []string{"s", "extra"}, Attrs: map[string]any{
				"ws": "/w", "n": 3, "f": 1.5, "ok": true, "list": []any{"a", "b"}, "nested": map[string]any{"k": "v"}, "none": nil,
			}},
			Tool: scope.Tool{Name: "t", Annotations: map[string]any{"readOnlyHint": true}},
			Call: scope.Call{ID: "c1", Time: call},
			Args: map[string]any{"s": "x", "b": false, "f": 2.5, "i": int64(7), "n": json.Number("9"), "z": nil, "l": []any{json.Number("1"), "two"}, "m": map[string]any{"k": "v"}},
		}
	}
	tests := []struct {
		when   string
		mutate func(*scope.Input) // makes the condition false, or nil when it must error
	}{
		{`principal.id == "u"`, func(i *scope.Input) { i.Principal.ID = "v" }},
		{`"extra" in principal.scopes && size(principal.scopes) == 2`, func(i *scope.Input) { i.Principal.Scopes = []string{"s"} }},
		{`principal.scopes.exists(s, s == "extra")`, func(i *scope.Input) { i.Principal.Scopes = []string{"s"} }},
		{`has(principal.attrs.ws) && principal.attrs.ws == "/w"`, func(i *scope.Input) { delete(i.Principal.Attrs, "ws") }},
		{`principal.attrs.n == 3 && principal.attrs.f > 1.0 && principal.attrs.ok`, func(i *scope.Input) { i.Principal.Attrs["ok"] = false }},
		{`principal.attrs.list.all(x, x in ["a", "b"]) && principal.attrs.nested.k == "v"`, func(i *scope.Input) { i.Principal.Attrs["list"] = []any{"c"} }},
		{`principal.attrs.none == null`, func(i *scope.Input) { i.Principal.Attrs["none"] = "set" }},
		{`has(principal.attrs)`, func(i *scope.Input) { i.Principal.Attrs = nil }},
		{`principal == principal && string(principal.id) == "u"`, func(i *scope.Input) { i.Principal.ID = "v" }},
		{`[principal][0].id == "u"`, func(i *scope.Input) { i.Principal.ID = "v" }},
		{`tool.name == "t" && tool.annotations.readOnlyHint`, func(i *scope.Input) { i.Tool.Annotations["readOnlyHint"] = false }},
		{`has(tool.annotations.readOnlyHint)`, func(i *scope.Input) { i.Tool.Annotations = nil }},
		{`call.id == "c1" && call.time == timestamp("2026-03-01T12:00:00Z") && call.time.getHours() == 12`, func(i *scope.Input) { i.Call.Time = call.Add(time.Hour) }},
		{`args.s == "x" && !args.b && args.f == 2.5 && args.i == 7 && args.n == 9 && args.z == null`, func(i *scope.Input) { i.Args["b"] = true }},
		{`args.l[0] == 1 && args.l[1] == "two" && args.l.exists(v, v == "two") && args.m.k == "v"`, func(i *scope.Input) { i.Args["l"] = []any{json.Number("2"), "two"} }},
		{`has(args.m.k) && !has(args.nope)`, func(i *scope.Input) { delete(i.Args["m"].(map[string]any), "k") }},
		{`size(args) == 8 && "s" in args && args.all(k, k != "nope") && args["s"] == "x"`, func(i *scope.Input) { i.Args["nope"] = 1 }},
		{`args.s == "x" && args.s.startsWith("x") && args.s.size() == 1`, func(i *scope.Input) { i.Args["s"] = "y" }},
		{`args.n > 8 && args.n < 10 && args.n == 9.0`, func(i *scope.Input) { i.Args["n"] = json.Number("10") }},
		{`args.nope == 1`, nil},
		{`args.s.nope == 1`, nil},
		{`principal.attrs.nope == 1`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p := compile(t, "version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: '"+strings.ReplaceAll(tt.when, "'", "''")+"'\n")
			i := base()
			d := p.Decide(context.Background(), i)
			if tt.mutate == nil {
				assert.Equal(t, scope.Deny, d.Effect)
				assert.NotEmpty(t, d.Errors, "an expression that cannot be evaluated is an error, never an allow")
				return
			}
			require.Equal(t, scope.Allow, d.Effect, "%s: %v", d.Reason, d.Errors)
			tt.mutate(&i)
			d = p.Decide(context.Background(), i)
			assert.Equal(t, scope.Deny, d.Effect, d.Reason)
		})
	}
}

// TestNoGrantReasonSaysWhyAConditionFailed: when the only grant's
// condition cannot be evaluated, the denial says why, so a model can fix
// its call.
func TestNoGrantReasonSaysWhyAConditionFailed(t *testing.T) {
	p := compile(t, "version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: args.path.isUnder(\"/w\")\n")
	d := p.Decide(context.Background(), in("u", []string{"s"}, "t", map[string]any{"path": "/w/a\x00b"}))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, `scope "s" allows it only when args.path.isUnder("/w")`)
	assert.Contains(t, d.Reason, "evaluating it failed: isUnder: path")
	assert.Contains(t, d.Reason, "NUL byte")
	d = p.Decide(context.Background(), in("u", []string{"s"}, "t", map[string]any{}))
	assert.Contains(t, d.Reason, "evaluating it failed: no such key: path")
}
