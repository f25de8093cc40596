package toolguard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
)

// DefaultMaxResultBytes is the default of [WithMaxResultBytes].
const DefaultMaxResultBytes = 4 << 20

// Bounds of the result guard's walk of a result.
const (
	maxResultDepth = 128
	// maxNestedJSON is how many levels of JSON held in a string of JSON
	// are looked into.
	maxNestedJSON = 4
)

// WithMaxResultBytes sets the largest result the result guard inspects,
// in bytes of its JSON (or text) form; the default is
// [DefaultMaxResultBytes]. When the policy has a results section, a larger
// result is withheld: what cannot be checked does not go back. n <= 0
// means the default.
func WithMaxResultBytes(n int) Option {
	return func(g *Guard) error { g.maxRes = n; return nil }
}

// WithheldError is the error of a call whose tool ran but whose result was
// withheld by the result guard. errors.Is(err, [ErrResultWithheld]) holds.
type WithheldError struct {
	// Tool is the tool that ran.
	Tool string
	// Rules are the result rules that matched, if a rule withheld it.
	Rules []string
	// Reason says why, in words a model can read.
	Reason string
}

// Error returns the sentinel's text and the reason.
func (e *WithheldError) Error() string { return ErrResultWithheld.Error() + ": " + e.Reason }

// Unwrap returns [ErrResultWithheld].
func (e *WithheldError) Unwrap() error { return ErrResultWithheld }

// ModelText is the text a model reads: what happened and why, without Go
// package names.
func (e *WithheldError) ModelText() string {
	return fmt.Sprintf("the tool %s ran, but its result was withheld: %s", quote(e.Tool), e.Reason)
}

// resultView is a result in the form the guard inspects.
type resultView struct {
	v      any  // decoded JSON, or the text
	isJSON bool // v is decoded JSON
}

// guardResult is the result guard. It runs after the handler returned and
// before the outcome record, when the policy has a results section
// ([scope.ResultsDef]); otherwise it returns out and err as they are.
//
// What it can inspect, by the type of the handler's result:
//   - string and []byte: text. Text that is a JSON object or array is
//     inspected as JSON; a redacted JSON text comes back re-encoded.
//   - json.RawMessage: JSON; anything else withholds the result.
//   - any other value: its encoding/json encoding. A redacted value comes
//     back as a new value of the same Go type decoded from the redacted
//     JSON (so an *mcp.CallToolResult stays one, its text content
//     redacted); a value that does not survive that (a redacted number
//     field, a type that does not decode) is withheld. Go values are
//     encoded whole before their size is checked.
//   - nil: nothing to inspect.
//
// It finds secrets with the audit package's detectors and the policy's
// patterns, in every string and object key, after JSON decoding (so
// \u-escapes cannot hide one), and in JSON held in such strings, four
// levels deep. Secrets encoded otherwise (base64, split across strings or
// keys, reversed, ...) are not found.
func (g *Guard) guardResult(ctx context.Context, st *callState, out any, err error) (any, error) {
	if out == nil {
		return out, err
	}
	pol := g.policy.Load()
	rg, ok := pol.ResultGuard(st.d.Tool)
	if !ok {
		return out, err
	}
	o := &st.out
	view, reason := g.resultView(out)
	if reason != "" {
		return nil, errors.Join(err, g.withhold(st, nil, reason))
	}
	f := findings(view.v, rg.Patterns)
	o.ResultFindings = f.names(rg.Patterns)
	in := scope.ResultInput{Input: g.resultInput(ctx, st), Result: view.v, Findings: o.ResultFindings}
	dec := pol.DecideResult(ctx, in)
	o.ResultRules = dec.Rules
	for _, e := range dec.Errors {
		o.Errors = append(o.Errors, clip(e.Error(), maxError))
	}
	switch {
	case dec.Action == scope.ResultWithhold:
		return nil, errors.Join(err, g.withhold(st, dec.Rules, dec.Reason))
	case rg.Secrets == "withhold" && f.secrets != 0:
		return nil, errors.Join(err, g.withhold(st, nil, fmt.Sprintf(
			"it holds %s, and results that hold secrets are withheld", strings.Join(audit.SecretKindNames(f.secrets), ", "))))
	}
	red, n := g.redactResult(view.v, rg, dec.Redact, f, 0)
	if n == 0 {
		return out, err
	}
	if rg.Secrets != "allow" && f.secrets != 0 {
		// Belt and braces: what goes back must hold no secret the
		// detectors know, however the redaction went.
		if left := findings(red, nil); left.secrets != 0 {
			return nil, errors.Join(err, g.withhold(st, dec.Rules, "secrets remained in it after redaction"))
		}
	}
	res, reason := retype(out, view, red)
	if reason != "" {
		return nil, errors.Join(err, g.withhold(st, dec.Rules, reason))
	}
	o.ResultAction, o.ResultRedacted = "redacted", int64(n)
	return res, err
}

