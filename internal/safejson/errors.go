package safejson

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. Decode and DecodeObject return them wrapped in an *Error;
// test with errors.Is.
var (
	ErrSyntax       = errors.New("safejson: syntax error")
	ErrTooLarge     = errors.New("safejson: input too large")
	ErrTooDeep      = errors.New("safejson: nesting too deep")
	ErrTooMany      = errors.New("safejson: too many values")
	ErrDuplicateKey = errors.New("safejson: duplicate object key")
	ErrInvalidUTF8  = errors.New("safejson: invalid UTF-8")
	ErrNumberRange  = errors.New("safejson: number out of range")
	ErrNotObject    = errors.New("safejson: not a JSON object")
	// ErrFoldedKey and ErrInexactNumber come only from DecodeArguments.
	ErrFoldedKey     = errors.New("safejson: keys differ only in case")
	ErrInexactNumber = errors.New("safejson: number not exact as float64")
)

// Error describes where decoding failed; errors.Is(err, ErrXxx) works through Unwrap.
//
// Pointer names the value that was being decoded when the failure was found:
// a syntax error inside an element names that element ("/files/3/path"),
// while a problem between members, such as a missing comma or a duplicate
// key, names the enclosing object or array. The zero value is not a
// meaningful error. An *Error is not modified after Decode returns it, so it
// may be read from several goroutines.
type Error struct {
	Offset  int    // byte offset in the input
	Pointer string // RFC 6901 JSON pointer of the value being decoded ("" = root), e.g. "/files/3/path"
	Err     error  // one of the sentinels above
	Detail  string // short human/model-readable detail, e.g. `key "path" appears twice`
}

// maxPointerInError bounds how much of Pointer Error renders, so that a
// hostile megabyte-long key cannot produce a megabyte-long message.
const maxPointerInError = 200

// Error returns a one-line description such as
// `safejson: duplicate object key at /a (offset 17): key "path" appears twice`.
// A failure at the root reads `safejson: syntax error at offset 0: ...`.
// Very long pointers are shortened in the message; the Pointer field is exact.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("safejson: decoding failed")
	}
	if e.Pointer == "" {
		b.WriteString(" at offset ")
		b.WriteString(strconv.Itoa(e.Offset))
	} else {
		b.WriteString(" at ")
		b.WriteString(truncate(e.Pointer, maxPointerInError))
		b.WriteString(" (offset ")
		b.WriteString(strconv.Itoa(e.Offset))
		b.WriteByte(')')
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel error, so errors.Is(err, ErrSyntax) and friends work.
func (e *Error) Unwrap() error { return e.Err }

// truncate shortens s to at most n bytes plus an ellipsis, without cutting a
// UTF-8 sequence in half.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// quoteShort quotes s for a Detail message, shortening long text.
func quoteShort(s string) string {
	return strconv.Quote(truncate(s, 64))
}

// appendPointerToken appends key escaped as an RFC 6901 reference token.
func appendPointerToken(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '~':
			b = append(b, '~', '0')
		case '/':
			b = append(b, '~', '1')
		default:
			b = append(b, c)
		}
	}
	return b
}
