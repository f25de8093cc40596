package toolguard_test

import (
	"context"
	"encoding/json"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// BenchmarkResultGuard measures Guard.Call of a tool returning a small
// result (a struct of five fields, about 150 bytes of JSON), without a
// results section (the guard does not look at results) and with one
// (secret detectors, a pattern, a result rule): the difference is the
// result guard's overhead on a clean result.
func BenchmarkResultGuard(b *testing.B) {
	type message struct {
		From    string   `json:"from"`
		To      []string `json:"to"`
		Subject string   `json:"subject"`
		Body    string   `json:"body"`
		Unread  bool     `json:"unread"`
	}
	small := &message{From: "alice@example.com", To: []string{"bob@example.com"}, Subject: "lunch",
		Body: "Shall we meet at noon at the usual place? Bring the report.", Unread: true}
	const grants = "version: 1\nscopes:\n  s:\n    grants:\n      - tools: [read_mail]\n"
	const results = `results:
  patterns:
    - name: iban
      regex: 'DE[0-9]{20}'
  rules:
    - name: no-private-keys
      effect: withhold
      tools: ["*"]
      when: '"private_key" in findings'
`
	for _, bc := range []struct{ name, policy string }{{"none", grants}, {"guarded", grants + results}} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := scope.Parse([]byte(bc.policy))
			require.NoError(b, err)
			g, err := toolguard.New(p, toolguard.WithSink(audit.NewLog(io.Discard)))
			require.NoError(b, err)
			require.NoError(b, g.Register(toolguard.Tool{Name: "read_mail",
				Handler: func(context.Context, json.RawMessage) (any, error) { return small, nil }}))
			ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "u", Scopes: []string{"s"}})
			args := json.RawMessage(`{}`)
			b.ReportAllocs()
			for b.Loop() {
				out, err := g.Call(ctx, "read_mail", args)
				if err != nil || out != small {
					b.Fatal(out, err)
				}
			}
		})
	}
}
