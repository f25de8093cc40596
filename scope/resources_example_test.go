package scope_test

import (
	"context"
	"fmt"

	"github.com/agentguard/agentguard/scope"
)

func ExamplePolicy_DecideResource() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  docs:
    grants:
      - resources: ["file:///srv/docs/**"]
        when: uri.path.isUnder("/srv/docs/" + principal.attrs.team)
      - prompts: [summarize, "review-*"]
        when: '!has(args.style) || args.style in ["short", "long"]'
rules:
  - name: no-keys
    effect: deny
    resources: ["**"]
    when: uri.path.glob("**/*.pem")
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	pr := scope.Principal{ID: "ana", Scopes: []string{"docs"}, Attrs: map[string]any{"team": "web"}}
	for _, uri := range []string{
		"file:///srv/docs/web/guide.md",
		"FILE://localhost/srv/docs/web/../web/guide.md",
		"file:///srv/docs/web/tls/server.pem",
		"file:///srv/docs/ops/runbook.md",
		"file:///srv/docs/web/%2e%2e/ops/runbook.md",
	} {
		d := p.DecideResource(context.Background(), scope.ResourceInput{Principal: pr, URI: uri})
		fmt.Println(d.Effect, uri)
	}
	d := p.DecidePrompt(context.Background(), scope.PromptInput{Principal: pr, Name: "review-pr", Args: map[string]string{"style": "short"}})
	fmt.Println(d.Effect, "review-pr")
	// Output:
	// allow file:///srv/docs/web/guide.md
	// allow FILE://localhost/srv/docs/web/../web/guide.md
	// deny file:///srv/docs/web/tls/server.pem
	// deny file:///srv/docs/ops/runbook.md
	// deny file:///srv/docs/web/%2e%2e/ops/runbook.md
	// allow review-pr
}

func ExampleParseURI() {
	for _, raw := range []string{"FILE://localhost/w/a/%2E%2E/b%2Fc", "https://Example.COM:443/x/./y?q=%7e", "file:///w/a#/../../etc/passwd"} {
		u, err := scope.ParseURI(raw)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		fmt.Println(u.Canonical)
	}
	// Output:
	// file:///w/b/c
	// https://example.com/x/y?q=~
	// refused: "file:///w/a#/../../etc/passwd" has a fragment, which servers read in different ways
}
