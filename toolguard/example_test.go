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

const examplePolicy = `version: 1
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
    message: '"secret files are off limits: " + args.path'
`

func ExampleNew() {
	p, err := scope.Parse([]byte(examplePolicy))
	if err != nil {
		panic(err)
	}
	// Every guard needs an audit sink; audit.Discard opts out explicitly.
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		panic(err)
	}
	type readArgs struct {
		Path string `json:"path"`
	}
	err = toolguard.Register(g, "read_file", "Read a file", func(ctx context.Context, in readArgs) (string, error) {
		return "contents of " + in.Path, nil
	})
	fmt.Println(err, len(g.Tools()))
	// Output: <nil> 1
}

func ExampleGuard_Call() {
	p, _ := scope.Parse([]byte(examplePolicy))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard))
	_ = g.Register(toolguard.Tool{
		Name:        "read_file",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`),
		Handler: func(ctx context.Context, args json.RawMessage) (any, error) {
			return "file contents", nil
		},
	})
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{
		ID: "support-bot", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"},
	})

	for _, args := range []string{
		`{"path":"/w/notes.txt"}`,
		`{"path":"/w/.env"}`,
		`{"path":"/etc/passwd"}`,
		`{"path":42}`,
	} {
		out, err := g.Call(ctx, "read_file", json.RawMessage(args))
		var de *toolguard.DeniedError
		switch {
		case errors.As(err, &de):
			fmt.Printf("%s denied at %s: %s\n", args, de.Decision.Stage, de.Decision.Reason)
		case err != nil:
			fmt.Println("error:", err)
		default:
			fmt.Printf("%s allowed: %v\n", args, out)
		}
	}
	// Output:
	// {"path":"/w/notes.txt"} allowed: file contents
	// {"path":"/w/.env"} denied at policy: denied by rule "no-dotenv": secret files are off limits: /w/.env
	// {"path":"/etc/passwd"} denied at policy: no scope held by "support-bot" grants tool "read_file" for these arguments; scope "fs.read" allows it only when args.path.isUnder(principal.attrs.workspace)
	// {"path":42} denied at arguments: the arguments do not match the input schema of "read_file": at /path: got number, want string
}

func ExampleGuard_Check() {
	p, _ := scope.Parse([]byte(examplePolicy))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard))
	_ = g.Register(toolguard.Tool{Name: "read_file", Handler: func(ctx context.Context, args json.RawMessage) (any, error) {
		panic("Check never runs the tool")
	}})
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{
		ID: "support-bot", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"},
	})
	d, err := g.Check(ctx, "read_file", json.RawMessage(`{"path":"/w/a.txt"}`))
	fmt.Println(d.Effect, d.Scope, err)
	// Output: allow fs.read <nil>
}

// Check's error is nil only when the call would run without asking anyone:
// an ask is an error too, so a caller that runs the tool on a nil error
// never skips the human.
func ExampleGuard_Check_ask() {
	p, _ := scope.Parse([]byte(`version: 1
scopes:
  mail: {grants: [{tools: [send_email]}]}
rules:
  - name: external-mail
    effect: ask
    tools: [send_email]
    when: '!args.to.endsWith("@example.com")'
`))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard))
	_ = g.Register(toolguard.Tool{Name: "send_email", Handler: func(ctx context.Context, args json.RawMessage) (any, error) {
		panic("Check never runs the tool")
	}})
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "support-bot", Scopes: []string{"mail"}})

	for _, to := range []string{"bob@example.com", "mallory@evil.test"} {
		d, err := g.Check(ctx, "send_email", json.RawMessage(`{"to":"`+to+`"}`))
		switch {
		case err == nil:
			fmt.Println(to, "may be sent now")
		case errors.Is(err, toolguard.ErrApprovalRequired):
			fmt.Println(to, "needs a human: rule", d.Rule)
		default:
			fmt.Println(to, "denied:", err)
		}
	}
	// Output:
	// bob@example.com may be sent now
	// mallory@evil.test needs a human: rule external-mail
}
