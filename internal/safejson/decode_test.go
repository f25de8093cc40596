package safejson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/safejson"
)

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`null`, nil},
		{`true`, true},
		{` false `, false},
		{"\t\r\n 0 \n", json.Number("0")},
		{`-0`, json.Number("-0")},
		{`1.0`, json.Number("1.0")},
		{`1e2`, json.Number("1e2")},
		{`1E+02`, json.Number("1E+02")},
		{`-12.50e-3`, json.Number("-12.50e-3")},
		{`12345678901234567890123`, json.Number("12345678901234567890123")},
		{`1e-400`, json.Number("1e-400")},
		{`0e999999999999999999999`, json.Number("0e999999999999999999999")},
		{`0.0000e400`, json.Number("0.0000e400")},
		{`1.7976931348623157e308`, json.Number("1.7976931348623157e308")},
		{`-1.7976931348623157e308`, json.Number("-1.7976931348623157e308")},
		{`0.0001e312`, json.Number("0.0001e312")},
		{`1e-99999999999999999999`, json.Number("1e-99999999999999999999")},
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"\"\\\/\b\f\n\r\t"`, "\"\\/\b\f\n\r\t"},
		{`"\u0041\u00e9\u20AC"`, "Aé€"},
		{`"\u0000"`, "\x00"},
		{`"\ud83d\ude00 smile"`, "😀 smile"},
		{`"héllo 世界 😀"`, "héllo 世界 😀"},
		{"\"\x7f\"", "\x7f"},
		{"\"\uFFFD\"", "\uFFFD"},
		{`[]`, []any{}},
		{`[ ]`, []any{}},
		{`{}`, map[string]any{}},
		{`{ }`, map[string]any{}},
		{`[1,"a",[true],{"b":null}]`, []any{json.Number("1"), "a", []any{true}, map[string]any{"b": nil}}},
		{`{"a":1,"A":2,"a ":3}`, map[string]any{"a": json.Number("1"), "A": json.Number("2"), "a ": json.Number("3")}},
		{`{"":[]}`, map[string]any{"": []any{}}},
		{`{"a":{"a":{"a":{}}}}`, map[string]any{"a": map[string]any{"a": map[string]any{"a": map[string]any{}}}}},
		{`[[],[[]],{}]`, []any{[]any{}, []any{[]any{}}, map[string]any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := safejson.Decode([]byte(tt.in), safejson.Limits{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		lim     safejson.Limits
		want    error
		pointer string
		offset  int
	}{
		{"empty", ``, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"only space", "  \n", safejson.Limits{}, safejson.ErrSyntax, "", 3},
		{"trailing data", `{} {}`, safejson.Limits{}, safejson.ErrSyntax, "", 3},
		{"trailing comma array", `[1,]`, safejson.Limits{}, safejson.ErrSyntax, "/1", 3},
		{"trailing comma object", `{"a":1,}`, safejson.Limits{}, safejson.ErrSyntax, "", 7},
		{"missing comma", `{"a":1 "b":2}`, safejson.Limits{}, safejson.ErrSyntax, "", 7},
		{"missing colon", `{"a" 1}`, safejson.Limits{}, safejson.ErrSyntax, "", 5},
		{"unquoted key", `{a:1}`, safejson.Limits{}, safejson.ErrSyntax, "", 1},
		{"single quotes", `{'a':1}`, safejson.Limits{}, safejson.ErrSyntax, "", 1},
		{"unclosed array", `[1,2`, safejson.Limits{}, safejson.ErrSyntax, "", 4},
		{"unclosed object", `{"a":[1]`, safejson.Limits{}, safejson.ErrSyntax, "", 8},
		{"mismatched close", `[1}`, safejson.Limits{}, safejson.ErrSyntax, "", 2},
		{"unterminated string", `"abc`, safejson.Limits{}, safejson.ErrSyntax, "", 4},
		{"unterminated escape", `"abc\`, safejson.Limits{}, safejson.ErrSyntax, "", 5},
		{"bad value in array", `{"files":[{},{},{},{"path":x}]}`, safejson.Limits{}, safejson.ErrSyntax, "/files/3/path", 27},
		{"leading zero", `01`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"negative leading zero", `-01`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"leading plus", `+1`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"bare minus", `-`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"leading dot", `.5`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"trailing dot", `1.`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"empty exponent", `1e`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"signed empty exponent", `1e+`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"hex", `0x10`, safejson.Limits{}, safejson.ErrSyntax, "", 1},
		{"NaN", `NaN`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"Infinity", `[Infinity]`, safejson.Limits{}, safejson.ErrSyntax, "/0", 1},
		{"minus Infinity", `-Infinity`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"bad literal", `tru`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"capital literal", `True`, safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"literal with suffix", `nullx`, safejson.Limits{}, safejson.ErrSyntax, "", 4},
		{"comment", `{"a":1}//`, safejson.Limits{}, safejson.ErrSyntax, "", 7},
		{"BOM", "\ufeff{}", safejson.Limits{}, safejson.ErrSyntax, "", 0},
		{"raw newline in string", "\"a\nb\"", safejson.Limits{}, safejson.ErrSyntax, "", 2},
		{"raw tab in key", "{\"a\tb\":1}", safejson.Limits{}, safejson.ErrSyntax, "", 3},
		{"raw NUL in string", "[\"\x00\"]", safejson.Limits{}, safejson.ErrSyntax, "/0", 2},
		{"bad escape", `"\x41"`, safejson.Limits{}, safejson.ErrSyntax, "", 1},
		{"short unicode escape", `"\u41"`, safejson.Limits{}, safejson.ErrSyntax, "", 1},
		{"non-hex unicode escape", `"\u00g1"`, safejson.Limits{}, safejson.ErrSyntax, "", 1},
		{"non-ASCII outside string", `[é]`, safejson.Limits{}, safejson.ErrSyntax, "/0", 1},
		{"duplicate key", `{"a":{"path":1,"path":2}}`, safejson.Limits{}, safejson.ErrDuplicateKey, "/a", 15},
		{"duplicate key via escape", `{"a":1,"\u0061":2}`, safejson.Limits{}, safejson.ErrDuplicateKey, "", 7},
		{"duplicate empty key", `[{"":1,"":1}]`, safejson.Limits{}, safejson.ErrDuplicateKey, "/0", 7},
		{"invalid UTF-8 in string", "{\"a\":\"\xff\"}", safejson.Limits{}, safejson.ErrInvalidUTF8, "/a", 6},
		{"invalid UTF-8 in key", "{\"\xc3\":1}", safejson.Limits{}, safejson.ErrInvalidUTF8, "", 2},
		{"overlong UTF-8", "\"\xc0\xaf\"", safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"UTF-8 surrogate", "\"\xed\xa0\x80\"", safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"truncated UTF-8", "\"\xe2\x82\"", safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"invalid UTF-8 after escape", "\"\\n\xff\"", safejson.Limits{}, safejson.ErrInvalidUTF8, "", 3},
		{"invalid UTF-8 outside string", "[\xff]", safejson.Limits{}, safejson.ErrInvalidUTF8, "/0", 1},
		{"invalid UTF-8 after value", "{}\xff", safejson.Limits{}, safejson.ErrInvalidUTF8, "", 2},
		{"lone high surrogate", `"\ud800"`, safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"lone low surrogate", `"\udc00"`, safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"high surrogate then letter", `"\ud800x"`, safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"two high surrogates", `"\ud800\ud800"`, safejson.Limits{}, safejson.ErrInvalidUTF8, "", 1},
		{"reversed surrogates", `{"k":"\ude00\ud83d"}`, safejson.Limits{}, safejson.ErrInvalidUTF8, "/k", 6},
		{"overflow", `1e400`, safejson.Limits{}, safejson.ErrNumberRange, "", 0},
		{"negative overflow", `{"n":-1e400}`, safejson.Limits{}, safejson.ErrNumberRange, "/n", 5},
		{"overflow just above max", `1.7976931348623159e308`, safejson.Limits{}, safejson.ErrNumberRange, "", 0},
		{"overflow by digits", `[` + "1" + strings.Repeat("0", 309) + `]`, safejson.Limits{}, safejson.ErrNumberRange, "/0", 1},
		{"overflow huge exponent", `1e99999999999999999999`, safejson.Limits{}, safejson.ErrNumberRange, "", 0},
		{"overflow fraction", `0.001e312`, safejson.Limits{}, safejson.ErrNumberRange, "", 0},
		{"too large", `[1, 2, 3]`, safejson.Limits{MaxBytes: 8}, safejson.ErrTooLarge, "", 8},
		{"too deep arrays", `[[[1]]]`, safejson.Limits{MaxDepth: 2}, safejson.ErrTooDeep, "/0/0", 2},
		{"too deep objects", `{"a":{"b":{}}}`, safejson.Limits{MaxDepth: 2}, safejson.ErrTooDeep, "/a/b", 10},
		{"too deep default", strings.Repeat("[", 65) + strings.Repeat("]", 65), safejson.Limits{}, safejson.ErrTooDeep, "/" + strings.TrimSuffix(strings.Repeat("0/", 64), "/"), 64},
		{"too many elements", `[1,2,[3,4]]`, safejson.Limits{MaxElements: 4}, safejson.ErrTooMany, "/2/1", 8},
		{"too many members", `{"a":1,"b":2}`, safejson.Limits{MaxElements: 1}, safejson.ErrTooMany, "/b", 11},
		{"pointer escaping", `{"a/b":{"m~n":[x]}}`, safejson.Limits{}, safejson.ErrSyntax, "/a~1b/m~0n/0", 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := safejson.Decode([]byte(tt.in), tt.lim)
			require.Error(t, err)
			assert.Nil(t, v)
			assert.ErrorIs(t, err, tt.want)
			var e *safejson.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.pointer, e.Pointer, "pointer")
			assert.Equal(t, tt.offset, e.Offset, "offset")
			assert.NotEmpty(t, e.Detail)
			assert.True(t, strings.HasPrefix(err.Error(), "safejson: "), err.Error())
		})
	}
}

