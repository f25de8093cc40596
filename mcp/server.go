package guardmcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/mark3labs/mcp-go/tracing"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/toolguard"
)

// Option configures ServerOptions and NewProxy. Options that only concern
// the proxy are ignored by ServerOptions.
type Option func(*options)

type options struct {
	tracer      tracing.Tracer
	logger      *slog.Logger
	lockPath    string
	updateLock  bool
	sink        audit.Sink
	callTimeout time.Duration
	listTimeout time.Duration
	serverOpts  []server.ServerOption
	name        string
	version     string
	hideFlagged Severity
	maxSessions int
	sessionIdle time.Duration
	tasks       *TaskVerifier
}

func buildOptions(opts []Option) options {
	o := options{
		logger:      slog.New(slog.DiscardHandler),
		callTimeout: 2 * time.Minute,
		listTimeout: 30 * time.Second,
		hideFlagged: SeverityHigh,
		maxSessions: 32,
		sessionIdle: 10 * time.Minute,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithTracer sets the tracer of the MCP server. ServerOptions installs a
// tracer of its own (it tells tools/call apart from tools/list); pass yours
// here rather than with server.WithTracer, which would replace it — the guard
// would then still fail closed, but a call to a tool the caller cannot see
// would get a JSON-RPC "not found" error instead of a recorded denial.
func WithTracer(t tracing.Tracer) Option {
	return func(o *options) { o.tracer = t }
}

// WithLogger sets where warnings go: upstream tools hidden because of an
// invalid name, schema or lock mismatch, and principals that could not be
// established. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// guardTracer marks the context of a tools/call message, so that the tool
// filter can tell a call (which must reach the guard to be recorded and
// denied) from a list (which shows only visible tools).
type guardTracer struct{ inner tracing.Tracer }

type callMarkKey struct{}

const callSpanName = "mcp." + string(mcp.MethodToolsCall)

func (t guardTracer) Start(ctx context.Context, name string, kind tracing.SpanKind, attrs ...tracing.Attribute) (context.Context, tracing.Span) {
	switch name {
	case callSpanName:
		ctx = context.WithValue(ctx, callMarkKey{}, true)
	case promptGetSpanName:
		ctx = context.WithValue(ctx, promptGetKey{}, true)
	}
	return t.inner.Start(ctx, name, kind, attrs...)
}

func isCall(ctx context.Context) bool {
	v, _ := ctx.Value(callMarkKey{}).(bool)
	return v
}

// ServerOptions returns the options that put g in front of every tool of an
// mcp-go server:
//
//   - a tool filter: tools/list shows a principal only the tools
//     g.Visible grants them, and only tools the middleware can guard;
//   - a tool handler middleware: every tools/call runs through g.Call —
//     schema validation, policy, limits, the decision record — before the
//     tool's handler runs. A denial becomes a CallToolResult with isError set
//     and the reason as text; a tool the guard does not know is denied.
//
// A call of a tool the server does not have is routed (by a before-call
// hook, added to the server's hooks) to a hidden tool, so that the guard
// denies and records it rather than mcp-go answering "not found"; give
// server.WithHooks before ServerOptions, not after.
//
// Register tools with [AddTool], which registers them on the server and the
// guard at once. Tools registered with AddTaskTool, or only on a session,
// are hidden and cannot be called: their handlers would bypass the
// middleware. The principal comes from the context (see [HTTPContextFunc]
// and [StdioContextFunc]); without one every call is denied.
func ServerOptions(g *toolguard.Guard, opts ...Option) []server.ServerOption {
	o := buildOptions(opts)
	return newMiddleware(g, o, nil).serverOptions(o)
}

func newMiddleware(g *toolguard.Guard, o options, blocked blockFunc) *middleware {
	return &middleware{g: g, logger: o.logger, blocked: blocked, run: randomID(), tasks: o.tasks}
}

// serverOptions install m on an mcp-go server.
func (m *middleware) serverOptions(o options) []server.ServerOption {
	inner := o.tracer
	if inner == nil {
		inner = tracing.NoopTracer()
	}
	return []server.ServerOption{
		server.WithTracer(guardTracer{inner: inner}),
		server.WithToolFilter(m.filter),
		server.WithToolHandlerMiddleware(m.wrap),
		m.routeUnknown,
		// Resources and prompts: see resources.go.
		server.WithResourceHandlerMiddleware(m.wrapResource),
		server.WithPromptFilter(m.filterPrompts),
		server.WithPromptHandlerMiddleware(m.wrapPrompt),
		m.dataHooks,
	}
}

// unknownToolName names a tool, never listed, to which calls of tools the
// server does not have are routed: mcp-go answers a call to a tool it does
// not serve with a JSON-RPC error before any middleware runs, and such a
// call must instead be decided, recorded and denied by the guard like any
// other. The name is outside what the guard accepts, so no real tool can
// take it.
const unknownToolName = "guardmcp unknown tool"

// unknownMetaKey keys, in the rerouted request's _meta, the name that was
// called. The value has an unexported type, so a client cannot forge it.
const unknownMetaKey = "guardmcp/unknown-tool"

type unknownCall struct{ name string }

// routeUnknown is a server option: it registers the unknown-tool route and a
// before-call hook that sends calls of tools the server does not have to it.
// The hook rewrites only the tool's name (and adds a mark): it never decides
// anything itself. If the route is gone (SetTools replaced every tool) the
// call is left alone and mcp-go reports the tool as not found.
func (m *middleware) routeUnknown(s *server.MCPServer) {
	h := s.GetHooks()
	if h == nil {
		h = &server.Hooks{}
		server.WithHooks(h)(s)
	}
	h.AddBeforeCallTool(func(_ context.Context, _ any, req *mcp.CallToolRequest) {
		if req == nil || s.GetTool(req.Params.Name) != nil || s.GetTool(unknownToolName) == nil {
			return
		}
		meta := &mcp.Meta{AdditionalFields: map[string]any{}}
		if old := req.Params.Meta; old != nil {
			meta.ProgressToken = old.ProgressToken
			for k, v := range old.AdditionalFields {
				meta.AdditionalFields[k] = v
			}
		}
		meta.AdditionalFields[unknownMetaKey] = unknownCall{name: req.Params.Name}
		req.Params.Meta = meta
		req.Params.Name = unknownToolName
	})
	s.AddTool(mcp.NewToolWithRawSchema(unknownToolName, "", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// Reached only if the middleware was taken off the server.
			return errorResult("unknown tool"), nil
		})
}

// calledName returns the name of the tool a request called: for a call
// routed to the unknown-tool route, the name the client asked for.
func calledName(req mcp.CallToolRequest) (name string, rerouted bool) {
	if req.Params.Name != unknownToolName {
		return req.Params.Name, false
	}
	if m := req.Params.Meta; m != nil {
		if u, ok := m.AdditionalFields[unknownMetaKey].(unknownCall); ok {
			return u.name, true
		}
	}
	// A client called the route by its name: a tool that does not exist.
	return req.Params.Name, true
}

type middleware struct {
	g      *toolguard.Guard
	logger *slog.Logger
	// blocked, when set, denies calls to tools that the proxy hides (tool
	// pinning), with a record of its own.
	blocked blockFunc
	// run identifies this server's run in the ids of stdio sessions.
	run string
	// tasks verifies the tasks requests carry in _meta; nil refuses them.
	tasks *TaskVerifier
}

type blockFunc func(ctx context.Context, req *mcp.CallToolRequest, args json.RawMessage) (*mcp.CallToolResult, bool)

// filter is the tool filter. On tools/list it keeps the tools the principal
// may see; on tools/call it lets every tool the middleware will run through,
// so that a call to a hidden tool is denied by the guard, with a record and
// a reason, rather than reported as unknown.
func (m *middleware) filter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	s := server.ServerFromContext(ctx)
	if s == nil || m.g == nil {
		return nil
	}
	calling := isCall(ctx)
	out := make([]mcp.Tool, 0, len(tools))
	for _, t := range tools {
		// Only tools registered with AddTool go through the middleware.
		if s.GetTool(t.Name) == nil {
			continue
		}
		if t.Name == unknownToolName && !calling {
			continue
		}
		if calling || m.g.Visible(ctx, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

type pendingKey struct{}

// pending carries the mcp-go handler chain of one tools/call into the
// guard's handler for the tool.
type pending struct {
	g    *toolguard.Guard
	req  mcp.CallToolRequest
	next server.ToolHandlerFunc
}

// ErrNotCallToolResult is returned when a tool registered on the guard
// outside [AddTool] returns something other than *mcp.CallToolResult to the
// middleware.
var ErrNotCallToolResult = errors.New("guardmcp: the tool's guard handler did not return a *mcp.CallToolResult; register MCP tools with guardmcp.AddTool")

func (m *middleware) wrap(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ctx = m.withTask(m.withSession(ctx), req.Params.Meta)
		req.Params.Meta = withoutTask(req.Params.Meta)
		args, err := rawArguments(req)
		if err != nil {
			return nil, err
		}
		if name, rerouted := calledName(req); rerouted {
			return m.unknown(ctx, name, args)
		}
		if m.blocked != nil {
			if res, ok := m.blocked(ctx, &req, args); ok {
				return res, nil
			}
		}
		p := &pending{g: m.g, req: req, next: next}
		out, err := m.g.Call(context.WithValue(ctx, pendingKey{}, p), req.Params.Name, args)
		var de *toolguard.DeniedError
		if errors.As(err, &de) {
			return deniedResult(ctx, de), nil
		}
		var we *toolguard.WithheldError
		if errors.As(err, &we) {
			return errorResult(we.ModelText()), nil
		}
		if errors.Is(err, toolguard.ErrResultWithheld) {
			// The tool ran, and its result may not go back (labelling
			// it failed): the model reads why, not the result.
			return errorResult(withheldText(req.Params.Name, err)), nil
		}
		res, ok := callToolResult(out)
		if re := (*RPCError)(nil); errors.As(err, &re) {
			// The upstream's JSON-RPC error, passed on as it came.
			return nil, server.NewHandlerError(re)
		}
		if errors.Is(err, ErrUpstream) || errors.Is(err, ErrTooManySessions) || errors.Is(err, ErrSessionPrincipal) {
			// The upstream server failed: an error of the tool's
			// execution, which the model reads in the result.
			return errorResult(modelText(err)), nil
		}
		if err != nil {
			// The tool's own error, a panic or timeout, or an outcome
			// record that could not be written: not a denial.
			return nil, err
		}
		if !ok && out != nil {
			return nil, ErrNotCallToolResult
		}
		return res, nil
	}
}

// unknown decides a call of a tool the server does not serve. The guard
// denies and records a call of a tool it does not know either. A tool the
// guard knows but the server does not serve (registered on the guard only,
// or removed from the server) is not run through the guard, which would run
// its handler: it is denied here.
func (m *middleware) unknown(ctx context.Context, name string, args json.RawMessage) (*mcp.CallToolResult, error) {
	if _, known := m.g.Tool(name); known {
		return errorResult(fmt.Sprintf("call to %q denied: the server does not serve this tool", name)), nil
	}
	_, err := m.g.Call(ctx, name, args)
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		return deniedResult(ctx, de), nil
	}
	if err == nil {
		err = fmt.Errorf("guardmcp: the guard did not deny a call of the unknown tool %q", name)
	}
	return nil, err
}

// rawArguments returns the arguments of a call as JSON: the bytes the
// client sent when the call came over the wire.
func rawArguments(req mcp.CallToolRequest) (json.RawMessage, error) {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		switch a := req.Params.Arguments.(type) {
		case nil:
			return json.RawMessage(`{}`), nil
		case json.RawMessage:
			raw = a
		default:
			b, err := json.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("guardmcp: arguments of %q: %w", req.Params.Name, err)
			}
			raw = b
		}
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return json.RawMessage(`{}`), nil
	}
	return raw, nil
}

