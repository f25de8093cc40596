package scope_test

import (
	"context"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// BenchmarkDecideResource decides a resource read (URI canonicalisation,
// deny rules, a grant with a condition) beside a tool call of the same
// policy shape, for a side-by-side ratio.
func BenchmarkDecideResource(b *testing.B) {
	p, err := scope.Parse([]byte(dataPolicy))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("resource", func(b *testing.B) {
		in := scope.ResourceInput{Principal: alice, URI: "FILE://localhost/w/sub/../notes/a.txt"}
		b.ReportAllocs()
		for b.Loop() {
			if p.DecideResource(ctx, in).Effect != scope.Allow {
				b.Fatal("denied")
			}
		}
	})
	b.Run("prompt", func(b *testing.B) {
		in := scope.PromptInput{Principal: alice, Name: "args-prompt", Args: map[string]string{"city": "Paris"}}
		b.ReportAllocs()
		for b.Loop() {
			if p.DecidePrompt(ctx, in).Effect != scope.Allow {
				b.Fatal("denied")
			}
		}
	})
	tp, err := scope.Parse([]byte(`
version: 1
scopes:
  docs:
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: no-secrets
    effect: deny
    tools: ["*"]
    when: args.path.glob("/w/secret/**")
`))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tool", func(b *testing.B) {
		in := scope.Input{Principal: alice, Tool: scope.Tool{Name: "read_file"}, Args: map[string]any{"path": "/w/sub/../notes/a.txt"}}
		b.ReportAllocs()
		for b.Loop() {
			if tp.Decide(ctx, in).Effect != scope.Allow {
				b.Fatal("denied")
			}
		}
	})
}
