package guardmcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// RPCError is a JSON-RPC error an upstream server answered a forwarded
// request with. The proxy passes it on to the client as it came: the same
// code, message and data (-32602 stays -32602, with no prefix).
type RPCError struct {
	// Method is the method of the forwarded request.
	Method string
	// Details are the upstream's code, message and data.
	Details mcp.JSONRPCErrorDetails
}

// Error returns the upstream's message.
func (e *RPCError) Error() string {
	return e.Method + ": " + e.Details.Message + " (JSON-RPC error " + strconv.Itoa(e.Details.Code) + ")"
}

// JSONRPCError returns the error as mcp-go sends it to the client.
func (e *RPCError) JSONRPCError() mcp.JSONRPCError {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, Error: e.Details}
}

// upSession is one MCP session with the upstream server: the shared one of
// a proxy built with [NewProxy], or the one a client session of a proxy
// built with [DialProxy] has to itself.
type upSession struct {
	p   *Proxy
	c   *client.Client
	r   *router
	key any // the client session's key; nil for the shared session

	seq      atomic.Uint64
	progress sync.Map // upstream progress token → progressRoute

	// Bookkeeping of the pool (see pool.go), under the pool's lock.
	principal string
	sessionID string
	inflight  int
	last      time.Time
	detached  time.Time
	subs      map[string]bool
	tools     map[string]bool // the tools the upstream lists for this session
	ready     chan struct{}
	err       error
}

// call sends one request upstream and returns its raw result. A JSON-RPC
// error of the upstream comes back as an [RPCError] the server passes on
// unchanged. If ctx ends first (the client cancelled, or the call timeout
// ran out) the upstream is told with notifications/cancelled, over stdio
// and HTTP alike.
func (u *upSession) call(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	return u.callAs(ctx, method, method, params)
}

// callAs is call with the label errors carry (for example the tool's name).
func (u *upSession) callAs(ctx context.Context, label, method string, params map[string]any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, u.p.o.callTimeout)
	defer cancel()
	id := mcp.NewRequestId("guardmcp-" + strconv.FormatUint(u.seq.Add(1), 10) + "-" + randomID()[:8])
	resp, err := u.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      id,
		Method:  method,
		Params:  params,
	})
	if err != nil {
		if ctx.Err() != nil {
			u.cancelled(id, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrUpstream, label, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpstream, server.NewHandlerError(&RPCError{Method: label, Details: *resp.Error}))
	}
	return resp.Result, nil
}

// cancelled tells the upstream that the request id is cancelled.
func (u *upSession) cancelled(id mcp.RequestId, cause error) {
	reason := "the client cancelled the request"
	if errors.Is(cause, context.DeadlineExceeded) {
		reason = "the proxy's call timeout ran out"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = u.c.GetTransport().SendNotification(ctx, mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: string(mcp.MethodNotificationCancelled),
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{"requestId": id, "reason": reason}},
		},
	})
}

// callTool forwards a tools/call: the validated arguments, and the
// client's _meta with its progress token replaced by one of the proxy's,
// so that progress notifications find their way back to this call, and
// without its task token, which is the proxy's to check.
func (u *upSession) callTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	defer u.r.enter(ctx)()
	params := map[string]any{"name": req.Params.Name, "arguments": json.RawMessage(req.Params.RawArguments)}
	if m := req.Params.Meta; m != nil {
		meta := map[string]any{}
		for k, v := range m.AdditionalFields {
			if k != unknownMetaKey && k != TaskMetaKey {
				meta[k] = v
			}
		}
		if m.ProgressToken != nil {
			tok := "guardmcp-" + strconv.FormatUint(u.p.progSeq.Add(1), 10)
			u.progress.Store(tok, progressRoute{ctx: ctx, token: m.ProgressToken})
			defer u.progress.Delete(tok)
			meta["progressToken"] = tok
		}
		if len(meta) > 0 {
			params["_meta"] = meta
		}
	}
	raw, err := u.callAs(ctx, fmt.Sprintf("tools/call %q", req.Params.Name), string(mcp.MethodToolsCall), params)
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseCallToolResult(&raw)
	if err != nil {
		return nil, fmt.Errorf("%w: tools/call %q: %w", ErrUpstream, req.Params.Name, err)
	}
	return res, nil
}

