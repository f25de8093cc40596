package scope_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/scope/scopetest"
)

// bank is application data a policy file cannot hold.
type bank struct {
	balances map[string]float64
	contacts map[string][]string
	files    map[string]string // file id → owner
	calls    atomic.Int64
}

func newBank() *bank {
	return &bank{
		balances: map[string]float64{"alice": 120.5, "bob": 3},
		contacts: map[string][]string{"alice": {"bob@example.com", "carol@example.com"}},
		files:    map[string]string{"f1": "alice", "f2": "bob"},
	}
}

func (b *bank) functions() []scope.Option {
	return []scope.Option{
		scope.WithFunction(scope.Function{Name: "balance", Params: []scope.Type{scope.StringType}, Result: scope.DoubleType,
			Impl: func(_ context.Context, args ...any) (any, error) {
				b.calls.Add(1)
				bal, ok := b.balances[args[0].(string)]
				if !ok {
					return nil, errors.New("no account for " + args[0].(string))
				}
				return bal, nil
			}}),
		scope.WithFunction(scope.Function{Name: "contacts", Params: []scope.Type{scope.StringType}, Result: scope.ListOf(scope.StringType),
			Impl: func(_ context.Context, args ...any) (any, error) {
				b.calls.Add(1)
				return b.contacts[args[0].(string)], nil
			}}),
		scope.WithFunction(scope.Function{Name: "files.owns", Params: []scope.Type{scope.StringType, scope.StringType}, Result: scope.BoolType,
			Impl: func(_ context.Context, args ...any) (any, error) {
				b.calls.Add(1)
				return b.files[args[1].(string)] == args[0].(string), nil
			}}),
	}
}

const bankPolicy = `
version: 1
scopes:
  bank:
    grants:
      - tools: [send_money]
        when: balance(principal.id) >= double(args.amount)
      - tools: [send_email]
        when: args.to in contacts(principal.id)
      - tools: [read_file]
        when: files.owns(principal.id, args.id)
rules:
  - name: big-transfers
    effect: ask
    tools: [send_money]
    when: double(args.amount) > balance(principal.id) / 2.0
`

func bankIn(who, tool string, args map[string]any) scope.Input {
	return scope.Input{Principal: scope.Principal{ID: who, Scopes: []string{"bank"}}, Tool: scope.Tool{Name: tool}, Args: args}
}

func TestFunctionsDecide(t *testing.T) {
	b := newBank()
	p, err := scope.Parse([]byte(bankPolicy), b.functions()...)
	require.NoError(t, err)
	ctx := context.Background()
	tests := []struct {
		name   string
		in     scope.Input
		effect scope.Effect
		reason string
	}{
		{"balance covers", bankIn("alice", "send_money", map[string]any{"amount": json.Number("20")}), scope.Allow, ""},
		{"balance covers, over half asks", bankIn("alice", "send_money", map[string]any{"amount": json.Number("100")}), scope.Ask, "big-transfers"},
		{"balance short", bankIn("bob", "send_money", map[string]any{"amount": json.Number("20")}), scope.Deny, "no scope"},
		{"unknown account fails closed", bankIn("mallory", "send_money", map[string]any{"amount": json.Number("1")}), scope.Deny, "function balance failed"},
		{"contact", bankIn("alice", "send_email", map[string]any{"to": "bob@example.com"}), scope.Allow, ""},
		{"not a contact", bankIn("alice", "send_email", map[string]any{"to": "mallory@evil.example"}), scope.Deny, ""},
		{"no contacts at all (nil list)", bankIn("bob", "send_email", map[string]any{"to": "alice@example.com"}), scope.Deny, ""},
		{"owns file", bankIn("alice", "read_file", map[string]any{"id": "f1"}), scope.Allow, ""},
		{"other's file", bankIn("alice", "read_file", map[string]any{"id": "f2"}), scope.Deny, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(ctx, tt.in)
			assert.Equal(t, tt.effect, d.Effect, d.Reason)
			assert.Contains(t, d.Reason+" "+d.Rule, tt.reason)
		})
	}
	assert.Positive(t, b.calls.Load())
}

