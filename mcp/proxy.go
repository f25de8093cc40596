package guardmcp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/toolguard"
)

// WithLock pins upstream tools to the lock file at path (see [Lock]). With
// update, the lock is first rewritten from the upstream's current tools.
// Without WithLock (or with an empty path) tools are not pinned. Pinning
// needs [WithAuditSink], to record the denials it makes.
func WithLock(path string, update bool) Option {
	return func(o *options) { o.lockPath, o.updateLock = path, update }
}

// WithAuditSink gives the proxy the guard's audit sink, for the decision
// records of calls to tools it disables itself (tools that fail the lock).
func WithAuditSink(s audit.Sink) Option {
	return func(o *options) { o.sink = s }
}

// WithCallTimeout bounds each request forwarded upstream (default 2
// minutes), so that a hung upstream gives the client an error, not a hang.
func WithCallTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.callTimeout = d
		}
	}
}

// WithListTimeout bounds the initialization and the list requests the proxy
// makes upstream (default 30 seconds).
func WithListTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.listTimeout = d
		}
	}
}

// WithServerOptions adds options to the proxy's mcp-go server.
func WithServerOptions(opts ...server.ServerOption) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// WithServerInfo sets the name and version the proxy announces; by default
// it announces the upstream's.
func WithServerInfo(name, version string) Option {
	return func(o *options) { o.name, o.version = name, version }
}

// ErrUpstream wraps errors of the upstream server or its connection.
var ErrUpstream = errors.New("guardmcp: upstream")

// Proxy fronts an upstream MCP server with a guard. It re-serves the
// upstream's tools with their exact input schemas, annotations and titles,
// runs every tools/call through the guard, and passes resources, prompts,
// completions, logging, progress and list-changed notifications through.
//
// Create one with [DialProxy] (which also forwards the upstream's sampling,
// elicitation and roots requests) or [NewProxy], and serve [Proxy.Server] with any mcp-go
// transport. A Proxy is safe for concurrent use.
type Proxy struct {
	c    *client.Client
	g    *toolguard.Guard
	s    *server.MCPServer
	mw   *middleware // the guard on s
	o    options
	lock *Lock

	router *router // nil: server→client requests are not forwarded
	info   upstreamInfo
	shared *upSession // the session of c, which lists, and serves clients without a pool
	pool   *pool      // one upstream session per client session (DialProxy)

	listedMu sync.Mutex
	listed   map[string]listedTool // the upstream's order and execution settings
	order    listOrder             // the upstream's order of its other lists

	mu    sync.Mutex
	tools map[string]*proxyTool // by name, as served or disabled

	progSeq atomic.Uint64

	refreshMu sync.Mutex
	closed    atomic.Bool
}

type proxyTool struct {
	def      mcp.Tool // as listed upstream
	digest   string
	guarded  bool   // was registered on the guard (reviewed) at some point
	disabled string // why calls are denied, if they are
	rule     string // the audit record's rule for such denials
	gone     bool   // no longer listed upstream
	findings []Finding
}

type progressRoute struct {
	ctx   context.Context
	token mcp.ProgressToken
}

var toolNameRE = regexp.MustCompile(`^[A-Za-z0-9_\-./:]{1,128}$`)

// NewProxy connects the guard g to the upstream client c, which must be
// started (c.Start) and not yet initialized: NewProxy initializes it, so
// that the proxy can announce the upstream's capabilities and instructions.
// It lists the upstream's tools, resources, resource templates and prompts
// and registers them on the proxy's server; tools also on g.
//
// A tool whose name the guard does not accept, whose input schema does not
// compile, or that fails the lock is hidden and logged.
//
// The handlers of c for requests the upstream sends to its client
// (sampling, elicitation, roots) are c's own: mcp-go fixes them when the
// client is built, so the proxy cannot forward such requests to its
// clients. [DialProxy] builds the upstream client itself and does.
func NewProxy(ctx context.Context, c *client.Client, g *toolguard.Guard, opts ...Option) (*Proxy, error) {
	if c == nil || g == nil {
		return nil, errors.New("guardmcp: NewProxy needs a client and a guard")
	}
	return newProxy(ctx, c, g, nil, opts)
}

