package guardmcp

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// upstream returns the upstream session that serves the client of ctx:
// its own with [DialProxy], the shared one with [NewProxy]. done must be
// called when the request is over.
func (p *Proxy) upstream(ctx context.Context) (*upSession, func(), error) {
	if p.pool == nil {
		return p.shared, func() {}, nil
	}
	u, done, err := p.pool.session(ctx)
	if err != nil {
		// The client reads the message: no Go package names in it.
		return nil, nil, readableError{err}
	}
	return u, done, nil
}

// readableError is an error whose message a client reads: err's, without
// the package prefix. It unwraps to err.
type readableError struct{ err error }

func (e readableError) Error() string { return modelText(e.err) }

func (e readableError) Unwrap() error { return e.err }

// UpstreamSessions returns the number of upstream sessions the proxy has
// open (or is opening) for its clients, besides the one it lists with.
func (p *Proxy) UpstreamSessions() int {
	if p.pool == nil {
		return 0
	}
	return p.pool.len()
}

// infoOptions announce the upstream's title, description, website and
// icons as the proxy's own.
func infoOptions(res *mcp.InitializeResult) []server.ServerOption {
	if res == nil {
		return nil
	}
	var out []server.ServerOption
	si := res.ServerInfo
	if si.Title != "" {
		out = append(out, server.WithTitle(si.Title))
	}
	if si.Description != "" {
		out = append(out, server.WithDescription(si.Description))
	}
	if si.WebsiteURL != "" {
		out = append(out, server.WithWebsiteURL(si.WebsiteURL))
	}
	if len(si.Icons) > 0 {
		out = append(out, server.WithIcons(si.Icons...))
	}
	return out
}

// unlistedName names the resource template through which resources/read
// of a URI the upstream does not list is forwarded (mcp-go answers a URI
// that matches no resource or template itself). It is never listed.
const unlistedName = "guardmcp unlisted resource"

// listedTool is what the proxy keeps of an upstream tool's listing beyond
// what it serves: its place in the list and its execution settings.
type listedTool struct {
	index     int
	execution *mcp.ToolExecution
}

// noteListed records the order and execution settings of the upstream's
// tools, which tools/list gives back as the upstream has them.
func (p *Proxy) noteListed(list []rawTool) {
	m := make(map[string]listedTool, len(list))
	for i, rt := range list {
		var x struct {
			Execution *mcp.ToolExecution `json:"execution"`
		}
		_ = json.Unmarshal(rt.raw, &x)
		if _, dup := m[rt.Name]; !dup {
			m[rt.Name] = listedTool{index: i, execution: x.Execution}
		}
	}
	p.listedMu.Lock()
	p.listed = m
	p.listedMu.Unlock()
}

// listOrder is the place of each resource (by URI), resource template (by
// URI template) and prompt (by name) in the upstream's lists: mcp-go sorts
// what it lists, and the proxy gives the lists back in the upstream's order.
type listOrder struct {
	resources, templates, prompts map[string]int
}

// noteOrder updates the recorded order under the proxy's lock.
func (p *Proxy) noteOrder(f func(*listOrder)) {
	p.listedMu.Lock()
	defer p.listedMu.Unlock()
	f(&p.order)
}

// listOrderNow returns the recorded order.
func (p *Proxy) listOrderNow() listOrder {
	p.listedMu.Lock()
	defer p.listedMu.Unlock()
	return p.order
}

// indexBy maps the key of each item to its first place in list.
func indexBy[T any](list []T, key func(T) string) map[string]int {
	m := make(map[string]int, len(list))
	for i, v := range list {
		if _, dup := m[key(v)]; !dup {
			m[key(v)] = i
		}
	}
	return m
}

// asOrdered sorts list stably into the order index records; items it does
// not know keep their place after the known ones.
func asOrdered[T any](list []T, index map[string]int, key func(T) string) {
	place := func(v T) int {
		if i, ok := index[key(v)]; ok {
			return i
		}
		return len(index)
	}
	slices.SortStableFunc(list, func(a, b T) int { return place(a) - place(b) })
}

func templateKey(t mcp.ResourceTemplate) string {
	if t.URITemplate == nil || t.URITemplate.Template == nil {
		return ""
	}
	return t.URITemplate.Raw()
}