// readResource forwards resources/read of any URI, listed or not.
func (u *upSession) readResource(ctx context.Context, uri string) ([]mcp.ResourceContents, error) {
	defer u.r.enter(ctx)()
	raw, err := u.call(ctx, string(mcp.MethodResourcesRead), map[string]any{"uri": uri})
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseReadResourceResult(&raw)
	if err != nil {
		return nil, fmt.Errorf("%w: resources/read: %w", ErrUpstream, err)
	}
	return res.Contents, nil
}

// getPrompt forwards prompts/get.
func (u *upSession) getPrompt(ctx context.Context, name string, args map[string]string) (*mcp.GetPromptResult, error) {
	defer u.r.enter(ctx)()
	params := map[string]any{"name": name}
	if args != nil {
		params["arguments"] = args
	}
	raw, err := u.call(ctx, string(mcp.MethodPromptsGet), params)
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseGetPromptResult(&raw)
	if err != nil {
		return nil, fmt.Errorf("%w: prompts/get: %w", ErrUpstream, err)
	}
	return res, nil
}

// complete forwards completion/complete.
func (u *upSession) complete(ctx context.Context, ref any, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	params := map[string]any{"ref": ref, "argument": arg}
	if len(cc.Arguments) > 0 {
		params["context"] = cc
	}
	raw, err := u.call(ctx, string(mcp.MethodCompletionComplete), params)
	if err != nil {
		return nil, err
	}
	var res mcp.CompleteResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("%w: completion/complete: %w", ErrUpstream, err)
	}
	return &res.Completion, nil
}

// onNotification handles a notification of a client's own upstream
// session: it goes to that client only — to the stream of its call in
// flight, if one is, else to the session.
func (u *upSession) onNotification(n mcp.JSONRPCNotification) {
	p := u.p
	if p.closed.Load() {
		return
	}
	params := notificationParams(n)
	switch n.Method {
	case string(mcp.MethodNotificationToolsListChanged),
		string(mcp.MethodNotificationResourcesListChanged),
		string(mcp.MethodNotificationPromptsListChanged):
		// The proxy re-reads its lists (and mcp-go tells every client
		// when they change); this client's own list may differ.
		if n.Method == string(mcp.MethodNotificationToolsListChanged) && p.pool != nil {
			go u.listTools()
			_ = p.s.SendNotificationToSpecificClient(u.sessionID, n.Method, params)
		}
		p.onNotification(n)
		return
	case string(mcp.MethodNotificationProgress):
		tok := fmt.Sprint(params["progressToken"])
		if v, ok := u.progress.Load(tok); ok {
			r := v.(progressRoute)
			params["progressToken"] = r.token
			_ = p.s.SendNotificationToClient(r.ctx, n.Method, params)
		}
		return
	}
	if ctx, ok := u.r.latest(); ok {
		if p.s.SendNotificationToClient(ctx, n.Method, params) == nil {
			return
		}
	}
	if p.pool == nil {
		p.s.SendNotificationToAllClients(n.Method, params)
		return
	}
	p.pool.notifySession(u, n.Method, params)
}

// notificationParams returns the params of n, _meta included.
func notificationParams(n mcp.JSONRPCNotification) map[string]any {
	params := cloneParams(n.Params.AdditionalFields)
	if len(n.Params.Meta) > 0 {
		params["_meta"] = n.Params.Meta
	}
	return params
}

// listTools reads the names of the tools the upstream offers this
// session, which can depend on the capabilities its client declared.
func (u *upSession) listTools() {
	ctx, cancel := context.WithTimeout(context.Background(), u.p.o.listTimeout)
	defer cancel()
	names := map[string]bool{}
	cursor := ""
	for page := 0; page <= 1000; page++ {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		raw, err := u.call(ctx, string(mcp.MethodToolsList), params)
		if err != nil {
			u.p.o.logger.Warn("guardmcp: listing a client's upstream tools failed", "err", err)
			return
		}
		var res struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			u.p.o.logger.Warn("guardmcp: listing a client's upstream tools failed", "err", err)
			return
		}
		for _, t := range res.Tools {
			names[t.Name] = true
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			break
		}
		cursor = res.NextCursor
	}
	u.p.pool.mu.Lock()
	u.tools = names
	u.p.pool.mu.Unlock()
}
