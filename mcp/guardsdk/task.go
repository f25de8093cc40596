package guardsdk

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TaskMetaKey is the _meta key under which a request carries a signed
// task token; it is guardmcp.TaskMetaKey.
const TaskMetaKey = "io.agentguard/task"

// TaskSessionPrefix begins the guard session of a request that has no MCP
// session and whose task token names one; it is guardmcp.TaskSessionPrefix.
const TaskSessionPrefix = "task-session:"

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

// taskMeta returns the task token meta carries, whether it carries one,
// and an error for a meta that tries to and cannot.
func taskMeta(meta mcp.Meta) (string, bool, error) {
	tok, present := "", false
	var lookalikes []string
	for k, v := range meta {
		if k == TaskMetaKey {
			s, ok := v.(string)
			if !ok {
				return "", true, errors.New("the value of _meta \"" + TaskMetaKey + "\" is not a string (a signed task token)")
			}
			tok, present = s, true
			continue
		}
		if strings.Contains(string(safejson.AppendFold(nil, k)), "AGENTGUARD") {
			lookalikes = append(lookalikes, k)
		}
	}
	if len(lookalikes) > 0 {
		slices.Sort(lookalikes)
		return "", true, fmt.Errorf("the request's _meta has the key %q, which is not one this server reads; a task goes under %q exactly", lookalikes[0], TaskMetaKey)
	}
	return tok, present, nil
}

// withTask narrows ctx to the task meta carries, or marks it refused. It
// runs after the principal and session are in ctx.
func (m *middleware) withTask(ctx context.Context, ss *mcp.ServerSession, meta mcp.Meta) context.Context {
	tok, present, err := taskMeta(meta)
	switch {
	case err != nil:
		return toolguard.WithRefusedTask(ctx, err)
	case !present:
		return ctx
	case m.tasks == nil:
		return toolguard.WithRefusedTask(ctx, errors.New("the request carries a task (_meta \""+TaskMetaKey+"\"), and this server has no key to verify tasks with, so it cannot narrow the request as asked"))
	}
	pr, ok := toolguard.PrincipalFrom(ctx)
	if !ok || pr.ID == "" {
		return toolguard.WithRefusedTask(ctx, errors.New("the request carries a task, and there is no principal to check it against"))
	}
	t, own, err := m.tasks.VerifySession(ctx, tok, pr.ID, taskSession(ctx, ss))
	if err != nil {
		return toolguard.WithRefusedTask(ctx, err)
	}
	if own != "" {
		ctx = toolguard.WithSession(ctx, TaskSessionPrefix+own)
	}
	return toolguard.WithTask(ctx, t)
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

// withoutTask returns meta without the task token, for the handler: a
// handler that logs or forwards its requests must not leak a token that
// narrows — and through its attrs allows — calls until it expires. meta
// itself is left alone.
func withoutTask(meta mcp.Meta) mcp.Meta {
	if _, ok := meta[TaskMetaKey]; !ok {
		return meta
	}
	out := maps.Clone(meta)
	delete(out, TaskMetaKey)
	if len(out) == 0 {
		return nil
	}
	return out
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
	*meta(p) = withoutTask(*meta(p))
	c := *r
	c.Params = p
	return &c
}
