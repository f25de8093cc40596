package toolguard

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/scope"
)

// The names under which resource reads, resource subscriptions and prompt
// gets are recorded: the record's tool is the MCP method, its arguments
// {"uri": ...} or {"name": ..., "arguments": {...}}. The names are
// reserved: [Guard.Register] refuses a tool so named, so a record of a tool
// call cannot be mistaken for one of them.
const (
	ResourceReadName        = "resources/read"
	ResourceSubscribeName   = "resources/subscribe"
	ResourceUnsubscribeName = "resources/unsubscribe"
	PromptGetName           = "prompts/get"
)

// reservedName reports whether name is one of the names above.
func reservedName(name string) bool {
	switch name {
	case ResourceReadName, ResourceSubscribeName, ResourceUnsubscribeName, PromptGetName:
		return true
	}
	return false
}

// pseudo-tools give resource and prompt records the guard's redaction
// (the policy's redact section names them by these names) without a
// schema of their own.
var (
	resourceTool    = &tool{Tool: Tool{Name: ResourceReadName}}
	subscribeTool   = &tool{Tool: Tool{Name: ResourceSubscribeName}}
	unsubscribeTool = &tool{Tool: Tool{Name: ResourceUnsubscribeName}}
	promptTool      = &tool{Tool: Tool{Name: PromptGetName}}
)

// ReadResource decides a read of the resource uri by the principal in ctx
// ([scope.Policy.DecideResource]), writes the decision record, and only
// then, if allowed, calls read; its result and error are returned as they
// are, and an outcome record is written. A denial, or a decision record
// that cannot be written, returns a *[DeniedError] and read is not called.
// Rate limits and approvals do not apply to resources.
func (g *Guard) ReadResource(ctx context.Context, uri string, read func(context.Context) (any, error)) (any, error) {
	args := map[string]any{"uri": uri}
	return g.decideData(ctx, resourceTool, args, func(in scope.Call, pr scope.Principal) scope.Decision {
		return g.policy.Load().DecideResource(ctx, scope.ResourceInput{Principal: pr, URI: uri, Call: in, Task: taskOf(ctx)})
	}, read)
}

// SubscribeResource is ReadResource for a subscription to the resource uri
// (on) or its end: it is decided by the rules that decide a read, since a
// subscriber learns when the resource changes, and recorded under
// [ResourceSubscribeName] or [ResourceUnsubscribeName]; run is called only
// if it is allowed.
func (g *Guard) SubscribeResource(ctx context.Context, uri string, on bool, run func(context.Context) (any, error)) (any, error) {
	t := subscribeTool
	if !on {
		t = unsubscribeTool
	}
	return g.decideData(ctx, t, map[string]any{"uri": uri}, func(in scope.Call, pr scope.Principal) scope.Decision {
		return g.policy.Load().DecideResource(ctx, scope.ResourceInput{Principal: pr, URI: uri, Call: in, Task: taskOf(ctx)})
	}, run)
}

// GetPrompt is ReadResource for a prompt: it decides a get of the prompt
// name with args ([scope.Policy.DecidePrompt]), records it, and calls get
// only if allowed.
func (g *Guard) GetPrompt(ctx context.Context, name string, args map[string]string, get func(context.Context) (any, error)) (any, error) {
	a := map[string]any{}
	for k, v := range args {
		a[k] = v
	}
	rec := map[string]any{"name": name, "arguments": a}
	return g.decideData(ctx, promptTool, rec, func(in scope.Call, pr scope.Principal) scope.Decision {
		return g.policy.Load().DecidePrompt(ctx, scope.PromptInput{Principal: pr, Name: name, Args: args, Call: in, Task: taskOf(ctx)})
	}, get)
}

