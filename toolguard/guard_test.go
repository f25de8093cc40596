package toolguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// recorder is a sink that keeps every record in memory (a copy), in order,
// and also chains them into a real Log so that the log can be verified.
type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
	buf  bytes.Buffer
	log  *audit.Log
	// discard drops records (for fuzzing, where the log would grow).
	discard bool
}

func newRecorder() *recorder {
	r := &recorder{}
	r.log = audit.NewLog(&r.buf)
	return r
}

func (r *recorder) Write(ctx context.Context, rec *audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.discard {
		return nil
	}
	if err := r.log.Write(ctx, rec); err != nil {
		return err
	}
	// A sink must not retain the record: keep a deep copy.
	var c audit.Record
	if err := json.Unmarshal(rec.AppendJSON(nil), &c); err != nil {
		return err
	}
	r.recs = append(r.recs, c)
	return nil
}

func (r *recorder) records() []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Record(nil), r.recs...)
}

func (r *recorder) verify(t *testing.T) audit.Summary {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	sum, err := audit.Verify(bytes.NewReader(r.buf.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
	return sum
}

type env struct {
	g     *toolguard.Guard
	rec   *recorder
	ran   map[string]*atomic.Int32
	ctx   context.Context
	order *[]string // what happened, in order
	mu    *sync.Mutex
}

func newEnv(t *testing.T, opts ...toolguard.Option) *env {
	t.Helper()
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	rec := newRecorder()
	e := &env{rec: rec, ran: map[string]*atomic.Int32{}, order: new([]string), mu: new(sync.Mutex)}
	g, err := toolguard.New(p, append([]toolguard.Option{toolguard.WithSink(audit.SinkFunc(func(ctx context.Context, r *audit.Record) error {
		e.mu.Lock()
		*e.order = append(*e.order, "record:"+string(r.Kind))
		e.mu.Unlock()
		return rec.Write(ctx, r)
	}))}, opts...)...)
	require.NoError(t, err)
	e.g = g
	handler := func(name string, fn toolguard.Handler) toolguard.Handler {
		c := new(atomic.Int32)
		e.ran[name] = c
		return func(ctx context.Context, args json.RawMessage) (any, error) {
			c.Add(1)
			e.mu.Lock()
			*e.order = append(*e.order, "run:"+name)
			e.mu.Unlock()
			return fn(ctx, args)
		}
	}
	echo := func(ctx context.Context, args json.RawMessage) (any, error) { return string(args), nil }
	pathSchema := `{"type":"object","properties":{"path":{"type":"string","minLength":1}},"required":["path"],"additionalProperties":false}`
	require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", InputSchema: json.RawMessage(pathSchema), Handler: handler("read_file", echo)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "write_file", InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string","maxLength":100}},"required":["path","content"]}`), Handler: handler("write_file", echo)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "send_email", InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string","format":"email"},"body":{"type":"string"}},"required":["to"]}`), Handler: handler("send_email", echo)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "login", InputSchema: json.RawMessage(`{"type":"object","properties":{"user":{"type":"string"},"password":{"type":"string","writeOnly":true},"otp":{"type":"string","x-sensitive":true}}}`), Handler: handler("login", echo)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "panics", Handler: handler("panics", func(context.Context, json.RawMessage) (any, error) { panic("boom") })}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "fails", Handler: handler("fails", func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("disk on fire") })}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "divide", Handler: handler("divide", echo)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "sleeps", Handler: handler("sleeps", func(ctx context.Context, _ json.RawMessage) (any, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
			return "late", nil
		}
	})}))
	e.ctx = toolguard.WithPrincipal(context.Background(), scope.Principal{
		ID: "agent-7", Scopes: []string{"fs.read", "fs.write", "mail", "login", "misc"},
		Attrs: map[string]any{"workspace": "/w"},
	})
	return e
}

func (e *env) runs(name string) int32 { return e.ran[name].Load() }

