package guardsdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// middleware is the state of one [Middleware]: what it was built with.
type middleware struct {
	g       *toolguard.Guard
	pf      PrincipalFunc
	logger  *slog.Logger    // nil: slog.Default()
	allowed map[string]bool // custom methods let through (AllowMethods)
	tasks   TaskVerifier    // nil: requests carrying a task are refused
	warned  atomic.Bool
}

// handle governs every method but tools/list and tools/call. Resources and
// prompts: reads and gets are decided and recorded by the guard before the
// handler runs; lists are filtered to what the principal is granted;
// completions are given only for granted prompts and templates;
// subscriptions only to resources the principal may read. Methods that
// carry no data pass; any other method is refused.
func (m *middleware) handle(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	switch method {
	case "resources/read":
		return m.readResource(ctx, next, method, req)
	case "prompts/get":
		return m.getPrompt(ctx, next, method, req)
	case "resources/list", "resources/templates/list", "prompts/list":
		return m.list(ctx, next, method, req)
	case "completion/complete":
		return m.complete(ctx, next, method, req)
	case "resources/subscribe":
		return m.subscribe(ctx, next, method, req)
	case "subscriptions/listen":
		return m.listen(ctx, next, method, req)
	case "initialize", "server/discover":
		res, err := next(ctx, method, req)
		if err == nil {
			m.warnUngranted(res)
		}
		return res, err
	case "ping", "logging/setLevel", "resources/unsubscribe":
		// No data reaches the client: ending a subscription reveals
		// nothing, and log messages are the server's own. A task token
		// is still kept from the handler.
		return next(ctx, method, withoutTask(req))
	}
	if strings.HasPrefix(method, "notifications/") || m.allowed[method] {
		return next(ctx, method, req)
	}
	return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound,
		Message: fmt.Sprintf("method %q is not available: the guard in front of this server does not govern it", truncate(method))}
}

// enter puts the principal and the client's guard session into ctx, and
// returns why there is no principal, if there is none.
func (m *middleware) enter(ctx context.Context, req mcp.Request) (context.Context, error) {
	ctx, perr := withPrincipal(ctx, m.pf, req)
	ss, _ := req.GetSession().(*mcp.ServerSession)
	return withSession(ctx, ss), perr
}

// readResource decides a resources/read by its URI with
// [toolguard.Guard.ReadResource], which records the decision and, only if
// it allows, runs the rest of the server's chain.
func (m *middleware) readResource(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	r, ok := req.(*mcp.ReadResourceRequest)
	if !ok || r.Params == nil {
		return nil, fmt.Errorf("guardsdk: %s request of type %T", method, req)
	}
	ctx, perr := m.enter(ctx, req)
	ctx = m.withTask(ctx, r.Session, r.Params.Meta)
	r = taskless(r, func(p *mcp.ReadResourceParams) *mcp.Meta { return &p.Meta })
	out, err := m.g.ReadResource(ctx, r.Params.URI, func(ctx context.Context) (any, error) {
		return next(ctx, method, r)
	})
	return m.dataResult(method, out, err, perr)
}

// getPrompt decides a prompts/get by the prompt's name and arguments with
// [toolguard.Guard.GetPrompt], as readResource decides a read.
func (m *middleware) getPrompt(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	r, ok := req.(*mcp.GetPromptRequest)
	if !ok || r.Params == nil {
		return nil, fmt.Errorf("guardsdk: %s request of type %T", method, req)
	}
	ctx, perr := m.enter(ctx, req)
	ctx = m.withTask(ctx, r.Session, r.Params.Meta)
	r = taskless(r, func(p *mcp.GetPromptParams) *mcp.Meta { return &p.Meta })
	out, err := m.g.GetPrompt(ctx, r.Params.Name, r.Params.Arguments, func(ctx context.Context) (any, error) {
		return next(ctx, method, r)
	})
	return m.dataResult(method, out, err, perr)
}

// dataResult is the answer to a read or get the guard ran or denied.
func (m *middleware) dataResult(method string, out any, err, perr error) (mcp.Result, error) {
	if err != nil {
		return nil, m.dataErr(err, perr)
	}
	res, ok := out.(mcp.Result)
	if !ok || res == nil {
		return nil, fmt.Errorf("guardsdk: %s returned %T", method, out)
	}
	return res, nil
}

