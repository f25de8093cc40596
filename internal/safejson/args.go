package safejson

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DecodeArguments is [DecodeObject] with two more rules, for the arguments
// of a tool call, which the guard judges and a handler then decodes with a
// parser of its own:
//
//   - No object, at any depth, may hold two keys that are equal under the
//     case folding encoding/json uses to match keys to struct fields
//     ([AppendFold]): {"path":"/a","PATH":"/b"} and {"s":1,"ſ":2} are
//     rejected with ErrFoldedKey, since a handler decoding into a struct
//     would read one key's value for the other's.
//   - Every number must satisfy [ExactNumber]: a reader that parses the
//     exact decimal and one that parses a float64 must see the same value.
//     100.0000000000000001 and 9007199254740993 are rejected with
//     ErrInexactNumber; 0.1, 1e2 and 9007199254740992 are not.
func DecodeArguments(data []byte, lim Limits) (map[string]any, error) {
	return decodeObject(data, lim, true)
}

// AppendFold appends key folded the way encoding/json folds object keys to
// match them to struct fields: every rune is replaced by the smallest rune
// of its Unicode simple case folding orbit (unicode.SimpleFold), so "path",
// "PATH" and "Path" all fold to "PATH", "ſ" (U+017F) to "S" and the Kelvin
// sign (U+212A) to "K". Two keys have the same folding exactly when
// strings.EqualFold reports them equal. Invalid UTF-8 is appended as it is.
func AppendFold(dst []byte, key string) []byte {
	for i := 0; i < len(key); {
		c := key[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(key[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, c)
			i++
			continue
		}
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// foldRune returns the smallest rune of r's case folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// pairwiseKeys is the size up to which an object's keys are compared pair
// by pair for folding collisions; larger objects fold every key into a map.
const pairwiseKeys = 16

// foldCollision checks the keys of one object (at least two, already free
// of exact duplicates) for two that fold alike.
func (d *decoder) foldCollision(keys []key) error {
	if len(keys) <= pairwiseKeys {
		for j := 1; j < len(keys); j++ {
			for i := range j {
				a, b := keys[i].s, keys[j].s
				if keys[i].ascii && keys[j].ascii {
					// Equal lengths, and first bytes equal but for the
					// case bit, before comparing the rest.
					if len(a) == len(b) && (a[0]^b[0])&^0x20 == 0 && asciiEqualFold(a, b) {
						return d.foldFail(keys[i], keys[j])
					}
				} else if strings.EqualFold(a, b) {
					return d.foldFail(keys[i], keys[j])
				}
			}
		}
		return nil
	}
	seen := make(map[string]int, len(keys))
	var buf []byte
	for j, k := range keys {
		buf = AppendFold(buf[:0], k.s)
		if i, ok := seen[string(buf)]; ok {
			return d.foldFail(keys[i], k)
		}
		seen[string(buf)] = j
	}
	return nil
}

// foldFail reports key b, which folds like the earlier key a of the object
// being closed. The pointer names b's member.
func (d *decoder) foldFail(a, b key) *Error {
	p := appendPointerToken(append([]byte(d.pointer()), '/'), b.s)
	return &Error{
		Offset:  b.off,
		Pointer: string(p),
		Err:     ErrFoldedKey,
		Detail: "key " + quoteShort(b.s) + " is key " + quoteShort(a.s) +
			" in other letter case; decoders that ignore case would read one for the other",
	}
}

// asciiEqualFold compares two ASCII strings of equal length ignoring case.
func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca|0x20 != cb|0x20 || ca|0x20 < 'a' || ca|0x20 > 'z' {
			return false
		}
	}
	return true
}

// fastDigits is the number of significant decimal digits every decimal in
// the normal float64 range keeps through a round trip (DBL_DIG): two
// distinct such decimals are further apart than a float64 spacing, so the
// float64 nearest one has it as its shortest decimal form.
const fastDigits = 15

// ExactNumber reports whether the JSON number literal lit means the same
// value to a reader that parses its exact decimal value (math/big,
// json.Number, a decimal library) and to one that parses a float64 (most
// JSON parsers, JavaScript, and the policy's CEL, which compares numbers
// that are not small integers as doubles): the exact decimal value of lit
// equals the value of the shortest decimal that rounds to the same float64
// as lit, strconv.FormatFloat(f, 'g', -1, 64). So 0.1, 1e2, 1.5e300 and
// 9007199254740992 are exact; 100.0000000000000001 (read as 100),
// 9007199254740993 (read as 9007199254740992), 1e-400 (read as 0) and
// numbers beyond the float64 range are not. -0 and 0 count as equal.
//
// lit must be a JSON number (RFC 8259); anything else is reported not exact.
func ExactNumber(lit string) bool {
	// Integers of up to 15 digits, the common case.
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	if n := len(lit) - i; n > 0 && n <= fastDigits && (lit[i] != '0' || n == 1) {
		j := i
		for j < len(lit) && isDigit(lit[j]) {
			j++
		}
		if j == len(lit) {
			return true
		}
	}
	var buf [24]byte
	neg, digits, point, ok := normalize(buf[:0], lit)
	if !ok {
		return false
	}
	if len(digits) == 0 {
		return true // zero
	}
	if len(digits) > 17 {
		return false // longer than any shortest float64 form
	}
	if len(digits) <= fastDigits && point > -300 && point < 300 {
		return true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false
	}
	var fbuf [32]byte
	short := strconv.AppendFloat(fbuf[:0], f, 'e', -1, 64)
	var buf2 [24]byte
	fneg, fdigits, fpoint, _ := normalize(buf2[:0], string(short))
	return fneg == neg && fpoint == point && string(fdigits) == string(digits)
}

// normalize reads a JSON number literal as 0.digits × 10^point with no
// leading or trailing zeros in digits (none at all for zero). It appends at
// most 18 digits to dst: callers only need to know that a longer literal is
// longer than 17. ok is false for anything that is not a JSON number.
func normalize(dst []byte, lit string) (neg bool, digits []byte, point int, ok bool) {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(lit) && isDigit(lit[i]) {
		i++
	}
	intEnd := i
	if intEnd == start || lit[start] == '0' && intEnd-start > 1 {
		return false, nil, 0, false
	}
	fracStart, fracEnd := i, i
	if i < len(lit) && lit[i] == '.' {
		i++
		fracStart = i
		for i < len(lit) && isDigit(lit[i]) {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			return false, nil, 0, false
		}
	}
	exp := 0
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		eneg := false
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			eneg = lit[i] == '-'
			i++
		}
		ds := i
		for i < len(lit) && isDigit(lit[i]) {
			if exp < expClamp {
				exp = exp*10 + int(lit[i]-'0')
			}
			i++
		}
		if i == ds {
			return false, nil, 0, false
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(lit) {
		return false, nil, 0, false
	}
	// Walk the digits of int and frac as one sequence, dropping leading
	// zeros (which move the point) and trailing zeros.
	point = intEnd - start + exp
	n := intEnd - start + fracEnd - fracStart
	at := func(k int) byte {
		if k < intEnd-start {
			return lit[start+k]
		}
		return lit[fracStart+k-(intEnd-start)]
	}
	lo, hi := 0, n
	for lo < hi && at(lo) == '0' {
		lo++
		point--
	}
	for hi > lo && at(hi-1) == '0' {
		hi--
	}
	if lo == hi {
		return neg, dst, 0, true
	}
	for k := lo; k < hi && len(dst) < 18; k++ {
		dst = append(dst, at(k))
	}
	return neg, dst, point, true
}
