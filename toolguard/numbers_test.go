package toolguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestNumbersTheToolReadsDifferently: the policy compares numbers as CEL
// values (float64 unless a small integer), while a tool may read the exact
// decimal (math/big, json.Number) or a float64 (most JSON parsers,
// JavaScript). A number the two readings disagree on is denied before the
// policy, so no decision rests on a value the tool does not see.
func TestNumbersTheToolReadsDifferently(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  pay:
    grants:
      - tools: [pay]
        when: args.amount <= 100
rules:
  - name: blocked-account
    effect: deny
    tools: [pay]
    when: args.account == 9007199254740992
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	type paid struct {
		amount  *big.Rat // exact, as a payment service reads it
		account float64  // as a JavaScript or float64 reader reads it
	}
	var payments []paid
	require.NoError(t, g.Register(toolguard.Tool{
		Name:        "pay",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"amount":{"type":"number"},"account":{"type":"integer"}},"required":["amount","account"]}`),
		Handler: func(_ context.Context, raw json.RawMessage) (any, error) {
			var exact struct{ Amount json.Number }
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if err := dec.Decode(&exact); err != nil {
				return nil, err
			}
			amount, ok := new(big.Rat).SetString(exact.Amount.String())
			require.True(t, ok)
			var float struct{ Account float64 }
			if err := json.Unmarshal(raw, &float); err != nil {
				return nil, err
			}
			payments = append(payments, paid{amount, float.Account})
			return "paid", nil
		},
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"pay"}})

	allowed := []string{
		`{"amount":100,"account":1}`, `{"amount":100.0,"account":1}`, `{"amount":1e2,"account":1}`,
		`{"amount":0.1,"account":1}`, `{"amount":99.99999999999999,"account":9007199254740991}`,
		`{"amount":5,"account":9007199254740994}`,
	}
	for _, args := range allowed {
		_, err := g.Call(ctx, "pay", json.RawMessage(args))
		require.NoError(t, err, args)
	}
	tests := []struct{ args, pointer, float string }{
		{`{"amount":100.0000000000000001,"account":1}`, "/amount", "would see 100,"},
		{`{"amount":100.00000000000000000000001,"account":1}`, "/amount", "would see 100,"},
		{`{"amount":1.000000000000000001e2,"account":1}`, "/amount", "would see 100,"},
		{`{"amount":1,"account":9007199254740993}`, "/account", "would see 9.007199254740992e+15"},
		{`{"amount":1e-400,"account":1}`, "/amount", "would see 0,"},
	}
	for _, tc := range tests {
		_, err := g.Call(ctx, "pay", json.RawMessage(tc.args))
		require.ErrorIs(t, err, toolguard.ErrInvalidArguments, tc.args)
		var de *toolguard.DeniedError
		require.ErrorAs(t, err, &de)
		require.Equal(t, toolguard.StageArguments, de.Decision.Stage)
		require.Equal(t, tc.pointer, de.Decision.Violations[0].Pointer)
		require.Contains(t, de.Decision.Reason, tc.float)
		require.Contains(t, de.Decision.Reason, "send it as a string")
		require.NotContains(t, de.Decision.Reason, "safejson")
	}
	require.Len(t, payments, len(allowed))
	limit := big.NewRat(100, 1)
	for _, p := range payments {
		require.LessOrEqual(t, p.amount.Cmp(limit), 0, "paid %s, more than the policy allows", p.amount.FloatString(30))
		require.NotEqual(t, float64(9007199254740992), p.account, "paid the blocked account")
	}
}
