package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/agentguard/agentguard/internal/canonjson"
)

// Redactor replaces sensitive argument values with a keyed digest before the
// arguments are recorded. Equal values give equal digests under one key, so
// records can still be correlated ("the same token was used twice") without
// storing the value, and without the key a digest cannot be checked against
// guessed values.
//
// Besides the values it is told about, a Redactor finds common secrets by
// their shape in every string value — cloud access keys, private keys,
// bearer and API tokens, passwords in URLs (see [Redactor.Redact]) — unless
// made with [WithoutDetectors]. It replaces only the part of a string that
// holds the secret, so the rest stays readable: a recipient field that also
// holds a token still shows the recipient.
//
// A Redactor is safe for concurrent use. The zero value, and a nil
// *Redactor, behave like NewRedactor(nil): detectors on, a per-process key.
type Redactor struct {
	key      []byte
	noDetect bool
	pool     sync.Pool // *mac
}

// RedactorOption configures [NewRedactor].
type RedactorOption func(*Redactor)

// WithoutDetectors turns off the built-in secret detectors: only the paths
// passed to [Redactor.Redact] are redacted.
func WithoutDetectors() RedactorOption {
	return func(r *Redactor) { r.noDetect = true }
}

// NewRedactor returns a Redactor using HMAC-SHA256 with key (copied), with
// the built-in secret detectors on unless an option turns them off.
//
// A nil or empty key selects a random key made once per process. Digests
// then correlate only within the process: the same value logged before and
// after a restart gets different digests, and nobody, the operator included,
// can test a digest against a guessed value. Pass a key kept in a secret
// store to correlate across restarts and hosts.
func NewRedactor(key []byte, opts ...RedactorOption) *Redactor {
	r := &Redactor{key: bytes.Clone(key)}
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
	return r
}

// Detects reports whether r runs the built-in secret detectors. When it
// does, callers should call Redact even for tools whose schema marks
// nothing sensitive (with nil paths): a clean argument object costs a scan
// of its strings and no allocation.
func (r *Redactor) Detects() bool {
	return r == nil || !r.noDetect
}

// processKey is the key of Redactors made without one.
var processKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails: crypto/rand aborts the program instead
	return k
})

var nilRedactor Redactor

// mac is a keyed HMAC state with scratch space, pooled per Redactor.
type mac struct {
	h   hash.Hash
	sum [sha256.Size]byte
	buf []byte
}

const (
	digestPrefix = "redacted:hmac-sha256:"
	// redactedPlain replaces a value that has no canonical JSON form (a
	// type the encoder does not know, invalid UTF-8): it is still hidden.
	redactedPlain = "redacted"
)

// digest returns "redacted:hmac-sha256:<hex of the first 16 bytes>" of the
// HMAC of v's canonical JSON.
func (r *Redactor) digest(v any) string {
	m, _ := r.pool.Get().(*mac)
	if m == nil {
		key := r.key
		if len(key) == 0 {
			key = processKey()
		}
		m = &mac{h: hmac.New(sha256.New, key)}
	}
	defer r.pool.Put(m)
	b, err := canonjson.Append(m.buf[:0], v)
	if err != nil {
		return redactedPlain
	}
	if cap(b) <= maxPooledBuf {
		m.buf = b[:0]
	}
	m.h.Reset()
	m.h.Write(b)
	sum := m.h.Sum(m.sum[:0])
	var out [len(digestPrefix) + 32]byte
	copy(out[:], digestPrefix)
	hex.Encode(out[len(digestPrefix):], sum[:16])
	return string(out[:])
}

