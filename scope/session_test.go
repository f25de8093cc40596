package scope_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// view is a fixed session for decisions.
type view struct {
	labels []scope.LabelOrigin
	values map[string]scope.Origin // label \x00 value
	memo   map[string]scope.Origin
	err    error
}

func (v *view) ID() string                  { return "s" }
func (v *view) Labels() []scope.LabelOrigin { return v.labels }
func (v *view) ToolCount(string) int        { return 0 }
func (v *view) Calls() int                  { return len(v.labels) }
func (v *view) From(value, label string) (scope.Origin, bool, error) {
	o, ok := v.values[label+"\x00"+value]
	return o, ok, v.err
}
func (v *view) Remembered(rule, key string) (scope.Origin, bool, error) {
	o, ok := v.memo[key]
	return o, ok, v.err
}

const sessPolicy = `version: 1
scopes:
  a: {grants: [{tools: [send, read, pay]}]}
  b: {grants: [{tools: [read]}]}
rules:
  - name: flow
    effect: deny
    tools: [send]
    when: '"untrusted" in session.labels'
  - name: prov
    effect: deny
    tools: [pay]
    when: args.to.from("untrusted")
  - name: watch
    effect: deny
    mode: shadow
    tools: [read]
    when: session.calls > 1000
`

func TestDecideSession(t *testing.T) {
	p, err := scope.Parse([]byte(sessPolicy))
	require.NoError(t, err)
	ctx := context.Background()
	pr := scope.Principal{ID: "x", Scopes: []string{"a"}}
	in := func(tool string, s scope.Session, args map[string]any) scope.Input {
		return scope.Input{Principal: pr, Tool: scope.Tool{Name: tool}, Args: args, Session: s}
	}
	read := scope.Origin{Tool: "read", CallID: "r1", Seq: 1}
	mail := scope.Origin{Tool: "mail", CallID: "m2", Seq: 2}
	v := &view{
		labels: []scope.LabelOrigin{{Label: "private", Origin: read}, {Label: "untrusted", Origin: mail}},
		values: map[string]scope.Origin{"untrusted\x00evil": mail},
	}

	d := p.Decide(ctx, in("send", nil, nil))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, "belongs to no session")
	d = p.Decide(ctx, in("read", nil, nil))
	assert.Equal(t, scope.Allow, d.Effect, "a shadow rule reading the session needs none")

	d = p.Decide(ctx, in("send", v, nil))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, []scope.Origin{mail}, d.Flow, "only the call that brought the label the rule names")
	assert.Contains(t, d.Reason, `call "m2" to "mail"`)

	d = p.Decide(ctx, in("pay", v, map[string]any{"to": "evil"}))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Equal(t, []scope.Origin{mail}, d.Flow)
	d = p.Decide(ctx, in("pay", v, map[string]any{"to": "good"}))
	assert.Equal(t, scope.Allow, d.Effect)
	assert.Empty(t, d.Flow)

	broken := &view{err: errors.New("store down")}
	d = p.Decide(ctx, in("pay", broken, map[string]any{"to": "good"}))
	assert.Equal(t, scope.Deny, d.Effect, "a lookup error never allows")
	assert.Contains(t, d.Reason, "store down")
}

func TestDecideTaskOnlyNarrows(t *testing.T) {
	p, err := scope.Parse([]byte(sessPolicy))
	require.NoError(t, err)
	ctx := context.Background()
	s := &view{}
	pr := scope.Principal{ID: "x", Scopes: []string{"b"}}
	d := p.Decide(ctx, scope.Input{Principal: pr, Tool: scope.Tool{Name: "send"}, Session: s, Task: &scope.Task{Scopes: []string{"a", "b"}}})
	assert.Equal(t, scope.Deny, d.Effect, "a task naming a scope the principal lacks does not grant it")
	d = p.Decide(ctx, scope.Input{Principal: pr, Tool: scope.Tool{Name: "read"}, Task: &scope.Task{Scopes: []string{}}})
	assert.Equal(t, scope.Deny, d.Effect, "an empty scope list keeps none")
	d = p.Decide(ctx, scope.Input{Principal: pr, Tool: scope.Tool{Name: "read"}, Task: &scope.Task{ID: "t", Tools: []string{"write"}}})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, `task "t" does not include tool "read"`)
	d = p.Decide(ctx, scope.Input{Principal: pr, Tool: scope.Tool{Name: "read"}, Task: &scope.Task{Tools: []string{"re*"}}})
	assert.Equal(t, scope.Allow, d.Effect)
}

func TestDecideRememberedApproval(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  a: {grants: [{tools: [invite]}]}
rules:
  - name: confirm
    effect: ask
    tools: [invite]
    remember: args.email
`))
	require.NoError(t, err)
	ctx := context.Background()
	first := scope.Origin{Tool: "invite", CallID: "c1", Seq: 1}
	v := &view{memo: map[string]scope.Origin{"dora@example.com": first}}
	in := func(email string, s scope.Session) scope.Input {
		return scope.Input{Principal: scope.Principal{ID: "x", Scopes: []string{"a"}}, Tool: scope.Tool{Name: "invite"}, Args: map[string]any{"email": email}, Session: s}
	}
	d := p.Decide(ctx, in("dora@example.com", v))
	assert.Equal(t, scope.Allow, d.Effect)
	require.NotNil(t, d.Remembered)
	assert.Equal(t, first, *d.Remembered)
	assert.Equal(t, "dora@example.com", d.RememberKey)
	d = p.Decide(ctx, in("eve@example.com", v))
	assert.Equal(t, scope.Ask, d.Effect)
	assert.Equal(t, "eve@example.com", d.RememberKey)
	d = p.Decide(ctx, in("dora@example.com", nil))
	assert.Equal(t, scope.Ask, d.Effect, "without a session nothing is remembered")
	d = p.Decide(ctx, in("dora@example.com", &view{err: errors.New("down")}))
	assert.Equal(t, scope.Deny, d.Effect)
	assert.NotEmpty(t, p.RememberID("confirm"))
	assert.Empty(t, p.RememberID("nope"))
}