func TestAllowedCallRecordsBeforeRunning(t *testing.T) {
	e := newEnv(t)
	out, err := e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/a.txt"}`))
	require.NoError(t, err)
	assert.Equal(t, `{"path":"/w/a.txt"}`, out, "the handler gets the exact bytes that were validated")
	assert.Equal(t, []string{"record:decision", "run:read_file", "record:outcome"}, *e.order)

	recs := e.rec.records()
	require.Len(t, recs, 2)
	d, o := recs[0], recs[1]
	assert.Equal(t, audit.KindDecision, d.Kind)
	assert.Equal(t, "allow", d.Effect)
	assert.Equal(t, "agent-7", d.Principal)
	assert.Equal(t, "read_file", d.Tool)
	assert.Equal(t, "fs.read", d.Scope)
	assert.Equal(t, "fs.read#0", d.Grant)
	assert.Equal(t, `{"path":"/w/a.txt"}`, string(d.Args))
	assert.Len(t, d.ArgsSHA256, 64)
	assert.Equal(t, e.g.Policy().Revision(), d.Policy)
	assert.Positive(t, d.LatencyNS)
	assert.Equal(t, audit.KindOutcome, o.Kind)
	assert.Equal(t, d.ID, o.ID, "outcome is linked to its decision by id")
	assert.Equal(t, int64(len(`{"path":"/w/a.txt"}`)), o.ResultBytes)
	assert.Empty(t, o.Error)
	sum := e.rec.verify(t)
	assert.Equal(t, 2, sum.Records)
}

