package safejson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Default limits, used where a Limits field is zero or negative.
const (
	defaultMaxBytes    = 1 << 20
	defaultMaxDepth    = 64
	defaultMaxElements = 100_000
)

// Limits bound the work of Decode. The zero value of a field means its default.
//
// A zero or negative field means its default, so the zero Limits is the
// recommended setting for tool arguments. A Limits is a plain value and may
// be shared freely.
type Limits struct {
	MaxBytes    int // default 1 << 20 (1 MiB) of input
	MaxDepth    int // default 64 nesting levels of arrays/objects
	MaxElements int // default 100_000 values in total (array elements + object members)
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxElements <= 0 {
		l.MaxElements = defaultMaxElements
	}
	return l
}

// Decode parses one JSON value (RFC 8259) from data. Values are map[string]any, []any,
// string, json.Number (the exact literal text, never rounded), bool and nil.
//
// Decode is strict so that it cannot disagree with another parser about what
// a document means: it rejects duplicate keys, invalid UTF-8 and lone
// surrogate escapes, and numbers that overflow float64, besides everything
// RFC 8259 forbids. Every failure is an *Error. Strings and numbers returned
// share one copy of data, so holding any of them keeps that copy alive.
// Decode is safe for concurrent use.
func Decode(data []byte, lim Limits) (any, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, tooLarge(len(data), lim.MaxBytes)
	}
	d := getDecoder(data, lim)
	v, err := d.document()
	putDecoder(d)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeObject is Decode that also requires the top-level value to be an object
// (ErrNotObject otherwise) and returns it typed.
//
// The kind of the top-level value is checked from its first byte, before the
// rest of the input is parsed.
func DecodeObject(data []byte, lim Limits) (map[string]any, error) {
	return decodeObject(data, lim, false)
}

func decodeObject(data []byte, lim Limits, args bool) (map[string]any, error) {
	lim = lim.withDefaults()
	if len(data) > lim.MaxBytes {
		return nil, tooLarge(len(data), lim.MaxBytes)
	}
	i := 0
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	if i < len(data) && data[i] != '{' {
		if kind := kindOf(data[i]); kind != "" {
			return nil, &Error{Offset: i, Err: ErrNotObject, Detail: "top-level value is " + kind}
		}
	}
	d := getDecoder(data, lim)
	d.args = args
	v, err := d.document()
	putDecoder(d)
	if err != nil {
		return nil, err
	}
	// The first byte was '{' and the document parsed, so v is an object.
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &Error{Offset: i, Err: ErrNotObject, Detail: "top-level value is not an object"}
	}
	return m, nil
}

func tooLarge(n, limit int) error {
	return &Error{
		Offset: limit,
		Err:    ErrTooLarge,
		Detail: fmt.Sprintf("input is %d bytes, limit is %d", n, limit),
	}
}

// kindOf names the kind of JSON value that starts with c, or "" if no value
// starts with c.
func kindOf(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || isDigit(c):
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return ""
}

// frame is one open array or object.
type frame struct {
	obj    bool
	start  int    // index in decoder.vals of this container's first value
	kstart int    // index in decoder.keys of this object's first key
	n      int    // members or elements started so far
	key    string // key of the member being decoded (objects)
}

// key is an object key waiting, with its value in decoder.vals, for the
// object to close.
type key struct {
	s     string
	off   int
	ascii bool // s has no byte >= 0x80
}