func TestDecodeLimitsAtBoundary(t *testing.T) {
	deep := strings.Repeat("[", 64) + strings.Repeat("]", 64)
	_, err := safejson.Decode([]byte(deep), safejson.Limits{})
	require.NoError(t, err, "64 levels are allowed by default")

	_, err = safejson.Decode([]byte(`[[1]]`), safejson.Limits{MaxDepth: 2})
	require.NoError(t, err)

	_, err = safejson.Decode([]byte(`[1,2,[3]]`), safejson.Limits{MaxElements: 4})
	require.NoError(t, err)

	exact := []byte(`[1, 2, 3]`)
	_, err = safejson.Decode(exact, safejson.Limits{MaxBytes: len(exact)})
	require.NoError(t, err)

	// Negative limits mean the defaults, never "unlimited".
	_, err = safejson.Decode([]byte(deep), safejson.Limits{MaxDepth: -1, MaxBytes: -1, MaxElements: -1})
	require.NoError(t, err)
	_, err = safejson.Decode([]byte("["+deep+"]"), safejson.Limits{MaxDepth: -1})
	require.ErrorIs(t, err, safejson.ErrTooDeep)

	// A very deep document within a generous depth limit needs no Go stack.
	veryDeep := strings.Repeat(`{"a":[`, 40_000) + strings.Repeat("]}", 40_000)
	_, err = safejson.Decode([]byte(veryDeep), safejson.Limits{MaxDepth: 1 << 30, MaxBytes: len(veryDeep)})
	require.NoError(t, err)
}

