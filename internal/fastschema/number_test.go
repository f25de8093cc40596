package fastschema

import (
	"encoding/json"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var numberLiterals = []string{
	"0", "-0", "0.0", "-0.0", "0e5", "0.000e-3",
	"1", "-1", "1.0", "1.00", "10", "10.0", "1e1", "1E1", "1e+1", "0.1e2", "100e-1", "1e0",
	"0.1", "0.10", "1e-1", "0.01", "0.011", "0.0109999",
	"1.5", "15e-1", "1.5e1", "1.23e2", "1.234e2", "-1.5", "-15",
	"123456789012345678", "999999999999999999", "1000000000000000000", "9223372036854775807",
	"9223372036854775808", "-9223372036854775808", "-9223372036854775809",
	"12345678901234567890123", "12345678901234567890124", "1.2345678901234567890123e22",
	"1.2345678901234567e22", "-12345678901234567890123",
	"0.30000000000000001", "0.3", "0.29999999999999999999",
	"1e308", "1e400", "-1e400", "1e-400", "5e-324", "1e100000", "1e-99999",
}

func rat(tb testing.TB, s string) *big.Rat {
	tb.Helper()
	r, ok := new(big.Rat).SetString(s)
	require.True(tb, ok, s)
	return r
}

// TestDecimalAgainstRat compares every pair of literals with big.Rat, which
// is how jsonschema/v6 compares numbers.
func TestDecimalAgainstRat(t *testing.T) {
	for _, a := range numberLiterals {
		da, ok := parseNumber(a)
		require.True(t, ok, a)
		ra := rat(t, a)
		assert.Equal(t, ra.IsInt(), da.isInt(), "isInt(%s)", a)
		if da.small {
			assert.Equal(t, ra.Num().String(), big.NewInt(da.i64).String(), "int64 value of %s", a)
			assert.True(t, ra.IsInt())
		}
		for _, b := range numberLiterals {
			db, ok := parseNumber(b)
			require.True(t, ok, b)
			assert.Equal(t, ra.Cmp(rat(t, b)), cmpDecimal(&da, &db), "cmp(%s, %s)", a, b)
		}
	}
}

func TestParseNumberRefuses(t *testing.T) {
	for _, s := range []string{
		"", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1.e1", "0x10", "1_000", "Inf", "NaN",
		"1/2", " 1", "1 ", "1e100001", "1e-100001", "0.01e-99999", "1e99999999999999999999", "--1", "1ee1",
	} {
		_, ok := parseNumber(s)
		assert.False(t, ok, "%q", s)
	}
}

func TestToInt(t *testing.T) {
	cases := []struct {
		in   any
		want int
		ok   bool
	}{
		{json.Number("0"), 0, true},
		{json.Number("3"), 3, true},
		{json.Number("3.0"), 3, true},
		{json.Number("3e2"), 300, true},
		{json.Number("999999999999999"), 999999999999999, true},
		{json.Number("1e15"), 0, false},
		{json.Number("-0"), 0, true},
		{json.Number("-1"), 0, false},
		{json.Number("1.5"), 0, false},
		{float64(2), 2, true},
		{7, 7, true},
		{"3", 0, false},
		{true, 0, false},
	}
	for _, tc := range cases {
		got, ok := toInt(tc.in)
		assert.Equal(t, tc.ok, ok, "%v", tc.in)
		if tc.ok {
			assert.Equal(t, tc.want, got, "%v", tc.in)
		}
	}
}

// FuzzDecimal checks parsing and comparison against big.Rat.
func FuzzDecimal(f *testing.F) {
	for i, s := range numberLiterals {
		f.Add(s, numberLiterals[(i*7+3)%len(numberLiterals)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, okA := parseNumber(a)
		db, okB := parseNumber(b)
		if okA {
			ra, ok := new(big.Rat).SetString(a)
			if !ok {
				t.Fatalf("parseNumber accepts %q, big.Rat does not", a)
			}
			if ra.IsInt() != da.isInt() {
				t.Fatalf("isInt(%q) = %v, big.Rat says %v", a, da.isInt(), ra.IsInt())
			}
			if okB {
				rb, ok := new(big.Rat).SetString(b)
				if !ok {
					t.Fatalf("parseNumber accepts %q, big.Rat does not", b)
				}
				if got, want := cmpDecimal(&da, &db), ra.Cmp(rb); got != want {
					t.Fatalf("cmp(%q, %q) = %d, big.Rat says %d", a, b, got, want)
				}
			}
		}
	})
}
