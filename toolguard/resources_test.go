package toolguard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const resourcePolicy = `
version: 1
scopes:
  docs:
    grants:
      - resources: ["file:///w/**"]
      - prompts: [summarize]
        when: '!has(args.style) || args.style != "leak"'
rules:
  - name: no-secrets
    effect: deny
    resources: ["file:///w/secret/**"]
`

func readRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		if r.Kind != audit.KindCheckpoint {
			out = append(out, r)
		}
	}
	return out
}

// TestReadResourceRecords: a read is decided and its decision durably
// recorded before the resource is read; a denied read never runs; every
// spelling of a denied URI is denied; the log verifies.
func TestReadResourceRecords(t *testing.T) {
	p, err := scope.Parse([]byte(resourcePolicy))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	log, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncEachRecord})
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(log))
	require.NoError(t, err)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})

	var read []string
	reader := func(uri string) func(context.Context) (any, error) {
		return func(ctx context.Context) (any, error) {
			id, ok := toolguard.CallIDFrom(ctx)
			require.True(t, ok, "the read runs with its call id")
			require.NotEmpty(t, id)
			read = append(read, uri)
			return "contents of " + uri, nil
		}
	}
	out, err := g.ReadResource(ctx, "file:///w/a.txt", reader("file:///w/a.txt"))
	require.NoError(t, err)
	assert.Equal(t, "contents of file:///w/a.txt", out)
	for _, uri := range []string{"file:///w/secret/key", "FILE://localhost/w/x/../secret/key", "file:///w/%73ecret/key", "file:///etc/passwd", "file:///w/a#/../../../etc/passwd"} {
		_, err = g.ReadResource(ctx, uri, reader(uri))
		var de *toolguard.DeniedError
		require.ErrorAs(t, err, &de, uri)
		assert.ErrorIs(t, err, toolguard.ErrPolicy)
		assert.Equal(t, toolguard.StagePolicy, de.Decision.Stage)
	}
	_, err = g.ReadResource(context.Background(), "file:///w/a.txt", reader("anonymous"))
	assert.ErrorIs(t, err, toolguard.ErrNoPrincipal)
	out, err = g.GetPrompt(ctx, "summarize", map[string]string{"style": "short"}, func(context.Context) (any, error) { return "prompt", nil })
	require.NoError(t, err)
	assert.Equal(t, "prompt", out)
	_, err = g.GetPrompt(ctx, "summarize", map[string]string{"style": "leak"}, func(context.Context) (any, error) {
		t.Fatal("a denied prompt ran")
		return nil, nil
	})
	assert.ErrorIs(t, err, toolguard.ErrPolicy)
	require.NoError(t, log.Close())
	assert.Equal(t, []string{"file:///w/a.txt"}, read, "only the allowed read ran")

	recs := readRecords(t, path)
	type row struct{ kind, tool, effect, args, rule, principal string }
	var got []row
	for _, r := range recs {
		got = append(got, row{string(r.Kind), r.Tool, r.Effect, string(r.Args), r.Rule, r.Principal})
	}
	assert.Equal(t, []row{
		{"decision", "resources/read", "allow", `{"uri":"file:///w/a.txt"}`, "", "alice"},
		{"outcome", "resources/read", "", "", "", "alice"},
		{"decision", "resources/read", "deny", `{"uri":"file:///w/secret/key"}`, "no-secrets", "alice"},
		{"decision", "resources/read", "deny", `{"uri":"FILE://localhost/w/x/../secret/key"}`, "no-secrets", "alice"},
		{"decision", "resources/read", "deny", `{"uri":"file:///w/%73ecret/key"}`, "no-secrets", "alice"},
		{"decision", "resources/read", "deny", `{"uri":"file:///etc/passwd"}`, "", "alice"},
		{"decision", "resources/read", "deny", `{"uri":"file:///w/a#/../../../etc/passwd"}`, "", "alice"},
		{"decision", "resources/read", "deny", `{"uri":"file:///w/a.txt"}`, "", ""},
		{"decision", "prompts/get", "allow", `{"arguments":{"style":"short"},"name":"summarize"}`, "", "alice"},
		{"outcome", "prompts/get", "", "", "", "alice"},
		{"decision", "prompts/get", "deny", `{"arguments":{"style":"leak"},"name":"summarize"}`, "", "alice"},
	}, got)
	assert.Equal(t, recs[0].ID, recs[1].ID, "decision and outcome share the id")
	assert.Equal(t, "docs#0", recs[0].Grant)
	assert.Equal(t, p.Revision(), recs[0].Policy)
	assert.NotEmpty(t, recs[1].ResultSHA256)

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sum, err := audit.Verify(f, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 7, sum.Denied)
}