// decoder holds the state of one Decode call. Decoders are pooled so that
// their stacks are reused across calls.
//
// Values of open containers wait on the vals (and keys) stacks and are
// copied into an exactly sized slice or map when the container closes: one
// allocation per container, and no recursion, so depth costs no Go stack.
type decoder struct {
	s        string // the input; unescaped strings and numbers are substrings of it
	pos      int
	maxDepth int
	maxElems int
	elems    int
	inMember bool // the innermost frame is decoding one of its values
	nonASCII bool // the string decoded since member reset it has a byte >= 0x80
	args     bool // DecodeArguments: no keys folding alike, exact numbers only
	frames   []frame
	vals     []any
	keys     []key
	buf      []byte // scratch for strings with escapes
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

// Pooled stacks larger than these are dropped rather than kept.
const (
	maxPooledVals = 1 << 14
	maxPooledBuf  = 1 << 16
)

func getDecoder(data []byte, lim Limits) *decoder {
	d := decoderPool.Get().(*decoder)
	d.s = string(data)
	d.pos = 0
	d.maxDepth = lim.MaxDepth
	d.maxElems = lim.MaxElements
	d.elems = 0
	d.inMember = false
	d.args = false
	return d
}

func putDecoder(d *decoder) {
	// Drop every reference into the caller's data before pooling.
	d.s = ""
	clear(d.frames)
	clear(d.vals)
	clear(d.keys)
	d.frames = d.frames[:0]
	d.vals = d.vals[:0]
	d.keys = d.keys[:0]
	d.buf = d.buf[:0]
	if cap(d.vals) > maxPooledVals || cap(d.keys) > maxPooledVals || cap(d.frames) > maxPooledVals || cap(d.buf) > maxPooledBuf {
		return
	}
	decoderPool.Put(d)
}

// document decodes the whole input: one value and optional whitespace.
func (d *decoder) document() (any, error) {
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if d.skipSpace() {
		return nil, d.unexpected("end of input after top-level value")
	}
	return v, nil
}

// value decodes one value, containers included, with an explicit stack.
func (d *decoder) value() (any, error) {
	for {
		if !d.skipSpace() {
			return nil, d.eof()
		}
		var v any
		var err error
		switch c := d.s[d.pos]; c {
		case '{', '[':
			if len(d.frames) >= d.maxDepth {
				return nil, d.fail(ErrTooDeep, d.pos, fmt.Sprintf("more than %d nested arrays and objects", d.maxDepth))
			}
			obj := c == '{'
			d.pos++
			d.frames = append(d.frames, frame{obj: obj, start: len(d.vals), kstart: len(d.keys)})
			d.inMember = false
			if !d.skipSpace() {
				return nil, d.eof()
			}
			if c := d.s[d.pos]; obj && c == '}' || !obj && c == ']' {
				d.pos++
				if v, err = d.close(); err != nil {
					return nil, err
				}
				break // attach the empty container below
			}
			if obj {
				err = d.member()
			} else {
				err = d.element()
			}
			if err != nil {
				return nil, err
			}
			continue // decode the first value of the container
		case '"':
			var s string
			s, err = d.str()
			v = s
		case 't':
			v, err = d.literal("true", true)
		case 'f':
			v, err = d.literal("false", false)
		case 'n':
			v, err = d.literal("null", nil)
		default:
			if c == '-' || isDigit(c) {
				v, err = d.number()
			} else {
				err = d.unexpected("value")
			}
		}
		if err != nil {
			return nil, err
		}

		// Attach v to the open container, closing every container the
		// input closes, until one continues with another value.
		for {
			if len(d.frames) == 0 {
				return v, nil
			}
			d.vals = append(d.vals, v)
			d.inMember = false
			if !d.skipSpace() {
				return nil, d.eof()
			}
			top := &d.frames[len(d.frames)-1]
			c := d.s[d.pos]
			if c == ',' {
				d.pos++
				if top.obj {
					err = d.member()
				} else {
					err = d.element()
				}
				if err != nil {
					return nil, err
				}
				break // decode the next value
			}
			if top.obj && c == '}' || !top.obj && c == ']' {
				d.pos++
				if v, err = d.close(); err != nil {
					return nil, err
				}
				continue
			}
			if top.obj {
				return nil, d.unexpected("',' or '}'")
			}
			return nil, d.unexpected("',' or ']'")
		}
	}
}

// member decodes `"key":` and starts the member's value.
func (d *decoder) member() error {
	if !d.skipSpace() {
		return d.eof()
	}
	if d.s[d.pos] != '"' {
		return d.unexpected("string key")
	}
	off := d.pos
	d.nonASCII = false
	k, err := d.str()
	if err != nil {
		return err
	}
	if !d.skipSpace() {
		return d.eof()
	}
	if d.s[d.pos] != ':' {
		return d.unexpected("':'")
	}
	d.pos++
	top := &d.frames[len(d.frames)-1]
	top.n++
	top.key = k
	d.keys = append(d.keys, key{s: k, off: off, ascii: !d.nonASCII})
	return d.count()
}

// element starts the next value of an array.
func (d *decoder) element() error {
	d.frames[len(d.frames)-1].n++
	return d.count()
}

func (d *decoder) count() error {
	d.inMember = true
	d.elems++
	if d.elems > d.maxElems {
		return d.fail(ErrTooMany, d.pos, fmt.Sprintf("more than %d values", d.maxElems))
	}
	return nil
}

// close builds the innermost container from the stacks and pops it.
func (d *decoder) close() (any, error) {
	f := &d.frames[len(d.frames)-1]
	vals := d.vals[f.start:]
	var v any
	if f.obj {
		keys := d.keys[f.kstart:]
		m := make(map[string]any, len(vals))
		for i, k := range keys {
			n := len(m)
			m[k.s] = vals[i]
			if len(m) == n {
				return nil, d.fail(ErrDuplicateKey, k.off, "key "+quoteShort(k.s)+" appears twice")
			}
		}
		if d.args && len(keys) > 1 {
			if err := d.foldCollision(keys); err != nil {
				return nil, err
			}
		}
		clear(keys)
		d.keys = d.keys[:f.kstart]
		v = m
	} else {
		a := make([]any, len(vals))
		copy(a, vals)
		v = a
	}
	clear(vals)
	d.vals = d.vals[:f.start]
	d.frames[len(d.frames)-1] = frame{}
	d.frames = d.frames[:len(d.frames)-1]
	return v, nil
}

// skipSpace skips whitespace and reports whether input remains.
func (d *decoder) skipSpace() bool {
	for d.pos < len(d.s) {
		if !isSpace(d.s[d.pos]) {
			return true
		}
		d.pos++
	}
	return false
}

func (d *decoder) literal(word string, v any) (any, error) {
	if len(d.s)-d.pos >= len(word) && d.s[d.pos:d.pos+len(word)] == word {
		d.pos += len(word)
		return v, nil
	}
	return nil, d.fail(ErrSyntax, d.pos, "invalid literal, expected "+word)
}

// plain marks the string bytes that stand for themselves: printable ASCII
// other than '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str decodes the string starting at d.pos (a '"').
func (d *decoder) str() (string, error) {
	s := d.s
	start := d.pos + 1
	i := start
	for i < len(s) {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			d.pos = i + 1
			return s[start:i], nil
		case c == '\\':
			return d.strEscaped(start, i)
		case c < 0x20:
			return "", d.fail(ErrSyntax, i, fmt.Sprintf("control character 0x%02x in string", c))
		default:
			r, w := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && w == 1 {
				return "", d.fail(ErrInvalidUTF8, i, fmt.Sprintf("invalid byte 0x%02x in string", c))
			}
			d.nonASCII = true
			i += w
		}
	}
	return "", d.fail(ErrSyntax, len(s), "unterminated string")
}

