package safejson_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/safejson"
)

var sentinels = []error{
	safejson.ErrSyntax, safejson.ErrTooLarge, safejson.ErrTooDeep, safejson.ErrTooMany,
	safejson.ErrDuplicateKey, safejson.ErrInvalidUTF8, safejson.ErrNumberRange, safejson.ErrNotObject,
	safejson.ErrFoldedKey, safejson.ErrInexactNumber,
}

func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range []string{
		``, `0`, `-0`, `1e400`, `1e-400`, `"\ud800"`, `"\ud83d\ude00"`, `{"a":1,"a":2}`,
		`{"a":1,"\u0061":2}`, `[1,]`, `01`, "\"\xff\"", `[[[[[[]]]]]]`, `{"a":[{"b":"c"}]}`,
		`1.7976931348623157e308`, `1.7976931348623159e308`, `"\u0000"`, `nul`, `{"a" 1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		lim := safejson.Limits{MaxDepth: 16, MaxElements: 1000}
		checkArguments(t, in, lim)
		got, err := safejson.Decode(in, lim)
		want, stdErr := stdDecode(in)
		if err == nil {
			if stdErr != nil {
				t.Fatalf("accepted %q, encoding/json rejects it: %v", in, stdErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoders disagree on %q:\n got %#v\nwant %#v", in, got, want)
			}
			checkValue(t, got)
			return
		}
		var e *safejson.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not *safejson.Error: %v", err, err)
		}
		known := false
		for _, s := range sentinels {
			known = known || errors.Is(err, s)
		}
		if !known || e.Detail == "" || e.Offset < 0 || e.Offset > len(in) {
			t.Fatalf("malformed error for %q: %#v", in, e)
		}
		if e.Pointer != "" && e.Pointer[0] != '/' {
			t.Fatalf("malformed pointer %q", e.Pointer)
		}
		if stdErr == nil && errors.Is(err, safejson.ErrSyntax) {
			t.Fatalf("syntax error on %q, which encoding/json accepts: %v", in, err)
		}
	})
}

// checkValue checks what Decode promises beyond agreement with encoding/json.
func checkValue(t *testing.T, v any) {
	switch v := v.(type) {
	case string:
		if !utf8.ValidString(v) {
			t.Fatalf("invalid UTF-8 in %q", v)
		}
	case interface{ String() string }: // json.Number
		if _, err := strconv.ParseFloat(v.String(), 64); err != nil {
			t.Fatalf("number %q out of range: %v", v, err)
		}
	case []any:
		for _, x := range v {
			checkValue(t, x)
		}
	case map[string]any:
		for k, x := range v {
			checkValue(t, k)
			checkValue(t, x)
		}
	}
}

// checkArguments checks DecodeArguments on in against DecodeObject: it
// accepts a subset, the same values, with no keys folding alike and only
// exact numbers; and it rejects only for those two reasons what
// DecodeObject accepts.
func checkArguments(t *testing.T, in []byte, lim safejson.Limits) {
	got, err := safejson.DecodeArguments(in, lim)
	plain, plainErr := safejson.DecodeObject(in, lim)
	if err == nil {
		if plainErr != nil || !reflect.DeepEqual(got, plain) {
			t.Fatalf("DecodeArguments accepted %q, DecodeObject: %v", in, plainErr)
		}
		if msg := foldedOrInexact(got); msg != "" {
			t.Fatalf("DecodeArguments accepted %q: %s", in, msg)
		}
		return
	}
	if plainErr == nil {
		if !errors.Is(err, safejson.ErrFoldedKey) && !errors.Is(err, safejson.ErrInexactNumber) {
			t.Fatalf("DecodeArguments rejected %q for another reason: %v", in, err)
		}
		if foldedOrInexact(plain) == "" {
			t.Fatalf("DecodeArguments rejected %q, which has no keys folding alike and no inexact numbers: %v", in, err)
		}
	}
}

// foldedOrInexact describes the first object with keys folding alike or
// inexact number in v, or returns "".
func foldedOrInexact(v any) string {
	switch v := v.(type) {
	case interface{ String() string }: // json.Number
		if !safejson.ExactNumber(v.String()) {
			return "inexact number " + v.String()
		}
	case []any:
		for _, x := range v {
			if m := foldedOrInexact(x); m != "" {
				return m
			}
		}
	case map[string]any:
		seen := map[string]string{}
		for k, x := range v {
			f := string(safejson.AppendFold(nil, k))
			if o, ok := seen[f]; ok {
				return "keys " + strconv.Quote(o) + " and " + strconv.Quote(k) + " fold alike"
			}
			seen[f] = k
			if m := foldedOrInexact(x); m != "" {
				return m
			}
		}
	}
	return ""
}
