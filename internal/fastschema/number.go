package fastschema

import (
	"encoding/json"
	"math"
	"strconv"
)

// maxExp bounds the decimal exponent of numbers this package reasons about.
// jsonschema/v6 turns numbers into big.Rat with big.Rat.SetString, which
// gives up beyond a net decimal exponent of 10^6; keeping well inside that
// range means every number accepted here is one the full validator reads the
// same way. Instances outside it are reported invalid, schemas refused.
const maxExp = 100_000

// decimal is the exact value of a JSON number literal:
//
//	value = (neg ? -1 : 1) × 0.d₁d₂…dₙ × 10^exp
//
// where d₁…dₙ are the digits of lit[lo:hi] with any '.' skipped; lit[lo] is
// the first non-zero digit and lit[hi-1] the last one. lo == hi means zero.
// When small is set the value is an integer equal to i64.
type decimal struct {
	lit   string // the mantissa text: integer digits, optionally '.' and fraction digits
	lo    int
	hi    int
	exp   int64
	neg   bool
	small bool
	i64   int64
}

// parseNumber reads a JSON number literal (RFC 8259 grammar, nothing more).
// ok is false for anything else and for exponents beyond maxExp.
func parseNumber(s string) (d decimal, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	intEnd, end, fracDigits, ok := scanMantissa(s, i)
	if !ok {
		return d, false
	}
	d.lit = s[i:end]
	e, ok := parseExponent(s[end:])
	if !ok {
		return d, false
	}
	// The net power of ten big.Rat.SetString works with.
	if net := e - int64(fracDigits); net > maxExp || net < -maxExp {
		return d, false
	}
	d.setSignificant(intEnd-i, e)
	return d, true
}

// scanMantissa scans the integer part, 0 or [1-9][0-9]*, and the optional
// fraction of a number starting at s[i]. It returns where the integer part
// and the mantissa end and the count of fraction digits, and reports false
// if there is no integer part or a '.' has no digits after it.
func scanMantissa(s string, i int) (intEnd, end, fracDigits int, ok bool) {
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return 0, 0, 0, false
	}
	intEnd = i
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			fracDigits++
		}
		if fracDigits == 0 {
			return 0, 0, 0, false
		}
	}
	return intEnd, i, fracDigits, true
}

// parseExponent reads what follows the mantissa: nothing, or an exponent
// [eE][+-]?[0-9]+ of magnitude at most maxExp, and returns its value. It
// reports false for anything else.
func parseExponent(s string) (e int64, ok bool) {
	if s == "" {
		return 0, true
	}
	if s[0] != 'e' && s[0] != 'E' {
		return 0, false
	}
	i := 1
	eneg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		eneg = s[i] == '-'
		i++
	}
	if i == len(s) {
		return 0, false
	}
	for ; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		e = e*10 + int64(s[i]-'0')
		if e > maxExp {
			return 0, false
		}
	}
	if eneg {
		e = -e
	}
	return e, true
}

// setSignificant sets lo, hi and exp of d from d.lit, whose integer part is
// intLen bytes long, and the exponent e; a zero value becomes the canonical
// zero. Integers of up to 18 digits also get their int64 value.
func (d *decimal) setSignificant(intLen int, e int64) {
	lit := d.lit
	lo := 0
	for lo < len(lit) && (lit[lo] == '0' || lit[lo] == '.') {
		lo++
	}
	if lo == len(lit) {
		d.lo, d.hi = 0, 0
		d.neg = false
		d.small = true
		return
	}
	hi := len(lit)
	for lit[hi-1] == '0' || lit[hi-1] == '.' {
		hi--
	}
	d.lo, d.hi = lo, hi
	if lo < intLen {
		d.exp = int64(intLen-lo) + e
	} else {
		d.exp = -int64(lo-intLen-1) + e
	}
	if n := d.digits(); n <= d.exp && d.exp <= 18 {
		d.small, d.i64 = true, d.int64Value()
	}
}