func TestDenials(t *testing.T) {
	tests := []struct {
		name     string
		ctx      func(e *env) context.Context
		tool     string
		args     string
		sentinel error
		stage    toolguard.Stage
		reason   string // substring of the model-readable message
		pointer  string
	}{
		{name: "unknown tool", tool: "rm_rf", args: `{}`, sentinel: toolguard.ErrUnknownTool, stage: toolguard.StageTool, reason: `there is no tool named "rm_rf"`},
		{name: "overlong unknown tool name is truncated", tool: strings.Repeat("x", 10000), args: `{}`, sentinel: toolguard.ErrUnknownTool, stage: toolguard.StageTool, reason: "xxx…"},
		{name: "no principal", ctx: func(*env) context.Context { return context.Background() }, tool: "read_file", args: `{"path":"/w/a"}`,
			sentinel: toolguard.ErrNoPrincipal, stage: toolguard.StagePrincipal, reason: "no principal"},
		{name: "empty principal id", ctx: func(*env) context.Context {
			return toolguard.WithPrincipal(context.Background(), scope.Principal{Scopes: []string{"fs.read"}})
		}, tool: "read_file", args: `{"path":"/w/a"}`, sentinel: toolguard.ErrNoPrincipal, stage: toolguard.StagePrincipal},
		{name: "schema: wrong type", tool: "read_file", args: `{"path":42}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments,
			reason: "at /path: got number, want string", pointer: "/path"},
		{name: "schema: missing property", tool: "read_file", args: `{}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments,
			reason: "missing property 'path'"},
		{name: "schema: additional property", tool: "read_file", args: `{"path":"/w/a","other":"/etc/passwd"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments,
			reason: "additional properties 'other' not allowed"},
		{name: "keys folding alike", tool: "read_file", args: `{"path":"/w/a","Path":"/etc/passwd"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments,
			reason: `key "Path" is key "path" in other letter case`, pointer: "/Path"},
		{name: "schema: format", tool: "send_email", args: `{"to":"not an email"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments, pointer: "/to"},
		{name: "not an object", tool: "read_file", args: `["/w/a"]`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments},
		{name: "duplicate keys", tool: "read_file", args: `{"path":"/w/a","path":"/etc/passwd"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments,
			reason: "duplicate"},
		{name: "duplicate keys via escapes", tool: "read_file", args: `{"path":"/w/a","p\u0061th":"/etc/passwd"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments,
			reason: "duplicate"},
		{name: "invalid UTF-8", tool: "read_file", args: "{\"path\":\"/w/\xff\"}", sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments, reason: "UTF-8"},
		{name: "lone surrogate", tool: "read_file", args: `{"path":"/w/\ud800"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments},
		{name: "too deep", tool: "read_file", args: `{"path":"/w/a","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments, reason: "deep"},
		{name: "too large", tool: "read_file", args: `{"path":"` + strings.Repeat("a", 2<<20) + `"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments, reason: "large"},
		{name: "trailing data", tool: "read_file", args: `{"path":"/w/a"} {"path":"/etc/passwd"}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments},
		{name: "number out of range", tool: "read_file", args: `{"path":"/w/a","n":1e400}`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments, reason: "range"},
		{name: "syntax", tool: "read_file", args: `{"path":`, sentinel: toolguard.ErrInvalidArguments, stage: toolguard.StageArguments},
		{name: "deny rule", tool: "read_file", args: `{"path":"/w/.env"}`, sentinel: toolguard.ErrPolicy, stage: toolguard.StagePolicy,
			reason: `denied by rule "no-dotenv": secret files are off limits: /w/.env`},
		{name: "outside workspace", tool: "read_file", args: `{"path":"/etc/passwd"}`, sentinel: toolguard.ErrPolicy, stage: toolguard.StagePolicy,
			reason: `scope "fs.read" allows it only when args.path.isUnder(principal.attrs.workspace)`},
		{name: "dot-dot", tool: "read_file", args: `{"path":"/w/../etc/passwd"}`, sentinel: toolguard.ErrPolicy, stage: toolguard.StagePolicy},
		{name: "scope not held", ctx: func(*env) context.Context {
			return toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "reader", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
		}, tool: "write_file", args: `{"path":"/w/out/a","content":"x"}`, sentinel: toolguard.ErrPolicy, stage: toolguard.StagePolicy, reason: `it needs scope "fs.write"`},
		{name: "CEL runtime error", tool: "divide", args: `{"n":1,"d":0}`, sentinel: toolguard.ErrPolicy, stage: toolguard.StagePolicy},
		{name: "cancelled context", ctx: func(e *env) context.Context {
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			return ctx
		}, tool: "read_file", args: `{"path":"/w/a"}`, sentinel: toolguard.ErrPolicy, stage: toolguard.StagePolicy, reason: "cancelled"},
		{name: "ask without approver", tool: "send_email", args: `{"to":"x@evil.test"}`, sentinel: toolguard.ErrNotApproved, stage: toolguard.StageApproval,
			reason: "mail to x@evil.test leaves the company; no approver is configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := e.ctx
			if tt.ctx != nil {
				ctx = tt.ctx(e)
			}
			out, err := e.g.Call(ctx, tt.tool, json.RawMessage(tt.args))
			require.Error(t, err)
			assert.Nil(t, out)
			assert.ErrorIs(t, err, toolguard.ErrDenied)
			assert.ErrorIs(t, err, tt.sentinel)
			var de *toolguard.DeniedError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, tt.stage, de.Decision.Stage)
			assert.Equal(t, scope.Deny, de.Decision.Effect)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Less(t, len(err.Error()), 4096, "denial messages stay readable")
			if tt.pointer != "" {
				require.NotEmpty(t, de.Decision.Violations)
				assert.Equal(t, tt.pointer, de.Decision.Violations[0].Pointer)
			}
			for name := range e.ran {
				assert.Zero(t, e.runs(name), "handler %s must not run", name)
			}
			recs := e.rec.records()
			require.Len(t, recs, 1, "exactly one decision record, no outcome")
			assert.Equal(t, "deny", recs[0].Effect)
			assert.Equal(t, string(tt.stage), recs[0].Stage)
			assert.Equal(t, de.Decision.CallID, recs[0].ID)
			assert.Len(t, recs[0].ArgsSHA256, 64)
			assert.LessOrEqual(t, len(recs[0].Tool), 200)
			e.rec.verify(t)
		})
	}
}

func TestSinkFailureDenies(t *testing.T) {
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	var ran atomic.Int32
	for _, sink := range []audit.Sink{
		audit.SinkFunc(func(context.Context, *audit.Record) error { return errors.New("disk full") }),
		audit.NewLog(failingWriter{}),
	} {
		g, err := toolguard.New(p, toolguard.WithSink(sink))
		require.NoError(t, err)
		require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", Handler: func(context.Context, json.RawMessage) (any, error) {
			ran.Add(1)
			return "data", nil
		}}))
		ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
		_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
		require.Error(t, err)
		assert.ErrorIs(t, err, toolguard.ErrDenied)
		assert.ErrorIs(t, err, toolguard.ErrAuditUnavailable)
		assert.Contains(t, err.Error(), "could not be recorded")

		// A call that would be denied anyway keeps its reason and says it
		// was not recorded.
		_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/.env"}`))
		assert.ErrorIs(t, err, toolguard.ErrPolicy)
		assert.ErrorIs(t, err, toolguard.ErrAuditUnavailable)
	}
	assert.Zero(t, ran.Load(), "no handler runs without its decision record")
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestOutcomeRecordFailure(t *testing.T) {
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	n := 0
	g, err := toolguard.New(p, toolguard.WithSink(audit.SinkFunc(func(_ context.Context, r *audit.Record) error {
		n++
		if r.Kind == audit.KindOutcome {
			return errors.New("gone")
		}
		return nil
	})))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", Handler: func(context.Context, json.RawMessage) (any, error) { return "data", nil }}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
	out, err := g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	assert.Equal(t, "data", out, "the tool ran; its result is not lost")
	assert.ErrorIs(t, err, toolguard.ErrAuditUnavailable)
	assert.NotErrorIs(t, err, toolguard.ErrDenied)
	assert.Equal(t, 2, n)
}

func TestApproval(t *testing.T) {
	var got []toolguard.ApprovalRequest
	var mu sync.Mutex
	approver := toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		switch {
		case strings.Contains(string(req.Args), "alice"):
			return toolguard.Approval{Approved: true, By: "ops@example.com", Binding: req.Binding}, nil
		case strings.Contains(string(req.Args), "mallory"):
			return toolguard.Approval{Approved: false, By: "ops@example.com", Reason: "unknown recipient"}, nil
		case strings.Contains(string(req.Args), "panic"):
			panic("approver bug")
		}
		return toolguard.Approval{}, errors.New("approval service unreachable")
	})
	e := newEnv(t, toolguard.WithApprover(approver))

	_, err := e.g.Call(e.ctx, "send_email", json.RawMessage(`{"to":"alice@partner.test"}`))
	require.NoError(t, err)
	assert.EqualValues(t, 1, e.runs("send_email"))
	require.Len(t, got, 1)
	assert.Equal(t, "external-mail", got[0].Rule)
	assert.Equal(t, "send_email", got[0].Tool)
	assert.Equal(t, `{"to":"alice@partner.test"}`, string(got[0].Args))
	assert.Len(t, got[0].ArgsSHA256, 64)
	assert.Equal(t, e.g.Policy().Revision(), got[0].PolicyRevision)

	_, err = e.g.Call(e.ctx, "send_email", json.RawMessage(`{"to":"mallory@evil.test"}`))
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)
	assert.Contains(t, err.Error(), "a human did not approve it: unknown recipient")

	_, err = e.g.Call(e.ctx, "send_email", json.RawMessage(`{"to":"bob@evil.test"}`))
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)
	assert.Contains(t, err.Error(), "approval service unreachable")

	_, err = e.g.Call(e.ctx, "send_email", json.RawMessage(`{"to":"panic@evil.test"}`))
	assert.ErrorIs(t, err, toolguard.ErrNotApproved)
	assert.Contains(t, err.Error(), "approver panicked")

	// Internal mail needs no approval.
	_, err = e.g.Call(e.ctx, "send_email", json.RawMessage(`{"to":"carol@example.com"}`))
	require.NoError(t, err)
	assert.Len(t, got, 4)
	assert.EqualValues(t, 2, e.runs("send_email"))

	recs := e.rec.records()
	var approvals int
	for _, r := range recs {
		if r.Approval != nil {
			approvals++
		}
	}
	assert.Equal(t, 4, approvals, "every asked call records the approval answer")
	e.rec.verify(t)
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t)
	args := json.RawMessage(`{"path":"/w/out/a","content":"x"}`)
	for i := 0; i < 2; i++ {
		_, err := e.g.Call(e.ctx, "write_file", args)
		require.NoError(t, err, "call %d within the burst", i)
	}
	_, err := e.g.Call(e.ctx, "write_file", args)
	require.Error(t, err)
	assert.ErrorIs(t, err, toolguard.ErrRateLimited)
	assert.Contains(t, err.Error(), `rate limit "writes" for "agent-7" is exhausted; retry after`)
	var de *toolguard.DeniedError
	require.ErrorAs(t, err, &de)
	require.Len(t, de.Decision.LimitResults, 1)
	assert.False(t, de.Decision.LimitResults[0].Allowed)
	assert.Greater(t, de.Decision.LimitResults[0].RetryAfter, 50*time.Minute)
	assert.EqualValues(t, 2, e.runs("write_file"))

	// Another principal has its own bucket.
	other := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent-8", Scopes: []string{"fs.write"}, Attrs: map[string]any{"workspace": "/w"}})
	_, err = e.g.Call(other, "write_file", args)
	require.NoError(t, err)

	recs := e.rec.records()
	last := recs[len(recs)-3] // the denied call's decision (before agent-8's decision and outcome)
	assert.Equal(t, "deny", last.Effect)
	assert.Equal(t, "limit", last.Stage)
}

