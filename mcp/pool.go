package guardmcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/toolguard"
)

// WithMaxSessions bounds the upstream sessions a proxy built with
// [DialProxy] keeps open at once: one per client session (default 32).
// With a command upstream each is a process of its own. A client that
// would need one more gets [ErrTooManySessions].
func WithMaxSessions(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxSessions = n
		}
	}
}

// WithSessionIdle closes a client's upstream session once it has been
// idle this long (default 10 minutes): no request of the client in that
// time and none in flight. A session with resource subscriptions stays
// open while its client is connected. A client that comes back gets a new
// upstream session, with its logging level set again.
func WithSessionIdle(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.sessionIdle = d
		}
	}
}

// ErrTooManySessions is returned to a client when the proxy already keeps
// as many upstream sessions as [WithMaxSessions] allows.
var ErrTooManySessions = errors.New("guardmcp: too many client sessions")

// ErrSessionPrincipal is returned when a request names a client session
// that another principal opened: the session id is not a credential, and
// the upstream session (its roots, subscriptions, logs and requests to the
// client) stays with the principal that opened it.
var ErrSessionPrincipal = errors.New("guardmcp: this session belongs to another principal")

// detachGrace is how long an upstream session outlives its client
// session's unregistration (an HTTP client's GET stream may come back).
const detachGrace = 5 * time.Second

// pool keeps one upstream session per client session.
type pool struct {
	p    *Proxy
	dial func(ctx context.Context, caps mcp.ClientCapabilities, info mcp.Implementation, u *upSession) (*client.Client, error)
	max  int
	idle time.Duration

	mu       sync.Mutex
	sessions map[any]*upSession
	down     map[any]server.ClientSession // the latest session object of each key
	levels   map[any]mcp.LoggingLevel     // the logging level each client set
	stop     chan struct{}
	done     chan struct{}
}

