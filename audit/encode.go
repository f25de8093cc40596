package audit

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/canonjson"
)

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction, so every
// time has one encoding and lines sort by time as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// AppendJSON appends the record's JSON encoding (one line, no trailing
// newline) to dst and returns the extended buffer.
//
// The encoding is deterministic: the same Record always gives the same bytes,
// members in the order of the struct fields, omitempty fields left out when
// zero. Strings are escaped minimally (\" \\ \b \f \n \r \t, other control
// characters as \u00XX) with invalid UTF-8 replaced by U+FFFD, so the line is
// valid JSON whatever bytes a tool name or reason holds. Args is written as is
// when it is valid JSON (insignificant whitespace removed, so it cannot break
// the line), and otherwise (or when nested more than 1000 levels deep) as a
// JSON string of its text.
//
// [Verify] accepts a line only if it is exactly this encoding of the record it
// decodes to.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = appendHead(dst, r.Version, r.Seq)
	dst = r.appendBody(dst)
	dst = appendTail(dst, r.Prev)
	return appendAuth(dst, r.MAC, r.Sig)
}

// appendAuth replaces the closing brace at the end of dst, written by
// appendTail, with the MAC and Sig members and a new brace, when either is
// set. The bytes before it are what they authenticate.
func appendAuth(dst []byte, mac, sig string) []byte {
	if mac == "" && sig == "" {
		return dst
	}
	dst = dst[:len(dst)-1]
	if mac != "" {
		dst = append(dst, `,"mac":`...)
		dst = appendString(dst, mac)
	}
	if sig != "" {
		dst = append(dst, `,"sig":`...)
		dst = appendString(dst, sig)
	}
	return append(dst, '}')
}

// authLen returns the length of the members appendAuth adds for r.
func authLen(r *Record) int {
	n := 0
	if r.MAC != "" {
		n += len(`,"mac":""`) + len(r.MAC)
	}
	if r.Sig != "" {
		n += len(`,"sig":""`) + len(r.Sig)
	}
	return n
}

// appendHead appends `{"v":N,"seq":N,`. It is split from the body so that a
// Log can encode the body outside its lock and add the head under it.
func appendHead(dst []byte, v int, seq uint64) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(v), 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, ',')
}

// maxHead is the longest appendHead output: both numbers at 20 characters.
const maxHead = len(`{"v":,"seq":,`) + 20 + 20

// appendTail appends `"prev":"..."}`.
func appendTail(dst []byte, prev string) []byte {
	dst = append(dst, `"prev":`...)
	dst = appendString(dst, prev)
	return append(dst, '}')
}

