package guardmcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/toolguard"
)

// Upstream says how [DialProxy] reaches the upstream MCP server: a command
// run over stdio, or a streamable HTTP URL. Exactly one of Command and URL
// must be set. DialProxy connects once to list, and once more for each
// client session (a process per client for a command).
//
// Sampling and elicitation are declared upstream for a client that
// declared them, unless NoSampling or NoElicitation turns that kind off;
// roots only with ForwardRoots.
type Upstream struct {
	// Command is the upstream's argv, run over stdio.
	Command []string
	// Env is added to the proxy's own environment for Command.
	Env []string
	// Stderr receives the command's standard error; nil discards it.
	Stderr io.Writer

	// URL is the upstream's streamable HTTP endpoint.
	URL string
	// HTTPOptions configure the streamable HTTP transport.
	HTTPOptions []transport.StreamableHTTPCOption

	// ClientOptions configure the mcp-go client, after the proxy's own
	// (for example client.WithLegacyProtocolOnly).
	ClientOptions []client.ClientOption

	// NoSampling and NoElicitation turn off forwarding of
	// sampling/createMessage and elicitation/create.
	NoSampling, NoElicitation bool

	// ForwardRoots declares the roots capability on the upstream session
	// of each client that declared it, and forwards that session's
	// roots/list to that client. Off by default: a client's roots may
	// widen what the upstream serves (the MCP filesystem server replaces
	// the directories of its command line with them). Without it the
	// upstream keeps its own configuration (for a command, its arguments).
	ForwardRoots bool
}

// DialProxy connects to the upstream server described by up and fronts it
// with the guard g, like [NewProxy]. Unlike NewProxy, it gives each client
// session an upstream session of its own, opened on the client's first
// request and declaring upstream only the capabilities that client
// declared: its logging level, subscriptions and roots stay its own, and
// what the upstream sends that session — log messages, resource updates,
// progress, sampling/createMessage, elicitation/create and roots/list —
// goes to that client only. The upstream sessions are bounded
// ([WithMaxSessions]), closed when idle ([WithSessionIdle]) or when their
// client leaves, and bound to the principal that opened them
// ([ErrSessionPrincipal]). A separate listing session reads the tools,
// resources and prompts; each client is shown the tools its own session
// lists.
//
// The proxy owns the clients: [Proxy.Close] closes them.
func DialProxy(ctx context.Context, up Upstream, g *toolguard.Guard, opts ...Option) (*Proxy, error) {
	if g == nil {
		return nil, errors.New("guardmcp: DialProxy needs a guard")
	}
	switch {
	case len(up.Command) > 0 && up.URL != "":
		return nil, errors.New("guardmcp: DialProxy needs an upstream command or URL, not both")
	case len(up.Command) == 0 && up.URL == "":
		return nil, errors.New("guardmcp: DialProxy needs an upstream command or URL")
	}
	o := buildOptions(opts)
	dial := func(ctx context.Context, caps mcp.ClientCapabilities, r *router, s func() *server.MCPServer) (*client.Client, error) {
		tr, err := up.transport(caps)
		if err != nil {
			return nil, err
		}
		copts := []client.ClientOption{client.WithClientCapabilities(mcp.ClientCapabilities{})}
		if caps.Sampling != nil {
			copts = append(copts, client.WithSamplingHandler(samplingForwarder{r, s}))
		}
		if caps.Elicitation != nil {
			copts = append(copts, client.WithElicitationHandler(elicitationForwarder{r, s}))
		}
		if caps.Roots != nil && s == nil {
			copts = append(copts, client.WithRootsHandler(noRoots{}))
		} else if caps.Roots != nil {
			copts = append(copts, client.WithRootsHandler(rootsForwarder{r, s}))
		}
		copts = append(copts, client.WithClientCapabilities(caps))
		copts = append(copts, up.ClientOptions...)
		c := client.NewClient(tr, copts...)
		if err := c.Start(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: start: %w", ErrUpstream, err)
		}
		return c, nil
	}
	// The listing session lists the upstream's tools, resources and
	// prompts, and follows their changes. It declares sampling and elicitation where they are forwarded, so
	// that it sees the tools an upstream offers only to clients that have
	// them (each client is then shown those its own session lists), and
	// refuses such requests: it makes no call for any client. With
	// ForwardRoots it declares roots too, and has none.
	c, err := dial(ctx, up.allowed(mcp.ClientCapabilities{Sampling: &mcp.SamplingCapability{}, Elicitation: &mcp.ElicitationCapability{},
		Roots: &struct {
			ListChanged bool `json:"listChanged,omitempty"`
		}{}}),
		&router{timeout: o.callTimeout, calls: map[uint64]context.Context{}}, nil)
	if err != nil {
		return nil, err
	}
	p, err := newProxy(ctx, c, g, nil, opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	p.info.command, p.info.url = slices.Clone(up.Command), up.URL
	srv := func() *server.MCPServer { return p.s }
	p.pool = newPool(p, func(ctx context.Context, caps mcp.ClientCapabilities, info mcp.Implementation, u *upSession) (*client.Client, error) {
		c, err := dial(ctx, up.allowed(caps), u.r, srv)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, p.o.listTimeout)
		defer cancel()
		if info.Name == "" {
			info = mcp.Implementation{Name: "agentguard-proxy", Version: "1"}
		}
		req := mcp.InitializeRequest{}
		req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		req.Params.ClientInfo = info
		if _, err := c.Initialize(ctx, req); err != nil {
			c.Close()
			return nil, fmt.Errorf("initialize: %w", err)
		}
		return c, nil
	})
	return p, nil
}

