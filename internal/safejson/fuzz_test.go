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
