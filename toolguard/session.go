package toolguard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/glob"
	"github.com/agentguard/agentguard/internal/provenance"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
)

// StageSession is the stage of a call denied because its session could
// not be read or is over its bounds.
const StageSession Stage = "session"

// WithSessions sets where the guard keeps session state. The default is
// an in-memory store with the defaults of [MemorySessionOptions]; use a
// shared store (such as one on Redis) when several replicas serve one
// session.
func WithSessions(store SessionStore) Option {
	return func(g *Guard) error {
		if store == nil {
			return errors.New("toolguard: WithSessions(nil)")
		}
		g.sessions = store
		return nil
	}
}

// ResultAttributer is implemented by a handler's result that carries
// metadata for the policy's label conditions: result.attrs in CEL. Values
// are JSON-like (string, bool, numbers, []any, map[string]any).
type ResultAttributer interface {
	ResultAttrs() map[string]any
}

// sessionView is the [scope.Session] a decision reads: the state loaded
// from the store for this call, and lookups that go to the store.
type sessionView struct {
	ctx   context.Context
	store SessionStore
	key   SessionKey
	state SessionState
}

func (v *sessionView) ID() string                  { return v.key.Session }
func (v *sessionView) Labels() []scope.LabelOrigin { return v.state.Labels }
func (v *sessionView) ToolCount(tool string) int   { return v.state.Tools[tool] }
func (v *sessionView) ToolCounts() map[string]int  { return v.state.Tools }
func (v *sessionView) Calls() int                  { return int(min(v.state.Calls, 1<<62)) }
func (v *sessionView) Remembered(rule, key string) (scope.Origin, bool, error) {
	return v.store.Remembered(v.ctx, v.key, rule, key)
}

// From implements [scope.Session]: value is split into tokens
// (internal/provenance) and looked up in the index of the session's
// labelled results; the earliest call holding any of them is the origin.
func (v *sessionView) From(value, label string) (scope.Origin, bool, error) {
	toks := provenance.Tokens(value)
	if len(toks) == 0 {
		return scope.Origin{}, false, nil
	}
	found, err := v.store.Lookup(v.ctx, v.key, label, toks)
	if err != nil {
		return scope.Origin{}, false, err
	}
	var best scope.Origin
	ok := false
	for _, o := range found {
		if !ok || o.Seq < best.Seq {
			best, ok = o, true
		}
	}
	return best, ok, nil
}

// sessionInput adds the call's session and task to its policy input. It
// reports false, having denied the call, when the session cannot be read
// or is over its bounds, or a task around the call excludes the tool.
func (g *Guard) sessionInput(ctx context.Context, st *callState, pr *scope.Principal, in *scope.Input) bool {
	// The record of a call the task excludes names its session too.
	id, inSession := SessionFrom(ctx)
	st.d.Session = id
	if tc := taskFrom(ctx); tc != nil {
		st.d.Task = tc.task.ID
		in.Task = &tc.task
		for _, tools := range tc.tools {
			if !matchAny(tools, in.Tool.Name) {
				st.deny(StagePolicy, ErrPolicy, nil, fmt.Sprintf("the current task%s does not include tool %s", taskLabel(tc.task.ID), quote(in.Tool.Name)))
				return false
			}
		}
	}
	if !inSession {
		return true
	}
	st.view = sessionView{ctx: ctx, store: g.sessions, key: SessionKey{Principal: pr.ID, Session: id}}
	state, err := g.sessions.Load(ctx, st.view.key)
	if err != nil {
		st.deny(StageSession, ErrPolicy, err, sessionErrReason(err))
		return false
	}
	st.view.state = state
	for _, l := range state.Labels {
		st.d.Labels = append(st.d.Labels, l.Label)
	}
	in.Session = &st.view
	return true
}

// reserveSessionCall takes one of the session's calls for an allowed
// call, after every other check and before the record, so that calls of
// one session running at once cannot together run more calls than its
// store allows: a call that does not fit is denied before it runs.
func (g *Guard) reserveSessionCall(ctx context.Context, st *callState) {
	if st.d.Session == "" || st.d.Effect != scope.Allow {
		return
	}
	if err := g.sessions.Reserve(ctx, st.view.key, st.d.CallID); err != nil {
		st.deny(StageSession, ErrPolicy, err, sessionErrReason(err))
		return
	}
	st.reserved = true
}

// releaseSessionCall returns the session call a call reserved and did not
// use. An error is ignored: the reservation only ever makes the session
// stricter, and the store forgets it with the session.
func (g *Guard) releaseSessionCall(ctx context.Context, st *callState) {
	if st.reserved {
		st.reserved = false
		_ = g.sessions.Release(ctx, st.view.key, st.d.CallID)
	}
}

func sessionErrReason(err error) string {
	if errors.Is(err, ErrSessionFull) {
		return fmt.Sprintf("this session can take no more calls (%s), so the call is denied rather than forget what the session did; start a new session", plainError(err))
	}
	return fmt.Sprintf("the session's history could not be read, so the call is denied to be safe: %s", plainError(err))
}

func taskLabel(id string) string {
	if id == "" {
		return ""
	}
	return " " + quote(id)
}

func matchAny(pats []string, name string) bool {
	for _, p := range pats {
		if glob.Match(p, name) {
			return true
		}
	}
	return false
}