// Redact returns a copy of args in which the values at paths are replaced
// by the string "redacted:hmac-sha256:<hex of the first 16 bytes>", the HMAC
// of the value's canonical JSON, and in which every part of a string value
// that the built-in detectors recognise as a secret is replaced by the same
// kind of digest, of that part: "mail bob, Bearer abcdefghijkl" becomes
// "mail bob, redacted:hmac-sha256:…". It also returns the concrete pointers
// of the values it changed, in whole or in part, sorted (for
// [Record.Redacted]). When nothing is redacted it returns args itself and
// nil, without allocating.
//
// args is decoded JSON: map[string]any, []any and scalars (string,
// json.Number, float64, bool, nil); map[string]string and []string are
// walked too. args is never modified; containers are copied only along the
// paths where something changed, so the result shares the rest with args.
//
// paths are JSON pointers (RFC 6901), as returned by [SensitivePaths], where a
// "*" segment matches every array item or object member; "" is the whole of
// args. Paths that lead nowhere in args are skipped. Redaction fails safe: a
// path that is not a valid JSON pointer redacts the whole of args, a path
// leading into a value of a type Redact cannot walk redacts that value, a
// value nested deeper than the detectors walk (1000 levels) is redacted
// whole, and a value with no canonical JSON form is replaced by "redacted".
//
// The detectors look at string values and object keys for AWS access key
// ids (AKIA, ASIA, ...), Google API keys, PEM private key blocks (from the
// BEGIN line through the END line, or to the end of the string when there
// is none), bearer tokens ("Bearer" and the token), GitHub and Slack
// tokens, JSON Web Tokens, and passwords in URLs (the password of
// scheme://user:password@host). Secrets that overlap are replaced as one
// part. A key holding a secret is changed the same way, and its member is
// listed under the new key. Each string is looked at on its own: a secret
// split across several strings is not found. [Redactor.Explain] says what
// was hidden where, and why.
func (r *Redactor) Redact(args any, paths []string) (any, []string) {
	out, pointers, _ := r.redact(args, paths, false)
	return out, pointers
}

// Redaction says what [Redactor.Explain] hid at one place, and why.
type Redaction struct {
	// Pointer is the JSON pointer of the value, as in [Record.Redacted].
	Pointer string
	// Whole reports that the whole value was replaced by a digest.
	// Otherwise the value is a string of which only the parts that hold
	// secrets were replaced; the rest is as it was.
	Whole bool
	// Why says why, in words for a person, as a clause: "it is marked
	// sensitive" for a value at one of the paths passed in, what the
	// detectors found ("it holds a bearer token", "it holds an AWS access
	// key id and a password in a URL", ...), or why a value could not be
	// looked into.
	Why string
}

// Explain is [Redactor.Redact] that also says, for each value it changed
// (sorted by pointer), whether it replaced the value whole or parts of it,
// and why. It is meant for what a person is shown, such as an approval
// request: they see what is hidden and why, not only that something is.
func (r *Redactor) Explain(args any, paths []string) (any, []Redaction) {
	out, _, expl := r.redact(args, paths, true)
	return out, expl
}

// Why texts of [Redaction].
const (
	whyMarked  = "it is marked sensitive"
	whyTooDeep = "it is nested deeper than the secret detectors look"
	whyOpaque  = "it is of a type that cannot be looked into"
	// whyKey prefixes the reason of a member whose key held a secret.
	whyKey = "its key was changed: "
)

func (r *Redactor) redact(args any, paths []string, explain bool) (any, []string, []Redaction) {
	if r == nil {
		r = &nilRedactor
	}
	detect := !r.noDetect
	if len(paths) == 0 && (!detect || !hasSecret(args, 0)) {
		return args, nil, nil
	}
	for _, p := range paths {
		if !validPointer(p) {
			var expl []Redaction
			if explain {
				expl = []Redaction{{Pointer: "", Whole: true, Why: "a path marked sensitive is not a valid JSON pointer, so all of it is hidden"}}
			}
			return r.digest(args), []string{""}, expl
		}
	}
	st := redactionPool.Get().(*redaction)
	st.r = r
	st.explain = explain
	out := args
	if len(paths) > 0 {
		out, _ = st.walk(args, paths)
	}
	if detect && hasSecret(out, 0) {
		st.ptr = st.ptr[:0]
		out, _ = st.scan(out, 0)
	}
	pointers, expl := st.out, st.expl
	slices.Sort(pointers)
	slices.SortFunc(expl, func(a, b Redaction) int { return strings.Compare(a.Pointer, b.Pointer) })
	clear(st.scratch[:cap(st.scratch)]) // drop references to paths
	*st = redaction{scratch: st.scratch[:0], ptr: st.ptr[:0], spans: st.spans[:0]}
	redactionPool.Put(st)
	return out, pointers, expl
}

// note records that the value at the current pointer was redacted.
func (st *redaction) note(whole bool, why string) {
	st.out = append(st.out, string(st.ptr))
	if st.explain {
		st.expl = append(st.expl, Redaction{Pointer: string(st.ptr), Whole: whole, Why: why})
	}
}

// redactSpans replaces the parts of s that hold secrets by their digests.
func (st *redaction) redactSpans(s string) string {
	out, whole, why := st.replaceSpans(s)
	st.note(whole, why)
	return out
}