// allowed returns the capabilities of a client that the proxy declares
// upstream for it: those it declared, less the kinds up turns off.
func (up Upstream) allowed(caps mcp.ClientCapabilities) mcp.ClientCapabilities {
	var out mcp.ClientCapabilities
	if !up.NoSampling {
		out.Sampling = caps.Sampling
	}
	if !up.NoElicitation {
		out.Elicitation = caps.Elicitation
	}
	if up.ForwardRoots && caps.Roots != nil {
		// Without listChanged: the proxy does not pass the client's
		// roots/list_changed notifications on.
		out.Roots = &struct {
			ListChanged bool `json:"listChanged,omitempty"`
		}{}
	}
	return out
}

// transport builds a new connection to the upstream: a process of its own
// for a command, a new HTTP session for a URL.
func (up Upstream) transport(caps mcp.ClientCapabilities) (transport.Interface, error) {
	if len(up.Command) > 0 {
		var sopts []transport.StdioOption
		if up.Stderr != nil {
			sopts = append(sopts, transport.WithCommandStderrWriter(up.Stderr))
		}
		return transport.NewStdioWithOptions(up.Command[0], up.Env, up.Command[1:], sopts...), nil
	}
	// Servers send requests, log messages and resource updates outside a
	// call on the listening (GET) stream.
	//lint:ignore SA1019 the legacy protocol versions the proxy speaks upstream have the GET stream
	hopts := append([]transport.StreamableHTTPCOption{transport.WithContinuousListening()}, up.HTTPOptions...)
	h, err := transport.NewStreamableHTTP(up.URL, hopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpstream, err)
	}
	return h, nil
}

// ErrNotRouted is returned to the upstream for a request the proxy cannot
// pass to a client: it came on the listing session, which serves no
// client, or the client session it belongs to is gone.
var ErrNotRouted = errors.New("guardmcp: the request cannot be routed to a client")

// router tracks the tool calls in flight, to find the client session a
// server→client request from the upstream belongs to.
type router struct {
	timeout time.Duration
	// base, if set, gives the context of the one client session the
	// router serves, for requests that arrive with no call in flight.
	base func() (context.Context, bool)

	mu    sync.Mutex
	seq   uint64
	calls map[uint64]context.Context
}

// enter records a call in flight until the returned function is called.
func (r *router) enter(ctx context.Context) func() {
	if r == nil || server.ClientSessionFromContext(ctx) == nil {
		return func() {}
	}
	r.mu.Lock()
	r.seq++
	id := r.seq
	r.calls[id] = ctx
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.calls, id)
		r.mu.Unlock()
	}
}