// dataErr turns a guard error into the JSON-RPC error the client receives.
// A denial is -32602 (invalid params, as for a resource or prompt that does
// not exist) with the reason as a model reads it; an outcome record that
// could not be written is an internal error that names neither Go
// packages nor the server's files. The server's own errors are returned
// as they are.
func (m *middleware) dataErr(err, perr error) error {
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		text := de.ModelText()
		if perr != nil && errors.Is(err, toolguard.ErrNoPrincipal) {
			text += " (" + perr.Error() + ")"
		}
		return denied(text)
	}
	if errors.Is(err, toolguard.ErrAuditUnavailable) {
		// The cause names the server's files; the client hears only what
		// happened, and the server's log (WithLogger) has the rest.
		m.log().Error("guardsdk: the outcome of a call could not be recorded; its result was withheld", "err", err)
		return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: "the call ran, but its outcome could not be recorded, so its result is withheld"}
	}
	return err
}

func denied(text string) error {
	return &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: text}
}

// list keeps of a resources/list, resources/templates/list or prompts/list
// result only what the principal is granted. Such a result differs
// between principals, so it is marked private.
func (m *middleware) list(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	ctx, _ = m.enter(ctx, req)
	ctx, req = m.listTask(ctx, req)
	res, err := next(ctx, method, req)
	if err != nil {
		return nil, err
	}
	switch l := res.(type) {
	case *mcp.ListResourcesResult:
		out := *l
		out.Resources = keep(l.Resources, func(r *mcp.Resource) bool { return m.g.ResourceVisible(ctx, r.URI) })
		out.CacheScope = "private"
		return &out, nil
	case *mcp.ListResourceTemplatesResult:
		out := *l
		out.ResourceTemplates = keep(l.ResourceTemplates, func(t *mcp.ResourceTemplate) bool {
			return m.g.ResourceTemplateVisible(ctx, t.URITemplate)
		})
		out.CacheScope = "private"
		return &out, nil
	case *mcp.ListPromptsResult:
		out := *l
		out.Prompts = keep(l.Prompts, func(p *mcp.Prompt) bool { return m.g.PromptVisible(ctx, p.Name) })
		out.CacheScope = "private"
		return &out, nil
	}
	return nil, fmt.Errorf("guardsdk: %s returned %T", method, res)
}

// keep returns the non-nil elements of in for which ok holds, never nil.
func keep[T any](in []*T, ok func(*T) bool) []*T {
	out := make([]*T, 0, len(in))
	for _, v := range in {
		if v != nil && ok(v) {
			out = append(out, v)
		}
	}
	return out
}

// complete answers completion/complete for a prompt or resource template
// the principal is not granted with no completions, without asking the
// server's completion handler: the values it would suggest are data.
func (m *middleware) complete(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	r, ok := req.(*mcp.CompleteRequest)
	if !ok {
		return nil, fmt.Errorf("guardsdk: %s request of type %T", method, req)
	}
	if r.Params == nil || r.Params.Ref == nil {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "completion/complete needs a ref"}
	}
	ctx, _ = m.enter(ctx, req)
	ctx = m.withTask(ctx, r.Session, r.Params.Meta)
	r = taskless(r, func(p *mcp.CompleteParams) *mcp.Meta { return &p.Meta })
	granted := false
	switch ref := r.Params.Ref; ref.Type {
	case "ref/prompt":
		granted = m.g.PromptVisible(ctx, ref.Name)
	case "ref/resource":
		granted = m.g.ResourceTemplateVisible(ctx, ref.URI)
	}
	if !granted {
		return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
	}
	return next(ctx, method, r)
}

// listTask narrows ctx by the task a list request carries, as a read is
// narrowed (a refused task sees nothing), and returns the request without
// the token.
func (m *middleware) listTask(ctx context.Context, req mcp.Request) (context.Context, mcp.Request) {
	switch r := req.(type) {
	case *mcp.ListResourcesRequest:
		if r.Params != nil {
			return m.withTask(ctx, r.Session, r.Params.Meta), taskless(r, func(p *mcp.ListResourcesParams) *mcp.Meta { return &p.Meta })
		}
	case *mcp.ListResourceTemplatesRequest:
		if r.Params != nil {
			return m.withTask(ctx, r.Session, r.Params.Meta), taskless(r, func(p *mcp.ListResourceTemplatesParams) *mcp.Meta { return &p.Meta })
		}
	case *mcp.ListPromptsRequest:
		if r.Params != nil {
			return m.withTask(ctx, r.Session, r.Params.Meta), taskless(r, func(p *mcp.ListPromptsParams) *mcp.Meta { return &p.Meta })
		}
	}
	return ctx, req
}