// strEscaped finishes a string that has an escape at i.
func (d *decoder) strEscaped(start, i int) (string, error) {
	s := d.s
	b := append(d.buf[:0], s[start:i]...)
	for i < len(s) {
		c := s[i]
		if plain[c] {
			b = append(b, c)
			i++
			continue
		}
		switch {
		case c == '"':
			d.pos = i + 1
			d.buf = b[:0]
			return string(b), nil
		case c < 0x20:
			return "", d.fail(ErrSyntax, i, fmt.Sprintf("control character 0x%02x in string", c))
		case c >= 0x80:
			r, w := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && w == 1 {
				return "", d.fail(ErrInvalidUTF8, i, fmt.Sprintf("invalid byte 0x%02x in string", c))
			}
			b = append(b, s[i:i+w]...)
			d.nonASCII = true
			i += w
			continue
		}
		// A backslash.
		if i+1 >= len(s) {
			return "", d.fail(ErrSyntax, len(s), "unterminated string")
		}
		switch e := s[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s, i+2)
			if !ok {
				return "", d.fail(ErrSyntax, i, "invalid \\u escape")
			}
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return "", d.fail(ErrInvalidUTF8, i, fmt.Sprintf("lone surrogate \\u%04x", r))
			case r >= 0xD800 && r <= 0xDBFF:
				lo, ok := rune(0), false
				if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
					lo, ok = hex4(s, i+8)
				}
				if !ok || lo < 0xDC00 || lo > 0xDFFF {
					return "", d.fail(ErrInvalidUTF8, i, fmt.Sprintf("lone surrogate \\u%04x", r))
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
			if r >= utf8.RuneSelf {
				d.nonASCII = true
			}
			b = utf8.AppendRune(b, r)
			i += 6
			continue
		default:
			return "", d.fail(ErrSyntax, i, "invalid escape "+strconv.QuoteRuneToASCII(rune(e)))
		}
		i += 2
	}
	return "", d.fail(ErrSyntax, len(s), "unterminated string")
}