func TestDecodeTooLargeBeforeParsing(t *testing.T) {
	// Garbage beyond the size limit is reported as too large, not as a syntax error.
	in := bytes.Repeat([]byte{0xff}, 1<<20+1)
	_, err := safejson.Decode(in, safejson.Limits{})
	require.ErrorIs(t, err, safejson.ErrTooLarge)
	_, err = safejson.DecodeObject(in, safejson.Limits{})
	require.ErrorIs(t, err, safejson.ErrTooLarge)
}

func TestDecodeMegabyteString(t *testing.T) {
	for _, body := range []string{
		strings.Repeat("x", 1<<20-2),
		strings.Repeat(`\n`, (1<<20-2)/2),
		strings.Repeat("é", (1<<20-2)/2),
	} {
		in := `"` + body + `"`
		require.Len(t, in, 1<<20)
		v, err := safejson.Decode([]byte(in), safejson.Limits{})
		require.NoError(t, err)
		var want string
		require.NoError(t, json.Unmarshal([]byte(in), &want))
		require.Equal(t, want, v)
	}
}

func TestDecodeObject(t *testing.T) {
	m, err := safejson.DecodeObject([]byte(` {"path":"/w/a.txt"} `), safejson.Limits{})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"path": "/w/a.txt"}, m)

	for in, kind := range map[string]string{
		`[1]`:     "an array",
		` "s"`:    "a string",
		`-1`:      "a number",
		`true`:    "a boolean",
		`null`:    "null",
		"\n[1,2,": "an array",
	} {
		_, err := safejson.DecodeObject([]byte(in), safejson.Limits{})
		require.ErrorIs(t, err, safejson.ErrNotObject, in)
		var e *safejson.Error
		require.ErrorAs(t, err, &e)
		assert.Contains(t, e.Detail, kind, in)
	}

	for _, in := range []string{``, ` `, `x`, `{"a":1`, `{"a":1,"a":2}`} {
		_, err := safejson.DecodeObject([]byte(in), safejson.Limits{})
		require.Error(t, err, in)
		assert.NotErrorIs(t, err, safejson.ErrNotObject, in)
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := safejson.Decode([]byte(`{"a":{"path":1,"path":2}}`), safejson.Limits{})
	require.EqualError(t, err, `safejson: duplicate object key at /a (offset 15): key "path" appears twice`)

	_, err = safejson.Decode([]byte(`[1,2`), safejson.Limits{})
	require.EqualError(t, err, `safejson: syntax error at offset 4: unexpected end of input`)

	e := &safejson.Error{Offset: 3, Pointer: "/" + strings.Repeat("k", 1000), Err: safejson.ErrSyntax}
	assert.Less(t, len(e.Error()), 300, "long pointers are shortened in the message")
	assert.Equal(t, safejson.ErrSyntax, errors.Unwrap(e))
	assert.Contains(t, (&safejson.Error{}).Error(), "safejson:")
}