// withhold notes a withheld result in the outcome record and returns its
// error.
func (g *Guard) withhold(st *callState, rules []string, reason string) error {
	st.out.ResultAction = "withheld"
	return &WithheldError{Tool: st.d.Tool, Rules: rules, Reason: reason}
}

func (g *Guard) maxResultBytes() int {
	if g.maxRes > 0 {
		return g.maxRes
	}
	return DefaultMaxResultBytes
}

// resultInput is the call's decision input, for result rules.
func (g *Guard) resultInput(ctx context.Context, st *callState) scope.Input {
	in := scope.Input{Args: st.args, Call: scope.Call{ID: st.d.CallID, Time: st.start}}
	if st.tool != nil {
		in.Tool = st.tool.info
	}
	if pr := principalFrom(ctx); pr != nil {
		in.Principal = *pr
	}
	return in
}

// resultView puts a result in the form the guard inspects, or says why it
// cannot be inspected.
func (g *Guard) resultView(out any) (resultView, string) {
	max := g.maxResultBytes()
	var raw []byte
	switch x := out.(type) {
	case string:
		if len(x) > max {
			return resultView{}, tooLargeReason(len(x), max)
		}
		if !looksJSON(x) {
			return resultView{v: x}, ""
		}
		raw = []byte(x)
	case json.RawMessage:
		raw = x
	case []byte:
		if len(x) > max {
			return resultView{}, tooLargeReason(len(x), max)
		}
		if !looksJSON(string(x)) {
			return resultView{v: string(x)}, ""
		}
		raw = x
	default:
		var err error
		if raw, err = json.Marshal(out); err != nil {
			return resultView{}, "it cannot be encoded as JSON, so it cannot be checked"
		}
	}
	if len(raw) > max {
		return resultView{}, tooLargeReason(len(raw), max)
	}
	v, err := safejson.Decode(raw, safejson.Limits{MaxBytes: max, MaxDepth: maxResultDepth, MaxElements: max})
	if err != nil {
		if _, text := out.(string); text {
			return resultView{v: out}, "" // text that only looked like JSON
		}
		if _, text := out.([]byte); text {
			return resultView{v: string(raw)}, ""
		}
		return resultView{}, "it is not JSON the guard can check: " + strings.TrimPrefix(err.Error(), "safejson: ")
	}
	return resultView{v: v, isJSON: true}, ""
}

func tooLargeReason(n, max int) string {
	return fmt.Sprintf("it is %d bytes, more than the %d bytes the guard checks", n, max)
}

// looksJSON reports whether text starts, after white space, like a JSON
// object or array.
func looksJSON(s string) bool {
	s = strings.TrimLeft(s, " \t\r\n")
	return s != "" && (s[0] == '{' || s[0] == '[')
}

// found is what the guard found in a result.
type found struct {
	secrets  uint16 // audit.SecretKinds bits
	patterns uint64 // bit i: pattern i matched (the first 64 patterns)
}

func (f found) names(pats []scope.ResultPattern) []string {
	names := audit.SecretKindNames(f.secrets)
	for i, p := range pats {
		if i < 64 && f.patterns&(1<<i) != 0 {
			names = append(names, p.Name)
		}
	}
	return names
}

