package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/compose"

	"github.com/agentguard/agentguard/toolguard"
)

// This file is the adapter: copy it into an application built on
// github.com/cloudwego/eino.

// ToolsNodeConfig returns the configuration of a ToolsNode whose every tool
// call runs through g: the tools are registered on g (with the input schema
// each tool's Info declares), an InvokableToolMiddleware sends each call to
// g.Call, which runs the tool only once the call is allowed and recorded,
// and calls to tools the node does not have are decided and denied by g as
// well. A denial becomes the tool message, so the model reads the reason.
//
// Only plain invokable tools are accepted: a streamable or enhanced tool
// would be run on a path the middleware does not cover, so it is refused
// here rather than left unguarded.
func ToolsNodeConfig(ctx context.Context, g *toolguard.Guard, tools []tool.BaseTool) (*compose.ToolsNodeConfig, error) {
	for _, t := range tools {
		if err := register(ctx, g, t); err != nil {
			return nil, err
		}
	}
	return &compose.ToolsNodeConfig{
		Tools:               tools,
		ToolCallMiddlewares: []compose.ToolMiddleware{{Invokable: Middleware(g)}},
		UnknownToolsHandler: func(ctx context.Context, name, input string) (string, error) {
			return guardCall(ctx, g, name, input, nil)
		},
	}, nil
}

// Middleware is the InvokableToolMiddleware that runs each call through g.
// The tools must be registered on g (ToolsNodeConfig does that); a call to a
// tool g does not know is denied.
func Middleware(g *toolguard.Guard) compose.InvokableToolMiddleware {
	return func(next compose.InvokableToolEndpoint) compose.InvokableToolEndpoint {
		return func(ctx context.Context, in *compose.ToolInput) (*compose.ToolOutput, error) {
			if in == nil {
				return nil, errors.New("guard: nil tool input")
			}
			text, err := guardCall(ctx, g, in.Name, in.Arguments, &pending{in: in, next: next})
			if err != nil {
				return nil, err
			}
			return &compose.ToolOutput{Result: text}, nil
		}
	}
}

// guardCall decides and runs one call. A denial is the result text; the
// tool's own failure stays an error, as eino reports it.
func guardCall(ctx context.Context, g *toolguard.Guard, name, args string, p *pending) (string, error) {
	if p != nil {
		ctx = context.WithValue(ctx, pendingKey{}, p)
	}
	out, err := g.Call(ctx, name, json.RawMessage(args))
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		return de.ModelText(), nil
	}
	if err != nil {
		return "", err
	}
	text, ok := out.(string)
	if !ok {
		return "", fmt.Errorf("guard: tool %q returned %T; register it with ToolsNodeConfig", name, out)
	}
	return text, nil
}

type pendingKey struct{}

// pending carries the rest of the ToolsNode's chain for one call into the
// guard's handler of the tool.
type pending struct {
	in   *compose.ToolInput
	next compose.InvokableToolEndpoint
}

// register adds t to g with a handler that runs the ToolsNode's own chain
// with exactly the arguments g validated.
func register(ctx context.Context, g *toolguard.Guard, t tool.BaseTool) error {
	if _, ok := t.(tool.InvokableTool); !ok {
		return fmt.Errorf("guard: tool %T is not invokable", t)
	}
	if _, ok := t.(tool.StreamableTool); ok {
		return fmt.Errorf("guard: tool %T is streamable, which the middleware does not guard", t)
	}
	if _, ok := t.(tool.EnhancedInvokableTool); ok {
		return fmt.Errorf("guard: tool %T is enhanced, which the middleware does not guard", t)
	}
	info, err := t.Info(ctx)
	if err != nil {
		return fmt.Errorf("guard: tool info: %w", err)
	}
	schema := json.RawMessage(`{"type":"object"}`)
	if info.ParamsOneOf != nil {
		js, err := info.ParamsOneOf.ToJSONSchema()
		if err != nil {
			return fmt.Errorf("guard: tool %q: %w", info.Name, err)
		}
		if js != nil {
			if schema, err = json.Marshal(js); err != nil {
				return fmt.Errorf("guard: tool %q: %w", info.Name, err)
			}
		}
	}
	name := info.Name
	return g.Register(toolguard.Tool{
		Name:        name,
		Description: info.Desc,
		InputSchema: schema,
		Handler: func(ctx context.Context, args json.RawMessage) (any, error) {
			p, ok := ctx.Value(pendingKey{}).(*pending)
			if !ok || p.in.Name != name {
				return nil, fmt.Errorf("guard: tool %q runs only through the ToolsNode middleware", name)
			}
			in := *p.in
			in.Arguments = string(args)
			out, err := p.next(ctx, &in)
			if err != nil {
				return nil, err
			}
			if out == nil {
				return "", nil
			}
			return out.Result, nil
		},
	})
}
