package guardsdk

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/internal/taskmeta"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TaskMetaKey is the _meta key under which a request carries a signed
// task token; it is guardmcp.TaskMetaKey.
const TaskMetaKey = taskmeta.Key

// TaskSessionPrefix begins the guard session of a request that has no MCP
// session and whose task token names one; it is guardmcp.TaskSessionPrefix.
const TaskSessionPrefix = taskmeta.SessionPrefix

// TaskVerifier checks a task token for a call judged for principal in the
// MCP session session ("" for none), returning the task and the token's
// session claim ("" for none; a token with one must be refused when
// session is not ""). *guardmcp.TaskVerifier is one: its keys, lifetime,
// audience and claim rules are those of guardmcp.NewTaskVerifier.
type TaskVerifier interface {
	VerifySession(ctx context.Context, token, principal, session string) (scope.Task, string, error)
}

// WithTaskVerifier makes the middleware read a task from the _meta of
// every tools/call, resources/read and prompts/get, under [TaskMetaKey],
// and verify it with v, as guardmcp.WithTaskVerifier does: a valid token
// narrows the request to its task ([toolguard.WithTask]: it can only
// remove privilege, and records carry the task's id), and the handler gets
// the request without the token. The token's sid, if any, must be the
// request's Mcp-Session-Id (streamable HTTP); leave it out over stdio and
// in-memory transports, whose sessions have no id a host could know. A
// session claim is honoured only for a request with no client session at
// all; any session the request has, including one the application named,
// refuses it.
//
// A request whose task cannot be accepted is denied, recorded
// ([toolguard.ErrTaskRefused]) and never reaches its handler: a token that
// is invalid, expired, for another principal or session, or not a string;
// any other _meta key containing "agentguard" in any letter case
// ("io.agentguard/Task", "agentguard/task"), since its sender meant to
// narrow the request; and, without WithTaskVerifier (or with a nil v),
// every request carrying a task, since its narrowing cannot be checked.
func WithTaskVerifier(v TaskVerifier) Option {
	return func(m *middleware) { m.tasks = v }
}

// withTask narrows ctx to the task meta carries, or marks it refused. It
// runs after the principal and session are in ctx.
func (m *middleware) withTask(ctx context.Context, ss *mcp.ServerSession, meta mcp.Meta) context.Context {
	return taskmeta.Narrow(ctx, meta, m.tasks, taskSession(ctx, ss))
}

// taskSession is the session a task token's sid is checked against: the
// Mcp-Session-Id as the client knows it when the guard session is the one
// withSession drew from it, or else the guard session ("" for none).
func taskSession(ctx context.Context, ss *mcp.ServerSession) string {
	sid, _ := toolguard.SessionFrom(ctx)
	if ss != nil && ss.ID() != "" && sid == sessionID(ss) {
		return ss.ID()
	}
	return sid
}

// taskless returns r with the task token removed from its params' _meta:
// r itself if there is none, or else a copy (r may be shared).
func taskless[T any, P interface {
	*T
	mcp.Params
}](r *mcp.ServerRequest[P], meta func(P) *mcp.Meta) *mcp.ServerRequest[P] {
	if _, ok := (*meta(r.Params))[TaskMetaKey]; !ok {
		return r
	}
	params := *(*T)(r.Params)
	p := P(&params)
	*meta(p) = taskmeta.Without(*meta(p))
	c := *r
	c.Params = p
	return &c
}