// int64Value returns the value of d, an integer of at most 18 digits.
func (d *decimal) int64Value() int64 {
	var v int64
	k := int64(0)
	for j := d.lo; j < d.hi; j++ {
		if d.lit[j] == '.' {
			continue
		}
		v = v*10 + int64(d.lit[j]-'0')
		k++
	}
	for ; k < d.exp; k++ {
		v *= 10
	}
	if d.neg {
		v = -v
	}
	return v
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digits is the number of significant digits.
func (d *decimal) digits() int64 {
	n := int64(d.hi - d.lo)
	for j := d.lo; j < d.hi; j++ {
		if d.lit[j] == '.' {
			n--
			break
		}
	}
	return n
}

func (d *decimal) isZero() bool { return d.lo == d.hi }

// isInt reports whether the value has no fractional part.
func (d *decimal) isInt() bool {
	return d.small || d.isZero() || d.digits() <= d.exp
}

func (d *decimal) sign() int {
	switch {
	case d.isZero():
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmpDecimal compares exactly: -1 if a < b, 0 if equal, +1 if a > b.
func cmpDecimal(a, b *decimal) int {
	if a.small && b.small {
		switch {
		case a.i64 < b.i64:
			return -1
		case a.i64 > b.i64:
			return 1
		}
		return 0
	}
	sa, sb := a.sign(), b.sign()
	if sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	if sa == 0 {
		return 0
	}
	c := cmpMagnitude(a, b)
	if sa < 0 {
		return -c
	}
	return c
}

// cmpMagnitude compares |a| and |b|, both non-zero.
func cmpMagnitude(a, b *decimal) int {
	if a.exp != b.exp {
		if a.exp < b.exp {
			return -1
		}
		return 1
	}
	i, j := a.lo, b.lo
	for {
		if i < a.hi && a.lit[i] == '.' {
			i++
		}
		if j < b.hi && b.lit[j] == '.' {
			j++
		}
		switch {
		case i >= a.hi && j >= b.hi:
			return 0
		case i >= a.hi:
			// b has more significant digits, the last of them non-zero.
			return -1
		case j >= b.hi:
			return 1
		case a.lit[i] != b.lit[j]:
			if a.lit[i] < b.lit[j] {
				return -1
			}
			return 1
		}
		i++
		j++
	}
}

// toDecimal converts a decoded JSON number to a decimal, reading Go numbers
// the way jsonschema/v6 does (through their fmt.Sprint text, which for
// floats is the shortest round-trip form). ok is false for values that are
// not numbers, non-finite floats and literals parseNumber refuses.
func toDecimal(v any) (decimal, bool) {
	switch n := v.(type) {
	case json.Number:
		return parseNumber(string(n))
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return decimal{}, false
		}
		return parseNumber(strconv.FormatFloat(n, 'g', -1, 64))
	case float32:
		f := float64(n)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return decimal{}, false
		}
		return parseNumber(strconv.FormatFloat(f, 'g', -1, 32))
	case int:
		return intDecimal(int64(n))
	case int8:
		return intDecimal(int64(n))
	case int16:
		return intDecimal(int64(n))
	case int32:
		return intDecimal(int64(n))
	case int64:
		return intDecimal(n)
	case uint:
		return parseNumber(strconv.FormatUint(uint64(n), 10))
	case uint8:
		return intDecimal(int64(n))
	case uint16:
		return intDecimal(int64(n))
	case uint32:
		return intDecimal(int64(n))
	case uint64:
		return parseNumber(strconv.FormatUint(n, 10))
	}
	return decimal{}, false
}

func intDecimal(n int64) (decimal, bool) {
	return parseNumber(strconv.FormatInt(n, 10))
}

// toInt returns the value of a non-negative integer that fits in an int,
// as the count-valued keywords (minLength, maxItems, ...) need.
func toInt(v any) (int, bool) {
	d, ok := toDecimal(v)
	if !ok || d.neg || !d.isInt() || d.exp > 15 {
		return 0, false
	}
	if d.isZero() {
		return 0, true
	}
	// d.exp <= 15 and the value is an integer, so it is small.
	return int(d.i64), d.small
}
