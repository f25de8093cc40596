package toolguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// Secrets are kept out of records even where no schema marks them, and the
// policy can name more values to redact.
func TestRecordsRedactSecretsAndPolicyPointers(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s: {grants: [{tools: [fetch, note]}]}
redact:
  note: [/body]
`))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec))
	require.NoError(t, err)
	echo := func(_ context.Context, a json.RawMessage) (any, error) { return string(a), nil }
	require.NoError(t, g.Register(toolguard.Tool{Name: "fetch", Handler: echo}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "note", Handler: echo}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})

	secret := `{"url":"https://admin:hunter2@db.internal/x","key":"AKIAIOSFODNN7EXAMPLE"}`
	out, err := g.Call(ctx, "fetch", json.RawMessage(secret))
	require.NoError(t, err)
	assert.Equal(t, secret, out, "the tool gets the real arguments")
	_, err = g.Call(ctx, "note", json.RawMessage(`{"title":"t","body":"private words"}`))
	require.NoError(t, err)

	recs := rec.records()
	assert.NotContains(t, string(recs[0].Args), "hunter2")
	assert.NotContains(t, string(recs[0].Args), "AKIAIOSFODNN7EXAMPLE")
	assert.ElementsMatch(t, []string{"/key", "/url"}, recs[0].Redacted)
	assert.NotContains(t, string(recs[2].Args), "private words")
	assert.Contains(t, string(recs[2].Args), `"title":"t"`)
	assert.Equal(t, []string{"/body"}, recs[2].Redacted)
	rec.verify(t)

	_, err = scope.Parse([]byte("version: 1\nredact:\n  note: [body]\n"))
	assert.ErrorContains(t, err, "is not a JSON pointer")
}

func TestRecordsCarryCorrelationCandidateAndBinding(t *testing.T) {
	candidate, err := scope.Parse([]byte("version: 1\nscopes:\n  mail: {grants: [{tools: [send_email]}]}\n"))
	require.NoError(t, err)
	e := newEnv(t, toolguard.WithCandidate(candidate), toolguard.WithApprover(toolguard.ApproverFunc(
		func(_ context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
			return toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}, nil
		})))
	ctx := toolguard.WithCorrelation(e.ctx, audit.Correlation{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Conversation: "conv-9", Message: "msg_1"})
	_, err = e.g.Call(ctx, "send_email", mail("x@partner.test"))
	require.NoError(t, err)
	recs := e.rec.records()
	require.Len(t, recs, 2)
	d, o := recs[0], recs[1]
	require.NotNil(t, d.Correlation)
	assert.Equal(t, "conv-9", d.Correlation.Conversation)
	assert.Equal(t, d.Correlation, o.Correlation, "the outcome carries the same correlation")
	require.NotNil(t, d.Approval)
	assert.Len(t, d.Approval.Binding, 64)
	require.NotNil(t, d.Candidate)
	assert.Equal(t, candidate.Revision(), d.Candidate.Policy)
	assert.Equal(t, "allow", d.Candidate.Effect)
	assert.False(t, d.Candidate.Agrees, "enforced: ask (external-mail); candidate: allow")
	e.rec.verify(t)
}

// shortWriter writes half of what it is given, and says so.
type shortWriter struct{}

func (shortWriter) Write(b []byte) (int, error) { return len(b) / 2, nil }

// fullDisk reports ENOSPC, as a file on a full file system does.
type fullDisk struct{}

func (fullDisk) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "decisions.jsonl", Err: syscall.ENOSPC}
}

// A writer that errors, writes short, or reports a full disk: calls are
// denied, handlers do not run, and the error says what happened.
func TestAuditFaultsDenyCalls(t *testing.T) {
	for name, w := range map[string]io.Writer{"error": failingWriter{}, "short write": shortWriter{}, "full disk": fullDisk{}} {
		t.Run(name, func(t *testing.T) {
			p, err := scope.Load("testdata/policy.yaml")
			require.NoError(t, err)
			g, err := toolguard.New(p, toolguard.WithSink(audit.NewLog(w)))
			require.NoError(t, err)
			ran := 0
			require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", Handler: func(context.Context, json.RawMessage) (any, error) { ran++; return nil, nil }}))
			ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
			for i := 0; i < 3; i++ {
				_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
				require.ErrorIs(t, err, toolguard.ErrAuditUnavailable)
				assert.Contains(t, err.Error(), "the decision could not be recorded, so the call is denied")
			}
			assert.Zero(t, ran)
			if name == "full disk" {
				assert.Contains(t, err.Error(), "no space left on device")
			}
		})
	}
}

// A real log file closed under a running guard: the next call is denied,
// and what was written still verifies. (Writes refused by the OS mid-record
// are covered in package audit, with RLIMIT_FSIZE.)
func TestClosedLogDeniesAndVerifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	log, err := audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err)
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(log))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", Handler: func(context.Context, json.RawMessage) (any, error) { return "ok", nil }}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
	_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	require.NoError(t, err)
	require.NoError(t, log.Close())
	_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	assert.ErrorIs(t, err, toolguard.ErrAuditUnavailable)
	f, err := os.ReadFile(path)
	require.NoError(t, err)
	sum, err := audit.Verify(bytes.NewReader(f), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Records)
}