// findings walks a result's strings and keys.
func findings(v any, pats []scope.ResultPattern) found {
	var f found
	walkStrings(v, 0, 0, func(s string) {
		f.secrets |= audit.SecretKinds(s)
		for i, p := range pats {
			if i < 64 && f.patterns&(1<<i) == 0 && p.Regexp.MatchString(s) {
				f.patterns |= 1 << i
			}
		}
	})
	return f
}

// walkStrings calls fn for every string and key in v, and in JSON held in
// strings to maxNestedJSON levels.
func walkStrings(v any, depth, nested int, fn func(string)) {
	if depth > maxResultDepth {
		return
	}
	switch x := v.(type) {
	case string:
		fn(x)
		if u, ok := unescapeU(x); ok {
			fn(u)
		}
		if inner, ok := nestedJSON(x, nested); ok {
			walkStrings(inner, 0, nested+1, fn)
		}
	case map[string]any:
		for k, c := range x {
			fn(k)
			walkStrings(c, depth+1, nested, fn)
		}
	case []any:
		for _, c := range x {
			walkStrings(c, depth+1, nested, fn)
		}
	}
}

// nestedJSON decodes a string that holds a JSON object or array with
// escapes in it: what a model could read through them is checked too.
func nestedJSON(s string, nested int) (any, bool) {
	if nested >= maxNestedJSON || !looksJSON(s) || !strings.Contains(s, `\`) {
		return nil, false
	}
	v, err := safejson.Decode([]byte(s), safejson.Limits{MaxBytes: len(s) + 1, MaxDepth: maxResultDepth, MaxElements: len(s) + 1})
	return v, err == nil
}

// redactResult redacts a result: the values at the rules' pointers and,
// unless secrets are allowed, the secrets the detectors find (both by the
// audit Redactor), then the patterns' matches. It returns the new value
// and how many values or parts it replaced.
func (g *Guard) redactResult(v any, rg *scope.ResultGuard, pointers []string, f found, nested int) (any, int) {
	r := g.redactor
	switch {
	case rg.Secrets == "allow":
		r = noDetectors
	case !r.Detects():
		r = withDetectors
	}
	n := 0
	if len(pointers) > 0 || f.secrets != 0 && rg.Secrets != "allow" {
		var ptrs []string
		v, ptrs = r.Redact(v, pointers)
		n += len(ptrs)
	}
	if f.patterns != 0 {
		var m int
		v, m = redactPatterns(v, rg.Patterns, r, 0)
		n += m
	}
	if nested < maxNestedJSON {
		var m int
		v, m = g.redactNested(v, rg, nested, 0)
		n += m
	}
	return v, n
}

var (
	noDetectors   = audit.NewRedactor(nil, audit.WithoutDetectors())
	withDetectors = audit.NewRedactor(nil)
)

// redactNested redacts JSON held in strings, re-encoding it.
func (g *Guard) redactNested(v any, rg *scope.ResultGuard, nested, depth int) (any, int) {
	if depth > maxResultDepth {
		return v, 0
	}
	switch x := v.(type) {
	case string:
		if u, ok := unescapeU(x); ok && audit.SecretKinds(u) != 0 && rg.Secrets != "allow" {
			// A secret spelt with \u escapes in text: the parts do not
			// map back, so the whole string goes.
			return withDetectors.Digest(x), 1
		}
		inner, ok := nestedJSON(x, nested)
		if !ok {
			return v, 0
		}
		f := findings(inner, rg.Patterns)
		if f.secrets == 0 && f.patterns == 0 || f.secrets != 0 && f.patterns == 0 && rg.Secrets == "allow" {
			return v, 0
		}
		red, n := g.redactResult(inner, rg, nil, f, nested+1)
		if n == 0 {
			return v, 0
		}
		b, err := encodeJSON(red)
		if err != nil {
			return withDetectors.Digest(x), 1
		}
		return string(b), n
	case map[string]any:
		var out map[string]any
		total := 0
		for k, c := range x {
			nv, n := g.redactNested(c, rg, nested, depth+1)
			if n > 0 {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = nv
				total += n
			}
		}
		if out == nil {
			return v, 0
		}
		return out, total
	case []any:
		var out []any
		total := 0
		for i, c := range x {
			nv, n := g.redactNested(c, rg, nested, depth+1)
			if n > 0 {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = nv
				total += n
			}
		}
		if out == nil {
			return v, 0
		}
		return out, total
	}
	return v, 0
}

// redactPatterns replaces the patterns' matches in strings and keys by
// digests, copying containers along the way.
func redactPatterns(v any, pats []scope.ResultPattern, r *audit.Redactor, depth int) (any, int) {
	if depth > maxResultDepth {
		return v, 0
	}
	switch x := v.(type) {
	case string:
		return replaceMatches(x, pats, r)
	case map[string]any:
		var out map[string]any
		total := 0
		for k, c := range x {
			nk, kn := replaceMatches(k, pats, r)
			nv, vn := redactPatterns(c, pats, r, depth+1)
			if kn+vn == 0 {
				continue
			}
			if out == nil {
				out = maps.Clone(x)
			}
			delete(out, k)
			out[nk] = nv
			total += kn + vn
		}
		if out == nil {
			return v, 0
		}
		return out, total
	case []any:
		var out []any
		total := 0
		for i, c := range x {
			nv, n := redactPatterns(c, pats, r, depth+1)
			if n > 0 {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = nv
				total += n
			}
		}
		if out == nil {
			return v, 0
		}
		return out, total
	}
	return v, 0
}

// replaceMatches replaces every match of the patterns in s (overlapping
// matches merged) by a digest of the matched text.
func replaceMatches(s string, pats []scope.ResultPattern, r *audit.Redactor) (string, int) {
	var spans [][2]int
	for _, p := range pats {
		for _, m := range p.Regexp.FindAllStringIndex(s, -1) {
			if m[1] > m[0] {
				spans = append(spans, [2]int{m[0], m[1]})
			}
		}
	}
	if len(spans) == 0 {
		return s, 0
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		if last := &merged[len(merged)-1]; sp[0] <= last[1] {
			last[1] = max(last[1], sp[1])
			continue
		}
		merged = append(merged, sp)
	}
	var b strings.Builder
	last := 0
	for _, sp := range merged {
		b.WriteString(s[last:sp[0]])
		b.WriteString(r.Digest(s[sp[0]:sp[1]]))
		last = sp[1]
	}
	b.WriteString(s[last:])
	return b.String(), len(merged)
}

// encodeJSON encodes a redacted value without HTML escaping.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// retype gives a redacted result the Go type of the handler's result, or
// says why it cannot.
func retype(out any, view resultView, red any) (any, string) {
	if !view.isJSON {
		s, _ := red.(string)
		if _, ok := out.([]byte); ok {
			return []byte(s), ""
		}
		return s, ""
	}
	b, err := encodeJSON(red)
	if err != nil {
		return nil, "the redacted result cannot be encoded"
	}
	switch out.(type) {
	case string:
		return string(b), ""
	case []byte:
		return b, ""
	case json.RawMessage:
		return json.RawMessage(b), ""
	}
	t := reflect.TypeOf(out)
	p := reflect.New(t)
	if err := json.Unmarshal(b, p.Interface()); err != nil {
		return nil, fmt.Sprintf("parts of it had to be redacted, and the redacted result no longer fits its type %s", t)
	}
	return p.Elem().Interface(), ""
}

// unescapeU decodes the \uXXXX escapes in text (not JSON syntax: text
// that spells characters so, which a model may read through), repeatedly,
// so that \\u0041 is decoded too. It reports false when s has none.
func unescapeU(s string) (string, bool) {
	if !strings.Contains(s, `\u`) {
		return s, false
	}
	changed := false
	for range maxNestedJSON {
		var b strings.Builder
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+6 <= len(s) && s[i+1] == 'u' {
				if r, err := strconv.ParseUint(s[i+2:i+6], 16, 32); err == nil {
					b.WriteRune(rune(r))
					i += 5
					n++
					continue
				}
			}
			b.WriteByte(s[i])
		}
		if n == 0 {
			break
		}
		s, changed = b.String(), true
	}
	return s, changed
}
