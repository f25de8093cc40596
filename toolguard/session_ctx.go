package toolguard

import (
	"context"
	"slices"

	"github.com/agentguard/agentguard/scope"
)

type sessionKey struct{}

// WithSession returns a context whose calls belong to session id: one
// agent run, conversation or MCP client session. The guard remembers, per
// principal and session, what earlier calls in it did (the tools that
// ran, the labels their results carried, the values in those results), so
// that flow rules can judge a call in the light of them. Two principals
// never share a session, whatever ids they bring. An empty id is no
// session.
func WithSession(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, sessionKey{}, id)
}

// SessionFrom returns the session id carried by ctx.
func SessionFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(sessionKey{}).(string)
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

type taskKey struct{}

// taskCtx is the task a context carries: the narrowed task and the tool
// lists of every task it narrows, each of which must admit a tool.
type taskCtx struct {
	task  scope.Task
	tools [][]string
}

// WithTask returns a context whose calls are narrowed to one task (one
// user request): only the principal's scopes that t.Scopes names (when
// not nil), only tools matching t.Tools (when not nil), and t.Attrs for
// conditions to read as task.attrs. Narrowing only removes privilege:
// a scope the principal lacks is not added, and a task inside another
// (WithTask on a context that has one) narrows further: its scopes are
// intersected with the outer task's, a tool must match both tool lists,
// and the outer task's attributes stand where both name one. Records
// carry the task's id.
func WithTask(ctx context.Context, t scope.Task) context.Context {
	tc := &taskCtx{task: cloneTask(t)}
	if outer, ok := ctx.Value(taskKey{}).(*taskCtx); ok {
		tc.task.Scopes = intersectScopes(outer.task.Scopes, t.Scopes)
		tc.tools = slices.Clone(outer.tools)
		if len(outer.task.Attrs) > 0 {
			attrs := make(map[string]any, len(outer.task.Attrs)+len(t.Attrs))
			for k, v := range t.Attrs {
				attrs[k] = v
			}
			for k, v := range outer.task.Attrs {
				attrs[k] = v
			}
			tc.task.Attrs = attrs
		}
	}
	if t.Tools != nil {
		tc.tools = append(tc.tools, slices.Clone(t.Tools))
	}
	return context.WithValue(ctx, taskKey{}, tc)
}

// TaskFrom returns the task carried by ctx, narrowed by every task around
// it (its Tools are the innermost task's list; outer lists apply too).
func TaskFrom(ctx context.Context) (scope.Task, bool) {
	tc, ok := ctx.Value(taskKey{}).(*taskCtx)
	if !ok {
		return scope.Task{}, false
	}
	return cloneTask(tc.task), true
}

type refusedTaskKey struct{}

// WithRefusedTask returns a context whose calls are all denied, because
// they came with a task that could not be accepted: a task token that is
// not validly signed, has expired, or was issued for another principal or
// session. Going on without the task would run the call with more
// privilege than its sender asked for, so it fails closed instead. The
// denial is recorded like any other, at [StagePrincipal], with reason in
// its text, and matches [ErrTaskRefused]; the record names no task, since
// none was established. Resource reads and prompt gets are denied the
// same way. A nil reason leaves ctx as it is.
func WithRefusedTask(ctx context.Context, reason error) context.Context {
	if reason == nil {
		return ctx
	}
	return context.WithValue(ctx, refusedTaskKey{}, reason)
}

// TaskRefused reports whether ctx was marked by [WithRefusedTask], and
// then the reason a denial gives, for a caller that decides outside the
// guard's own entry points (a subscription checked against
// [scope.Policy.DecideResource], say) and must fail closed as they do.
func TaskRefused(ctx context.Context) (reason string, refused bool) {
	if err := refusedTask(ctx); err != nil {
		return refusedTaskReason(err), true
	}
	return "", false
}

func refusedTask(ctx context.Context) error {
	err, _ := ctx.Value(refusedTaskKey{}).(error)
	return err
}

// refusedTaskReason is the reason recorded for a call denied by
// WithRefusedTask.
func refusedTaskReason(err error) string {
	return "the task sent with the call was refused, so nothing may be done under it: " + plainError(err)
}

func taskFrom(ctx context.Context) *taskCtx {
	tc, _ := ctx.Value(taskKey{}).(*taskCtx)
	return tc
}

func cloneTask(t scope.Task) scope.Task {
	t.Scopes = slices.Clone(t.Scopes)
	t.Tools = slices.Clone(t.Tools)
	if t.Attrs != nil {
		a := make(map[string]any, len(t.Attrs))
		for k, v := range t.Attrs {
			a[k] = v
		}
		t.Attrs = a
	}
	return t
}

// intersectScopes returns the scopes both lists keep; nil keeps all.
func intersectScopes(a, b []string) []string {
	switch {
	case a == nil:
		return slices.Clone(b)
	case b == nil:
		return slices.Clone(a)
	}
	out := []string{}
	for _, s := range b {
		if slices.Contains(a, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