func TestFunctionsFailClosed(t *testing.T) {
	impls := map[string]struct {
		result scope.Type
		impl   func(ctx context.Context, args ...any) (any, error)
		what   string
	}{
		"error": {scope.BoolType, func(context.Context, ...any) (any, error) {
			return nil, errors.New("db password=hunter2 unreachable")
		}, "function check failed"},
		"timeout": {scope.BoolType, func(ctx context.Context, _ ...any) (any, error) {
			<-ctx.Done()
			time.Sleep(5 * time.Millisecond) // answers late, after its deadline
			return true, nil
		}, "did not answer within 20ms"},
		"timeout ignoring ctx": {scope.BoolType, func(context.Context, ...any) (any, error) {
			time.Sleep(300 * time.Millisecond)
			return true, nil
		}, "did not answer within 20ms"},
		"panic": {scope.BoolType, func(context.Context, ...any) (any, error) {
			panic("boom")
		}, "function check panicked"},
		"panic with error": {scope.BoolType, func(context.Context, ...any) (any, error) {
			panic(errors.New("boom"))
		}, "function check panicked"},
		"wrong type": {scope.BoolType, func(context.Context, ...any) (any, error) {
			return "true", nil
		}, "returned a wrong value: string, not the declared bool"},
		"int for double": {scope.DoubleType, func(context.Context, ...any) (any, error) {
			return 5, nil
		}, "int, not the declared double"},
		"nil for bool": {scope.BoolType, func(context.Context, ...any) (any, error) {
			return nil, nil
		}, "nil, not the declared bool"},
		"wrong list item": {scope.ListOf(scope.StringType), func(context.Context, ...any) (any, error) {
			return []any{"a", 5}, nil
		}, "item 1"},
		"struct for dyn": {scope.DynType, func(context.Context, ...any) (any, error) {
			return struct{ A int }{1}, nil
		}, "not a JSON-like value"},
		"uint overflows int": {scope.IntType, func(context.Context, ...any) (any, error) {
			return uint64(1 << 63), nil
		}, "uint64, not the declared int"},
	}
	for name, tc := range impls {
		t.Run(name, func(t *testing.T) {
			cond := "check(args.x)"
			switch tc.result {
			case scope.DoubleType:
				cond = "check(args.x) > 1.0"
			case scope.IntType:
				cond = "check(args.x) > 1"
			case scope.BoolType:
			default:
				cond = "size(check(args.x)) > 0"
			}
			if tc.result.String() == "dyn" {
				cond = "check(args.x) != null"
			}
			for _, where := range []string{"grant", "deny rule", "deny rule in a loop"} {
				src := "version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: " + cond + "\n"
				if where != "grant" {
					c := cond
					if where == "deny rule in a loop" {
						c = "[1].exists(i, " + cond + ")"
					}
					src = "version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\nrules:\n  - name: r\n    effect: deny\n    tools: [t]\n    when: '!(" + c + ")'\n"
				}
				p, err := scope.Parse([]byte(src), scope.WithFunction(scope.Function{
					Name: "check", Params: []scope.Type{scope.StringType}, Result: tc.result, Timeout: 20 * time.Millisecond, Impl: tc.impl}))
				require.NoError(t, err, where)
				start := time.Now()
				d := p.Decide(context.Background(), scope.Input{Principal: scope.Principal{ID: "u", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}, Args: map[string]any{"x": "v"}})
				assert.Less(t, time.Since(start), 200*time.Millisecond, where)
				require.Equal(t, scope.Deny, d.Effect, where)
				assert.Contains(t, d.Reason, tc.what, where)
				assert.NotContains(t, d.Reason, "hunter2", "the function's own error text stays out of the reason")
				require.NotEmpty(t, d.Errors, where)
				var fe *scope.FunctionError
				require.True(t, errors.As(d.Errors[0], &fe), where)
				assert.Equal(t, "check", fe.Name)
			}
		})
	}
}

