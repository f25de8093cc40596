package guardsdk

import (
	"context"
	"crypto/rand"
	"runtime"
	"sync"
	"weak"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/toolguard"
)

type serverSessionKey struct{}

// withSession puts the call's MCP client session into ctx: the approver
// asks its user, and, unless ctx already names a guard session, the
// client session is the call's guard session.
func withSession(ctx context.Context, ss *mcp.ServerSession) context.Context {
	if ss == nil {
		return ctx
	}
	ctx = context.WithValue(ctx, serverSessionKey{}, ss)
	if _, ok := toolguard.SessionFrom(ctx); ok {
		return ctx // the application named the session itself
	}
	return toolguard.WithSession(ctx, sessionID(ss))
}

// serverSession is the client session of the call being decided, if any.
func serverSession(ctx context.Context) *mcp.ServerSession {
	ss, _ := ctx.Value(serverSessionKey{}).(*mcp.ServerSession)
	return ss
}

// localIDs names client sessions that have no id of their own (stdio and
// in-memory transports): one random id per session, forgotten when the
// session is garbage collected.
var localIDs sync.Map // weak.Pointer[mcp.ServerSession] → string

// sessionID is ss's id: the transport's (the Mcp-Session-Id of streamable
// HTTP), or else an id drawn at random for ss the first time it is asked
// for. Two client sessions never get the same id.
func sessionID(ss *mcp.ServerSession) string {
	if id := ss.ID(); id != "" {
		return "mcp:" + id
	}
	wp := weak.Make(ss)
	if id, ok := localIDs.Load(wp); ok {
		return id.(string)
	}
	id := "local:" + rand.Text()
	if prev, loaded := localIDs.LoadOrStore(wp, id); loaded {
		return prev.(string)
	}
	runtime.AddCleanup(ss, func(wp weak.Pointer[mcp.ServerSession]) { localIDs.Delete(wp) }, wp)
	return id
}