// appendBody appends every member from "id" to the one before "prev", each
// followed by a comma.
func (r *Record) appendBody(dst []byte) []byte {
	dst = append(dst, `"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, string(r.Kind))
	dst = append(dst, `,"time":`...)
	dst = appendTime(dst, r.Time)
	dst = append(dst, ',')
	dst = appendStringField(dst, `"principal":`, r.Principal)
	dst = appendStringField(dst, `"session":`, r.Session)
	dst = appendStringField(dst, `"task":`, r.Task)
	if c := r.Correlation; !c.isZero() {
		dst = append(dst, `"correlation":{`...)
		n := len(dst)
		dst = appendStringField(dst, `"trace_id":`, c.TraceID)
		dst = appendStringField(dst, `"span_id":`, c.SpanID)
		dst = appendStringField(dst, `"conversation":`, c.Conversation)
		dst = appendStringField(dst, `"turn":`, c.Turn)
		dst = appendStringField(dst, `"message":`, c.Message)
		if len(dst) > n {
			dst = dst[:len(dst)-1] // the last member's comma
		}
		dst = append(dst, "},"...)
	}
	dst = append(dst, `"tool":`...)
	dst = appendString(dst, r.Tool)
	dst = append(dst, ',')
	if len(r.Args) > 0 {
		dst = append(dst, `"args":`...)
		dst = appendArgs(dst, r.Args)
		dst = append(dst, ',')
	}
	dst = appendStringField(dst, `"args_sha256":`, r.ArgsSHA256)
	if len(r.Redacted) > 0 {
		dst = append(dst, `"redacted":`...)
		dst = appendStrings(dst, r.Redacted)
		dst = append(dst, ',')
	}
	dst = appendStringField(dst, `"effect":`, r.Effect)
	dst = appendStringField(dst, `"stage":`, r.Stage)
	dst = appendStringField(dst, `"rule":`, r.Rule)
	dst = appendStringField(dst, `"scope":`, r.Scope)
	dst = appendStringField(dst, `"grant":`, r.Grant)
	dst = appendStringField(dst, `"reason":`, r.Reason)
	dst = r.appendDetail(dst)
	dst = r.appendShadow(dst)
	return r.appendResult(dst)
}

// appendDetail appends the violations, limits and approval members.
func (r *Record) appendDetail(dst []byte) []byte {
	if len(r.Violations) > 0 {
		dst = append(dst, `"violations":[`...)
		for i := range r.Violations {
			v := &r.Violations[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"pointer":`...)
			dst = appendString(dst, v.Pointer)
			dst = append(dst, `,"message":`...)
			dst = appendString(dst, v.Message)
			dst = append(dst, '}')
		}
		dst = append(dst, "],"...)
	}
	if len(r.Limits) > 0 {
		dst = append(dst, `"limits":[`...)
		for i := range r.Limits {
			l := &r.Limits[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendString(dst, l.Name)
			dst = append(dst, ',')
			dst = appendStringField(dst, `"key":`, l.Key)
			dst = append(dst, `"allowed":`...)
			dst = strconv.AppendBool(dst, l.Allowed)
			if l.RetryAfterMS != 0 {
				dst = append(dst, `,"retry_after_ms":`...)
				dst = strconv.AppendInt(dst, l.RetryAfterMS, 10)
			}
			if l.FailedOpen {
				dst = append(dst, `,"failed_open":true`...)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, "],"...)
	}
	if a := r.Approval; a != nil {
		dst = append(dst, `"approval":{`...)
		dst = appendStringField(dst, `"rule":`, a.Rule)
		dst = append(dst, `"approved":`...)
		dst = strconv.AppendBool(dst, a.Approved)
		if a.By != "" {
			dst = append(dst, `,"by":`...)
			dst = appendString(dst, a.By)
		}
		if a.Reason != "" {
			dst = append(dst, `,"reason":`...)
			dst = appendString(dst, a.Reason)
		}
		if a.Binding != "" {
			dst = append(dst, `,"binding":`...)
			dst = appendString(dst, a.Binding)
		}
		if a.ForSession {
			dst = append(dst, `,"for_session":true`...)
		}
		dst = append(dst, "},"...)
	}
	return r.appendFlow(dst)
}

// appendFlow appends the labels, flow and remembered members.
func (r *Record) appendFlow(dst []byte) []byte {
	if len(r.Labels) > 0 {
		dst = append(dst, `"labels":`...)
		dst = appendStrings(dst, r.Labels)
		dst = append(dst, ',')
	}
	if len(r.Flow) > 0 {
		dst = append(dst, `"flow":[`...)
		for i := range r.Flow {
			f := &r.Flow[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"tool":`...)
			dst = appendString(dst, f.Tool)
			dst = append(dst, `,"call_id":`...)
			dst = appendString(dst, f.CallID)
			dst = append(dst, `,"seq":`...)
			dst = strconv.AppendUint(dst, f.Seq, 10)
			dst = append(dst, '}')
		}
		dst = append(dst, "],"...)
	}
	return appendStringField(dst, `"remembered":`, r.Remembered)
}

// appendShadow appends the shadow and candidate members.
func (r *Record) appendShadow(dst []byte) []byte {
	if len(r.Shadow) > 0 {
		dst = append(dst, `"shadow":[`...)
		for i := range r.Shadow {
			s := &r.Shadow[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"rule":`...)
			dst = appendString(dst, s.Rule)
			dst = append(dst, `,"effect":`...)
			dst = appendString(dst, s.Effect)
			dst = append(dst, `,"matched":`...)
			dst = strconv.AppendBool(dst, s.Matched)
			if s.Message != "" {
				dst = append(dst, `,"message":`...)
				dst = appendString(dst, s.Message)
			}
			if s.Error != "" {
				dst = append(dst, `,"error":`...)
				dst = appendString(dst, s.Error)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, "],"...)
	}
	if c := r.Candidate; c != nil {
		dst = append(dst, `"candidate":{"policy":`...)
		dst = appendString(dst, c.Policy)
		dst = append(dst, `,"effect":`...)
		dst = appendString(dst, c.Effect)
		if c.Rule != "" {
			dst = append(dst, `,"rule":`...)
			dst = appendString(dst, c.Rule)
		}
		if c.Grant != "" {
			dst = append(dst, `,"grant":`...)
			dst = appendString(dst, c.Grant)
		}
		if c.Reason != "" {
			dst = append(dst, `,"reason":`...)
			dst = appendString(dst, c.Reason)
		}
		dst = append(dst, `,"agrees":`...)
		dst = strconv.AppendBool(dst, c.Agrees)
		dst = append(dst, "},"...)
	}
	return dst
}

// appendResult appends the errors, policy, timing, outcome and checkpoint
// members.
func (r *Record) appendResult(dst []byte) []byte {
	if len(r.Errors) > 0 {
		dst = append(dst, `"errors":`...)
		dst = appendStrings(dst, r.Errors)
		dst = append(dst, ',')
	}
	dst = appendStringField(dst, `"policy":`, r.Policy)
	dst = appendIntField(dst, `"latency_ns":`, r.LatencyNS)
	dst = appendIntField(dst, `"duration_ns":`, r.DurationNS)
	dst = appendStringField(dst, `"error":`, r.Error)
	dst = appendStringField(dst, `"error_class":`, r.ErrorClass)
	dst = appendIntField(dst, `"result_bytes":`, r.ResultBytes)
	dst = appendStringField(dst, `"result_sha256":`, r.ResultSHA256)
	if len(r.LabelsAdded) > 0 {
		dst = append(dst, `"labels_added":`...)
		dst = appendStrings(dst, r.LabelsAdded)
		dst = append(dst, ',')
	}
	if c := r.Checkpoint; c != nil {
		dst = append(dst, `"checkpoint":{"seq":`...)
		dst = strconv.AppendUint(dst, c.Seq, 10)
		dst = append(dst, `,"hash":`...)
		dst = appendString(dst, c.Hash)
		dst = append(dst, `,"records":`...)
		dst = strconv.AppendUint(dst, c.Records, 10)
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, c.Reason)
		if c.Root != "" {
			dst = append(dst, `,"root":`...)
			dst = appendString(dst, c.Root)
		}
		if len(c.Edge) > 0 {
			dst = append(dst, `,"edge":`...)
			dst = appendStrings(dst, c.Edge)
		}
		if c.Note != "" {
			dst = append(dst, `,"note":`...)
			dst = appendString(dst, c.Note)
		}
		if c.KeyID != "" {
			dst = append(dst, `,"key_id":`...)
			dst = appendString(dst, c.KeyID)
		}
		if c.Sig != "" {
			dst = append(dst, `,"sig":`...)
			dst = appendString(dst, c.Sig)
		}
		dst = append(dst, "},"...)
	}
	return dst
}

// appendStringField appends `name"value",` unless value is empty.
func appendStringField(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, name...)
	dst = appendString(dst, value)
	return append(dst, ',')
}

// appendIntField appends `nameN,` unless n is zero.
func appendIntField(dst []byte, name string, n int64) []byte {
	if n == 0 {
		return dst
	}
	dst = append(dst, name...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, ',')
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// appendTime appends t as a JSON string in timeLayout; written out by hand
// because it is on every record. Years outside 0-9999 are refused by
// Log.Write; AppendJSON still writes them, via AppendFormat.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, timeLayout)
		return append(dst, '"')
	}
	hour, minute, sec := t.Clock()
	dst = append(dst, '"')
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond(), 9)
	return append(dst, 'Z', '"')
}