func TestLimiterFullFailsClosed(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s: {grants: [{tools: [t], limit: per-path}]}
limits:
  per-path: {rate: 100/s, key: args.path}
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard), toolguard.WithLimiter(&toolguard.MemoryLimiter{MaxKeys: 2}))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "t", Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})
	for i := 0; i < 2; i++ {
		_, err := g.Call(ctx, "t", json.RawMessage(fmt.Sprintf(`{"path":"/%d"}`, i)))
		require.NoError(t, err)
	}
	_, err = g.Call(ctx, "t", json.RawMessage(`{"path":"/3"}`))
	assert.ErrorIs(t, err, toolguard.ErrRateLimited)
	assert.ErrorIs(t, err, toolguard.ErrLimiterFull)
	assert.Contains(t, err.Error(), "could not decide")
}

func TestHandlerFailures(t *testing.T) {
	e := newEnv(t, toolguard.WithToolTimeout(50*time.Millisecond))
	_, err := e.g.Call(e.ctx, "panics", nil)
	assert.ErrorIs(t, err, toolguard.ErrToolPanic)
	assert.NotErrorIs(t, err, toolguard.ErrDenied, "a malfunction is not a denial")
	assert.Contains(t, err.Error(), "boom")

	_, err = e.g.Call(e.ctx, "fails", json.RawMessage(`{}`))
	assert.EqualError(t, err, "disk on fire")

	start := time.Now()
	_, err = e.g.Call(e.ctx, "sleeps", json.RawMessage(`{}`))
	assert.ErrorIs(t, err, toolguard.ErrToolTimeout)
	assert.Less(t, time.Since(start), 4*time.Second)

	// A caller that gives up mid-call still gets its outcome recorded.
	ctx, cancel := context.WithCancel(e.ctx)
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = e.g.Call(ctx, "sleeps", json.RawMessage(`{}`))
	assert.ErrorIs(t, err, context.Canceled)

	var classes []string
	for _, r := range e.rec.records() {
		if r.Kind == audit.KindOutcome {
			classes = append(classes, r.ErrorClass)
			assert.NotEmpty(t, r.Error)
		}
	}
	assert.Equal(t, []string{"panic", "tool_error", "timeout", "canceled"}, classes)
	e.rec.verify(t)
}