// hex4 decodes the four hex digits at s[i:i+4].
func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Exponents are accumulated up to this magnitude; beyond it only the sign
// matters for the range check, since the input has at most MaxBytes digits.
const expClamp = 1 << 30

// number decodes the number starting at d.pos, keeping its exact text.
func (d *decoder) number() (any, error) {
	s := d.s
	start := d.pos
	i := start
	if s[i] == '-' {
		i++
	}
	intStart := i
	switch {
	case i < len(s) && s[i] == '0':
		i++
		if i < len(s) && isDigit(s[i]) {
			return nil, d.fail(ErrSyntax, start, "number has a leading zero")
		}
	case i < len(s) && isDigit(s[i]):
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return nil, d.fail(ErrSyntax, start, "invalid number: expected a digit")
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracEnd = i
		if fracStart == fracEnd {
			return nil, d.fail(ErrSyntax, start, "invalid number: expected a digit after '.'")
		}
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		digits := i
		for i < len(s) && isDigit(s[i]) {
			if exp < expClamp {
				exp = exp*10 + int(s[i]-'0')
			}
			i++
		}
		if i == digits {
			return nil, d.fail(ErrSyntax, start, "invalid number: expected a digit in exponent")
		}
		if neg {
			exp = -exp
		}
	}
	text := s[start:i]
	d.pos = i

	// The value is 0.ddd × 10^k with a nonzero first digit; it overflows
	// float64 (max ≈ 1.8e308) for sure when k ≥ 310 and never when k ≤ 308.
	var k int
	if s[intStart] != '0' {
		k = intEnd - intStart + exp
	} else {
		z := fracStart
		for z < fracEnd && s[z] == '0' {
			z++
		}
		if z == fracEnd {
			return json.Number(text), nil // zero
		}
		k = fracStart - z + exp
	}
	if k > 308 {
		overflow := k >= 310
		if !overflow {
			_, err := strconv.ParseFloat(text, 64)
			overflow = err != nil
		}
		if overflow {
			return nil, d.fail(ErrNumberRange, start, "number "+truncate(text, 40)+" overflows float64")
		}
	}
	// Integers of up to fastDigits digits are exact; ExactNumber decides
	// the rest.
	if d.args && (fracStart != fracEnd || i != fracEnd || intEnd-intStart > fastDigits) && !ExactNumber(text) {
		return nil, d.fail(ErrInexactNumber, start, inexactDetail(text))
	}
	return json.Number(text), nil
}

// inexactDetail explains why the number text is refused.
func inexactDetail(text string) string {
	f, _ := strconv.ParseFloat(text, 64)
	t := truncate(text, 40)
	return "number " + t + " has no exact 64-bit floating-point value: readers that use one (most JSON parsers, and the policy) would see " +
		strconv.FormatFloat(f, 'g', -1, 64) + ", readers of the exact decimal " + t + "; send it as a string if every digit matters"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// fail builds an *Error at offset off for the value being decoded.
func (d *decoder) fail(err error, off int, detail string) *Error {
	return &Error{Offset: off, Pointer: d.pointer(), Err: err, Detail: detail}
}

func (d *decoder) eof() *Error {
	return d.fail(ErrSyntax, len(d.s), "unexpected end of input")
}

// unexpected reports the byte at d.pos where want was expected. A byte that
// does not start valid UTF-8 is reported as ErrInvalidUTF8.
func (d *decoder) unexpected(want string) *Error {
	if c := d.s[d.pos]; c >= 0x80 {
		if r, w := utf8.DecodeRuneInString(d.s[d.pos:]); r == utf8.RuneError && w == 1 {
			return d.fail(ErrInvalidUTF8, d.pos, fmt.Sprintf("invalid byte 0x%02x", c))
		}
	}
	return d.fail(ErrSyntax, d.pos, "unexpected "+describe(d.s, d.pos)+", expected "+want)
}

// describe names the character at s[i] for an error message.
func describe(s string, i int) string {
	r, _ := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError {
		return fmt.Sprintf("byte 0x%02x", s[i])
	}
	return "character " + strconv.QuoteRuneToASCII(r)
}

// pointer returns the JSON pointer of the value being decoded.
func (d *decoder) pointer() string {
	var b []byte
	for i, f := range d.frames {
		if i == len(d.frames)-1 && !d.inMember {
			break
		}
		b = append(b, '/')
		if f.obj {
			b = appendPointerToken(b, f.key)
		} else {
			b = strconv.AppendInt(b, int64(f.n-1), 10)
		}
	}
	return string(b)
}
