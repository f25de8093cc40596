package scope_test

import (
	"context"
	"fmt"

	"github.com/agentguard/agentguard/scope"
)

func ExampleParse() {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
`))
	if err != nil {
		panic(err)
	}
	pr := scope.Principal{ID: "bot", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}}
	for _, path := range []string{"/w/a.txt", "/w/.env", "/w/../etc/passwd"} {
		d := p.Decide(context.Background(), scope.Input{
			Principal: pr,
			Tool:      scope.Tool{Name: "read_file"},
			Args:      map[string]any{"path": path},
		})
		fmt.Printf("%s: %s (%s)\n", path, d.Effect, d.Reason)
	}
	// Output:
	// /w/a.txt: allow (allowed by scope "fs.read" (grant 0))
	// /w/.env: deny (denied by rule "no-dotenv": this call is not allowed)
	// /w/../etc/passwd: deny (no scope held by "bot" grants tool "read_file" for these arguments; scope "fs.read" allows it only when args.path.isUnder(principal.attrs.workspace))
}

func ExampleParse_error() {
	_, err := scope.Parse([]byte(`version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.workspace)
`), scope.WithFilename("policy.yaml"))
	fmt.Println(err)
	// Output: scope: policy.yaml:6:42: /scopes/fs.read/grants/0/when: undefined field 'workspace' (in "args.path.isUnder(principal.workspace)")
}
