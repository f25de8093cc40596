package toolguard_test

import (
	"context"
	"encoding/json"
	"math/big"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestNumberAsStringField: a handler field tagged `json:"amount,string"`
// reads a number from inside a JSON string, as the exact decimal. The
// policy sees a string (args.amount <= 100 does not even load); one that
// converts it with double() must not compare a rounded value: double() of
// a string the double does not hold exactly is an error, which never
// allows.
func TestNumberAsStringField(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  pay:
    grants:
      - tools: [pay]
        when: double(args.amount) <= 100.0
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var mu sync.Mutex
	var paid []string
	type in struct {
		Amount json.Number `json:"amount,string"`
	}
	require.NoError(t, toolguard.Register(g, "pay", "Pay.", func(_ context.Context, a in) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		paid = append(paid, a.Amount.String())
		return "ok", nil
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"pay"}})
	for _, args := range []string{`{"amount":"100"}`, `{"amount":"99.5"}`, `{"amount":"1e2"}`} {
		_, err := g.Call(ctx, "pay", json.RawMessage(args))
		require.NoError(t, err, args)
	}
	for _, args := range []string{
		`{"amount":"100.0000000000000001"}`,
		`{"amount":"100.00000000000000000001"}`,
		`{"amount":" 100"}`,
		`{"amount":"0x64"}`,
		`{"amount":"1e999"}`,
		`{"amount":"101"}`,
		`{"amount":100.0000000000000001}`,
	} {
		_, err := g.Call(ctx, "pay", json.RawMessage(args))
		require.ErrorIs(t, err, toolguard.ErrDenied, args)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range paid {
		r, ok := new(big.Rat).SetString(a)
		require.True(t, ok, a)
		require.LessOrEqual(t, r.Cmp(big.NewRat(100, 1)), 0, "paid %s, over the policy's 100", a)
	}
}

// TestNumberIntDoubleEquality: CEL compares 1 and 1.0 equal, and so does a
// handler reading a float64; a handler reading an int fails on 1.0. No
// spelling of a number other than the one judged reaches the handler.
func TestNumberIntDoubleEquality(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [n]
        when: args.n == 1
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var got []int64
	type in struct {
		N int64 `json:"n"`
	}
	require.NoError(t, toolguard.Register(g, "n", "N.", func(_ context.Context, a in) (string, error) {
		got = append(got, a.N)
		return "ok", nil
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})
	for _, args := range []string{`{"n":1}`, `{"n":1.0}`, `{"n":1e0}`, `{"n":10e-1}`, `{"n":1.0000000000000001}`, `{"n":18446744073709551617}`, `{"n":-18446744073709551615}`} {
		_, _ = g.Call(ctx, "n", json.RawMessage(args))
	}
	for _, n := range got {
		require.Equal(t, int64(1), n)
	}
	require.NotEmpty(t, got)
}