func (g *Guard) decideData(ctx context.Context, t *tool, args map[string]any, decide func(scope.Call, scope.Principal) scope.Decision, run func(context.Context) (any, error)) (any, error) {
	st := getState()
	defer putState(st)
	st.start = g.now()
	st.d.CallID = g.newID()
	st.d.Tool = t.Name
	st.d.Grant = -1
	st.d.Revision = g.policy.Load().Revision()
	st.tool = t
	st.args = args
	canon, err := canonjson.Append(st.canon[:0], args)
	st.canon = canon
	st.d.ArgsSHA256 = digest(canon)
	pr := principalFrom(ctx)
	st.d.Session, _ = SessionFrom(ctx)
	if t := taskOf(ctx); t != nil {
		st.d.Task = t.ID
	}
	switch {
	case err != nil:
		st.deny(StageArguments, ErrInvalidArguments, err, "the request cannot be recorded: "+plainError(err))
	case pr == nil || pr.ID == "":
		st.deny(StagePrincipal, ErrNoPrincipal, nil, "the caller is not identified (no principal), so nothing may be read")
	case refusedTask(ctx) != nil:
		st.d.Principal = pr.ID
		err := refusedTask(ctx)
		st.deny(StagePrincipal, ErrTaskRefused, err, refusedTaskReason(err))
	default:
		st.d.Principal = pr.ID
		rev := st.d.Revision
		st.d.Decision = decide(scope.Call{ID: st.d.CallID, Time: st.start}, *pr)
		if st.d.Revision == "" {
			st.d.Revision = rev
		}
		st.d.Stage = StagePolicy
		if st.d.Effect != scope.Allow {
			st.deny(StagePolicy, ErrPolicy, nil, st.d.Reason)
		}
	}
	st.end = g.now()
	st.d.Latency = st.end.Sub(st.start)
	rctx := context.WithoutCancel(ctx)
	if err := g.record(rctx, correlationFrom(ctx), st); err != nil {
		return nil, err
	}
	if st.d.Effect != scope.Allow {
		return nil, st.denied()
	}
	out, err := g.runData(ctx, rctx, st, run)
	return out, err
}

// runData runs an allowed read and writes its outcome record.
func (g *Guard) runData(ctx, rctx context.Context, st *callState, run func(context.Context) (any, error)) (out any, err error) {
	start := st.end
	ctx = context.WithValue(ctx, callIDKey{}, st.d.CallID)
	class := ""
	func() {
		defer func() {
			if r := recover(); r != nil {
				out, err, class = nil, fmt.Errorf("toolguard: %s panicked: %v", st.d.Tool, r), "panic"
			}
		}()
		out, err = run(ctx)
	}()
	if err != nil && class == "" {
		class = "tool_error"
		switch {
		case errors.Is(err, context.Canceled):
			class = "canceled"
		case errors.Is(err, context.DeadlineExceeded):
			class = "timeout"
		}
	}
	dur := g.now().Sub(start)
	o := &st.out
	o.Version = audit.FormatVersion
	o.ID = st.d.CallID
	o.Kind = audit.KindOutcome
	o.Time = start.Add(dur)
	o.Principal = st.d.Principal
	o.Correlation = st.rec.Correlation
	o.Tool = st.d.Tool
	o.Session, o.Task = st.d.Session, st.d.Task
	o.DurationNS = int64(dur)
	if err != nil {
		o.Error = clip(err.Error(), maxError)
		o.ErrorClass = class
	}
	if b, ok := resultBytes(out); ok {
		o.ResultBytes = int64(len(b))
		o.ResultSHA256 = digest(b)
	}
	if werr := g.sink.Write(rctx, o); werr != nil {
		return out, errors.Join(err, fmt.Errorf("%w: the resource was read but its outcome could not be recorded: %w", ErrAuditUnavailable, werr))
	}
	return out, err
}

// ResourceVisible reports whether the principal in ctx may see the
// resource uri in a resource list ([scope.Policy.ResourceVisible]).
// Without a principal, or under a refused task ([WithRefusedTask]),
// nothing is visible.
func (g *Guard) ResourceVisible(ctx context.Context, uri string) bool {
	pr := principalFrom(ctx)
	return pr != nil && refusedTask(ctx) == nil && g.policy.Load().ResourceVisible(ctx, *pr, taskOf(ctx), uri)
}

// ResourceTemplateVisible reports whether the principal in ctx may see a
// resource template and complete its arguments
// ([scope.Policy.ResourceTemplateVisible]).
func (g *Guard) ResourceTemplateVisible(ctx context.Context, template string) bool {
	pr := principalFrom(ctx)
	return pr != nil && refusedTask(ctx) == nil && g.policy.Load().ResourceTemplateVisible(*pr, taskOf(ctx), template)
}

// PromptVisible reports whether the principal in ctx may see the prompt
// name in a prompt list and complete its arguments
// ([scope.Policy.PromptVisible]).
func (g *Guard) PromptVisible(ctx context.Context, name string) bool {
	pr := principalFrom(ctx)
	return pr != nil && refusedTask(ctx) == nil && g.policy.Load().PromptVisible(*pr, taskOf(ctx), name)
}

// taskOf returns the task of ctx ([WithTask]), nil for none.
func taskOf(ctx context.Context) *scope.Task {
	if t, ok := TaskFrom(ctx); ok {
		return &t
	}
	return nil
}