// route returns the context of the client session a request from the
// upstream goes to: the request's own, when the upstream client handles it
// inside a call (input_required), else that of the calls in flight when
// they all belong to one session. The context is bounded by the call
// timeout and ends with upCtx.
func (r *router) route(upCtx context.Context, method string) (context.Context, context.CancelFunc, error) {
	target := upCtx
	if server.ClientSessionFromContext(upCtx) == nil {
		var err error
		if target, err = r.pick(method); err != nil {
			return nil, nil, err
		}
		// The call that was picked may end first (another call of the
		// same session may be the one waiting): keep its values, not its
		// cancellation.
		target = context.WithoutCancel(target)
	}
	ctx, cancel := context.WithTimeout(target, r.timeout)
	stop := context.AfterFunc(upCtx, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

func (r *router) pick(method string) (context.Context, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		target context.Context
		key    any
		last   uint64
	)
	for id, ctx := range r.calls {
		k, ok := sessionKey(server.ClientSessionFromContext(ctx))
		if !ok {
			return nil, fmt.Errorf("%w: %s arrived while a tool call of a client session the proxy cannot tell apart is in flight", ErrNotRouted, method)
		}
		if target != nil && k != key {
			return nil, fmt.Errorf("%w: %s arrived while tool calls of several client sessions are in flight, and it does not say which call it belongs to", ErrNotRouted, method)
		}
		if id > last {
			target, key, last = ctx, k, id
		}
	}
	if target == nil && r.base != nil {
		if ctx, ok := r.base(); ok {
			return ctx, nil
		}
	}
	if target == nil {
		return nil, fmt.Errorf("%w: %s arrived while no tool call of a client is in flight", ErrNotRouted, method)
	}
	return target, nil
}

// latest returns the context of the newest call in flight.
func (r *router) latest() (context.Context, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		target context.Context
		last   uint64
	)
	for id, ctx := range r.calls {
		if id > last {
			target, last = ctx, id
		}
	}
	return target, target != nil
}

// sessionKey identifies a client session.
func sessionKey(s server.ClientSession) (any, bool) {
	if s == nil {
		return nil, false
	}
	if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer {
		return v.Pointer(), true
	}
	if id := s.SessionID(); id != "" {
		return id, true
	}
	return nil, false
}

// clientCaps returns the capabilities the session's client declared, and
// whether they are known.
func clientCaps(ctx context.Context) (mcp.ClientCapabilities, bool) {
	if ci, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return ci.GetClientCapabilities(), true
	}
	return mcp.ClientCapabilities{}, false
}

func noCapability(method, capability string) error {
	return fmt.Errorf("guardmcp: cannot forward %s: the client did not declare the %s capability", method, capability)
}

func serverOf(ctx context.Context, method string, fallback func() *server.MCPServer) (*server.MCPServer, error) {
	s := server.ServerFromContext(ctx)
	if s == nil && fallback != nil {
		s = fallback()
	}
	if s == nil {
		return nil, fmt.Errorf("%w: %s: the client session has no server", ErrNotRouted, method)
	}
	return s, nil
}

func forwardErr(method string, err error) error {
	if errors.Is(err, ErrNotRouted) {
		return err
	}
	return fmt.Errorf("guardmcp: forwarding %s to the client: %w", method, err)
}

type samplingForwarder struct {
	r *router
	s func() *server.MCPServer
}

// CreateMessage forwards sampling/createMessage to the client of the call
// in flight.
func (f samplingForwarder) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	const method = string(mcp.MethodSamplingCreateMessage)
	ctx, cancel, err := f.r.route(ctx, method)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if caps, ok := clientCaps(ctx); ok && caps.Sampling == nil {
		return nil, noCapability(method, "sampling")
	}
	s, err := serverOf(ctx, method, f.s)
	if err != nil {
		return nil, err
	}
	//lint:ignore SA1019 the upstream speaks a protocol version that has sampling
	res, err := s.RequestSampling(ctx, req)
	if err != nil {
		return nil, forwardErr(method, err)
	}
	return res, nil
}

type elicitationForwarder struct {
	r *router
	s func() *server.MCPServer
}

// Elicit forwards elicitation/create to the client of the call in flight.
func (f elicitationForwarder) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	const method = string(mcp.MethodElicitationCreate)
	ctx, cancel, err := f.r.route(ctx, method)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if caps, ok := clientCaps(ctx); ok && caps.Elicitation == nil {
		return nil, noCapability(method, "elicitation")
	}
	s, err := serverOf(ctx, method, f.s)
	if err != nil {
		return nil, err
	}
	res, err := s.RequestElicitation(ctx, req)
	if err != nil {
		return nil, forwardErr(method, err)
	}
	return res, nil
}

type rootsForwarder struct {
	r *router
	s func() *server.MCPServer
}

// ListRoots forwards roots/list to the client of the call in flight.
func (f rootsForwarder) ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	const method = string(mcp.MethodListRoots)
	ctx, cancel, err := f.r.route(ctx, method)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if caps, ok := clientCaps(ctx); ok && caps.Roots == nil {
		return nil, noCapability(method, "roots")
	}
	s, err := serverOf(ctx, method, f.s)
	if err != nil {
		return nil, err
	}
	res, err := s.RequestRoots(ctx, req)
	if err != nil {
		return nil, forwardErr(method, err)
	}
	return res, nil
}

// noRoots answers the listing session's roots/list: it serves no client,
// so it has no roots.
type noRoots struct{}

// ListRoots returns no roots.
func (noRoots) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{}}, nil
}
