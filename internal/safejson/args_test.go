package safejson_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/safejson"
)

func TestDecodeArgumentsFoldedKeys(t *testing.T) {
	many := func(extra string) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := range 40 {
			fmt.Fprintf(&b, `"key%d":%d,`, i, i)
		}
		b.WriteString(extra + `}`)
		return b.String()
	}
	tests := []struct {
		name, in string
		ptr      string // "" when the input is accepted
	}{
		{"ascii case", `{"path":"/w/ok","PATH":"/etc/passwd"}`, "/PATH"},
		{"mixed case", `{"Path":"/w/ok","pATH":"/etc/passwd"}`, "/pATH"},
		{"long s", `{"secret":"a","ſecret":"b"}`, "/ſecret"},
		{"long s escaped", `{"secret":"a","\u017fecret":"b"}`, "/ſecret"},
		{"kelvin", `{"kind":"a","\u212aind":"b"}`, "/\u212aind"},
		{"kelvin and upper", `{"KIND":"a","\u212aind":"b"}`, "/\u212aind"},
		{"nested", `{"a":{"b":{"x":1,"X":2}}}`, "/a/b/X"},
		{"in array", `{"files":[{"path":"a"},{"path":"b","pAth":"c"}]}`, "/files/1/pAth"},
		{"pointer escaping", `{"a/b":1,"A/B":2}`, "/A~1B"},
		{"large object", many(`"KEY7":1`), "/KEY7"},
		{"large object, long s", many(`"ſecret":1,"SECRET":2`), "/SECRET"},
		{"distinct", `{"path":"a","paths":"b","Pat":"c"}`, ""},
		{"digits and symbols", `{"1":1,"_":2,"-":3,"":4}`, ""},
		{"sharp s is not ss", `{"ss":1,"ß":2}`, ""},
		{"dotted I is not i", `{"i":1,"İ":2}`, ""},
		{"large object, distinct", many(`"other":1`), ""},
		{"one key", `{"PATH":1}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := safejson.DecodeArguments([]byte(tc.in), safejson.Limits{})
			// The plain decoders are not affected.
			_, plainErr := safejson.DecodeObject([]byte(tc.in), safejson.Limits{})
			require.NoError(t, plainErr)
			if tc.ptr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, safejson.ErrFoldedKey)
			var e *safejson.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.ptr, e.Pointer)
			require.Contains(t, e.Detail, "letter case")
			require.Equal(t, byte('"'), tc.in[e.Offset], "offset %d should be at the key", e.Offset)
		})
	}
}

// TestAppendFoldMatchesEncodingJSON checks, for every rune whose case
// folding orbit has more than one member, that encoding/json matches a
// key spelt with any member of the orbit to a field named with any other,
// and that AppendFold folds them alike.
func TestAppendFoldMatchesEncodingJSON(t *testing.T) {
	checked := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		// encoding/json ignores a tag name with other runes than letters,
		// digits and some punctuation.
		if unicode.SimpleFold(r) == r || !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			continue
		}
		field := "x" + string(r)
		typ := reflect.StructOf([]reflect.StructField{{
			Name: "F", Type: reflect.TypeFor[int](), Tag: reflect.StructTag(`json:"` + field + `"`),
		}})
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			key := "x" + string(o)
			v := reflect.New(typ)
			require.NoError(t, json.Unmarshal([]byte(`{`+strconv.Quote(key)+`:7}`), v.Interface()))
			require.Equal(t, int64(7), v.Elem().Field(0).Int(), "encoding/json does not match %q to field %q", key, field)
			require.Equal(t, string(safejson.AppendFold(nil, field)), string(safejson.AppendFold(nil, key)),
				"%q and %q fold differently", field, key)
			checked++
		}
	}
	require.Greater(t, checked, 2000)
}

func TestDecodeArgumentsInexactNumbers(t *testing.T) {
	tests := []struct {
		lit   string
		exact bool
	}{
		{"0", true}, {"-0", true}, {"-0.0", true}, {"0e-500", true}, {"420", true},
		{"0.1", true}, {"1e2", true}, {"1E+2", true}, {"100.0", true}, {"1.5e300", true},
		{"123456789012345", true}, {"9007199254740992", true}, {"9007199254740994", true},
		{"-9223372036854775808", false}, // -2^63 is a float64, but its shortest form is -9223372036854776000
		{"1.7976931348623157e308", true}, {"5e-324", true}, {"2.2250738585072014e-308", true},
		{"100000000000000000000", true}, {"0.30000000000000004", true},

		{"100.0000000000000001", false}, {"9007199254740993", false}, {"-9007199254740993", false},
		{"18446744073709551615", false}, {"18446744073709551616", false}, // what CEL would read as a double
		{"1e-400", false}, {"0.1000000000000000000000001", false}, {"12345678901234567", false},
		{"4.9e-324", false}, {"1.00000000000000000000", true},
	}
	for _, tc := range tests {
		t.Run(tc.lit, func(t *testing.T) {
			require.Equal(t, tc.exact, safejson.ExactNumber(tc.lit))
			require.Equal(t, tc.exact, refExact(tc.lit), "the reference disagrees: the table is wrong")
			in := `{"a":[{"amount":` + tc.lit + `}]}`
			_, err := safejson.DecodeArguments([]byte(in), safejson.Limits{})
			if tc.exact {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, safejson.ErrInexactNumber)
			var e *safejson.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, "/a/0/amount", e.Pointer)
			require.Contains(t, e.Detail, "send it as a string")
			_, err = safejson.DecodeObject([]byte(in), safejson.Limits{})
			require.NoError(t, err, "DecodeObject keeps every number")
		})
	}
	require.False(t, safejson.ExactNumber("1e999"))
	for _, bad := range []string{"", "-", "1.", ".5", "1e", "0x10", "1 ", "+1", "NaN"} {
		require.False(t, safejson.ExactNumber(bad), "%q", bad)
	}
}

// refExact is ExactNumber's definition, computed with math/big: the exact
// value of lit equals that of the shortest decimal of its float64.
func refExact(lit string) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	exact, ok := new(big.Rat).SetString(lit)
	if !ok {
		return false
	}
	short, ok := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	return ok && exact.Cmp(short) == 0
}

func FuzzExactNumber(f *testing.F) {
	for _, s := range []string{"0", "0.1", "100.0000000000000001", "9007199254740993", "1e-400", "5e-324",
		"1.7976931348623157e308", "123456789012345.6", "1.2345678901234567e-300", "0.000000000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		valid := json.Valid([]byte(lit)) && lit != "" && (lit[0] == '-' || lit[0] >= '0' && lit[0] <= '9') &&
			strings.TrimSpace(lit) == lit
		got := safejson.ExactNumber(lit)
		if !valid {
			if got {
				t.Fatalf("ExactNumber(%q) = true for a non-number", lit)
			}
			return
		}
		// big.Rat would build huge values for huge exponents: those are
		// out of range or zero anyway, and ParseFloat tells.
		if e := strings.IndexAny(lit, "eE"); e >= 0 {
			if n, err := strconv.Atoi(strings.TrimPrefix(lit[e+1:], "+")); err != nil || n > 400 || n < -400 {
				return
			}
		}
		if want := refExact(lit); got != want {
			t.Fatalf("ExactNumber(%q) = %v, want %v", lit, got, want)
		}
		_, err := safejson.DecodeArguments([]byte(`{"n":`+lit+`}`), safejson.Limits{})
		if got != (err == nil) && !errors.Is(err, safejson.ErrNumberRange) {
			t.Fatalf("DecodeArguments on %q: %v, ExactNumber %v", lit, err, got)
		}
	})
}