func TestRedaction(t *testing.T) {
	e := newEnv(t)
	args := `{"user":"bob","password":"hunter2","otp":"123456"}`
	out, err := e.g.Call(e.ctx, "login", json.RawMessage(args))
	require.NoError(t, err)
	assert.Equal(t, args, out, "the handler gets the real arguments")
	d := e.rec.records()[0]
	assert.NotContains(t, string(d.Args), "hunter2")
	assert.NotContains(t, string(d.Args), "123456")
	assert.Contains(t, string(d.Args), `"user":"bob"`)
	assert.Contains(t, string(d.Args), "redacted:hmac-sha256:")
	assert.Equal(t, []string{"/otp", "/password"}, d.Redacted)

	// The digest of the unredacted arguments does not depend on the key
	// order or spacing the caller used.
	_, err = e.g.Call(e.ctx, "login", json.RawMessage(`{ "otp":"123456", "password":"hunter2", "user":"bob" }`))
	require.NoError(t, err)
	recs := e.rec.records()
	assert.Equal(t, recs[0].ArgsSHA256, recs[2].ArgsSHA256)
	assert.Equal(t, string(recs[0].Args), string(recs[2].Args))
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	d, err := e.g.Check(e.ctx, "send_email", json.RawMessage(`{"to":"x@evil.test"}`))
	assert.Equal(t, scope.Ask, d.Effect)
	assert.Equal(t, "external-mail", d.Rule)
	// An ask is an error: `if err == nil { run() }` never skips the human.
	require.Error(t, err)
	assert.ErrorIs(t, err, toolguard.ErrApprovalRequired)
	assert.ErrorIs(t, err, toolguard.ErrDenied)
	assert.NotErrorIs(t, err, toolguard.ErrNotApproved)
	var de *toolguard.DeniedError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, scope.Ask, de.Decision.Effect)
	assert.Equal(t, d.Binding, de.Decision.Binding)
	assert.Len(t, de.Decision.Binding, 64)
	assert.Equal(t, `toolguard: call to "send_email" needs approval: rule "external-mail" requires human approval: mail to x@evil.test leaves the company`, err.Error())

	d, err = e.g.Check(e.ctx, "read_file", json.RawMessage(`{"path":"/w/.env"}`))
	assert.ErrorIs(t, err, toolguard.ErrPolicy)
	assert.Equal(t, scope.Deny, d.Effect)

	// Check never consumes a limit.
	for i := 0; i < 5; i++ {
		d, err = e.g.Check(e.ctx, "write_file", json.RawMessage(`{"path":"/w/out/a","content":"x"}`))
		require.NoError(t, err)
		assert.Equal(t, scope.Allow, d.Effect)
	}
	assert.Empty(t, e.rec.records(), "Check records nothing")
	for name := range e.ran {
		assert.Zero(t, e.runs(name))
	}
}