// withoutTask returns req with the task token removed from its _meta, for
// the methods passed on undecided.
func withoutTask(req mcp.Request) mcp.Request {
	switch r := req.(type) {
	case *mcp.ServerRequest[*mcp.PingParams]:
		if r.Params != nil {
			return taskless(r, func(p *mcp.PingParams) *mcp.Meta { return &p.Meta })
		}
	case *mcp.ServerRequest[*mcp.SetLoggingLevelParams]: //lint:ignore SA1019 logging/setLevel is served through its deprecation window
		if r.Params != nil {
			return taskless(r, func(p *mcp.SetLoggingLevelParams) *mcp.Meta { return &p.Meta }) //lint:ignore SA1019 as above
		}
	case *mcp.UnsubscribeRequest:
		if r.Params != nil {
			return taskless(r, func(p *mcp.UnsubscribeParams) *mcp.Meta { return &p.Meta })
		}
	}
	return req
}

// subscribe lets a resources/subscribe through only for a resource the
// principal may read now. It is decided as a read is
// ([scope.Policy.DecideResource]) but not recorded: a subscription
// carries no content, and each read it prompts is decided and recorded.
func (m *middleware) subscribe(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	r, ok := req.(*mcp.SubscribeRequest)
	if !ok || r.Params == nil {
		return nil, fmt.Errorf("guardsdk: %s request of type %T", method, req)
	}
	ctx, perr := m.enter(ctx, req)
	ctx = m.withTask(ctx, r.Session, r.Params.Meta)
	r = taskless(r, func(p *mcp.SubscribeParams) *mcp.Meta { return &p.Meta })
	if err := m.mayRead(ctx, r.Params.URI, perr); err != nil {
		return nil, err
	}
	return next(ctx, method, r)
}

// listen is subscribe for subscriptions/listen (protocol 2026-07-28),
// which subscribes to resources itself, bypassing resources/subscribe:
// one resource the principal may not read refuses the whole stream.
func (m *middleware) listen(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	r, ok := req.(*mcp.SubscriptionsListenRequest)
	if !ok || r.Params == nil {
		return nil, fmt.Errorf("guardsdk: %s request of type %T", method, req)
	}
	ctx, perr := m.enter(ctx, req)
	ctx = m.withTask(ctx, r.Session, r.Params.Meta)
	r = taskless(r, func(p *mcp.SubscriptionsListenParams) *mcp.Meta { return &p.Meta })
	if n := r.Params.Notifications; n != nil {
		for _, uri := range n.ResourceSubscriptions {
			if err := m.mayRead(ctx, uri, perr); err != nil {
				return nil, err
			}
		}
	}
	return next(ctx, method, r)
}

// mayRead returns nil if the principal in ctx may read the resource uri
// now, else the denial the client receives.
func (m *middleware) mayRead(ctx context.Context, uri string, perr error) error {
	pr, ok := toolguard.PrincipalFrom(ctx)
	if !ok || pr.ID == "" {
		text := "subscription denied: the caller is not identified (no principal), so nothing may be read"
		if perr != nil {
			text += " (" + perr.Error() + ")"
		}
		return denied(text)
	}
	if reason, refused := toolguard.TaskRefused(ctx); refused {
		return denied("subscription denied: " + reason)
	}
	var task *scope.Task
	if t, ok := toolguard.TaskFrom(ctx); ok {
		task = &t
	}
	d := m.g.Policy().DecideResource(ctx, scope.ResourceInput{Principal: pr, URI: uri, Call: scope.Call{Time: time.Now()}, Task: task})
	if d.Effect == scope.Allow {
		return nil
	}
	return denied("subscription denied: " + d.Reason)
}

// warnUngranted logs, once, that the server offers resources or prompts
// while the policy grants none: they are then hidden from every client and
// every read or get is denied, which an operator upgrading from a version
// that let them through should hear about.
func (m *middleware) warnUngranted(res mcp.Result) {
	var caps *mcp.ServerCapabilities
	switch r := res.(type) {
	case *mcp.InitializeResult:
		caps = r.Capabilities
	case *mcp.DiscoverResult:
		caps = r.Capabilities
	}
	if caps == nil || (caps.Resources == nil && caps.Prompts == nil) || m.g.Policy().GrantsData() {
		return
	}
	if m.warned.CompareAndSwap(false, true) {
		m.log().Warn("guardsdk: the server offers resources or prompts, but no grant of the policy names any: they are hidden and every read or get is denied (grant them with resources: and prompts:)")
	}
}

// truncate bounds a client-supplied name repeated in an error.
func truncate(s string) string {
	const maxLen = 128
	if len(s) > maxLen {
		return s[:maxLen] + "…"
	}
	return s
}

// log is the middleware's logger (WithLogger), or slog's default.
func (m *middleware) log() *slog.Logger {
	if m.logger != nil {
		return m.logger
	}
	return slog.Default()
}