// deniedResult is the answer to a denied call: a tool error the model can
// read (no Go package names in it). When the principal could not be
// established, the reason says why.
func deniedResult(ctx context.Context, de *toolguard.DeniedError) *mcp.CallToolResult {
	text := de.ModelText()
	if errors.Is(de, toolguard.ErrNoPrincipal) {
		if perr := principalError(ctx); perr != nil {
			text += " (" + modelText(perr) + ")"
		}
	}
	return errorResult(text)
}

// modelText is the text of an error of this package as a model reads it:
// without the Go package name that starts the error string.
func modelText(err error) string {
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		return de.ModelText()
	}
	s := err.Error()
	if rest, ok := strings.CutPrefix(s, ErrUpstream.Error()+": "); ok {
		return "the upstream server failed: " + rest
	}
	return toolguard.PlainText(errors.New(s))
}

func errorResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		Content: []mcp.Content{mcp.NewTextContent(text)},
		IsError: true,
	}
}

// guardHandler is the guard's handler of a tool added with AddTool. Through
// the middleware it runs the rest of mcp-go's handler chain; called directly
// with Guard.Call it runs h.
func guardHandler(name string, h server.ToolHandlerFunc) toolguard.Handler {
	return func(ctx context.Context, args json.RawMessage) (any, error) {
		var req mcp.CallToolRequest
		next := h
		p, viaMiddleware := ctx.Value(pendingKey{}).(*pending)
		viaMiddleware = viaMiddleware && p.req.Params.Name == name
		if viaMiddleware {
			req, next = p.req, p.next
		} else {
			req.Method = string(mcp.MethodToolsCall)
			req.Params.Name = name
		}
		// The handler sees exactly the validated bytes. Over the wire they
		// are the bytes mcp-go decoded Arguments from; otherwise decode them.
		if len(req.Params.RawArguments) == 0 || !bytes.Equal(req.Params.RawArguments, args) {
			var m map[string]any
			if err := json.Unmarshal(args, &m); err != nil {
				return nil, fmt.Errorf("guardmcp: arguments of %q: %w", name, err)
			}
			req.Params.Arguments = m
		}
		req.Params.RawArguments = args
		res, err := next(ctx, req)
		if res == nil && err == nil {
			return nil, nil
		}
		if viaMiddleware && res != nil {
			// The middleware unwraps it; label conditions read its
			// metadata.
			return toolResult{res}, err
		}
		return res, err
	}
}

