package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// goPackage finds a Go package prefix of this module in a text.
var goPackage = regexp.MustCompile(`\b(toolguard|guardmcp|audit|scope|redislimit|safejson|canonjson|fastschema|fsroot|netguard|aibom|hostname|glob): `)

// TestModelTextNamesNoGoPackage: where a denial's reason carries the text of
// an error from another part of the module — an approver's, the audit
// log's — the model reads it without Go package names, while Error() keeps
// them for programmers.
func TestModelTextNamesNoGoPackage(t *testing.T) {
	t.Run("approver error", func(t *testing.T) {
		e := newEnv(t, toolguard.WithApprover(toolguard.ApproverFunc(func(context.Context, toolguard.ApprovalRequest) (toolguard.Approval, error) {
			return toolguard.Approval{}, guardmcp.ErrNoElicitation
		})))
		_, err := e.g.Call(e.ctx, "send_email", mail("alice@partner.test"))
		var de *toolguard.DeniedError
		require.ErrorAs(t, err, &de)
		require.ErrorIs(t, err, guardmcp.ErrNoElicitation)
		assert.Contains(t, de.ModelText(), "cannot ask its user")
		assert.NotRegexp(t, goPackage, de.ModelText())
		assert.True(t, strings.HasPrefix(err.Error(), "toolguard: "), "Error() is a Go error string: %s", err)
	})
	t.Run("closed audit log", func(t *testing.T) {
		p, err := scope.Load("testdata/policy.yaml")
		require.NoError(t, err)
		log, err := audit.OpenFile(filepath.Join(t.TempDir(), "d.jsonl"), audit.FileOptions{})
		require.NoError(t, err)
		require.NoError(t, log.Close())
		g, err := toolguard.New(p, toolguard.WithSink(log))
		require.NoError(t, err)
		require.NoError(t, toolguard.Register(g, "read_file", "", func(context.Context, struct {
			Path string `json:"path"`
		}) (string, error) {
			t.Error("the tool ran without a record")
			return "", nil
		}))
		ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent-7", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
		_, err = g.Call(ctx, "read_file", []byte(`{"path":"/w/a"}`))
		var de *toolguard.DeniedError
		require.ErrorAs(t, err, &de)
		require.True(t, errors.Is(err, audit.ErrClosed), "%v", err)
		assert.Contains(t, de.ModelText(), "could not be recorded")
		assert.NotRegexp(t, goPackage, de.ModelText())
	})
}