func newPool(p *Proxy, dial func(context.Context, mcp.ClientCapabilities, mcp.Implementation, *upSession) (*client.Client, error)) *pool {
	pl := &pool{p: p, dial: dial, max: p.o.maxSessions, idle: p.o.sessionIdle,
		sessions: map[any]*upSession{}, down: map[any]server.ClientSession{}, levels: map[any]mcp.LoggingLevel{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go pl.reap()
	return pl
}

// clientKey identifies the client session of ctx: its session id (HTTP
// creates a session object per request when no GET stream is open), else
// the session object.
func clientKey(ctx context.Context) (any, server.ClientSession, bool) {
	s := server.ClientSessionFromContext(ctx)
	if s == nil {
		return nil, nil, false
	}
	k, ok := keyOf(s)
	return k, s, ok
}

func principalID(ctx context.Context) string {
	if pr, ok := toolguard.PrincipalFrom(ctx); ok {
		return pr.ID
	}
	return ""
}

// session returns the upstream session of the client session of ctx,
// opening it on first use, and marks a request in flight until done is
// called. Without a client session (a message handled outside any
// transport) it returns the shared session.
func (pl *pool) session(ctx context.Context) (u *upSession, done func(), err error) {
	key, ds, ok := clientKey(ctx)
	if !ok {
		return pl.p.shared, func() {}, nil
	}
	who := principalID(ctx)
	pl.mu.Lock()
	u = pl.sessions[key]
	if u != nil && u.principal != who {
		pl.mu.Unlock()
		return nil, nil, ErrSessionPrincipal
	}
	pl.down[key] = ds
	if u == nil {
		if len(pl.sessions) >= pl.max {
			pl.mu.Unlock()
			return nil, nil, fmt.Errorf("%w: the proxy already keeps %d upstream sessions (one per client; the bound is set with -max-sessions / WithMaxSessions); try again when another client has left", ErrTooManySessions, pl.max)
		}
		u = &upSession{p: pl.p, key: key, principal: who, sessionID: ds.SessionID(), ready: make(chan struct{}), subs: map[string]bool{}}
		u.r = &router{timeout: pl.p.o.callTimeout, calls: map[uint64]context.Context{}, base: func() (context.Context, bool) { return pl.base(key) }}
		pl.sessions[key] = u
		// The upstream session lives as long as the client's (a command's
		// process ends with the context it was started with), not as
		// long as this request.
		go pl.open(context.WithoutCancel(ctx), u, ds)
	}
	u.inflight++
	u.last = time.Now()
	u.detached = time.Time{}
	pl.mu.Unlock()
	release := func() {
		pl.mu.Lock()
		u.inflight--
		u.last = time.Now()
		pl.mu.Unlock()
	}
	select {
	case <-u.ready:
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
	if u.err != nil {
		release()
		return nil, nil, u.err
	}
	return u, release, nil
}

// open connects the upstream session u for the client session ds,
// declaring upstream only the capabilities the client declared.
func (pl *pool) open(ctx context.Context, u *upSession, ds server.ClientSession) {
	defer close(u.ready)
	var caps mcp.ClientCapabilities
	var info mcp.Implementation
	if ci, ok := ds.(server.SessionWithClientInfo); ok {
		caps, info = ci.GetClientCapabilities(), ci.GetClientInfo()
	}
	c, err := pl.dial(ctx, caps, info, u)
	if err != nil {
		u.err = fmt.Errorf("%w: opening the client's upstream session: %w", ErrUpstream, err)
		pl.mu.Lock()
		if pl.sessions[u.key] == u {
			delete(pl.sessions, u.key)
		}
		pl.mu.Unlock()
		return
	}
	c.OnNotification(u.onNotification)
	pl.mu.Lock()
	u.c = c
	pl.mu.Unlock()
	u.listTools()
	pl.mu.Lock()
	level := pl.levels[u.key]
	pl.mu.Unlock()
	if level != "" {
		// The client set its logging level on an earlier upstream session.
		if _, err := u.call(ctx, string(mcp.MethodSetLogLevel), map[string]any{"level": level}); err != nil {
			pl.p.o.logger.Warn("guardmcp: setting a client's logging level upstream failed", "err", err)
		}
	}
}

// base returns a context of the client session key, for requests and
// notifications that are not part of a call in flight.
func (pl *pool) base(key any) (context.Context, bool) {
	pl.mu.Lock()
	ds := pl.down[key]
	pl.mu.Unlock()
	if ds == nil {
		return nil, false
	}
	return pl.p.s.WithContext(context.Background(), ds), true
}

// notifySession sends a notification to u's client outside any call.
func (pl *pool) notifySession(u *upSession, method string, params map[string]any) {
	if u.sessionID != "" && pl.p.s.SendNotificationToSpecificClient(u.sessionID, method, params) == nil {
		return
	}
	if ctx, ok := pl.base(u.key); ok {
		_ = pl.p.s.SendNotificationToClient(ctx, method, params)
	}
}

// attach notes that a client session is registered (again).
func (pl *pool) attach(ds server.ClientSession) {
	key, ok := keyOf(ds)
	if !ok {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if u := pl.sessions[key]; u != nil {
		u.detached = time.Time{}
	}
	pl.down[key] = ds
}

// setLevel records the logging level u's client set, to set it again on a
// later upstream session of the client.
func (pl *pool) setLevel(u *upSession, level mcp.LoggingLevel) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.levels[u.key] = level
}

// subscribed records a subscription of u's client (or its end).
func (pl *pool) subscribed(u *upSession, uri string, on bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if on {
		u.subs[uri] = true
	} else {
		delete(u.subs, uri)
	}
}

func keyOf(ds server.ClientSession) (any, bool) {
	if id := ds.SessionID(); id != "" {
		return "id:" + id, true
	}
	return sessionKey(ds)
}

// detach notes that a client session was unregistered; its upstream
// session closes after detachGrace unless the client comes back.
func (pl *pool) detach(ds server.ClientSession) {
	key, ok := keyOf(ds)
	if !ok {
		return
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if u := pl.sessions[key]; u != nil {
		u.detached = time.Now()
	}
}

// reap closes upstream sessions that are idle or whose client left.
func (pl *pool) reap() {
	defer close(pl.done)
	every := min(pl.idle/4, time.Second)
	t := time.NewTicker(max(every, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-pl.stop:
			return
		case now := <-t.C:
			for _, u := range pl.expired(now) {
				pl.p.o.logger.Info("guardmcp: closing an idle client's upstream session", "principal", u.principal)
				u.c.Close()
			}
		}
	}
}

func (pl *pool) expired(now time.Time) []*upSession {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var out []*upSession
	for key, u := range pl.sessions {
		if u.inflight > 0 || u.c == nil {
			continue
		}
		gone := !u.detached.IsZero() && now.Sub(u.detached) > detachGrace
		idle := now.Sub(u.last) > pl.idle && len(u.subs) == 0
		if gone || idle {
			delete(pl.sessions, key)
			delete(pl.down, key) // a later request of the client brings it back
			if gone {
				delete(pl.levels, key)
			}
			out = append(out, u)
		}
	}
	// Levels of clients that left without a trace (an HTTP client without
	// a listening stream is never unregistered) are kept for a bounded
	// number of clients only.
	if len(pl.levels) > 4*pl.max {
		for key := range pl.levels {
			if pl.sessions[key] == nil {
				delete(pl.levels, key)
			}
		}
	}
	return out
}

// len reports the number of upstream sessions open or opening.
func (pl *pool) len() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.sessions)
}

// close closes every upstream session.
func (pl *pool) close() {
	close(pl.stop)
	<-pl.done
	pl.mu.Lock()
	var all []*upSession
	for _, u := range pl.sessions {
		all = append(all, u)
	}
	pl.sessions = map[any]*upSession{}
	pl.mu.Unlock()
	for _, u := range all {
		<-u.ready
		if u.c != nil {
			u.c.Close()
		}
	}
}

// visible filters tools down to those the client's own upstream session
// lists: a tool that the upstream offers only to clients with a capability
// (sampling, say) is not shown to a client without it.
func (pl *pool) visible(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	u, done, err := pl.session(ctx)
	if err != nil {
		pl.p.o.logger.Warn("guardmcp: no upstream session for a client's tools/list", "err", err)
		return tools[:0]
	}
	defer done()
	if u == pl.p.shared {
		return tools
	}
	pl.mu.Lock()
	names := u.tools
	pl.mu.Unlock()
	if names == nil {
		return tools
	}
	return slices.DeleteFunc(tools, func(t mcp.Tool) bool { return !names[t.Name] })
}