// newProxy builds the proxy; r, if not nil, routes the upstream's requests
// to the clients of the calls in flight.
func newProxy(ctx context.Context, c *client.Client, g *toolguard.Guard, r *router, opts []Option) (*Proxy, error) {
	o := buildOptions(opts)
	p := &Proxy{c: c, g: g, o: o, tools: map[string]*proxyTool{}, router: r}
	p.shared = &upSession{p: p, c: c, r: r}

	if o.lockPath != "" {
		if o.sink == nil {
			return nil, errors.New("guardmcp: tool pinning (WithLock) needs WithAuditSink")
		}
		if !o.updateLock {
			l, err := ReadLock(o.lockPath)
			if err != nil {
				return nil, fmt.Errorf("%w (write one with -update-lock / WithLock(path, true))", err)
			}
			p.lock = l
		}
	}

	var initRes *mcp.InitializeResult
	if !c.IsInitialized() {
		ictx, cancel := context.WithTimeout(ctx, o.listTimeout)
		req := mcp.InitializeRequest{}
		req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		req.Params.ClientInfo = mcp.Implementation{Name: "agentguard-proxy", Version: "1"}
		res, err := c.Initialize(ictx, req)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: initialize: %w", ErrUpstream, err)
		}
		initRes = res
		p.info.server, p.info.protocol = res.ServerInfo, res.ProtocolVersion
	}
	caps := c.GetServerCapabilities()
	warnUngrantedData(o.logger, g, caps)

	name, version := o.name, o.version
	if name == "" && initRes != nil {
		name, version = initRes.ServerInfo.Name, initRes.ServerInfo.Version
	}
	if name == "" {
		name, version = "agentguard-proxy", "1"
	}

	var sopts []server.ServerOption
	sopts = append(sopts, server.WithToolCapabilities(true))
	if caps.Resources != nil {
		sopts = append(sopts, server.WithResourceCapabilities(caps.Resources.Subscribe, true))
	}
	if caps.Prompts != nil {
		sopts = append(sopts, server.WithPromptCapabilities(true))
	}
	if caps.Logging != nil {
		sopts = append(sopts, server.WithLogging())
	}
	if caps.Completions != nil {
		sopts = append(sopts, server.WithCompletions(),
			server.WithPromptCompletionProvider(guardedCompleter{g, completer{p}}),
			server.WithResourceCompletionProvider(guardedCompleter{g, completer{p}}))
	}
	if initRes != nil && initRes.Instructions != "" {
		sopts = append(sopts, server.WithInstructions(initRes.Instructions))
	}
	sopts = append(sopts, infoOptions(initRes)...)
	sopts = append(sopts, o.serverOpts...)
	// The guard's options come last, so that hooks or a tracer among the
	// caller's options cannot replace the guard's.
	p.mw = newMiddleware(g, o, p.blocked)
	sopts = append(sopts, p.mw.serverOptions(o)...)
	p.s = server.NewMCPServer(name, version, sopts...)

	rawTools, err := p.listRawTools(ctx)
	if err != nil {
		return nil, err
	}
	if o.lockPath != "" && o.updateLock {
		if err := p.rewriteLock(rawTools); err != nil {
			return nil, err
		}
	}
	p.applyTools(rawTools)

	if caps.Resources != nil {
		if err := p.refreshResources(ctx); err != nil {
			return nil, err
		}
	}
	if caps.Prompts != nil {
		if err := p.refreshPrompts(ctx); err != nil {
			return nil, err
		}
	}
	c.OnNotification(p.onNotification)
	p.installHooks(caps)
	return p, nil
}

// Server returns the proxy's MCP server, to serve with mcp-go's stdio or
// streamable HTTP transport.
func (p *Proxy) Server() *server.MCPServer { return p.s }

// Close marks the proxy closed and closes the upstream client.
func (p *Proxy) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.pool != nil {
		p.pool.close()
	}
	return p.c.Close()
}

type rawTool struct {
	Name string `json:"name"`
	raw  json.RawMessage
}