// replaceSpans is redactSpans without noting it: the new string, whether
// it is a digest of all of s, and why (when explaining).
func (st *redaction) replaceSpans(s string) (string, bool, string) {
	spans, kinds := secretSpans(s, st.spans[:0])
	st.spans = spans[:0]
	whole := len(spans) == 1 && spans[0].start == 0 && spans[0].end == len(s)
	var why string
	if st.explain {
		why = kindsText(kinds)
	}
	if whole || len(spans) == 0 {
		// No span is a detector disagreeing with itself: hide it all.
		return st.r.digest(s), true, why
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		b.WriteString(st.r.digest(s[sp.start:sp.end]))
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String(), false, why
}

// kindsText lists the kinds of secret in the set, in words.
func kindsText(kinds uint16) string {
	var parts []string
	for k := awsKeyID; k <= urlPasswordKind; k++ {
		if kinds&(1<<k) != 0 {
			parts = append(parts, k.String())
		}
	}
	if len(parts) == 0 {
		return "it looks like a secret"
	}
	return "it holds " + strings.Join(parts, " and ")
}

// maxScanDepth bounds the detectors' walk; deeper values are redacted whole.
const maxScanDepth = maxArgsDepth

// hasSecret reports whether a detector matches a string in v, or v is too
// deep to scan.
func hasSecret(v any, depth int) bool {
	if depth > maxScanDepth {
		return true
	}
	switch x := v.(type) {
	case string:
		return containsSecret(x)
	case map[string]any:
		for k, c := range x {
			if containsSecret(k) || hasSecret(c, depth+1) {
				return true
			}
		}
	case []any:
		for _, c := range x {
			if hasSecret(c, depth+1) {
				return true
			}
		}
	case map[string]string:
		for k, c := range x {
			if containsSecret(k) || containsSecret(c) {
				return true
			}
		}
	case []string:
		for _, c := range x {
			if containsSecret(c) {
				return true
			}
		}
	}
	return false
}

// scan replaces the strings in v that hold secrets, copying containers
// along the way. It returns the new value and whether it changed.
func (st *redaction) scan(v any, depth int) (any, bool) {
	if depth > maxScanDepth {
		st.note(true, whyTooDeep)
		return st.r.digest(v), true
	}
	switch x := v.(type) {
	case string:
		if containsSecret(x) {
			return st.redactSpans(x), true
		}
	case map[string]any:
		return scanMap(st, x, depth)
	case []any:
		return scanSlice(st, x, depth)
	case map[string]string:
		return scanMap(st, x, depth)
	case []string:
		return scanSlice(st, x, depth)
	}
	return v, false
}

func scanMap[V any](st *redaction, m map[string]V, depth int) (any, bool) {
	var out map[string]V
	for k, child := range m {
		plen := len(st.ptr)
		// A key can hold a secret too: its secret parts are replaced
		// like a value's, and the member is noted under its new key.
		nk := k
		if containsSecret(k) {
			var why string
			nk, _, why = st.replaceSpans(k)
			st.ptr = appendEscapedSeg(append(st.ptr, '/'), nk)
			st.note(false, whyKey+why)
		} else {
			st.ptr = appendEscapedSeg(append(st.ptr, '/'), k)
		}
		nv, changed := st.scan(child, depth+1)
		st.ptr = st.ptr[:plen]
		if changed || nk != k {
			if out == nil {
				out = maps.Clone(m)
			}
			if nk != k {
				delete(out, k)
			}
			out[nk], _ = nv.(V)
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

func scanSlice[V any](st *redaction, s []V, depth int) (any, bool) {
	var out []V
	for i, child := range s {
		plen := len(st.ptr)
		st.ptr = strconv.AppendInt(append(st.ptr, '/'), int64(i), 10)
		nv, changed := st.scan(child, depth+1)
		st.ptr = st.ptr[:plen]
		if changed {
			if out == nil {
				out = slices.Clone(s)
			}
			out[i], _ = nv.(V)
		}
	}
	if out == nil {
		return s, false
	}
	return out, true
}

var redactionPool = sync.Pool{New: func() any {
	return &redaction{scratch: make([]string, 0, 16), ptr: make([]byte, 0, 128)}
}}

// redaction is the state of one Redact call.
type redaction struct {
	r       *Redactor
	scratch []string // stack of path suffixes for the children being walked
	ptr     []byte   // JSON pointer of the current value
	out     []string // pointers redacted
	explain bool     // also fill expl
	expl    []Redaction
	spans   []span // scratch for secretSpans
}

// walk redacts v for the path suffixes in paths (each "" or "/..."). It
// returns the new value and whether it differs from v.
func (st *redaction) walk(v any, paths []string) (any, bool) {
	if slices.Contains(paths, "") {
		st.note(true, whyMarked)
		return st.r.digest(v), true
	}
	switch x := v.(type) {
	case map[string]any:
		return walkMap(st, x, paths)
	case []any:
		return walkSlice(st, x, paths)
	case map[string]string:
		return walkMap(st, x, paths)
	case []string:
		return walkSlice(st, x, paths)
	case nil, string, json.Number, bool, float64, float32, int, int64, int32, uint64, uint32:
		return v, false // nothing below a scalar
	}
	// A value Redact cannot look into: hide all of it.
	st.note(true, whyOpaque)
	return st.r.digest(v), true
}

func walkMap[V any](st *redaction, m map[string]V, paths []string) (any, bool) {
	var out map[string]V
	visit := func(k string, child V) {
		nv, changed := st.child(k, child, paths, -1)
		if changed {
			if out == nil {
				out = maps.Clone(m)
			}
			out[k], _ = nv.(V)
		}
	}
	if anyStar(paths) {
		for k, child := range m {
			visit(k, child)
		}
	} else {
		for i, p := range paths {
			seg, _ := split(p)
			if seenSeg(paths[:i], seg) {
				continue
			}
			k := unescapeSeg(seg)
			if child, ok := m[k]; ok {
				visit(k, child)
			}
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

func walkSlice[V any](st *redaction, s []V, paths []string) (any, bool) {
	var out []V
	visit := func(i int) {
		nv, changed := st.child("", s[i], paths, i)
		if changed {
			if out == nil {
				out = slices.Clone(s)
			}
			out[i], _ = nv.(V)
		}
	}
	if anyStar(paths) {
		for i := range s {
			visit(i)
		}
	} else {
		for j, p := range paths {
			seg, _ := split(p)
			if seenSeg(paths[:j], seg) {
				continue
			}
			if i, ok := arrayIndex(seg); ok && i < len(s) {
				visit(i)
			}
		}
	}
	if out == nil {
		return s, false
	}
	return out, true
}

// child walks the member key (index < 0) or item index of the current value
// with the suffixes of the paths whose first segment selects it. The value
// returned has the child's type whenever it changed: V for a walked child,
// or the digest string.
func (st *redaction) child(key string, v any, paths []string, index int) (any, bool) {
	mark := len(st.scratch)
	for _, p := range paths {
		seg, rest := split(p)
		var match bool
		if index < 0 {
			match = seg == "*" || segEquals(seg, key)
		} else {
			i, ok := arrayIndex(seg)
			match = seg == "*" || (ok && i == index)
		}
		if match {
			st.scratch = append(st.scratch, rest)
		}
	}
	sub := st.scratch[mark:]
	if len(sub) == 0 {
		return v, false
	}
	plen := len(st.ptr)
	st.ptr = append(st.ptr, '/')
	if index < 0 {
		st.ptr = appendEscapedSeg(st.ptr, key)
	} else {
		st.ptr = strconv.AppendInt(st.ptr, int64(index), 10)
	}
	nv, changed := st.walk(v, sub)
	st.ptr = st.ptr[:plen]
	st.scratch = st.scratch[:mark]
	return nv, changed
}

// split splits "/seg/rest" into "seg" and "/rest".
func split(p string) (seg, rest string) {
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

func anyStar(paths []string) bool {
	for _, p := range paths {
		if seg, _ := split(p); seg == "*" {
			return true
		}
	}
	return false
}

func seenSeg(paths []string, seg string) bool {
	for _, p := range paths {
		if s, _ := split(p); s == seg {
			return true
		}
	}
	return false
}

// validPointer reports whether p is "" or a JSON pointer with valid escapes.
func validPointer(p string) bool {
	if p == "" {
		return true
	}
	if p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return false
		}
	}
	return true
}

// segEquals reports whether the escaped segment seg names key.
func segEquals(seg, key string) bool {
	if strings.IndexByte(seg, '~') < 0 {
		return seg == key
	}
	return unescapeSeg(seg) == key
}

func unescapeSeg(seg string) string {
	if strings.IndexByte(seg, '~') < 0 {
		return seg
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
}

func appendEscapedSeg(dst []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		switch key[i] {
		case '~':
			dst = append(dst, '~', '0')
		case '/':
			dst = append(dst, '~', '1')
		default:
			dst = append(dst, key[i])
		}
	}
	return dst
}

// arrayIndex parses an RFC 6901 array index: digits, no leading zero.
func arrayIndex(seg string) (int, bool) {
	if seg == "" || len(seg) > 9 || (seg[0] == '0' && len(seg) > 1) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