// installHooks forwards what mcp-go would otherwise answer itself:
// logging/setLevel and resource subscriptions go to the client's upstream
// session; lists keep the upstream's order and metadata; reads of unlisted
// URIs are forwarded. It also ties upstream sessions to client sessions.
func (p *Proxy) installHooks(caps mcp.ServerCapabilities) {
	h := p.s.GetHooks()
	subscribe := caps.Resources != nil && caps.Resources.Subscribe
	h.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		raw, ok := message.(json.RawMessage)
		if !ok {
			return nil
		}
		var m struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(raw, &m) != nil {
			return nil
		}
		switch m.Method {
		case string(mcp.MethodSetLogLevel):
			if caps.Logging != nil {
				return p.setLevel(ctx, m.Params)
			}
		case string(mcp.MethodResourcesSubscribe), string(mcp.MethodResourcesUnsubscribe):
			if subscribe {
				return p.subscription(ctx, m.Method, m.Params)
			}
		}
		return nil
	})
	h.AddAfterInitialize(func(ctx context.Context, _ any, _ *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		if p.pool != nil {
			// Open the client's upstream session now rather than on its
			// first request (a command upstream takes a while to start).
			go func() {
				if _, done, err := p.pool.session(context.WithoutCancel(ctx)); err == nil {
					done()
				}
			}()
		}
	})
	h.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		if p.pool != nil {
			p.pool.attach(s)
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		if p.pool != nil {
			p.pool.detach(s)
		}
	})
	h.AddAfterListTools(func(ctx context.Context, _ any, _ *mcp.ListToolsRequest, res *mcp.ListToolsResult) {
		if res == nil {
			return
		}
		if p.pool != nil {
			res.Tools = p.pool.visible(ctx, res.Tools)
		}
		p.asListed(res.Tools)
	})
	h.AddAfterListResourceTemplates(func(_ context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		if res != nil {
			res.ResourceTemplates = slices.DeleteFunc(res.ResourceTemplates, func(t mcp.ResourceTemplate) bool { return t.Name == unlistedName })
			asOrdered(res.ResourceTemplates, p.listOrderNow().templates, templateKey)
		}
	})
	h.AddAfterListResources(func(_ context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res != nil {
			asOrdered(res.Resources, p.listOrderNow().resources, func(r mcp.Resource) string { return r.URI })
		}
	})
	h.AddAfterListPrompts(func(_ context.Context, _ any, _ *mcp.ListPromptsRequest, res *mcp.ListPromptsResult) {
		if res != nil {
			asOrdered(res.Prompts, p.listOrderNow().prompts, func(pr mcp.Prompt) string { return pr.Name })
		}
	})
	if caps.Resources != nil {
		p.s.AddResourceTemplate(mcp.NewResourceTemplate("{+uri}", unlistedName), p.readResource)
	}
}

// asListed puts tools in the upstream's order, with their execution
// settings (calls are forwarded synchronously, whatever they say).
func (p *Proxy) asListed(tools []mcp.Tool) {
	p.listedMu.Lock()
	m := p.listed
	p.listedMu.Unlock()
	for i := range tools {
		if l, ok := m[tools[i].Name]; ok && l.execution != nil {
			tools[i].Execution = l.execution
		}
	}
	slices.SortStableFunc(tools, func(a, b mcp.Tool) int { return m[a.Name].index - m[b.Name].index })
}

// setLevel forwards logging/setLevel to the client's upstream session, so
// that the upstream sends that client the messages of its level.
func (p *Proxy) setLevel(ctx context.Context, params json.RawMessage) error {
	var req struct {
		Level mcp.LoggingLevel `json:"level"`
	}
	if json.Unmarshal(params, &req) != nil || !validLevel(req.Level) {
		return nil // mcp-go refuses it with -32602
	}
	u, done, err := p.upstream(ctx)
	if err != nil {
		return modelError(err)
	}
	defer done()
	if _, err := u.call(ctx, string(mcp.MethodSetLogLevel), map[string]any{"level": req.Level}); err != nil {
		return modelError(err)
	}
	if p.pool != nil {
		p.pool.setLevel(u, req.Level)
	}
	return nil
}

func validLevel(l mcp.LoggingLevel) bool {
	switch l {
	case mcp.LoggingLevelDebug, mcp.LoggingLevelInfo, mcp.LoggingLevelNotice,
		mcp.LoggingLevelWarning, mcp.LoggingLevelError, mcp.LoggingLevelCritical,
		mcp.LoggingLevelAlert, mcp.LoggingLevelEmergency:
		return true
	}
	return false
}

// subscription decides resources/subscribe or resources/unsubscribe of a
// URI as the guard decides a read of it, records it, and forwards it only
// if allowed, to the client's upstream session, whose
// notifications/resources/updated go to that client only. mcp-go answers
// the error this returns with -32600 and its text.
func (p *Proxy) subscription(ctx context.Context, method string, params json.RawMessage) error {
	var req struct {
		URI  string    `json:"uri"`
		Meta *mcp.Meta `json:"_meta"`
	}
	if json.Unmarshal(params, &req) != nil || req.URI == "" {
		return nil // mcp-go refuses it with -32602
	}
	on := method == string(mcp.MethodResourcesSubscribe)
	// A task in _meta narrows the subscription as it narrows a read; the
	// upstream gets the URI alone, never the token.
	ctx = p.mw.withTask(p.mw.withSession(ctx), req.Meta)
	_, err := p.g.SubscribeResource(ctx, req.URI, on, func(ctx context.Context) (any, error) {
		u, done, err := p.upstream(ctx)
		if err != nil {
			return nil, err
		}
		defer done()
		if _, err := u.call(ctx, method, map[string]any{"uri": req.URI}); err != nil {
			return nil, err
		}
		if p.pool != nil {
			p.pool.subscribed(u, req.URI, on)
		}
		return nil, nil
	})
	if err != nil {
		return modelError(err)
	}
	return nil
}

// modelError is err as the client reads it: an upstream JSON-RPC error's
// own message, else the error without the package name.
func modelError(err error) error {
	var re *RPCError
	if errors.As(err, &re) {
		return errors.New(re.Details.Message)
	}
	return errors.New(modelText(err))
}