// listRawTools reads tools/list without decoding the tools into mcp.Tool,
// which would drop schema keywords it does not model.
func (p *Proxy) listRawTools(ctx context.Context) ([]rawTool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.listTimeout)
	defer cancel()
	var out []rawTool
	var cursor string
	for page := 0; ; page++ {
		if page > 1000 {
			return nil, fmt.Errorf("%w: tools/list: too many pages", ErrUpstream)
		}
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		resp, err := p.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION,
			ID:      mcp.NewRequestId("guardmcp-tools-list-" + strconv.Itoa(page) + "-" + randomID()),
			Method:  string(mcp.MethodToolsList),
			Params:  params,
		})
		if err != nil {
			return nil, fmt.Errorf("%w: tools/list: %w", ErrUpstream, err)
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("%w: tools/list: %w", ErrUpstream, resp.Error.AsError())
		}
		var res struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &res); err != nil {
			return nil, fmt.Errorf("%w: tools/list: %w", ErrUpstream, err)
		}
		for _, t := range res.Tools {
			var rt rawTool
			if err := json.Unmarshal(t, &rt); err != nil {
				p.o.logger.Warn("guardmcp: hiding an upstream tool that cannot be decoded", "err", err)
				continue
			}
			rt.raw = t
			out = append(out, rt)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			return out, nil
		}
		cursor = res.NextCursor
	}
}

// upstreamTool builds the mcp.Tool served for a raw upstream definition:
// the schemas stay the upstream's bytes.
func upstreamTool(rt rawTool) (mcp.Tool, error) {
	var t mcp.Tool
	if err := json.Unmarshal(rt.raw, &t); err != nil {
		return t, err
	}
	var parts struct {
		InputSchema  json.RawMessage `json:"inputSchema"`
		OutputSchema json.RawMessage `json:"outputSchema"`
	}
	if err := json.Unmarshal(rt.raw, &parts); err != nil {
		return t, err
	}
	if len(parts.InputSchema) == 0 {
		parts.InputSchema = json.RawMessage(`{"type":"object"}`)
	}
	t.InputSchema = mcp.ToolInputSchema{}
	t.RawInputSchema = parts.InputSchema
	t.OutputSchema = mcp.ToolOutputSchema{}
	t.RawOutputSchema = nil
	if len(parts.OutputSchema) > 0 && string(parts.OutputSchema) != "null" {
		t.RawOutputSchema = parts.OutputSchema
	}
	// Task-augmented execution is not proxied: calls are forwarded
	// synchronously.
	t.Execution = nil
	return t, nil
}