// TestDenialTextIsBounded: a schema message may quote the whole value it
// refuses, and a handler's error may be of any length; what the model
// reads and what the record keeps are bounded all the same, cut on a
// character boundary, with no standard library package names in them, and
// the log stays one that verifies.
func TestDenialTextIsBounded(t *testing.T) {
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t, fail]}]}\n"))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "t", InputSchema: []byte(`{"type":"object","properties":{
		"a":{"type":"string","pattern":"^x$"},"b":{"type":"string","pattern":"^y$"},"u":{"type":"string","format":"uri"},
		"e":{"enum":["one","two"]}},"additionalProperties":false}`),
		Handler: func(context.Context, json.RawMessage) (any, error) { return "ran", nil }}))
	huge := strings.Repeat("é", 300<<10) // 600 KB of two-byte characters
	require.NoError(t, g.Register(toolguard.Tool{Name: "fail", Handler: func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New(huge)
	}}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "p", Scopes: []string{"s"}})
	v := strings.Repeat("é", 20<<10) // 40 KB: within the arguments' 1 MiB
	a := map[string]any{"a": v, "b": v, "u": "http://h/\x7f" + v, "e": v}
	for i := range 12 {
		a[v+strconv.Itoa(i)] = i // additional properties, each named in a message
	}
	args, err := json.Marshal(a)
	require.NoError(t, err)
	_, err = g.Call(ctx, "t", args)
	var de *toolguard.DeniedError
	require.ErrorAs(t, err, &de)
	text := de.ModelText()
	assert.Less(t, len(text), 8<<10, "the reason the model reads")
	assert.True(t, utf8.ValidString(text))
	assert.NotRegexp(t, `\b(net/url|strconv|json): `, text)
	for _, v := range de.Decision.Violations {
		assert.LessOrEqual(t, len(v.Message), 600, v.Pointer)
		assert.True(t, utf8.ValidString(v.Message))
	}

	_, err = g.Call(ctx, "fail", nil)
	require.Error(t, err)
	assert.Len(t, err.Error(), len(huge), "the caller gets the handler's error as it is")
	recs := rec.records()
	out := recs[len(recs)-1]
	require.Equal(t, audit.KindOutcome, out.Kind)
	assert.Less(t, len(out.Error), 20<<10, "the record keeps a bounded error")
	assert.True(t, utf8.ValidString(out.Error))
	rec.verify(t)
}

// TestFormatErrorsNameNoPackage: a format the schema checks with a
// standard library parser (uri) reports the parser's reason without its
// package name.
func TestFormatErrorsNameNoPackage(t *testing.T) {
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t]}]}\n"))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "t", InputSchema: []byte(`{"type":"object","properties":{"u":{"type":"string","format":"uri"}}}`),
		Handler: func(context.Context, json.RawMessage) (any, error) { return "ran", nil }}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "p", Scopes: []string{"s"}})
	_, err = g.Call(ctx, "t", []byte(`{"u":"http://h/\u007f"}`))
	var de *toolguard.DeniedError
	require.ErrorAs(t, err, &de)
	assert.Contains(t, de.ModelText(), "/u")
	assert.NotRegexp(t, `\b(net/url|strconv|json): `, de.ModelText())
	require.Len(t, de.Decision.Violations, 1)
	assert.NotContains(t, de.Decision.Violations[0].Message, "net/url")
}

// TestReasonsBoundedEverywhere: an ask rule's message (also through
// Check), a shadow rule's message and a denial whose record could not be
// written carry arguments of any length; each is bounded all the same,
// and the text of an error joined on a new line loses its package names.
func TestReasonsBoundedEverywhere(t *testing.T) {
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [t, d]}]}\nrules:\n" +
		"  - {name: a, effect: ask, tools: [t], message: '\"approve \" + args.p'}\n" +
		"  - {name: sh, effect: deny, mode: shadow, tools: [t], message: '\"would deny \" + args.p'}\n" +
		"  - {name: no, effect: deny, tools: [d], message: '\"no: \" + args.p'}\n"))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec))
	require.NoError(t, err)
	for _, name := range []string{"t", "d"} {
		require.NoError(t, g.Register(toolguard.Tool{Name: name, Handler: func(context.Context, json.RawMessage) (any, error) { return "ran", nil }}))
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "p", Scopes: []string{"s"}})
	args, err := json.Marshal(map[string]string{"p": strings.Repeat("A", 500<<10)})
	require.NoError(t, err)
	_, err = g.Check(ctx, "t", args)
	var de *toolguard.DeniedError
	require.ErrorAs(t, err, &de)
	assert.LessOrEqual(t, len(de.ModelText()), 5<<10, "an ask reason through Check")
	_, _ = g.Call(ctx, "t", args)
	shadows := 0
	for _, r := range rec.records() {
		for _, s := range r.Shadow {
			shadows++
			assert.LessOrEqual(t, len(s.Message), 16<<10)
		}
	}
	assert.Positive(t, shadows)

	failing := audit.SinkFunc(func(context.Context, *audit.Record) error {
		return errors.Join(errors.New("disk"), errors.New("audit: write x: json: "+strings.Repeat("B", 100<<10)))
	})
	g2, err := toolguard.New(p, toolguard.WithSink(failing))
	require.NoError(t, err)
	require.NoError(t, g2.Register(toolguard.Tool{Name: "d", Handler: func(context.Context, json.RawMessage) (any, error) { return "ran", nil }}))
	_, err = g2.Call(ctx, "d", args)
	require.ErrorAs(t, err, &de)
	assert.LessOrEqual(t, len(de.Decision.Reason), 4<<10)
	assert.True(t, utf8.ValidString(de.Decision.Reason))
	_, err = g2.Call(ctx, "d", []byte(`{"p":"x"}`))
	require.ErrorAs(t, err, &de)
	assert.Contains(t, de.ModelText(), "could not be recorded")
	assert.NotRegexp(t, `\b(audit|json): `, de.ModelText())
}