// TestReadResourceAuditFailureDenies: a read whose decision cannot be
// recorded does not run; a read whose outcome cannot be recorded reports it.
func TestReadResourceAuditFailureDenies(t *testing.T) {
	p, err := scope.Parse([]byte(resourcePolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.SinkFunc(func(context.Context, *audit.Record) error {
		return errors.New("disk full")
	})))
	require.NoError(t, err)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})
	_, err = g.ReadResource(ctx, "file:///w/a.txt", func(context.Context) (any, error) {
		t.Fatal("read without a decision record")
		return nil, nil
	})
	assert.ErrorIs(t, err, toolguard.ErrAuditUnavailable)
	assert.ErrorIs(t, err, toolguard.ErrDenied)

	g, err = toolguard.New(p, toolguard.WithSink(audit.SinkFunc(func(_ context.Context, r *audit.Record) error {
		if r.Kind == audit.KindOutcome {
			return errors.New("disk full")
		}
		return nil
	})))
	require.NoError(t, err)
	out, err := g.ReadResource(ctx, "file:///w/a.txt", func(context.Context) (any, error) { return "x", nil })
	assert.Equal(t, "x", out)
	assert.ErrorIs(t, err, toolguard.ErrAuditUnavailable)

	out, err = g.ReadResource(ctx, "file:///w/a.txt", func(context.Context) (any, error) { panic("boom") })
	assert.Nil(t, out)
	assert.ErrorContains(t, err, "panicked")
}

func TestResourceNamesAreReserved(t *testing.T) {
	p, err := scope.Parse([]byte(resourcePolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	h := func(context.Context, json.RawMessage) (any, error) { return nil, nil }
	for _, name := range []string{toolguard.ResourceReadName, toolguard.ResourceSubscribeName, toolguard.ResourceUnsubscribeName, toolguard.PromptGetName} {
		assert.ErrorContains(t, g.Register(toolguard.Tool{Name: name, Handler: h}), "reserved")
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})
	assert.True(t, g.ResourceVisible(ctx, "file:///w/a"))
	assert.False(t, g.ResourceVisible(ctx, "file:///w/secret/a"))
	assert.False(t, g.ResourceVisible(context.Background(), "file:///w/a"))
	assert.True(t, g.PromptVisible(ctx, "summarize"))
	assert.False(t, g.PromptVisible(context.Background(), "summarize"))
	assert.True(t, g.ResourceTemplateVisible(ctx, "file:///w/{name}"))
	assert.False(t, g.ResourceTemplateVisible(ctx, "file:///etc/{name}"))
}

// TestReadResourceTaskAndSession: a task narrows the scopes resources and
// prompts are granted by, as it does for tools; records carry the session
// and task.
func TestReadResourceTaskAndSession(t *testing.T) {
	p, err := scope.Parse([]byte(resourcePolicy))
	require.NoError(t, err)
	sink := audit.SinkFunc(func(context.Context, *audit.Record) error { return nil })
	var recs []audit.Record
	g, err := toolguard.New(p, toolguard.WithSink(audit.SinkFunc(func(ctx context.Context, r *audit.Record) error {
		recs = append(recs, audit.Record{Kind: r.Kind, Tool: r.Tool, Effect: r.Effect, Session: r.Session, Task: r.Task})
		return sink.Write(ctx, r)
	})))
	require.NoError(t, err)
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"docs"}})
	ctx = toolguard.WithSession(ctx, "s1")
	read := func(context.Context) (any, error) { return "x", nil }

	_, err = g.ReadResource(toolguard.WithTask(ctx, scope.Task{ID: "t1", Scopes: []string{"docs"}}), "file:///w/a", read)
	require.NoError(t, err)
	narrowed := toolguard.WithTask(ctx, scope.Task{ID: "t2", Scopes: []string{"mail"}})
	_, err = g.ReadResource(narrowed, "file:///w/a", read)
	assert.ErrorIs(t, err, toolguard.ErrPolicy, "the task keeps no scope that grants the resource")
	_, err = g.GetPrompt(narrowed, "summarize", nil, read)
	assert.ErrorIs(t, err, toolguard.ErrPolicy)
	assert.False(t, g.ResourceVisible(narrowed, "file:///w/a"))
	assert.False(t, g.PromptVisible(narrowed, "summarize"))
	assert.False(t, g.ResourceTemplateVisible(narrowed, "file:///w/{x}"))
	assert.True(t, g.ResourceVisible(ctx, "file:///w/a"))

	require.Len(t, recs, 4)
	assert.Equal(t, audit.Record{Kind: audit.KindDecision, Tool: "resources/read", Effect: "allow", Session: "s1", Task: "t1"}, recs[0])
	assert.Equal(t, audit.Record{Kind: audit.KindOutcome, Tool: "resources/read", Session: "s1", Task: "t1"}, recs[1])
	assert.Equal(t, audit.Record{Kind: audit.KindDecision, Tool: "resources/read", Effect: "deny", Session: "s1", Task: "t2"}, recs[2])
	assert.Equal(t, audit.Record{Kind: audit.KindDecision, Tool: "prompts/get", Effect: "deny", Session: "s1", Task: "t2"}, recs[3])
}
