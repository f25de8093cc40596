package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// FuzzCall drives arbitrary tool names and argument bytes through the whole
// pipeline: decoding, schema validation, the policy, limits and the record.
// It must never panic, a handler may only run for arguments that are a
// valid object matching the schema, every call leaves exactly one decision
// record, and the log always verifies.
func FuzzCall(f *testing.F) {
	for _, s := range []struct{ tool, args string }{
		{"read_file", `{"path":"/w/a.txt"}`},
		{"read_file", `{"path":"/w/.env"}`},
		{"read_file", `{"path":"/w/../etc/passwd"}`},
		{"read_file", `{"path":"/w/a","path":"/etc/shadow"}`},
		{"read_file", "{\"path\":\"/w/\xff\"}"},
		{"read_file", `{"path":"\ud800"}`},
		{"read_file", `{"path":1e400}`},
		{"read_file", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`},
		{"write_file", `{"path":"/w/out/x","content":"hi"}`},
		{"send_email", `{"to":"a@example.com"}`},
		{"", ``},
		{"nope\x00", `null`},
	} {
		f.Add(s.tool, []byte(s.args))
	}
	p, err := scope.Load("testdata/policy.yaml")
	if err != nil {
		f.Fatal(err)
	}
	// One guard for all inputs: building one type-checks the policy against
	// every tool, which would dominate the fuzzing time.
	var rec *recorder // a fresh log for each input
	g, err := toolguard.New(p, toolguard.WithSink(audit.SinkFunc(func(ctx context.Context, r *audit.Record) error {
		return rec.Write(ctx, r)
	})))
	if err != nil {
		f.Fatal(err)
	}
	ran := 0
	h := func(_ context.Context, a json.RawMessage) (any, error) {
		ran++
		var m map[string]any
		if err := json.Unmarshal(a, &m); err != nil {
			return nil, fmt.Errorf("handler ran with arguments that are not an object: %q", a)
		}
		return "ok", nil
	}
	for _, name := range []string{"read_file", "write_file", "send_email"} {
		schema := `{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string","maxLength":100},"to":{"type":"string"}}}`
		if err := g.Register(toolguard.Tool{Name: name, InputSchema: json.RawMessage(schema), Handler: h}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, tool string, args []byte) {
		rec = newRecorder()
		ran = 0
		ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "fuzz", Scopes: []string{"fs.read", "fs.write", "mail"}, Attrs: map[string]any{"workspace": "/w"}})
		_, err := g.Call(ctx, tool, args)
		if err != nil && strings.Contains(err.Error(), "handler ran with arguments that are not an object") {
			t.Fatal(err)
		}
		recs := rec.records()
		if len(recs) == 0 || recs[0].Kind != audit.KindDecision {
			t.Fatalf("no decision record: %+v", recs)
		}
		if err != nil && errors.Is(err, toolguard.ErrDenied) {
			if ran != 0 || len(recs) != 1 {
				t.Fatalf("denied call ran its handler or has %d records", len(recs))
			}
			if !utf8.ValidString(err.Error()) || strings.ContainsRune(err.Error(), 0) {
				t.Fatalf("denial message is not clean text: %q", err.Error())
			}
		}
		if ran > 0 && len(recs) != 2 {
			t.Fatalf("allowed call has %d records", len(recs))
		}
		rec.verify(t)
	})
}
