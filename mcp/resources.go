package guardmcp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/internal/taskmeta"
	"github.com/agentguard/agentguard/toolguard"
)

// Resources and prompts are governed by the policy's resource and prompt
// grants and rules (see the scope package). On an mcp-go server,
// ServerOptions installs:
//
//   - a resource handler middleware: every resources/read of a resource or
//     template the server serves goes through [toolguard.Guard.ReadResource]
//     — decided by URI, recorded — before the handler runs;
//   - a prompt filter and a prompt handler middleware: prompts/list shows
//     only prompts the principal is granted, and every prompts/get goes
//     through [toolguard.Guard.GetPrompt], decided with its arguments and
//     recorded;
//   - hooks that filter the results of resources/list and
//     resources/templates/list to what the principal is granted, and empty
//     the completions of completion/complete for a prompt or resource
//     template the principal is not granted.
//
// A denied read or get is a JSON-RPC error (-32602, invalid params, as
// for a resource or prompt that does not exist) whose message is the
// reason.

const promptGetSpanName = "mcp." + string(mcp.MethodPromptsGet)

type promptGetKey struct{}

func isPromptGet(ctx context.Context) bool {
	v, _ := ctx.Value(promptGetKey{}).(bool)
	return v
}

// deniedRPC is a denial as a JSON-RPC error a handler may return.
type deniedRPC struct{ reason string }

func (e deniedRPC) Error() string { return e.reason }

func (e deniedRPC) JSONRPCError() mcp.JSONRPCError {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION,
		Error: mcp.JSONRPCErrorDetails{Code: mcp.INVALID_PARAMS, Message: e.reason}}
}

// dataErr turns a guard error into the error a handler returns.
func dataErr(err error) error {
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		return server.NewHandlerError(deniedRPC{reason: de.ModelText()})
	}
	return err
}

func (m *middleware) wrapResource(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		ctx = m.withTask(m.withSession(ctx), req.Params.Meta)
		req.Params.Meta = withoutTask(req.Params.Meta)
		out, err := m.g.ReadResource(ctx, req.Params.URI, func(ctx context.Context) (any, error) {
			return next(ctx, req)
		})
		if err != nil {
			return nil, dataErr(err)
		}
		contents, _ := out.([]mcp.ResourceContents)
		return contents, nil
	}
}

func (m *middleware) wrapPrompt(next server.PromptHandlerFunc) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		ctx = m.withTask(m.withSession(ctx), req.Params.Meta)
		req.Params.Meta = withoutTask(req.Params.Meta)
		out, err := m.g.GetPrompt(ctx, req.Params.Name, req.Params.Arguments, func(ctx context.Context) (any, error) {
			return next(ctx, req)
		})
		if err != nil {
			return nil, dataErr(err)
		}
		res, _ := out.(*mcp.GetPromptResult)
		if res == nil {
			return nil, errors.New("guardmcp: the prompt handler returned no result")
		}
		return res, nil
	}
}

// filterPrompts is the prompt filter. On prompts/list it keeps the prompts
// the principal may see; on prompts/get it lets the prompt through to the
// middleware, which decides and records the get.
func (m *middleware) filterPrompts(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
	if m.g == nil {
		return nil
	}
	if isPromptGet(ctx) {
		return prompts
	}
	out := make([]mcp.Prompt, 0, len(prompts))
	for _, p := range prompts {
		if m.g.PromptVisible(ctx, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// dataHooks is a server option adding the hooks that filter resource
// lists and completions. The hooks only narrow a result already made;
// reads and gets are enforced by the middleware.
func (m *middleware) dataHooks(s *server.MCPServer) {
	h := s.GetHooks()
	if h == nil {
		h = &server.Hooks{}
		server.WithHooks(h)(s)
	}
	h.AddAfterListResources(func(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res == nil {
			return
		}
		out := make([]mcp.Resource, 0, len(res.Resources))
		for _, r := range res.Resources {
			if m.g != nil && m.g.ResourceVisible(ctx, r.URI) {
				out = append(out, r)
			}
		}
		res.Resources = out
	})
	h.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		if res == nil {
			return
		}
		out := make([]mcp.ResourceTemplate, 0, len(res.ResourceTemplates))
		for _, t := range res.ResourceTemplates {
			if m.g != nil && t.URITemplate != nil && t.URITemplate.Template != nil && m.g.ResourceTemplateVisible(ctx, t.URITemplate.Raw()) {
				out = append(out, t)
			}
		}
		res.ResourceTemplates = out
	})
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		return m.completionTask(ctx, message)
	})
	h.AddAfterComplete(func(ctx context.Context, _ any, req *mcp.CompleteRequest, res *mcp.CompleteResult) {
		if res != nil && (req == nil || !completionAllowed(ctx, m.g, req.Params.Ref)) {
			res.Completion = mcp.Completion{Values: []string{}}
		}
	})
}

