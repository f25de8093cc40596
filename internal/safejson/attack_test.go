package safejson_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/safejson"
)

// orbitKeys are keys an attacker would try against a field: every member
// of 2- and 3-rune case orbits (k K K, s S ſ, σ ς Σ, µ μ Μ, θ ϑ Θ, ß ẞ),
// Turkish dotted and dotless i, ss for ß, combining forms (NFC and NFD of
// the same letter), an empty key and trailing spaces.
var orbitKeys = []string{
	"kind", "KIND", "\u212aind", "\u212aIND",
	"secret", "SECRET", "\u017fecret",
	"σ", "ς", "Σ", "µ", "μ", "Μ", "θ", "ϑ", "Θ", "ϴ",
	"ß", "ẞ", "ss", "SS",
	"id", "ID", "ıd", "İd", "İD",
	"é", "É", "e\u0301", "E\u0301",
	"ﬀ", "ff", "FF",
	"", " ", "kind ", " kind",
	"Å", "å", "\u212b",
}

// jsonMatches reports whether encoding/json, decoding {"<key>": "x"} into
// a struct whose only field is tagged field, sets the field.
func jsonMatches(t *testing.T, field, key string) bool {
	t.Helper()
	if !validTag(field) {
		return false
	}
	typ := reflect.StructOf([]reflect.StructField{{
		Name: "F", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`json:"` + field + `"`),
	}})
	v := reflect.New(typ)
	b, _ := json.Marshal(map[string]string{key: "x"})
	require.NoError(t, json.Unmarshal(b, v.Interface()))
	return v.Elem().Field(0).String() == "x"
}

// validTag is encoding/json's rule for a name in a struct tag; a field
// whose tag name breaks it is matched by its Go name instead, and a Go name
// holds no combining marks, spaces or empty strings.
func validTag(s string) bool {
	if s == "" || s == "-" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// TestFoldAgreesWithEncodingJSON: for every pair of attack keys, two keys
// in one object are refused exactly when encoding/json would read one for
// the other; and AppendFold says so too. So no orbit member, however many
// the orbit has, reaches a handler's field under another spelling.
func TestFoldAgreesWithEncodingJSON(t *testing.T) {
	for _, a := range orbitKeys {
		for _, b := range orbitKeys {
			if a == b {
				continue
			}
			matched := jsonMatches(t, a, b)
			same := string(safejson.AppendFold(nil, a)) == string(safejson.AppendFold(nil, b))
			ka, _ := json.Marshal(a)
			kb, _ := json.Marshal(b)
			_, err := safejson.DecodeArguments([]byte(`{`+string(ka)+`:1,`+string(kb)+`:2}`), safejson.Limits{})
			if validTag(a) {
				require.Equal(t, matched, same, "field %+q, key %+q: encoding/json matches=%v, fold equal=%v", a, b, matched, same)
			}
			if same {
				require.ErrorIs(t, err, safejson.ErrFoldedKey, "%q %q", a, b)
			} else {
				require.NoError(t, err, "%q %q", a, b)
			}
		}
	}
}

// TestFoldEveryRune: over all of Unicode, a rune that encoding/json folds
// like an ASCII letter is in that letter's orbit for AppendFold too (the
// only such non-ASCII runes are U+017F and U+212A).
func TestFoldEveryRune(t *testing.T) {
	var odd []rune
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		f := string(safejson.AppendFold(nil, string(r)))
		if len(f) == 1 {
			odd = append(odd, r)
			require.True(t, strings.EqualFold(f, string(r)))
		}
	}
	require.Equal(t, []rune{0x17F, 0x212A}, odd)
}

// TestEscapedDuplicateKeys: keys spelled with escapes are compared after
// unescaping: an exact duplicate or a folded one is refused either way.
func TestEscapedDuplicateKeys(t *testing.T) {
	for _, in := range []string{
		`{"path":1,"p\u0061th":2}`,
		`{"\u0070ath":1,"path":2}`,
		`{"path":1,"\u0050ATH":2}`,
		`{"path":1,"\u0050\u0041\u0054\u0048":2}`,
		`{"kind":1,"\u212aind":2}`,
		`{"o":{"σ":1,"\u03c2":2}}`,
	} {
		_, err := safejson.DecodeArguments([]byte(in), safejson.Limits{})
		require.Error(t, err, in)
		require.True(t, strings.Contains(err.Error(), "duplicate") || strings.Contains(err.Error(), "case"), "%s: %v", in, err)
	}
}

// TestNumberAttacks: number spellings an attacker would try. Exact ones
// pass; those a float64 reader and a decimal reader would read apart are
// refused, in bounded time even when huge.
func TestNumberAttacks(t *testing.T) {
	for _, ok := range []string{"1E2", "1e+2", "100", "-0", "0e0", "0.0e-999999999", "1.0", "1.50", "-1e-5", "9007199254740992", "1.5e300", "1e19"} {
		_, err := safejson.DecodeArguments([]byte(`{"n":`+ok+`}`), safejson.Limits{})
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{
		"1e999999999", "-1e999999999", "1e-999999999",
		"9007199254740993", "18446744073709551616", "9223372036854775807", "9223372036854775808",
		"100.0000000000000001", "0.30000000000000001",
	} {
		_, err := safejson.DecodeArguments([]byte(`{"n":`+bad+`}`), safejson.Limits{})
		require.Error(t, err, bad)
	}
	huge := []string{
		"1" + strings.Repeat("0", 900_000),               // beyond float64
		"1." + strings.Repeat("0", 900_000) + "1",        // inexact, deep in
		"1." + strings.Repeat("0", 900_000),              // exact: 1
		"0." + strings.Repeat("0", 900_000) + "1e900001", // exact: 1
		"1e" + strings.Repeat("9", 900_000),              // exponent of 900k digits
		strings.Repeat("1", 900_000),                     // 900k significant digits
	}
	for i, lit := range huge {
		start := time.Now()
		_, err := safejson.DecodeArguments([]byte(`{"n":`+lit+`}`), safejson.Limits{})
		require.Less(t, time.Since(start), 2*time.Second, "literal %d", i)
		if i == 2 || i == 3 {
			require.NoError(t, err, "literal %d", i)
		} else {
			require.Error(t, err, "literal %d", i)
		}
	}
}
