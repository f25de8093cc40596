package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// Result guards: secrets in a tool's result are redacted before the result
// goes back to the model, and a result a rule forbids is withheld.
func ExampleWithMaxResultBytes() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  files:
    grants:
      - tools: [read_file]
results:
  secrets: redact
  rules:
    - name: no-private-keys
      effect: withhold
      tools: ["*"]
      when: '"private_key" in findings'
      message: '"it holds a private key"'
`))
	if err != nil {
		panic(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard), toolguard.WithMaxResultBytes(1<<20))
	if err != nil {
		panic(err)
	}
	files := map[string]string{
		"notes.txt": "deploy with AKIAIOSFODNN7EXAMPLE",
		"id_rsa":    "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",
	}
	_ = g.Register(toolguard.Tool{Name: "read_file", Handler: func(_ context.Context, args json.RawMessage) (any, error) {
		var in struct{ Path string }
		_ = json.Unmarshal(args, &in)
		return files[in.Path], nil
	}})
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bot", Scopes: []string{"files"}})

	out, _ := g.Call(ctx, "read_file", json.RawMessage(`{"path":"notes.txt"}`))
	fmt.Println(out.(string)[:len("deploy with redacted:hmac-sha256:")])

	_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"id_rsa"}`))
	var we *toolguard.WithheldError
	fmt.Println(errors.Is(err, toolguard.ErrResultWithheld), errors.As(err, &we) && we.Rules[0] == "no-private-keys")
	fmt.Println(we.ModelText())
	// Output:
	// deploy with redacted:hmac-sha256:
	// true true
	// the tool "read_file" ran, but its result was withheld: withheld by result rule "no-private-keys": it holds a private key
}