// completionTask decides a completion/complete whose _meta carries a
// task, which mcp-go drops when it decodes the request: under a refused
// task, or for a prompt or template the task's scopes do not reach, the
// completion is refused before any provider runs. message is the raw
// request (mcp-go answers an error with -32600 and its text).
func (m *middleware) completionTask(ctx context.Context, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || m.g == nil {
		return nil
	}
	var req struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(raw, &req) != nil || req.Method != string(mcp.MethodCompletionComplete) {
		return nil // mcp-go refuses what it cannot decode
	}
	var withMeta struct {
		Meta json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(req.Params, &withMeta) != nil || withMeta.Meta == nil {
		return nil // no _meta, no task
	}
	// From here on, what cannot be read is refused: mcp-go would go on
	// without the task.
	var meta map[string]any
	if json.Unmarshal(withMeta.Meta, &meta) != nil {
		return errors.New("completion denied: the request's _meta cannot be read, so a task in it cannot be checked")
	}
	if _, present, err := taskmeta.Read(meta); !present && err == nil {
		return nil
	}
	ctx = m.withTask(m.withSession(ctx), &mcp.Meta{AdditionalFields: meta})
	if reason, refused := toolguard.TaskRefused(ctx); refused {
		return errors.New("completion denied: " + reason)
	}
	// The ref as mcp-go reads it, with its decoder: the provider completes
	// what this names.
	var params mcp.CompleteParams
	if json.Unmarshal(req.Params, &params) != nil {
		return errors.New("completion denied: its params cannot be read")
	}
	if !completionAllowed(ctx, m.g, params.Ref) {
		return errors.New("completion denied: the request's task does not reach this prompt or template")
	}
	return nil
}

// completionAllowed reports whether the principal in ctx may have
// completions for ref: a prompt or resource template it is granted.
func completionAllowed(ctx context.Context, g *toolguard.Guard, ref any) bool {
	if g == nil {
		return false
	}
	switch r := ref.(type) {
	case mcp.PromptReference:
		return g.PromptVisible(ctx, r.Name)
	case mcp.ResourceReference:
		return g.ResourceTemplateVisible(ctx, r.URI)
	}
	return false
}

// guardedCompleter asks the inner provider only for prompts and resource
// templates the principal is granted; for the others it answers no
// completions, and the upstream is never asked.
type guardedCompleter struct {
	g     *toolguard.Guard
	inner interface {
		server.PromptCompletionProvider
		server.ResourceCompletionProvider
	}
}

// CompletePromptArgument completes a prompt's argument if the prompt is
// granted.
func (c guardedCompleter) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	if !c.g.PromptVisible(ctx, name) {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return c.inner.CompletePromptArgument(ctx, name, arg, cc)
}

// CompleteResourceArgument completes a template's argument if the template
// is granted.
func (c guardedCompleter) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	if !c.g.ResourceTemplateVisible(ctx, uri) {
		return &mcp.Completion{Values: []string{}}, nil
	}
	return c.inner.CompleteResourceArgument(ctx, uri, arg, cc)
}

// warnUngrantedData logs, when the proxy starts, that the upstream offers
// resources or prompts which the policy grants to no one: they are then
// hidden from every client, which an operator upgrading from a version
// that passed them through should hear about.
func warnUngrantedData(l *slog.Logger, g *toolguard.Guard, caps mcp.ServerCapabilities) {
	if (caps.Resources != nil || caps.Prompts != nil) && !g.Policy().GrantsData() {
		l.Warn("guardmcp: the upstream offers resources or prompts, but no grant of the policy names any: they are hidden and every read or get is denied (grant them with resources: and prompts:)")
	}
}
