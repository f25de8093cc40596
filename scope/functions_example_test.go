package scope_test

import (
	"context"
	"fmt"
	"time"

	"github.com/agentguard/agentguard/scope"
)

// Application data in rules: the account balance lives in the bank's
// systems, not in the policy file.
func ExampleWithFunction() {
	balances := map[string]float64{"alice": 120}
	balance := scope.Function{
		Name:    "balance",
		Params:  []scope.Type{scope.StringType},
		Result:  scope.DoubleType,
		Cost:    1000,
		Timeout: 50 * time.Millisecond,
		Impl: func(ctx context.Context, args ...any) (any, error) {
			b, ok := balances[args[0].(string)]
			if !ok {
				return nil, fmt.Errorf("no account")
			}
			return b, nil
		},
	}
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  payments:
    grants:
      - tools: [send_money]
        when: double(args.amount) <= balance(principal.id)
`), scope.WithFunction(balance))
	if err != nil {
		panic(err)
	}
	for _, c := range []struct {
		who    string
		amount int64
	}{{"alice", 100}, {"alice", 500}, {"mallory", 1}} {
		d := p.Decide(context.Background(), scope.Input{
			Principal: scope.Principal{ID: c.who, Scopes: []string{"payments"}},
			Tool:      scope.Tool{Name: "send_money"},
			Args:      map[string]any{"amount": c.amount},
		})
		fmt.Println(c.who, c.amount, d.Effect)
	}
	// Output:
	// alice 100 allow
	// alice 500 deny
	// mallory 1 deny
}
