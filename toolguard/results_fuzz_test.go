package toolguard_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/toolguard"
)

// FuzzResultGuard: whatever JSON or text a tool returns, the result guard
// either withholds it or returns something in which the detectors find no
// secret, at any level of JSON held in strings it looks into.
func FuzzResultGuard(f *testing.F) {
	for _, s := range []string{
		`{"k":"AKIAIOSFODNN7EXAMPLE"}`,
		`{"k":"\u0041KIAIOSFODNN7EXAMPLE"}`,
		`{"AKIAIOSFODNN7EXAMPLE":{"Bearer abcdefghijkl":1}}`,
		`[[["x","Bearer abcdefghijklmn"]]]`,
		`{"t":"{\"a\":\"\\u0041KIAIOSFODNN7EXAMPLE\"}"}`,
		`{"t":"{\"a\":\"{\\\"b\\\":\\\"\\\\u0041KIAIOSFODNN7EXAMPLE\\\"}\"}"}`,
		"text ghp_abcdefghijklmnopqrstuvwxyz0123456789 end",
		"https://user:hunter2@example.com/x",
		`{"u":"https://user:p%40ss@example.com"}`,
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
		"xoxb-1234567890-abcdef AIzaSyA1234567890abcdefghijklmnopqrstuv",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	e := newResultEnv(f, "")
	e.rec.discard = true
	f.Fuzz(func(t *testing.T, s string, raw bool) {
		var out any = s
		if raw {
			if !json.Valid([]byte(s)) {
				return
			}
			out = json.RawMessage(s)
		}
		e.out = out
		res, err := e.g.Call(e.ctx, "fetch", json.RawMessage(`{}`))
		if err != nil {
			if !errors.Is(err, toolguard.ErrResultWithheld) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		text := plain(t, res)
		if k := audit.SecretKinds(text); k != 0 {
			t.Fatalf("%v left in %q (from %q)", audit.SecretKindNames(k), text, s)
		}
	})
}
