package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func ExampleWithLogger() {
	p, _ := scope.Parse([]byte(examplePolicy)) // grants read_file only
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "policy" {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard), toolguard.WithLogger(logger))
	noop := func(ctx context.Context, args json.RawMessage) (any, error) { return nil, nil }
	_ = g.Register(toolguard.Tool{Name: "read_file", Handler: noop})  // granted: no warning
	_ = g.Register(toolguard.Tool{Name: "write_file", Handler: noop}) // granted by no scope
	// Output:
	// level=WARN msg="toolguard: no scope of the policy grants this tool, so every call to it will be denied" tool=write_file
}

func ExampleDeniedError_ModelText() {
	p, _ := scope.Parse([]byte(examplePolicy))
	g, _ := toolguard.New(p, toolguard.WithSink(audit.Discard))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "support-bot", Scopes: []string{"fs.read"}})
	_, err := g.Call(ctx, "shell", json.RawMessage(`{"cmd":"id"}`))
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		fmt.Println(de.ModelText()) // for the model: the tool result
		fmt.Println(de.Error())     // for programmers and logs
	}
	// Output:
	// call to "shell" denied: there is no tool named "shell"
	// toolguard: call to "shell" denied: there is no tool named "shell"
}