// applyTools brings the served tools in line with the upstream's list.
func (p *Proxy) applyTools(list []rawTool) {
	p.noteListed(list)
	p.mu.Lock()
	defer p.mu.Unlock()
	findings := p.scan(list)
	seen := map[string]bool{}
	for _, rt := range list {
		if seen[rt.Name] {
			p.o.logger.Warn("guardmcp: hiding a duplicate upstream tool", "tool", rt.Name)
			continue
		}
		seen[rt.Name] = true
		if !toolNameRE.MatchString(rt.Name) {
			p.o.logger.Warn("guardmcp: hiding an upstream tool whose name the guard does not accept", "tool", rt.Name)
			continue
		}
		digest, err := ToolDigest(rt.raw)
		if err != nil {
			p.o.logger.Warn("guardmcp: hiding an upstream tool", "tool", rt.Name, "err", err)
			continue
		}
		t, err := upstreamTool(rt)
		if err != nil {
			p.o.logger.Warn("guardmcp: hiding an upstream tool", "tool", rt.Name, "err", err)
			continue
		}
		cur := p.tools[rt.Name]
		if cur != nil && cur.digest == digest {
			p.rescanned(cur, findings[rt.Name])
			if cur.gone {
				// Back, unchanged, after it disappeared upstream.
				cur.gone = false
				if cur.disabled == "" && !p.registerTool(t) {
					delete(p.tools, rt.Name)
					continue
				}
				p.s.AddTool(t, p.forward)
			}
			continue
		}
		disabled := ""
		if p.lock != nil {
			locked, ok := p.lock.Tools[rt.Name]
			switch {
			case !ok:
				disabled = fmt.Sprintf("tool %q is not in the tool lock; it stays disabled until the lock is updated on purpose", rt.Name)
			case locked != digest:
				disabled = fmt.Sprintf("tool %q changed since the tool lock was written (%s, locked %s); it stays disabled until the lock is updated on purpose", rt.Name, digest, locked)
			}
		}
		if disabled == "" && cur != nil && cur.guarded {
			disabled = fmt.Sprintf("tool %q changed upstream while the proxy was running; it stays disabled until the proxy restarts", rt.Name)
		}
		rule := "tool-lock"
		if disabled == "" {
			if disabled = p.flagged(rt.Name, findings[rt.Name]); disabled != "" {
				rule = RulePoisoning
			}
		}
		p.logFindings(findings[rt.Name], disabled != "")
		pt := &proxyTool{def: t, digest: digest, disabled: disabled, rule: rule, findings: findings[rt.Name]}
		if cur != nil {
			pt.guarded = cur.guarded
		}
		if disabled == "" {
			if !p.registerTool(t) {
				continue
			}
			pt.guarded = true
		} else {
			if cur != nil && !cur.gone && cur.disabled == "" {
				p.g.Unregister(rt.Name)
			}
			p.o.logger.Warn("guardmcp: disabling an upstream tool", "tool", rt.Name, "reason", disabled)
		}
		p.tools[rt.Name] = pt
		// Disabled tools stay on the server (the filter hides them from
		// lists) so that calls reach the middleware and are recorded.
		p.s.AddTool(t, p.forward)
	}
	for name, pt := range p.tools {
		if !seen[name] && !pt.gone {
			// Gone upstream: calls are denied as calls of an unknown tool.
			pt.gone = true
			p.s.DeleteTools(name)
			p.g.Unregister(name)
		}
	}
}

// registerTool registers an upstream tool on the guard, whose handler
// forwards the call. It reports whether the guard accepted the tool.
func (p *Proxy) registerTool(t mcp.Tool) bool {
	gt, err := guardTool(t)
	if err == nil {
		gt.Handler = guardHandler(t.Name, p.forward)
		p.g.Unregister(t.Name)
		err = p.g.Register(gt)
	}
	if err != nil {
		p.o.logger.Warn("guardmcp: hiding an upstream tool the guard does not accept", "tool", t.Name, "err", err)
		return false
	}
	return true
}

// blocked denies calls to disabled tools, before the guard, writing the
// decision record itself.
func (p *Proxy) blocked(ctx context.Context, req *mcp.CallToolRequest, args json.RawMessage) (*mcp.CallToolResult, bool) {
	p.mu.Lock()
	pt := p.tools[req.Params.Name]
	reason, rule := "", ""
	if pt != nil {
		reason, rule = pt.disabled, pt.rule
	}
	p.mu.Unlock()
	if reason == "" {
		return nil, false
	}
	return p.denyDisabled(ctx, req.Params.Name, args, rule, reason), true
}

func (p *Proxy) denyDisabled(ctx context.Context, name string, args json.RawMessage, rule, reason string) *mcp.CallToolResult {
	rec := &audit.Record{
		ID:     randomID(),
		Kind:   audit.KindDecision,
		Time:   time.Now(),
		Tool:   name,
		Effect: "deny",
		Stage:  string(toolguard.StageTool),
		Rule:   rule,
		Reason: reason,
	}
	if pol := p.g.Policy(); pol != nil {
		rec.Policy = pol.Revision()
	}
	if pr, ok := toolguard.PrincipalFrom(ctx); ok {
		rec.Principal = pr.ID
	}
	rec.Session, _ = toolguard.SessionFrom(ctx)
	// Only the digest of the arguments: without the tool's schema the
	// proxy cannot tell which values are secrets.
	if v, err := safejson.Decode(args, safejson.Limits{}); err == nil {
		if b, err := canonjson.Marshal(v); err == nil {
			sum := sha256.Sum256(b)
			rec.ArgsSHA256 = hex.EncodeToString(sum[:])
		}
	}
	if rec.ArgsSHA256 == "" {
		sum := sha256.Sum256(args)
		rec.ArgsSHA256 = hex.EncodeToString(sum[:])
	}
	if err := p.o.sink.Write(ctx, rec); err != nil {
		reason += "; and the decision could not be recorded"
	}
	return errorResult(fmt.Sprintf("call to %q denied: %s", name, reason))
}