// recordSession adds the session, task, labels in force, flow and
// remembered approval to the decision record.
func recordSession(r *audit.Record, d *Decision) {
	r.Session = d.Session
	r.Task = d.Task
	r.Labels = d.Labels
	r.Flow = r.Flow[:0]
	for _, o := range d.Flow {
		r.Flow = append(r.Flow, audit.FlowOrigin{Tool: o.Tool, CallID: o.CallID, Seq: o.Seq})
	}
	if d.Remembered != nil {
		r.Remembered = d.Remembered.CallID
	}
}

// sessionResult is the outcome stage of a call in a session: the labels
// the policy gives its result, and the tokens of the result under them,
// go into the session before the result goes back to the caller. If the
// labels cannot be decided, the values cannot be read, or the session
// cannot take them, the result is withheld: handing it back unlabelled
// would let later calls use what it brought in unseen.
func (g *Guard) sessionResult(ctx context.Context, st *callState, out any, err error) (any, error) {
	if st.d.Session == "" {
		return out, err
	}
	pol := g.policy.Load()
	labels, lerr := g.resultLabels(ctx, st, pol, out, err)
	if lerr != nil {
		return withhold(err, fmt.Errorf("labelling the result failed: %w", lerr))
	}
	var toks []string
	if len(labels) > 0 {
		var terr error
		if toks, terr = resultTokens(out, err); terr != nil {
			return withhold(err, terr)
		}
	}
	st.reserved = false // the Append uses it up
	o, aerr := g.sessions.Append(context.WithoutCancel(ctx), st.view.key, SessionEvent{
		Origin: scope.Origin{Tool: st.d.Tool, CallID: st.d.CallID}, Labels: labels, Tokens: toks})
	if aerr != nil {
		return withhold(err, fmt.Errorf("the session could not record the call: %w", aerr))
	}
	st.out.LabelsAdded = labels
	if a := st.d.Approval; a != nil && a.Approved && a.ForSession && st.d.RememberKey != "" {
		if rid := pol.RememberID(st.d.Rule); rid != "" {
			if rerr := g.sessions.Remember(context.WithoutCancel(ctx), st.view.key, rid, st.d.RememberKey, o); rerr != nil {
				st.out.Errors = append(st.out.Errors, clip("the approval could not be remembered for the session: "+plainError(rerr), maxError))
			}
		}
	}
	return out, err
}

// withhold replaces a result that may not go back to the caller.
func withhold(toolErr, why error) (any, error) {
	return nil, errors.Join(fmt.Errorf("%w: %w", ErrResultWithheld, why), toolErr)
}

// resultLabels evaluates the policy's labels for the call's result.
func (g *Guard) resultLabels(ctx context.Context, st *callState, pol *scope.Policy, out any, err error) ([]string, error) {
	if !pol.Labels(st.d.Tool) {
		return nil, nil
	}
	meta := scope.ResultMeta{IsError: err != nil}
	if ra, ok := out.(ResultAttributer); ok {
		meta.Attrs = ra.ResultAttrs()
	}
	in := scope.Input{Tool: st.tool.info, Args: st.args, Call: scope.Call{ID: st.d.CallID, Time: st.start}, Session: &st.view}
	if pr := principalFrom(ctx); pr != nil {
		in.Principal = *pr
	}
	if tc := taskFrom(ctx); tc != nil {
		in.Task = &tc.task
	}
	return pol.LabelResult(ctx, in, meta)
}

// resultTokens returns the provenance tokens of a result: the strings,
// numbers and keys of a JSON-marshalable value ([]byte and
// json.RawMessage holding JSON are read as JSON, other bytes as text),
// and the text of the tool's error.
func resultTokens(out any, toolErr error) ([]string, error) {
	var set provenance.Set
	if toolErr != nil {
		set.Add(toolErr.Error())
	}
	switch x := out.(type) {
	case nil:
	case string:
		set.Add(x)
	case []byte:
		addBytes(&set, x)
	case json.RawMessage:
		addBytes(&set, x)
	default:
		b, err := json.Marshal(out)
		if err != nil {
			return nil, fmt.Errorf("the result cannot be read for its values: %w", err)
		}
		addBytes(&set, b)
	}
	return set.Tokens(), nil
}

// addBytes adds the tokens of b, read as JSON if it is JSON. JSON the
// strict decoder refuses (a duplicate key, deep nesting, a number out of
// range) is still read for its values, leniently: its strings may spell a
// value with escapes ("\u0065vil.test") that its raw text hides. What is
// not JSON at all is read as text (which Add reads again with JSON
// escapes undone).
func addBytes(set *provenance.Set, b []byte) {
	t := bytes.TrimSpace(b)
	if len(t) > 0 && (t[0] == '{' || t[0] == '[' || t[0] == '"') {
		if v, err := safejson.Decode(t, safejson.Limits{MaxBytes: len(t) + 1, MaxDepth: 512, MaxElements: len(t) + 1}); err == nil {
			set.AddValue(v)
			return
		}
		d := json.NewDecoder(bytes.NewReader(t))
		d.UseNumber()
		var v any
		if d.Decode(&v) == nil {
			set.AddValue(v)
		}
	}
	set.Add(string(b))
}
