package guardsdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// PrincipalFunc establishes who is calling from an incoming request. An
// error, or a principal without an ID, means nobody: nothing is listed and
// every call is denied, with the error in the denial. It may be called
// concurrently.
type PrincipalFunc func(ctx context.Context, req mcp.Request) (scope.Principal, error)

// Static returns a PrincipalFunc that always returns pr: for stdio, where
// the principal comes from configuration.
func Static(pr scope.Principal) PrincipalFunc {
	return func(context.Context, mcp.Request) (scope.Principal, error) { return pr, nil }
}

// TokenPrincipal is a PrincipalFunc for streamable HTTP behind the SDK's
// auth.RequireBearerToken: the principal is the verified token's user, its
// scopes and its extra claims.
func TokenPrincipal(_ context.Context, req mcp.Request) (scope.Principal, error) {
	extra := req.GetExtra()
	if extra == nil || extra.TokenInfo == nil {
		return scope.Principal{}, errors.New("no verified bearer token")
	}
	ti := extra.TokenInfo
	if ti.UserID == "" {
		return scope.Principal{}, errors.New("the bearer token names no user")
	}
	return scope.Principal{ID: ti.UserID, Scopes: ti.Scopes, Attrs: ti.Extra}, nil
}

// Middleware returns receiving middleware that puts g in front of every
// tool, resource and prompt of the server (see the package documentation).
// Install it with mcp.Server.AddReceivingMiddleware and register tools with
// [AddTool], so that the guard knows them. Calls to tools the guard does not
// know, hidden or not, are decided, recorded and denied. Methods it does not
// know (custom methods of the server, methods of a later SDK) are refused
// unless named with [AllowMethods]. The middleware may serve every session
// of the server at once.
func Middleware(g *toolguard.Guard, pf PrincipalFunc, opts ...Option) mcp.Middleware {
	m := &middleware{g: g, pf: pf}
	for _, o := range opts {
		o(m)
	}
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			switch method {
			case "tools/list":
				ctx, _ = withPrincipal(ctx, pf, req)
				return listTools(ctx, g, next, method, req)
			case "tools/call":
				return m.callTool(ctx, next, method, req)
			}
			return m.handle(ctx, next, method, req)
		}
	}
}

// Option configures [Middleware].
type Option func(*middleware)

// WithLogger sets where the middleware logs warnings: a server that offers
// resources or prompts under a policy that grants none of them (see
// [scope.Policy.GrantsData]), which then hides and denies them all. The
// default, and a nil logger, is [slog.Default] at the time of the warning.
func WithLogger(l *slog.Logger) Option {
	return func(m *middleware) {
		m.logger = l
	}
}

// AllowMethods lets custom methods of the server (mcp.AddReceivingCustomMethod)
// through the middleware, which neither decides nor records them: the
// server must guard what they do itself (for example with
// [toolguard.Guard.Call]). Without it a method the middleware does not know
// is refused, so that a method carrying data is never served ungoverned.
// Naming a method the middleware governs (resources/read, say) changes
// nothing.
func AllowMethods(methods ...string) Option {
	return func(m *middleware) {
		if m.allowed == nil {
			m.allowed = map[string]bool{}
		}
		for _, name := range methods {
			m.allowed[name] = true
		}
	}
}

// listTools keeps of the server's list only what g shows the principal.
func listTools(ctx context.Context, g *toolguard.Guard, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	res, err := next(ctx, method, req)
	if err != nil {
		return nil, err
	}
	list, ok := res.(*mcp.ListToolsResult)
	if !ok {
		return nil, fmt.Errorf("guardsdk: tools/list returned %T", res)
	}
	out := *list
	out.Tools = make([]*mcp.Tool, 0, len(list.Tools))
	for _, t := range list.Tools {
		if t != nil && g.Visible(ctx, t.Name) {
			out.Tools = append(out.Tools, t)
		}
	}
	out.CacheScope = "private"
	return &out, nil
}

// callTool decides a tools/call with the guard and, when allowed, runs the
// rest of the server's chain through the guard's handler of the tool.
func (m *middleware) callTool(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	call, ok := req.(*mcp.CallToolRequest)
	if !ok || call.Params == nil {
		return nil, fmt.Errorf("guardsdk: tools/call request of type %T", req)
	}
	ctx, perr := withPrincipal(ctx, m.pf, req)
	ctx = m.withTask(withSession(ctx, call.Session), call.Session, call.Params.Meta)
	call = taskless(call, func(p *mcp.CallToolParamsRaw) *mcp.Meta { return &p.Meta })
	p := &pending{method: method, req: call, next: next}
	out, err := m.g.Call(context.WithValue(ctx, pendingKey{}, p), call.Params.Name, call.Params.Arguments)
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		text := de.ModelText()
		if perr != nil && errors.Is(err, toolguard.ErrNoPrincipal) {
			text += " (" + perr.Error() + ")"
		}
		return errorResult(text), nil
	}
	if err != nil {
		// The tool's own failure: not a denial.
		return nil, err
	}
	res, ok := out.(*mcp.CallToolResult)
	if !ok {
		return nil, fmt.Errorf("guardsdk: tool %q returned %T, not a *mcp.CallToolResult; register it with AddTool", call.Params.Name, out)
	}
	return res, nil
}

func errorResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// withPrincipal puts the principal of req into ctx, or returns why there is
// none.
func withPrincipal(ctx context.Context, pf PrincipalFunc, req mcp.Request) (context.Context, error) {
	if pf == nil {
		return ctx, errors.New("no principal function")
	}
	pr, err := pf(ctx, req)
	if err == nil && pr.ID == "" {
		err = errors.New("the principal has no ID")
	}
	if err != nil {
		return ctx, err
	}
	return toolguard.WithPrincipal(ctx, pr), nil
}

type pendingKey struct{}

// pending carries the rest of the server's handler chain for one tools/call
// into the guard's handler of the tool, which runs it once the guard has
// allowed the call.
type pending struct {
	method string
	req    *mcp.CallToolRequest
	next   mcp.MethodHandler
}

// AddTool registers a tool on the guard and on the server (with the SDK's
// mcp.AddTool), so that its calls run through [Middleware]. The input schema
// is t.InputSchema, or else inferred from In exactly as the SDK does; the
// guard validates the arguments against it and the SDK then decodes them
// (applying any schema defaults) into In. The tool's annotations (such as
// readOnlyHint and openWorldHint) are visible to policy as
// tool.annotations.
func AddTool[In, Out any](s *mcp.Server, g *toolguard.Guard, t *mcp.Tool, h mcp.ToolHandlerFor[In, Out]) (err error) {
	if s == nil || g == nil || t == nil || h == nil {
		return errors.New("guardsdk: AddTool needs a server, a guard, a tool and a handler")
	}
	tt := *t
	gt, err := guardTool[In](&tt)
	if err != nil {
		return err
	}
	if err := g.Register(gt); err != nil {
		return err
	}
	// mcp.AddTool panics on a tool it cannot serve; report that as an error
	// and take the tool off the guard again.
	defer func() {
		if r := recover(); r != nil {
			g.Unregister(tt.Name)
			err = fmt.Errorf("guardsdk: tool %q: %v", tt.Name, r)
		}
	}()
	mcp.AddTool(s, &tt, h)
	return nil
}

// guardTool is the guard's view of t, whose input schema it fills in from
// In when t has none.
func guardTool[In any](t *mcp.Tool) (toolguard.Tool, error) {
	if t.InputSchema == nil {
		in, err := jsonschema.For[In](nil)
		if err != nil {
			return toolguard.Tool{}, fmt.Errorf("guardsdk: tool %q: %w", t.Name, err)
		}
		t.InputSchema = in
	}
	schema, err := json.Marshal(t.InputSchema)
	if err != nil {
		return toolguard.Tool{}, fmt.Errorf("guardsdk: tool %q: input schema: %w", t.Name, err)
	}
	var annotations map[string]any
	if t.Annotations != nil {
		b, err := json.Marshal(t.Annotations)
		if err == nil {
			err = json.Unmarshal(b, &annotations)
		}
		if err != nil {
			return toolguard.Tool{}, fmt.Errorf("guardsdk: tool %q: annotations: %w", t.Name, err)
		}
	}
	return toolguard.Tool{
		Name:        t.Name,
		Title:       t.Title,
		Description: t.Description,
		InputSchema: schema,
		Annotations: annotations,
		Handler:     guardHandler(t.Name),
	}, nil
}

// guardHandler is the guard's handler of an MCP tool: it runs the server's
// own handler chain with exactly the arguments the guard validated. Called
// other than through [Middleware], it refuses.
func guardHandler(name string) toolguard.Handler {
	return func(ctx context.Context, args json.RawMessage) (any, error) {
		p, ok := ctx.Value(pendingKey{}).(*pending)
		if !ok || p.req.Params.Name != name {
			return nil, fmt.Errorf("guardsdk: tool %q runs only through the MCP server's middleware", name)
		}
		params := *p.req.Params
		params.Arguments = args
		req := *p.req
		req.Params = &params
		return p.next(ctx, p.method, &req)
	}
}