type readArgs struct {
	Path string `json:"path" jsonschema:"the file to read"`
	Max  int    `json:"max,omitempty"`
}

func TestRegisterTyped(t *testing.T) {
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var got readArgs
	require.NoError(t, toolguard.Register(g, "read_file", "Read a file", func(ctx context.Context, in readArgs) (string, error) {
		got = in
		return "contents of " + in.Path, nil
	}))
	tools := g.Tools()
	require.Len(t, tools, 1)
	assert.Contains(t, string(tools[0].InputSchema), `"path"`)

	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
	out, err := g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a","max":3}`))
	require.NoError(t, err)
	assert.Equal(t, "contents of /w/a", out)
	assert.Equal(t, readArgs{Path: "/w/a", Max: 3}, got)

	// encoding/json matches field names case-insensitively; the derived
	// schema must reject the differently-cased duplicate before it gets
	// there.
	_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a","PATH":"/etc/passwd"}`))
	assert.ErrorIs(t, err, toolguard.ErrInvalidArguments)
	_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a","max":"3"}`))
	assert.ErrorIs(t, err, toolguard.ErrInvalidArguments)
}

func TestRegisterErrors(t *testing.T) {
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	h := func(context.Context, json.RawMessage) (any, error) { return nil, nil }
	tests := []struct {
		tool toolguard.Tool
		want string
	}{
		{toolguard.Tool{Name: "", Handler: h}, "1 to 128 characters"},
		{toolguard.Tool{Name: strings.Repeat("a", 129), Handler: h}, "1 to 128 characters"},
		{toolguard.Tool{Name: "has space", Handler: h}, "not allowed"},
		{toolguard.Tool{Name: "nohandler"}, "no handler"},
		{toolguard.Tool{Name: "bad", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"strng"}}}`), Handler: h}, "does not compile"},
		{toolguard.Tool{Name: "bad2", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"minLength":-1}}}`), Handler: h}, "does not compile"},
		{toolguard.Tool{Name: "remote", InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"$ref":"https://example.com/s.json"}}}`), Handler: h}, "external references are not loaded"},
		{toolguard.Tool{Name: "notjson", InputSchema: json.RawMessage(`{"type":`), Handler: h}, "not JSON"},
		{toolguard.Tool{Name: "array", InputSchema: json.RawMessage(`{"type":"array"}`), Handler: h}, `must be "object"`},
	}
	for _, tt := range tests {
		err := g.Register(tt.tool)
		require.Error(t, err, tt.tool.Name)
		assert.Contains(t, err.Error(), tt.want)
	}
	require.NoError(t, g.Register(toolguard.Tool{Name: "ok", Handler: h}))
	assert.ErrorContains(t, g.Register(toolguard.Tool{Name: "ok", Handler: h}), "already registered")
}

func TestNewErrors(t *testing.T) {
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	_, err = toolguard.New(p)
	assert.ErrorContains(t, err, "no audit sink")
	_, err = toolguard.New(nil, toolguard.WithSink(audit.Discard))
	assert.ErrorContains(t, err, "nil policy")
}

func TestConcurrentCallsChainVerifies(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	var allowed, denied atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				path := fmt.Sprintf("/w/%d/%d", i, j)
				if j%3 == 0 {
					path = "/etc/x"
				}
				_, err := e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"`+path+`"}`))
				if err != nil {
					denied.Add(1)
				} else {
					allowed.Add(1)
				}
			}
		}(i)
	}
	wg.Wait()
	sum := e.rec.verify(t)
	assert.Equal(t, int(allowed.Load()+denied.Load()), sum.Decisions)
	assert.Equal(t, int(allowed.Load()), sum.Outcomes)
	assert.Equal(t, int(allowed.Load()), sum.Allowed)
	assert.Equal(t, int(denied.Load()), sum.Denied)
}