// AddTool registers a tool on both the guard and the mcp-go server, so that
// its calls run through the middleware of [ServerOptions]. The guard gets
// the tool's name, title, description, input schema (RawInputSchema if set)
// and annotations. The tool is added to the server only if the guard
// accepts it.
func AddTool(s *server.MCPServer, g *toolguard.Guard, t mcp.Tool, h server.ToolHandlerFunc) error {
	if s == nil || g == nil || h == nil {
		return errors.New("guardmcp: AddTool needs a server, a guard and a handler")
	}
	gt, err := guardTool(t)
	if err != nil {
		return err
	}
	gt.Handler = guardHandler(t.Name, h)
	if err := g.Register(gt); err != nil {
		return fmt.Errorf("guardmcp: %w", err)
	}
	s.AddTool(t, h)
	return nil
}

// guardTool describes t for the guard.
func guardTool(t mcp.Tool) (toolguard.Tool, error) {
	schema := t.RawInputSchema
	if len(schema) == 0 {
		b, err := json.Marshal(t.InputSchema)
		if err != nil {
			return toolguard.Tool{}, fmt.Errorf("guardmcp: input schema of %q: %w", t.Name, err)
		}
		schema = b
	}
	ann, err := json.Marshal(t.Annotations)
	if err != nil {
		return toolguard.Tool{}, fmt.Errorf("guardmcp: annotations of %q: %w", t.Name, err)
	}
	var annotations map[string]any
	if err := json.Unmarshal(ann, &annotations); err != nil {
		return toolguard.Tool{}, fmt.Errorf("guardmcp: annotations of %q: %w", t.Name, err)
	}
	title := t.Title
	if title == "" {
		title = t.Annotations.Title
	}
	return toolguard.Tool{
		Name:        t.Name,
		Title:       title,
		Description: t.Description,
		InputSchema: schema,
		Annotations: annotations,
	}, nil
}
