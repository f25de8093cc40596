package canonjson_test

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
)

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"null", nil, `null`},
		{"true", true, `true`},
		{"false", false, `false`},
		{"empty string", "", `""`},
		{"string", "hello", `"hello"`},
		{"short escapes", "\"\\\b\f\n\r\t", `"\"\\\b\f\n\r\t"`},
		{"other controls", "\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"DEL literal", "\x7f", "\"\x7f\""},
		{"no HTML escaping", "<a href='x'>&</a>", `"<a href='x'>&</a>"`},
		{"slash literal", "a/b", `"a/b"`},
		{"line separators literal", "\u2028\u2029", "\"\u2028\u2029\""},
		{"non-ASCII literal", "é€😀", `"é€😀"`},
		{"U+FFFD literal", "\uFFFD", "\"\uFFFD\""},
		{"RFC 8785 string", "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"/", `"€$\u000f\nA'B\"\\\\\"/"`},
		{"number -0", json.Number("-0"), `0`},
		{"number 0.000", json.Number("0.000"), `0`},
		{"number -0e5", json.Number("-0e5"), `0`},
		{"number 1.0", json.Number("1.0"), `1`},
		{"number 1.50", json.Number("1.50"), `1.5`},
		{"number -1.50", json.Number("-1.50"), `-1.5`},
		{"number 1e2", json.Number("1e2"), `100`},
		{"number 1E+2", json.Number("1E+2"), `100`},
		{"number 1E-7", json.Number("1E-7"), `1e-7`},
		{"number 0.000001", json.Number("0.000001"), `0.000001`},
		{"number 0.0000001", json.Number("0.0000001"), `1e-7`},
		{"number 12.5e-8", json.Number("12.5e-8"), `1.25e-7`},
		{"number big integer", json.Number("12345678901234567890123"), `12345678901234567890123`},
		{"number big integer scaled", json.Number("1234567890123456789012.3e1"), `12345678901234567890123`},
		{"number 1e400", json.Number("1e400"), `1e+400`},
		{"number -1e-400", json.Number("-1e-400"), `-1e-400`},
		{"number 1e21", json.Number("1e21"), `1e+21`},
		{"number 1e20", json.Number("1e20"), `100000000000000000000`},
		{"number 1.5e21", json.Number("1.5e21"), `1.5e+21`},
		{"number 100e-2", json.Number("100e-2"), `1`},
		{"number 0.1e1", json.Number("0.1e1"), `1`},
		{"number 123.456", json.Number("123.456"), `123.456`},
		{"number exponent leading zeros", json.Number("5e-000000000000000000000007"), `5e-7`},
		{"number huge exponent", json.Number("1e1000000000000000"), `1e+1000000000000000`},
		{"number huge exponent scaled", json.Number("1.5e100000000000000000000"), `1.5e+100000000000000000000`},
		{"number huge negative exponent", json.Number("-12.50e-100000000000000000000"), `-1.25e-99999999999999999999`},
		{"number zero huge exponent", json.Number("0E100000000000000000"), `0`},
		{"number long fraction", json.Number("1.23456789012345678901234567890"), `1.2345678901234567890123456789`},
		{"int", 42, `42`},
		{"int negative", -7, `-7`},
		{"int64 min", int64(math.MinInt64), `-9223372036854775808`},
		{"int32", int32(-5), `-5`},
		{"uint64 max", uint64(math.MaxUint64), `18446744073709551615`},
		{"uint32", uint32(7), `7`},
		{"float64 1", 1.0, `1`},
		{"float64 0.1", 0.1, `0.1`},
		{"float64 -0", math.Copysign(0, -1), `0`},
		{"float64 1e21", 1e21, `1e+21`},
		{"float64 1e-7", 1e-7, `1e-7`},
		{"float32 0.1", float32(0.1), `0.1`},
		{"float32 16777216", float32(16777216), `16777216`},
		{"array", []any{json.Number("1.0"), "a", nil, true, []any{}}, `[1,"a",null,true,[]]`},
		{"empty object", map[string]any{}, `{}`},
		{"object sorted", map[string]any{"b": 1, "a": 2, "": 3, "aa": 4, "B": 5}, `{"":3,"B":5,"a":2,"aa":4,"b":1}`},
		{"nested", map[string]any{"z": map[string]any{"y": []any{map[string]any{"b": 1, "a": 2}}}}, `{"z":{"y":[{"a":2,"b":1}]}}`},
		{"RFC 8785 key order", map[string]any{
			"\u20ac":       "Euro Sign",
			"\r":           "Carriage Return",
			"\ufb33":       "Hebrew Letter Dalet With Dagesh",
			"1":            "One",
			"\U0001F600":   "Emoji: Grinning Face",
			"\u0080":       "Control",
			"\u00f6":       "Latin Small Letter O With Diaeresis",
			"\U0001F600\r": "After the emoji",
			"\uE000":       "Private Use",
		}, `{"\r":"Carriage Return","1":"One","` + "\u0080" + `":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","😀\r":"After the emoji","` + "\uE000" + `":"Private Use","דּ":"Hebrew Letter Dalet With Dagesh"}`},
		{"many keys", manyKeys(30), manyKeysWant(30)},
		{"string slice", []string{"b", "a\n"}, `["b","a\n"]`},
		{"string map", map[string]string{"b": "1", "a": "2"}, `{"a":"2","b":"1"}`},
		{"raw message", json.RawMessage(` { "b" : 1.0 , "a" : [ 1e2 ] } `), `{"a":[100],"b":1}`},
		{"raw message nested", map[string]any{"x": json.RawMessage(`"\u00e9"`)}, `{"x":"é"}`},
		{"nil raw message", json.RawMessage(nil), `null`},
		{"nil map", map[string]any(nil), `null`},
		{"nil slice", []any(nil), `null`},
		{"nil string slice", []string(nil), `null`},
		{"nil string map", map[string]string(nil), `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonjson.Marshal(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			assert.True(t, json.Valid(got), "output is JSON")
		})
	}
}

// TestRFC8785Numbers checks the IEEE 754 examples of RFC 8785 Appendix B.
func TestRFC8785Numbers(t *testing.T) {
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got, err := canonjson.Marshal(math.Float64frombits(tt.bits))
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	cyclicSlice := []any{nil}
	cyclicSlice[0] = cyclicSlice

	tests := []struct {
		name string
		in   any
		want string
	}{
		{"invalid UTF-8 string", "a\xffb", "canonjson: invalid UTF-8"},
		{"invalid UTF-8 key", map[string]any{"\xc3": 1}, "canonjson: invalid UTF-8"},
		{"invalid UTF-8 nested", []any{map[string]any{"a": []string{"\xed\xa0\x80"}}}, "canonjson: invalid UTF-8"},
		{"invalid UTF-8 string map", map[string]string{"a": "\xff"}, "canonjson: invalid UTF-8"},
		{"NaN", math.NaN(), "canonjson: unsupported number NaN"},
		{"+Inf", math.Inf(1), "canonjson: unsupported number +Inf"},
		{"-Inf float32", float32(math.Inf(-1)), "canonjson: unsupported number -Inf"},
		{"struct", struct{}{}, "canonjson: unsupported type struct {}"},
		{"int8", int8(1), "canonjson: unsupported type int8"},
		{"bytes", []byte("x"), "canonjson: unsupported type []uint8"},
		{"pointer", new(string), "canonjson: unsupported type *string"},
		{"nested unsupported", map[string]any{"a": []any{1, complex(1, 2)}}, "canonjson: unsupported type complex128"},
		{"number empty", json.Number(""), "canonjson: invalid number"},
		{"number word", json.Number("abc"), "canonjson: invalid number"},
		{"number leading zero", json.Number("01"), "canonjson: invalid number"},
		{"number plus", json.Number("+1"), "canonjson: invalid number"},
		{"number trailing dot", json.Number("1."), "canonjson: invalid number"},
		{"number leading dot", json.Number(".1"), "canonjson: invalid number"},
		{"number space", json.Number(" 1"), "canonjson: invalid number"},
		{"number trailing junk", json.Number("1x"), "canonjson: invalid number"},
		{"number empty exponent", json.Number("1e+"), "canonjson: invalid number"},
		{"number NaN", json.Number("NaN"), "canonjson: invalid number"},
		{"number hex", json.Number("0x1"), "canonjson: invalid number"},
		{"raw message invalid", json.RawMessage(`{"a":1,"a":2}`), "canonjson: raw message: safejson: duplicate object key"},
		{"raw message empty", json.RawMessage{}, "canonjson: raw message: safejson: syntax error"},
		{"cyclic map", cyclic, "canonjson: nesting deeper than"},
		{"cyclic slice", cyclicSlice, "canonjson: nesting deeper than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, err := canonjson.Append(dst, tt.in)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "error %q, want prefix %q", err, tt.want)
			assert.Equal(t, "prefix", string(got), "dst keeps its length on error")
		})
	}
}

func TestMarshalRawMessageWrapsSafejsonError(t *testing.T) {
	_, err := canonjson.Marshal(json.RawMessage(`[1e400]`))
	require.ErrorIs(t, err, safejson.ErrNumberRange)
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"tab\tquote\"", `"tab\tquote\""`},
		{"\x1b[0m", `"\u001b[0m"`},
		{"bad\xffbyte", "\"bad\uFFFDbyte\""},
		{"\xc3", "\"\uFFFD\""},
		{"é\xed\xa0\x80", "\"é\uFFFD\uFFFD\uFFFD\""},
	}
	for _, tt := range tests {
		got := canonjson.AppendString([]byte("x="), tt.in)
		assert.Equal(t, "x="+tt.want, string(got), "%q", tt.in)
	}
}

func TestAppendReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 256)
	out, err := canonjson.Append(buf, map[string]any{"a": 1})
	require.NoError(t, err)
	assert.Equal(t, `{"a":1}`, string(out))
	assert.Same(t, &buf[:1][0], &out[:1][0], "Append writes into dst's array")
}

// equivalents are groups of values that are equal as JSON and must encode alike.
var equivalents = [][]any{
	{json.Number("1"), json.Number("1.0"), json.Number("1.000e0"), json.Number("10e-1"), json.Number("0.1e1"), 1, int64(1), int32(1), uint64(1), uint32(1), 1.0, float32(1)},
	{json.Number("0"), json.Number("-0"), json.Number("0.0"), json.Number("0e10"), json.Number("-0.0e-3"), 0, 0.0, math.Copysign(0, -1)},
	{json.Number("0.5"), json.Number("5e-1"), json.Number("50E-2"), 0.5, float32(0.5)},
	{json.Number("-1500"), json.Number("-1.5e3"), json.Number("-1.5E+3"), json.Number("-15e2"), -1500, -1500.0},
	{json.Number("1e400"), json.Number("10e399"), json.Number("0.1e401"), json.Number("1.0000e400")},
	{json.Number("1e100000000000000000000"), json.Number("10e99999999999999999999"), json.Number("0.01e0100000000000000000002")},
	{json.Number("12345678901234567890123"), json.Number("1.2345678901234567890123e22"), json.Number("123456789012345678901230e-1")},
	{"é", json.RawMessage(`"\u00e9"`), json.RawMessage(`"é"`)},
	{
		map[string]any{"a": json.Number("1.0"), "b": []any{"x"}},
		map[string]any{"b": []any{"x"}, "a": 1},
		map[string]any{"b": []string{"x"}, "a": 1.0},
		json.RawMessage(`{"b":["x"],"a":1e0}`),
	},
	{map[string]string{"k": "v"}, map[string]any{"k": "v"}, json.RawMessage(`{"k":"v"}`)},
	{[]string{"a", "b"}, []any{"a", "b"}},
}

func TestEqualValuesEncodeAlike(t *testing.T) {
	for _, group := range equivalents {
		want, err := canonjson.Marshal(group[0])
		require.NoError(t, err)
		for _, v := range group[1:] {
			got, err := canonjson.Marshal(v)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), "%#v", v)
		}
	}
}

func TestDifferentValuesEncodeDifferently(t *testing.T) {
	distinct := []any{
		nil, true, false, "", "0", "1", "a", "A", "a ", []any{}, map[string]any{}, []any{nil},
		json.Number("0"), json.Number("1"), json.Number("-1"), json.Number("10"), json.Number("0.1"),
		json.Number("0.01"), json.Number("1e-7"), json.Number("1e7"), json.Number("1e21"), json.Number("1e22"),
		json.Number("12345678901234567890123"), json.Number("12345678901234567890124"),
		json.Number("123456789012345678901230"), json.Number("12345678901234567890123.4"),
		json.Number("9007199254740993"), 9007199254740992.0,
		json.Number("1e400"), json.Number("1e401"), json.Number("-1e400"), json.Number("1e-400"),
		json.Number("1e100000000000000000000"), json.Number("1e100000000000000000001"), json.Number("1e-100000000000000000000"),
		json.Number("1.1e100000000000000000000"),
		json.Number("0.1000000000000000000000000001"),
		map[string]any{"a": 1}, map[string]any{"a": "1"}, map[string]any{"b": 1}, map[string]any{"a": 1, "b": 1},
		[]any{1, 2}, []any{2, 1}, []any{[]any{1}, 2}, []any{"a\u0000"}, []any{"a"},
	}
	seen := map[string]int{}
	for i, v := range distinct {
		got, err := canonjson.Marshal(v)
		require.NoError(t, err, "%#v", v)
		if j, dup := seen[string(got)]; dup {
			t.Errorf("%#v and %#v both encode as %s", distinct[j], v, got)
		}
		seen[string(got)] = i
	}
}

func TestIdempotent(t *testing.T) {
	inputs := []any{
		map[string]any{"path": "/w/a.txt", "content": "hello\n", "mode": 420, "tags": []any{"x", "y"}},
		map[string]any{"f": 0.1, "g": -1e-9, "h": 1e300, "i": json.Number("12345678901234567890123"), "j": json.Number("1.0e-5")},
		[]any{"\u0000\u001f\"\\", "€😀", "\u2028", map[string]any{"\uE000": 1, "\U0001F600": 2}},
		json.RawMessage(`{"z":[1.50,{"y":null}],"a":"\ud83d\ude00"}`),
	}
	for _, x := range inputs {
		first, err := canonjson.Marshal(x)
		require.NoError(t, err)
		decoded, err := safejson.Decode(first, safejson.Limits{})
		require.NoError(t, err)
		second, err := canonjson.Marshal(decoded)
		require.NoError(t, err)
		assert.Equal(t, string(first), string(second))
	}
}

func manyKeys(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[string(rune('a'+i%26))+strings.Repeat("z", i/26)] = i
	}
	return m
}

func manyKeysWant(n int) string {
	m := manyKeys(n)
	keys := make([]string, 0, n)
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // all keys are ASCII, so byte order is UTF-16 order
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + k + `":` + strconv.Itoa(m[k].(int)))
	}
	b.WriteByte('}')
	return b.String()
}