func TestSetPolicy(t *testing.T) {
	e := newEnv(t)
	_, err := e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	require.NoError(t, err)
	strict, err := scope.Parse([]byte("version: 1\nrules:\n  - {name: lockdown, effect: deny, tools: ['*']}\n"))
	require.NoError(t, err)
	require.NoError(t, e.g.SetPolicy(strict))
	_, err = e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	assert.ErrorIs(t, err, toolguard.ErrPolicy)
	recs := e.rec.records()
	assert.Equal(t, strict.Revision(), recs[len(recs)-1].Policy)
	assert.NotEqual(t, recs[0].Policy, recs[len(recs)-1].Policy)
}

var _ io.Writer = failingWriter{}

func TestVisibleAndTool(t *testing.T) {
	e := newEnv(t)
	assert.True(t, e.g.Visible(e.ctx, "read_file"))
	assert.False(t, e.g.Visible(e.ctx, "not_registered"))
	assert.False(t, e.g.Visible(context.Background(), "read_file"), "no principal sees nothing")
	reader := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "r", Scopes: []string{"fs.read"}})
	assert.True(t, e.g.Visible(reader, "read_file"))
	assert.False(t, e.g.Visible(reader, "write_file"))
	info, ok := e.g.Tool("read_file")
	require.True(t, ok)
	assert.Contains(t, string(info.InputSchema), `"path"`)
	_, ok = e.g.Tool("nope")
	assert.False(t, ok)
}

func TestPolicyTypeCheckedAgainstTools(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [read_file]
        when: args.pth.startsWith("/w")
`), scope.WithFilename("policy.yaml"))
	require.NoError(t, err, "without schemas the typo cannot be seen")
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	err = g.Register(toolguard.Tool{Name: "read_file",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`),
		Handler:     func(context.Context, json.RawMessage) (any, error) { return nil, nil }})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `policy.yaml:6:19: /scopes/s/grants/0/when: for tool "read_file": undefined field 'pth'`)

	// A policy swapped in later is checked against the registered tools.
	good, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t], when: 'args.n > 1'}]}\n"))
	require.NoError(t, err)
	g, err = toolguard.New(good, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "t",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`),
		Handler:     func(context.Context, json.RawMessage) (any, error) { return nil, nil }}))
	bad, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t], when: 'args.n == \"one\"'}]}\n"))
	require.NoError(t, err)
	err = g.SetPolicy(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no matching overload")
	assert.Equal(t, good.Revision(), g.Policy().Revision(), "the old policy stays")
}

func TestUnregister(t *testing.T) {
	e := newEnv(t)
	require.True(t, e.g.Unregister("read_file"))
	assert.False(t, e.g.Unregister("read_file"))
	_, err := e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	assert.ErrorIs(t, err, toolguard.ErrUnknownTool)
	require.NoError(t, e.g.Register(toolguard.Tool{Name: "read_file", Handler: func(context.Context, json.RawMessage) (any, error) { return "v2", nil }}))
	out, err := e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	require.NoError(t, err)
	assert.Equal(t, "v2", out)
}