func TestFunctionsCancelledDecision(t *testing.T) {
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: slow()\n"),
		scope.WithFunction(scope.Function{Name: "slow", Result: scope.BoolType, Timeout: time.Hour,
			Impl: func(ctx context.Context, _ ...any) (any, error) { <-ctx.Done(); return true, nil }}))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	d := p.Decide(ctx, scope.Input{Principal: scope.Principal{ID: "u", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}})
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, "function slow")
}

func TestFunctionsLoadErrors(t *testing.T) {
	ok := func(context.Context, ...any) (any, error) { return true, nil }
	policy := func(cond string) []byte {
		return []byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: " + cond + "\n")
	}
	tests := []struct {
		name string
		src  []byte
		fns  []scope.Function
		want string
	}{
		{"undeclared function", policy("owns(args.id)"), nil, "undeclared reference to 'owns'"},
		{"wrong argument type", policy("owns(1)"), []scope.Function{{Name: "owns", Params: []scope.Type{scope.StringType}, Result: scope.BoolType, Impl: ok}}, "found no matching overload"},
		{"wrong result use", policy("owns('a') + 1 > 0"), []scope.Function{{Name: "owns", Params: []scope.Type{scope.StringType}, Result: scope.BoolType, Impl: ok}}, "found no matching overload"},
		{"nil impl", policy("true"), []scope.Function{{Name: "owns", Result: scope.BoolType}}, "Impl is nil"},
		{"no result type", policy("true"), []scope.Function{{Name: "owns", Impl: ok}}, "result type"},
		{"bad param type", policy("true"), []scope.Function{{Name: "owns", Params: []scope.Type{{}}, Result: scope.BoolType, Impl: ok}}, "parameter 0"},
		{"bad name", policy("true"), []scope.Function{{Name: "1x", Result: scope.BoolType, Impl: ok}}, "identifier"},
		{"reserved name", policy("true"), []scope.Function{{Name: "args", Result: scope.BoolType, Impl: ok}}, "reserved"},
		{"builtin name", policy("true"), []scope.Function{{Name: "isUnder", Result: scope.BoolType, Impl: ok}}, "already has"},
		{"builtin size", policy("true"), []scope.Function{{Name: "size", Result: scope.BoolType, Impl: ok}}, "already has"},
		{"duplicate", policy("true"), []scope.Function{{Name: "f", Result: scope.BoolType, Impl: ok}, {Name: "f", Result: scope.BoolType, Impl: ok}}, "another function"},
		{"cost over limit", policy("f() && f()"), []scope.Function{{Name: "f", Result: scope.BoolType, Impl: ok, Cost: 60_000}}, "over the limit"},
		{"cost beside a loop over limit", policy("f() && args.xs.all(x, true)"), []scope.Function{{Name: "f", Result: scope.BoolType, Impl: ok, Cost: 200_000}}, "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []scope.Option
			for _, f := range tt.fns {
				opts = append(opts, scope.WithFunction(f))
			}
			_, err := scope.Parse(tt.src, opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestFunctionsCostAtRunTime: inside a comprehension each call counts
// against the cost limit, so a loop over a long list cannot call a
// function without bound.
func TestFunctionsCostAtRunTime(t *testing.T) {
	var calls atomic.Int64
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: args.xs.all(x, f(x))\n"),
		scope.WithFunction(scope.Function{Name: "f", Params: []scope.Type{scope.DynType}, Result: scope.BoolType, Cost: 1000,
			Impl: func(context.Context, ...any) (any, error) { calls.Add(1); return true, nil }}))
	require.NoError(t, err)
	xs := make([]any, 500)
	for i := range xs {
		xs[i] = json.Number("1")
	}
	in := scope.Input{Principal: scope.Principal{ID: "u", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}, Args: map[string]any{"xs": xs}}
	d := p.Decide(context.Background(), in)
	assert.Equal(t, scope.Deny, d.Effect)
	require.NotEmpty(t, d.Errors)
	assert.Contains(t, d.Errors[0].Error(), "cost limit")
	assert.LessOrEqual(t, calls.Load(), int64(scope.DefaultCostLimit/1000)+1)

	in.Args = map[string]any{"xs": xs[:10]}
	assert.Equal(t, scope.Allow, p.Decide(context.Background(), in).Effect)
}

func TestFunctionsTrace(t *testing.T) {
	b := newBank()
	p, err := scope.Parse([]byte(bankPolicy), b.functions()...)
	require.NoError(t, err)
	res, err := scopetest.Decide(context.Background(), p, scopetest.Call{
		Principal: scope.Principal{ID: "alice", Scopes: []string{"bank"}}, Tool: "send_money", Args: map[string]any{"amount": 20}})
	require.NoError(t, err)
	var fn []scopetest.Evaluated
	for _, e := range res.Evaluated {
		if e.Kind == "function" {
			fn = append(fn, e)
		}
	}
	require.Len(t, fn, 2, "the grant and the ask rule each call balance once: %+v", res.Evaluated)
	assert.Equal(t, "balance", fn[0].ID)
	assert.Equal(t, "balance(string[5])", fn[0].Expr, "the shape of the argument, not its value")
	assert.Equal(t, "120.5", fn[0].Result)
	assert.Positive(t, fn[0].Duration)

	res, err = scopetest.Decide(context.Background(), p, scopetest.Call{
		Principal: scope.Principal{ID: "mallory", Scopes: []string{"bank"}}, Tool: "send_money", Args: map[string]any{"amount": 1}})
	require.NoError(t, err)
	var failed *scopetest.Evaluated
	for i, e := range res.Evaluated {
		if e.Kind == "function" {
			failed = &res.Evaluated[i]
		}
	}
	require.NotNil(t, failed)
	assert.Equal(t, "error", failed.Result)
	assert.ErrorContains(t, errors.Unwrap(failed.Err), "no account for mallory", "the trace keeps the function's own error")
}

func TestFunctionsWithToolSchemas(t *testing.T) {
	b := newBank()
	schemas := map[string]json.RawMessage{"send_money": json.RawMessage(`{"type":"object","properties":{"amount":{"type":"integer"}}}`)}
	_, err := scope.Parse([]byte(bankPolicy), append(b.functions(), scope.WithToolSchemas(schemas))...)
	require.NoError(t, err)
	bad := strings.Replace(bankPolicy, "balance(principal.id) >= double(args.amount)", "balance(args.amount) >= 1.0", 1)
	_, err = scope.Parse([]byte(bad), append(b.functions(), scope.WithToolSchemas(schemas))...)
	require.Error(t, err, "a number passed where the function takes a string")
}

func TestFunctionsArgumentsAreCopies(t *testing.T) {
	var got any
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [t]\n        when: keep(args.m)\n"),
		scope.WithFunction(scope.Function{Name: "keep", Params: []scope.Type{scope.DynType}, Result: scope.BoolType,
			Impl: func(_ context.Context, args ...any) (any, error) {
				got = args[0]
				args[0].(map[string]any)["list"].([]any)[0] = "changed"
				return true, nil
			}}))
	require.NoError(t, err)
	m := map[string]any{"list": []any{"a", json.Number("2")}, "n": json.Number("1.5")}
	d := p.Decide(context.Background(), scope.Input{Principal: scope.Principal{ID: "u", Scopes: []string{"s"}}, Tool: scope.Tool{Name: "t"}, Args: map[string]any{"m": m}})
	require.Equal(t, scope.Allow, d.Effect, d.Reason)
	assert.Equal(t, "a", m["list"].([]any)[0], "the caller's arguments are not modified")
	assert.Equal(t, map[string]any{"list": []any{"changed", int64(2)}, "n": 1.5}, got)
}