func TestDecodeFreshValues(t *testing.T) {
	// Decoders are pooled; results of one call must not change with later calls.
	first, err := safejson.Decode([]byte(`{"a":[1,"x\n",{"b":true}],"c":"\u00e9"}`), safejson.Limits{})
	require.NoError(t, err)
	for range 10 {
		_, err := safejson.Decode([]byte(`{"z":[9,"yy\t",{"q":false}],"w":"\u00ea"}`), safejson.Limits{})
		require.NoError(t, err)
		_, err = safejson.Decode([]byte(`{"z":[9,`), safejson.Limits{})
		require.Error(t, err)
	}
	assert.Equal(t, map[string]any{
		"a": []any{json.Number("1"), "x\n", map[string]any{"b": true}},
		"c": "é",
	}, first)
}

// stdDecode decodes in with encoding/json the way Decode reports values.
func stdDecode(in []byte) (any, error) {
	if !json.Valid(in) {
		return nil, errors.New("invalid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func agreementInputs(t testing.TB) [][]byte {
	ins := [][]byte{
		[]byte(`{"path":"/w/a.txt","content":"hello","mode":420,"tags":["x","y"]}`),
		[]byte(`[0,-0,1.5,-2.5e-3,1E10,123456789012345678901234567890,0.1e-2]`),
		[]byte(`{"s":"\u00e9\ud83d\ude00\\\"\/\b\f\n\r\t\u0000","e":"","u":"日本語"}`),
		[]byte(` [ [ ] , { } , [ { "a" : [ null , true , false ] } ] ] `),
		largeDocument(2_000),
	}
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*.json"))
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		ins = append(ins, b)
	}
	return ins
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	for i, in := range agreementInputs(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := stdDecode(in)
			require.NoError(t, err)
			got, err := safejson.Decode(in, safejson.Limits{})
			require.NoError(t, err)
			require.True(t, reflect.DeepEqual(want, got), "decoders disagree on %.200s", in)
		})
	}
}

func TestRejectsFilesInTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = safejson.Decode(b, safejson.Limits{})
		var e *safejson.Error
		require.ErrorAs(t, err, &e, f)
	}
}

// largeDocument builds a document of n records, about 50 bytes each.
func largeDocument(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"name":"item-%d","score":%d.%d,"ok":%t,"tags":["a","b\n"],"x":null}`, i, i, i*7, i%10, i%2 == 0)
	}
	b.WriteString(`],"total":`)
	fmt.Fprintf(&b, "%d}", n)
	return b.Bytes()
}
