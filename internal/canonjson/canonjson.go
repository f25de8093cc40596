package canonjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/safejson"
)

// maxDepth bounds the nesting of Go values, which also stops a map or slice
// that contains itself.
const maxDepth = 10_000

// Append appends the canonical JSON encoding of v to dst. v may contain map[string]any, []any,
// string, json.Number, bool, nil, float64, float32, int, int64, int32, uint64, uint32,
// json.RawMessage (re-canonicalised via safejson.Decode), and []string / map[string]string
// for convenience. Anything else → error ("canonjson: unsupported type T").
//
// Strings and keys must be valid UTF-8, numbers must be finite, and
// json.Number must hold a JSON number. A json.RawMessage is decoded under
// safejson's default Limits. A nil map or slice encodes as null, as with
// encoding/json. Nesting deeper than 10 000 levels, which includes a value
// that contains itself, is an error. On error Append returns dst with its
// original length. Append is safe for concurrent use as long as v is not
// modified meanwhile.
func Append(dst []byte, v any) ([]byte, error) {
	n := len(dst)
	dst, err := appendValue(dst, v, 0)
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// Marshal is Append(nil, v).
func Marshal(v any) ([]byte, error) {
	// Tool arguments are usually short; one allocation of this size
	// replaces several small ones as the output grows.
	b, err := Append(make([]byte, 0, 128), v)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendString appends s as a JSON string literal in canonical form.
//
// AppendString cannot fail, so it writes each byte of s that is not valid
// UTF-8 as U+FFFD. Append, which hashing should use, rejects such strings
// instead, because the replacement makes different strings encode alike.
func AppendString(dst []byte, s string) []byte {
	return appendLenient(dst, s)
}

var errInvalidUTF8 = errors.New("canonjson: invalid UTF-8 in string")

func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if x {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case string:
		return appendStrict(dst, x)
	case json.Number:
		return appendNumber(dst, string(x))
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendObject(dst, x, depth)
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if depth >= maxDepth {
			return dst, errTooDeep
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendValue(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case []string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendStrict(dst, s); err != nil {
				return dst, err
			}
		}
		return append(dst, ']'), nil
	case map[string]string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendStringMap(dst, x)
	case json.RawMessage:
		if x == nil {
			return append(dst, "null"...), nil
		}
		d, err := safejson.Decode(x, safejson.Limits{})
		if err != nil {
			return dst, fmt.Errorf("canonjson: raw message: %w", err)
		}
		return appendValue(dst, d, depth)
	}
	return dst, fmt.Errorf("canonjson: unsupported type %T", v)
}

var errTooDeep = fmt.Errorf("canonjson: nesting deeper than %d levels", maxDepth)

func appendStrict(dst []byte, s string) ([]byte, error) {
	dst, ok := appendString(dst, s, true)
	if !ok {
		return dst, errInvalidUTF8
	}
	return dst, nil
}

// member is an object member waiting to be sorted.
type member[V any] struct {
	k string
	v V
}

func appendObject(dst []byte, m map[string]any, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return dst, errTooDeep
	}
	var buf [8]member[any]
	ms := buf[:0]
	for k, v := range m {
		ms = append(ms, member[any]{k, v})
	}
	sortMembers(ms)
	dst = append(dst, '{')
	for i, mb := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendStrict(dst, mb.k); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if dst, err = appendValue(dst, mb.v, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendStringMap(dst []byte, m map[string]string) ([]byte, error) {
	var buf [8]member[string]
	ms := buf[:0]
	for k, v := range m {
		ms = append(ms, member[string]{k, v})
	}
	sortMembers(ms)
	dst = append(dst, '{')
	for i, mb := range ms {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendStrict(dst, mb.k); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if dst, err = appendStrict(dst, mb.v); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// sortMembers sorts by key in UTF-16 code unit order (RFC 8785 §3.2.3).
func sortMembers[V any](ms []member[V]) {
	if len(ms) <= 12 {
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0 && compareUTF16(ms[j].k, ms[j-1].k) < 0; j-- {
				ms[j], ms[j-1] = ms[j-1], ms[j]
			}
		}
		return
	}
	slices.SortFunc(ms, func(a, b member[V]) int { return compareUTF16(a.k, b.k) })
}

// compareUTF16 compares two UTF-8 strings by their UTF-16 code units.
//
// Byte order of UTF-8 is code point order, which agrees with UTF-16 order
// except that the surrogates encoding U+10000 and above (0xD800–0xDFFF) sort
// below U+E000–U+FFFF. Two strings first differ either inside a character of
// the same length, where byte order is right, or at lead bytes, which is the
// only place the exception can arise.
func compareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	ca, cb := a[i], b[i]
	if ca >= 0xF0 && (cb == 0xEE || cb == 0xEF) {
		return -1
	}
	if cb >= 0xF0 && (ca == 0xEE || ca == 0xEF) {
		return 1
	}
	return int(ca) - int(cb)
}

const hexDigits = "0123456789abcdef"

// Plain8 reports whether the eight bytes of v (little-endian) are all
// printable ASCII other than '"' and '\\': bytes a JSON string literal
// holds as they are.
func Plain8(v uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	lt20 := (v - ones*0x20) &^ v
	quote := v ^ (ones * '"')
	quote = (quote - ones) &^ quote
	bslash := v ^ (ones * '\\')
	bslash = (bslash - ones) &^ bslash
	return (lt20|quote|bslash|v)&highs == 0
}

// appendString appends s as a canonical JSON string literal. With strict set
// it reports false, appending nothing, if s is not valid UTF-8; otherwise it
// writes U+FFFD for each invalid byte.
func appendString(dst []byte, s string, strict bool) ([]byte, bool) {
	if strict && !utf8.ValidString(s) {
		return dst, false
	}
	return appendLenient(dst, s), true
}

// appendLenient is appendString without the check: the one loop that
// escapes strings, for records as well as canonical JSON.
func appendLenient(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip eight plain ASCII bytes at a time (one bounds check for
		// the eight).
		for i+8 <= len(s) {
			w := s[i : i+8]
			if !Plain8(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i++
			start = i
			continue
		}
		i += w
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("canonjson: unsupported number %v", f)
	}
	var buf [32]byte
	return appendNumber(dst, strconv.AppendFloat(buf[:0], f, 'g', -1, bits))
}

// Exponents with more digits than this take a slower path with math/big.
const maxExpDigits = 15

// appendNumber appends the canonical form of the JSON number text s.
//
// The value is written as D × 10^E, D an integer without trailing zeros;
// with n digits in D and k = n + E the position of the decimal point:
//
//	E ≥ 0 and (k ≤ 21 or E = 0):  D followed by E zeros      ("100", "12345678901234567890123")
//	E < 0 and 0 < k ≤ 21:         D with a point after k digits ("1.5")
//	-6 < k ≤ 0:                   "0." then -k zeros then D     ("0.000001")
//	otherwise:                    d[.ddd]e±(k-1)                ("1e-7", "1e+400")
//
// This is the number form of RFC 8785 applied to the exact decimal value,
// except that an integer keeps all its digits. Every value has exactly one
// form and every form reads back as the same value.
func appendNumber[T string | []byte](dst []byte, s T) ([]byte, error) {
	sp, ok := scanNumber(s)
	if !ok {
		return dst, badNumber(s)
	}
	ip, fp := s[sp.intStart:sp.intEnd], s[sp.fracStart:sp.fracEnd]
	// The significant digits, those of ip followed by fp from the first
	// nonzero one, lo, to the last, hi-1, are found here rather than in a
	// helper: the call costs measurably on this path.
	total := len(ip) + len(fp)
	digit := func(j int) byte {
		if j < len(ip) {
			return ip[j]
		}
		return fp[j-len(ip)]
	}
	lo := 0
	for lo < total && digit(lo) == '0' {
		lo++
	}
	if lo == total {
		return append(dst, '0'), nil
	}
	hi := total
	for digit(hi-1) == '0' {
		hi--
	}
	if sp.neg {
		dst = append(dst, '-')
	}
	d := digits[T]{ip: ip, fp: fp, lo: lo}
	n, trailing := hi-lo, total-hi
	expDigits := s[sp.expStart:]
	if len(expDigits) > maxExpDigits {
		return appendHugeExponent(dst, &d, n, trailing-len(fp), sp.expNeg, expDigits), nil
	}
	return appendDecimal(dst, &d, n, exponent(sp.expNeg, expDigits)-len(fp)+trailing), nil
}

// numberSpans locate the pieces of a JSON number text s: the integer
// digits s[intStart:intEnd], the fraction digits s[fracStart:fracEnd] and
// the exponent digits without leading zeros s[expStart:]. Indexes rather
// than subslices keep the value small enough to return in registers.
type numberSpans struct {
	neg, expNeg                          bool
	intStart, intEnd, fracStart, fracEnd int
	expStart                             int
}

// scanNumber locates the pieces of the JSON number text s. It reports
// false if s is not a number in the JSON grammar.
func scanNumber[T string | []byte](s T) (sp numberSpans, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		sp.neg = true
		i++
	}
	sp.intStart = i
	i = skipDigits(s, i)
	sp.intEnd, sp.fracStart, sp.fracEnd = i, i, i
	if n := i - sp.intStart; n == 0 || n > 1 && s[sp.intStart] == '0' {
		return sp, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		sp.fracStart = i
		i = skipDigits(s, i)
		sp.fracEnd = i
		if sp.fracEnd == sp.fracStart {
			return sp, false
		}
	}
	sp.expStart = i
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			sp.expNeg = s[i] == '-'
			i++
		}
		expStart := i
		for i < len(s) && s[i] == '0' {
			i++
		}
		sp.expStart = i
		i = skipDigits(s, i)
		if i == expStart {
			return sp, false
		}
	}
	return sp, i == len(s)
}

// skipDigits returns the index of the first non-digit in s at or after i.
func skipDigits[T string | []byte](s T, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// exponent returns the value of the exponent with digits expDigits,
// negative if neg; it is only meaningful for at most maxExpDigits digits.
func exponent[T string | []byte](neg bool, expDigits T) int {
	exp := 0
	for _, c := range []byte(expDigits) {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	return exp
}

// appendHugeExponent appends the n significant digits d in scientific
// form when the exponent, expDigits negated if expNeg, has more than
// maxExpDigits digits. Such an exponent outweighs any digit count, so the
// form is always scientific, with exponent exp + n + shift - 1, shift being
// the trailing zeros dropped less the fraction digits.
func appendHugeExponent[T string | []byte](dst []byte, d *digits[T], n, shift int, expNeg bool, expDigits T) []byte {
	dst = d.appendScientific(dst, n)
	x, _ := new(big.Int).SetString(string(expDigits), 10)
	if expNeg {
		x.Neg(x)
	}
	x.Add(x, big.NewInt(int64(n+shift-1)))
	if x.Sign() >= 0 {
		dst = append(dst, '+')
	}
	return x.Append(dst, 10)
}

// appendDecimal appends D × 10^e, D the n significant digits d, in the form
// chosen by the table in appendNumber's doc comment.
func appendDecimal[T string | []byte](dst []byte, d *digits[T], n, e int) []byte {
	k := n + e
	switch {
	case e >= 0 && (k <= 21 || e == 0):
		dst = d.append(dst, 0, n)
		for range e {
			dst = append(dst, '0')
		}
	case e < 0 && 0 < k && k <= 21:
		dst = d.append(dst, 0, k)
		dst = append(dst, '.')
		dst = d.append(dst, k, n)
	case -6 < k && k <= 0:
		dst = append(dst, '0', '.')
		for range -k {
			dst = append(dst, '0')
		}
		dst = d.append(dst, 0, n)
	default:
		dst = d.appendScientific(dst, n)
		if k-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(k-1), 10)
	}
	return dst
}

// digits are the significant digits of a number: the digits of ip followed
// by those of fp, from index lo on.
type digits[T string | []byte] struct {
	ip, fp T
	lo     int
}

// append appends significant digits a to b-1.
func (d digits[T]) append(dst []byte, a, b int) []byte {
	a, b = a+d.lo, b+d.lo
	if a < len(d.ip) {
		dst = append(dst, d.ip[a:min(b, len(d.ip))]...)
	}
	if b > len(d.ip) {
		dst = append(dst, d.fp[max(a-len(d.ip), 0):b-len(d.ip)]...)
	}
	return dst
}

// appendScientific appends "d[.ddd]e" for n significant digits.
func (d digits[T]) appendScientific(dst []byte, n int) []byte {
	dst = d.append(dst, 0, 1)
	if n > 1 {
		dst = append(dst, '.')
		dst = d.append(dst, 1, n)
	}
	return append(dst, 'e')
}

func badNumber[T string | []byte](s T) error {
	return fmt.Errorf("canonjson: invalid number %.40q", string(s))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