// appendDigits appends the non-negative n as exactly width decimal digits.
func appendDigits(dst []byte, n, width int) []byte {
	var b [9]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, b[:width]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal, escaped minimally and
// with invalid UTF-8 replaced by U+FFFD, as canonical JSON does.
func appendString(dst []byte, s string) []byte { return canonjson.AppendString(dst, s) }

// appendArgs appends raw compacted if it is one valid JSON value in valid
// UTF-8, and otherwise as a JSON string of its text.
func appendArgs(dst, raw []byte) []byte {
	if out, ok := appendCompact(dst, raw); ok {
		return out
	}
	return appendString(dst, string(raw))
}

// maxArgsDepth is the deepest nesting of Args written as JSON; deeper
// arguments are written as a string so that every line stays within the
// nesting encoding/json (and so Verify) can decode.
const maxArgsDepth = 1000

// appendCompact appends src without insignificant whitespace if src is
// exactly one JSON value (RFC 8259) in valid UTF-8; on failure it returns dst
// unchanged and false. It does not recurse: nesting is tracked in a byte
// stack, so hostile depth costs one byte a level.
func appendCompact(dst, src []byte) ([]byte, bool) {
	orig := dst
	var stackBuf [32]byte
	stack := stackBuf[:0] // '{' or '[' for each open container
	i := skipSpace(src, 0)
	ok := false
	for {
		// A value starts at i.
		if i >= len(src) {
			return orig, false
		}
		switch c := src[i]; {
		case c == '{' || c == '[':
			if len(stack) == maxArgsDepth {
				return orig, false
			}
			dst = append(dst, c)
			i = skipSpace(src, i+1)
			if i < len(src) && src[i] == c+2 { // '}' is '{'+2, ']' is '['+2
				dst = append(dst, c+2)
				i++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if dst, i, ok = appendKey(dst, src, i); !ok {
					return orig, false
				}
			}
			continue
		case c == '"':
			if dst, i, ok = appendQuoted(dst, src, i); !ok {
				return orig, false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := scanNumber(src, i)
			if j < 0 {
				return orig, false
			}
			dst = append(dst, src[i:j]...)
			i = j
		default:
			j := scanLiteral(src, i)
			if j < 0 {
				return orig, false
			}
			dst = append(dst, src[i:j]...)
			i = j
		}
		// A value ended; close containers until one continues with ','.
		for {
			i = skipSpace(src, i)
			if len(stack) == 0 {
				if i != len(src) {
					return orig, false
				}
				return dst, true
			}
			if i >= len(src) {
				return orig, false
			}
			top := stack[len(stack)-1]
			if src[i] == top+2 {
				dst = append(dst, top+2)
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if src[i] != ',' {
				return orig, false
			}
			dst = append(dst, ',')
			i = skipSpace(src, i+1)
			if top == '{' {
				if dst, i, ok = appendKey(dst, src, i); !ok {
					return orig, false
				}
			}
			break
		}
	}
}

// appendKey appends an object key and its colon, leaving i at the value.
func appendKey(dst, src []byte, i int) ([]byte, int, bool) {
	if i >= len(src) || src[i] != '"' {
		return dst, i, false
	}
	dst, i, ok := appendQuoted(dst, src, i)
	if !ok {
		return dst, i, false
	}
	i = skipSpace(src, i)
	if i >= len(src) || src[i] != ':' {
		return dst, i, false
	}
	return append(dst, ':'), skipSpace(src, i+1), true
}

// appendQuoted appends the string literal starting at src[i] verbatim after
// checking it: no raw control characters, valid escapes, valid UTF-8.
func appendQuoted(dst, src []byte, i int) ([]byte, int, bool) {
	j := i + 1
	for j < len(src) {
		for j+8 <= len(src) && plain8(binary.LittleEndian.Uint64(src[j:])) {
			j += 8
		}
		if j >= len(src) {
			break
		}
		c := src[j]
		switch {
		case c == '"':
			return append(dst, src[i:j+1]...), j + 1, true
		case c < 0x20:
			return dst, j, false
		case c == '\\':
			if j+1 >= len(src) {
				return dst, j, false
			}
			switch src[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(src) {
					return dst, j, false
				}
				for _, h := range src[j+2 : j+6] {
					if !isHex(h) {
						return dst, j, false
					}
				}
				j += 6
			default:
				return dst, j, false
			}
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(src[j:])
			if r == utf8.RuneError && size == 1 {
				return dst, j, false
			}
			j += size
		}
	}
	return dst, j, false
}

func plain8(v uint64) bool { return canonjson.Plain8(v) }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanNumber returns the end of the JSON number at src[i], or -1.
func scanNumber(src []byte, i int) int {
	if src[i] == '-' {
		i++
	}
	switch {
	case i >= len(src):
		return -1
	case src[i] == '0':
		i++
	case src[i] >= '1' && src[i] <= '9':
		i = scanDigits(src, i)
	default:
		return -1
	}
	if i < len(src) && src[i] == '.' {
		j := scanDigits(src, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		j := scanDigits(src, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func scanDigits(src []byte, i int) int {
	for i < len(src) && src[i] >= '0' && src[i] <= '9' {
		i++
	}
	return i
}

// scanLiteral returns the end of true, false or null at src[i], or -1.
func scanLiteral(src []byte, i int) int {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(src)-i >= len(lit) && string(src[i:i+len(lit)]) == lit {
			return i + len(lit)
		}
	}
	return -1
}

func skipSpace(src []byte, i int) int {
	for i < len(src) {
		switch src[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
