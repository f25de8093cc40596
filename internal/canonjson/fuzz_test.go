package canonjson_test

import (
	"bytes"
	"encoding/json"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
)

// FuzzMarshal canonicalises every document safejson accepts and checks that
// the result is JSON, a fixed point, and the same value as the input.
func FuzzMarshal(f *testing.F) {
	seed, err := os.ReadFile("testdata/args.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		`0`, `-0.0`, `1.50e+3`, `[1e-7,1e21,1e20,0.000001]`, `{"b":1,"a":{"d":[],"c":{}}}`,
		`"\u0000\u001f\u007f\u2028<>&"`, `{"\ue000":1,"\ud83d\ude00":2}`, `123456789012345678901234567890`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := safejson.Decode(in, safejson.Limits{MaxDepth: 16, MaxElements: 1000})
		if err != nil {
			return
		}
		out, err := canonjson.Marshal(v)
		if err != nil {
			t.Fatalf("cannot canonicalise %q: %v", in, err)
		}
		if !json.Valid(out) || bytes.ContainsAny(out, "\t\r\n") {
			t.Fatalf("invalid or non-canonical output %q", out)
		}
		again, err := canonjson.Marshal(json.RawMessage(out))
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", out, again, err)
		}
		v2, err := safejson.Decode(out, safejson.Limits{MaxDepth: 16, MaxElements: 1000})
		if err != nil {
			t.Fatalf("output %q does not decode: %v", out, err)
		}
		if !sameValue(v, v2) {
			t.Fatalf("value changed: %q -> %q", in, out)
		}
	})
}

// FuzzNumber checks that two numbers canonicalise alike exactly when they
// are equal.
func FuzzNumber(f *testing.F) {
	for _, p := range [][2]string{
		{"1", "1.0"}, {"-0", "0"}, {"1e2", "100"}, {"1.5", "15e-1"}, {"1e21", "1000000000000000000000"},
		{"12345678901234567890123", "12345678901234567890124"}, {"0.000001", "1e-6"}, {"1e-7", "0.0000001"},
		{"1e400", "10e399"}, {"9007199254740993", "9007199254740992"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ca, errA := canonjson.Marshal(json.Number(a))
		cb, errB := canonjson.Marshal(json.Number(b))
		if errA != nil || errB != nil {
			return
		}
		ra, okA := rat(a, 2000)
		rb, okB := rat(b, 2000)
		if !okA || !okB {
			return
		}
		// The canonical exponent differs from a's by at most len(a).
		if rc, ok := rat(string(ca), 2000+len(a)); !ok || rc.Cmp(ra) != 0 {
			t.Fatalf("%s canonicalised as %s, a different value", a, ca)
		}
		if equal := ra.Cmp(rb) == 0; equal != bytes.Equal(ca, cb) {
			t.Fatalf("%s -> %s, %s -> %s, equal values: %v", a, ca, b, cb, equal)
		}
	})
}

// rat parses a JSON number exactly, declining exponents beyond ±limit, which
// would be slow to expand.
func rat(s string, limit int) (*big.Rat, bool) {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if strings.Trim(s[:i], "-0.") == "" {
			return new(big.Rat), true // zero, whatever the exponent
		}
		e, err := strconv.Atoi(s[i+1:])
		if err != nil || e > limit || e < -limit {
			return nil, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// sameValue compares two decoded documents, numbers by exact value.
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		ra, okA := rat(string(a), 2000)
		rb, okB := rat(string(b), 2000)
		if !okA || !okB {
			return true // too large to compare exactly here; FuzzNumber covers the rule
		}
		return ra.Cmp(rb) == 0
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, x := range a {
			y, ok := b[k]
			if !ok || !sameValue(x, y) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// FuzzAppendString checks that any string, valid UTF-8 or not, becomes a JSON
// string literal that reads back as the string (invalid bytes as U+FFFD).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x00\x1f\"\\\x7f", "é😀\u2028", "\xff\xc3(", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := canonjson.AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %q, not JSON: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("AppendString(%q) reads back as %q", s, back)
		}
		if !utf8.ValidString(string(out)) {
			t.Fatalf("AppendString(%q) = %q, invalid UTF-8", s, out)
		}
		strict, err := canonjson.Marshal(s)
		if utf8.ValidString(s) != (err == nil) {
			t.Fatalf("Marshal(%q): %v", s, err)
		}
		if err == nil && !bytes.Equal(strict, out) {
			t.Fatalf("Marshal(%q) = %q, AppendString = %q", s, strict, out)
		}
	})
}