// forward runs an allowed call upstream with the validated arguments. The
// caller's HTTP headers (and so any bearer token) are not forwarded.
func (p *Proxy) forward(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	u, done, err := p.upstream(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return u.callTool(ctx, req)
}

func (p *Proxy) onNotification(n mcp.JSONRPCNotification) {
	if p.closed.Load() {
		return
	}
	switch n.Method {
	case string(mcp.MethodNotificationToolsListChanged):
		go p.refresh(func(ctx context.Context) error {
			list, err := p.listRawTools(ctx)
			if err == nil {
				p.applyTools(list)
			}
			return err
		})
	case string(mcp.MethodNotificationResourcesListChanged):
		go p.refresh(p.refreshResources)
	case string(mcp.MethodNotificationPromptsListChanged):
		go p.refresh(p.refreshPrompts)
	case string(mcp.MethodNotificationProgress):
		p.shared.onNotification(n)
	default:
		if p.pool != nil {
			// The listing session's own log messages: no client asked.
			return
		}
		// Logging messages, resource updates and anything else the
		// shared upstream session announces go to every connected client.
		p.s.SendNotificationToAllClients(n.Method, notificationParams(n))
	}
}

func cloneParams(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (p *Proxy) refresh(f func(ctx context.Context) error) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.o.listTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		p.o.logger.Warn("guardmcp: refreshing from upstream failed", "err", err)
	}
}

func (p *Proxy) refreshResources(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.listTimeout)
	defer cancel()
	res, err := p.c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		return fmt.Errorf("%w: resources/list: %w", ErrUpstream, err)
	}
	var rs []server.ServerResource
	for _, r := range res.Resources {
		rs = append(rs, server.ServerResource{Resource: r, Handler: p.readResource})
	}
	p.noteOrder(func(o *listOrder) { o.resources = indexBy(res.Resources, func(r mcp.Resource) string { return r.URI }) })
	p.s.SetResources(rs...)
	tres, err := p.c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		return fmt.Errorf("%w: resources/templates/list: %w", ErrUpstream, err)
	}
	var ts []server.ServerResourceTemplate
	for _, t := range tres.ResourceTemplates {
		ts = append(ts, server.ServerResourceTemplate{Template: t, Handler: p.readResource})
	}
	p.noteOrder(func(o *listOrder) { o.templates = indexBy(tres.ResourceTemplates, templateKey) })
	p.s.SetResourceTemplates(ts...)
	return nil
}

func (p *Proxy) readResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	u, done, err := p.upstream(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return u.readResource(ctx, req.Params.URI)
}

func (p *Proxy) refreshPrompts(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.o.listTimeout)
	defer cancel()
	res, err := p.c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		return fmt.Errorf("%w: prompts/list: %w", ErrUpstream, err)
	}
	var ps []server.ServerPrompt
	for _, pr := range res.Prompts {
		ps = append(ps, server.ServerPrompt{Prompt: pr, Handler: p.getPrompt})
	}
	p.noteOrder(func(o *listOrder) { o.prompts = indexBy(res.Prompts, func(pr mcp.Prompt) string { return pr.Name }) })
	p.s.SetPrompts(ps...)
	return nil
}

func (p *Proxy) getPrompt(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	u, done, err := p.upstream(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return u.getPrompt(ctx, req.Params.Name, req.Params.Arguments)
}

// completer forwards completion/complete upstream.
type completer struct{ p *Proxy }

func (c completer) complete(ctx context.Context, ref any, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	u, done, err := c.p.upstream(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return u.complete(ctx, ref, arg, cc)
}

func (c completer) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, mcp.PromptReference{Type: "ref/prompt", Name: name}, arg, cc)
}

func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, mcp.ResourceReference{Type: "ref/resource", URI: uri}, arg, cc)
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
