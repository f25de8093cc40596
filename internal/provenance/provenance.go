package provenance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Minimum lengths of a plain word token, in runes: one with a letter,
// and one of digits only (shorter numbers — years, amounts, counts — are
// too common to say where a value came from).
const (
	MinWord   = 4
	MinNumber = 6
)

// MaxTokenBytes is the longest token kept as it is; a longer one is
// replaced by a digest of itself, so equal tokens still compare equal.
const MaxTokenBytes = 64

// Normalize returns s as tokens are made from it: invalid UTF-8 replaced,
// NFKC (so fullwidth and other compatibility forms become their plain
// letters and digits), common Cyrillic and Greek look-alikes of Latin
// letters mapped to those letters, case-folded, the look-alikes mapped
// again, and NFKC again — repeated until nothing changes, so that
// Normalize(Normalize(s)) == Normalize(s). The look-alikes are mapped
// before folding because folding can lose one (capital В folds to в,
// which looks like no Latin letter; Ν folds to ν, which looks like v)
// and after it because folding can make one (U+0345 folds to ι, Һ to
// һ), and the last NFKC composes what a mapped
// letter and its marks now spell (ΐ folds to ι with two marks, which
// become ḯ).
func Normalize(s string) string {
	if isASCII(s) {
		// NFKC and the look-alikes change no ASCII; folding is lowering.
		return strings.ToLower(s)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = norm.NFKC.String(s)
	for range maxNormalizeRounds {
		t := strings.Map(skeleton, cases.Fold().String(strings.Map(skeleton, s)))
		t = norm.NFKC.String(t)
		if t == s {
			break
		}
		s = t
	}
	return s
}

// maxNormalizeRounds bounds Normalize's rounds; text needing more keeps
// the last round's form (FuzzTokens checks that Normalize is idempotent).
const maxNormalizeRounds = 8

// Tokens returns the distinct tokens of s, in order of first appearance.
// See the package documentation for what a token is.
func Tokens(s string) []string {
	var t tokenizer
	t.add(s)
	return t.out
}

// Set collects the distinct tokens of many strings.
type Set struct {
	t tokenizer
}

// Add adds the tokens of s, and those of s with the escapes a text may
// carry undone (decodings): "\u0065vil.test", "evil%2Etest" and
// "evil&#46;test" spell evil.test to whoever decodes them.
func (s *Set) Add(str string) {
	s.t.add(str)
	for _, d := range decodings(str) {
		s.t.add(d)
	}
}

// decodings returns str with each kind of escape it holds undone, where
// that changes it: JSON and backslash escapes (twice, for JSON quoted in
// JSON), percent-encoding, HTML character references, and the "[.]" of
// defanged addresses.
func decodings(str string) []string {
	var out []string
	add := func(d string) {
		if d != str && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, d := range decodeOnce(str) {
		if d == str {
			continue
		}
		add(d)
		// Escapes inside escapes: evil%252Etest, evil&amp;#46;test.
		for _, dd := range decodeOnce(d) {
			add(dd)
		}
	}
	return out
}

// decodeOnce returns str with each kind of escape it holds undone once.
func decodeOnce(str string) []string {
	var out []string
	if strings.IndexByte(str, '\\') >= 0 {
		out = append(out, unescapeJSON(str))
	}
	if strings.IndexByte(str, '%') >= 0 {
		out = append(out, percentDecode(str))
	}
	if strings.Contains(str, "％") {
		out = append(out, percentDecode(strings.ReplaceAll(str, "％", "%"))) // fullwidth
	}
	if strings.IndexByte(str, '&') >= 0 {
		out = append(out, html.UnescapeString(str))
	}
	if strings.ContainsAny(str, "[({") {
		out = append(out, defang.Replace(str))
	}
	return out
}

var defang = strings.NewReplacer("[.]", ".", "(.)", ".", "{.}", ".", "[dot]", ".", "(dot)", ".", "{dot}", ".")

// percentDecode undoes the %XX escapes of s; a malformed one is left.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// AddValue adds the tokens of every string, number and object key in v, a
// value decoded from JSON (map[string]any, []any, string, json.Number,
// float64, bool, nil).
func (s *Set) AddValue(v any) {
	switch x := v.(type) {
	case string:
		s.Add(x)
	case json.Number:
		s.t.add(string(x))
	case float64:
		s.t.add(strconv.FormatFloat(x, 'f', -1, 64))
	case map[string]any:
		for k, e := range x {
			s.Add(k)
			s.AddValue(e)
		}
	case []any:
		for _, e := range x {
			s.AddValue(e)
		}
	}
}

// Tokens returns the tokens added so far.
func (s *Set) Tokens() []string { return s.t.out }

// Len returns the number of distinct tokens added so far.
func (s *Set) Len() int { return len(s.t.out) }

type tokenizer struct {
	out  []string
	seen map[string]struct{}
}

func (t *tokenizer) emit(tok string) {
	if tok == "" {
		return
	}
	if len(tok) > MaxTokenBytes {
		sum := sha256.Sum256([]byte(tok))
		tok = "#" + hex.EncodeToString(sum[:16])
	}
	if t.seen == nil {
		t.seen = map[string]struct{}{}
	}
	if _, ok := t.seen[tok]; ok {
		return
	}
	t.seen[tok] = struct{}{}
	t.out = append(t.out, tok)
}

func (t *tokenizer) add(s string) {
	if s == "" {
		return
	}
	r := []rune(Normalize(s))
	for i := 0; i < len(r); {
		if !isWordRune(r[i]) && r[i] != '+' && r[i] != '(' {
			i++
			continue
		}
		if j := t.composite(r, i); j > i {
			i = j
			continue
		}
		if !isWordRune(r[i]) {
			i++
			continue
		}
		j := i
		for j < len(r) && isWordRune(r[j]) {
			j++
		}
		t.word(r[i:j])
		i = j
	}
}

// word emits a plain word if it is long enough.
func (t *tokenizer) word(w []rune) {
	letter := false
	for _, c := range w {
		if !unicode.IsDigit(c) {
			letter = true
			break
		}
	}
	if letter && len(w) >= MinWord || !letter && len(w) >= MinNumber {
		t.emit(string(w))
	}
}

// composite recognises, at a word start i, a URL, an e-mail address, an
// IBAN, a host name or IP address, or a phone number; it emits its tokens
// and returns the index after it, or i when there is none.
func (t *tokenizer) composite(r []rune, i int) int {
	if i > 0 && isWordRune(r[i-1]) {
		return i // inside a word: tried at its start
	}
	if k := gluedStart(r, i); k >= 0 && isWordRune(r[k]) && r[i-1] != '_' {
		// Inside something already passed ("a.b.example", "x-y@z.example"),
		// tried at its start; but an account may follow a label
		// ("IBAN-DE89…", "pay_DE89…").
		return t.iban(r, i)
	}
	if j := t.url(r, i); j > i {
		return j
	}
	if j := t.email(r, i); j > i {
		return j
	}
	if j := t.iban(r, i); j > i {
		return j
	}
	if j := t.host(r, i); j > i {
		return j
	}
	return t.phone(r, i)
}

// gluedStart returns the index of the character before the run of
// punctuation that joins position i to what precedes it ("_" in
// "_evil.test_", "." in "a.b"), or -1 when the run starts the text. A
// run that follows a letter or digit joins i to a word already read;
// one that follows a space or starts the text only leads the token in.
// An underscore right before i always parts: no host or address has one
// there ("see_evil.test").
func gluedStart(r []rune, i int) int {
	k := i - 1
	for k >= 0 && i-k <= maxGlue && strings.ContainsRune(".@-+%_", r[k]) {
		k--
	}
	return k
}

// maxGlue bounds the punctuation gluedStart looks back over.
const maxGlue = 8

// Bounds of the scans at each word start, so that tokenising takes time
// linear in the text: the longest scheme, e-mail local part (RFC 5321)
// and host name (RFC 1035) recognised.
const (
	maxScheme = 32
	maxLocal  = 64
	maxHost   = 253
	// maxAuthority bounds a URL's user information, host and port, and
	// maxURLPath the path read for its host/path token.
	maxAuthority = 512
	maxURLPath   = 1024
	// maxPhone bounds a phone number's length, separators included.
	maxPhone = 48
)

func isWordRune(c rune) bool {
	return unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.IsMark(c)
}

func isASCIILetter(c rune) bool { return 'a' <= c && c <= 'z' }
func isDigit(c rune) bool       { return '0' <= c && c <= '9' }

// url recognises scheme://... and www.... up to a space or a delimiter.
func (t *tokenizer) url(r []rune, i int) int {
	j := i
	for j < len(r) && j-i <= maxScheme && (isASCIILetter(r[j]) || isDigit(r[j]) || r[j] == '+' || r[j] == '-' || r[j] == '.') {
		j++
	}
	start := i
	switch {
	case j > i && isASCIILetter(r[i]) && j+2 < len(r) && r[j] == ':' && r[j+1] == '/' && r[j+2] == '/':
		start = j + 3
	case hasPrefix(r[i:], "www."):
		start = i
	default:
		return i
	}
	// The authority first, within a bound: a scheme followed by no host
	// ("a:///", "a://@/") is not a URL, and finding that out must not
	// read the rest of the text, or each such word start costs the text.
	aEnd := start
	for aEnd < len(r) && !urlStop(r[aEnd]) && !strings.ContainsRune("/?#", r[aEnd]) {
		if aEnd-start > maxAuthority {
			return i
		}
		aEnd++
	}
	authority := strings.TrimRight(string(r[start:aEnd]), ".,;:!?")
	host := urlHost(authority)
	if host == "" {
		return i
	}
	if k := strings.LastIndexByte(authority, '@'); k > 0 {
		t.add(authority[:k]) // user information may spell a host: https://evil.test@ok.test/
	}
	end := aEnd
	end, nested := urlPathEnd(r, aEnd)
	for end > aEnd && strings.ContainsRune(".,;:!", r[end-1]) {
		end--
	}
	t.emit(host)
	if path := strings.Trim(string(r[aEnd:end]), "/"); path != "" {
		t.emit(host + "/" + path)
	}
	// The query and fragment are read on as text: a value may hide in
	// them ("?next=https://evil.test/", "#to=a@evil.test"). The path is
	// the URL's own, and its words are not values — but another URL in it
	// (a redirect: "/r/https://evil.test/x") is read from its scheme on.
	if nested >= 0 {
		return nested
	}
	return end
}

// urlPathEnd returns the end of the path that starts at i, and the start
// of a URL nested in it, if any (-1 otherwise), where the path then ends:
// each rune is read once, however many URLs are nested.
func urlPathEnd(r []rune, i int) (end, nested int) {
	end = i
	for end < len(r) && end-i < maxURLPath && !urlStop(r[end]) && r[end] != '?' && r[end] != '#' {
		if r[end] == ':' && end+2 < len(r) && r[end+1] == '/' && r[end+2] == '/' {
			k := end
			for k > i && end-k < maxScheme && (isASCIILetter(r[k-1]) || isDigit(r[k-1]) || strings.ContainsRune("+-.", r[k-1])) {
				k--
			}
			return k, k // read on from there, whatever precedes the scheme
		}
		end++
	}
	return end, -1
}

// urlStop reports whether c ends a URL in running text.
func urlStop(c rune) bool {
	return unicode.IsSpace(c) || strings.ContainsRune("\"'<>()[]{}|\\^`", c)
}

// urlHost returns the canonical host of a URL's authority: without
// user information, port or IPv6 brackets.
func urlHost(authority string) string {
	if k := strings.LastIndexByte(authority, '@'); k >= 0 {
		authority = authority[k+1:]
	}
	host := authority
	if strings.HasPrefix(host, "[") {
		if k := strings.IndexByte(host, ']'); k > 0 {
			host = host[1:k]
		}
	} else if k := strings.LastIndexByte(host, ':'); k >= 0 {
		host = host[:k]
	}
	return canonHost(host)
}

// canonHost lower-cases a host, drops a trailing dot and a leading www.,
// and writes an internationalised name in its ASCII (punycode) form.
func canonHost(h string) string {
	h = strings.TrimSuffix(h, ".")
	if strings.Contains(h, "xn--") {
		// The punycode of a name spelled with look-alikes reads as the
		// name its Unicode spelling normalises to.
		if u, err := idna.Lookup.ToUnicode(h); err == nil {
			h = Normalize(u)
		}
	}
	if !isASCII(h) {
		if a, err := idna.Lookup.ToASCII(h); err == nil {
			h = a
		}
	}
	h = strings.ToLower(h)
	if strings.HasPrefix(h, "www.") && strings.Count(h, ".") >= 2 {
		h = h[len("www."):]
	}
	return h
}

// email recognises local@domain.tld.
func (t *tokenizer) email(r []rune, i int) int {
	j := i
	for j < len(r) && j-i <= maxLocal && (isWordRune(r[j]) || strings.ContainsRune("._%+-", r[j])) {
		j++
	}
	if j == i || j >= len(r) || r[j] != '@' {
		return i
	}
	end, ok := hostEnd(r, j+1)
	if !ok {
		return i
	}
	local := strings.Trim(string(r[i:j]), ".")
	if local == "" {
		return i
	}
	t.emit(local + "@" + canonHost(string(r[j+1:end])))
	return end
}

// hostEnd returns the end of a dotted host name starting at i: at least
// two labels, the last of letters (two or more), or four numbers (IPv4).
func hostEnd(r []rune, i int) (int, bool) {
	j := i
	for j < len(r) && (isWordRune(r[j]) || r[j] == '-' || r[j] == '.') {
		if j-i > maxHost {
			return i, false
		}
		j++
	}
	for j > i && (r[j-1] == '.' || r[j-1] == '-') {
		j--
	}
	labels := strings.Split(string(r[i:j]), ".")
	if len(labels) < 2 {
		return i, false
	}
	for _, l := range labels {
		if l == "" {
			return i, false
		}
	}
	last := labels[len(labels)-1]
	if allDigits(last) {
		if len(labels) != 4 {
			return i, false
		}
		for _, l := range labels {
			if !allDigits(l) || len(l) > 3 {
				return i, false
			}
		}
		return j, true
	}
	if utf8.RuneCountInString(last) < 2 {
		return i, false
	}
	for _, c := range last {
		if !unicode.IsLetter(c) && c != '-' && !isDigit(c) {
			return i, false
		}
	}
	return j, true
}

// host recognises a bare host name or IPv4 address.
func (t *tokenizer) host(r []rune, i int) int {
	end, ok := hostEnd(r, i)
	if !ok {
		return i
	}
	t.emit(canonHost(string(r[i:end])))
	return end
}

// iban recognises an IBAN, written whole or in groups separated by short
// runs of white space (up to four spaces, a tab, a line break) or by one
// hyphen, dot or slash (with white space around it or not), whose check
// digits are right (ISO 13616 mod 97). Each prefix that ends at a group
// boundary and checks out is a token, so that digits written after the
// account ("DE89 … 00 2024") cannot hide it; the longest is passed over.
func (t *tokenizer) iban(r []rune, i int) int {
	if i+4 > len(r) || !isASCIILetter(r[i]) || !isASCIILetter(r[i+1]) || !isDigit(r[i+2]) || !isDigit(r[i+3]) {
		return i
	}
	var compact []byte
	var ends []int // index after each character taken
	for j := i; j < len(r) && len(compact) < 34; j++ {
		c := r[j]
		if isASCIILetter(c) || isDigit(c) {
			compact = append(compact, byte(c))
			ends = append(ends, j+1)
			continue
		}
		k := skipSpace(r, j)
		if k < len(r) && (r[k] == '-' || r[k] == '.' || r[k] == '/') {
			k = skipSpace(r, k+1) // one hyphen, dot or slash between groups
		}
		if k == j || k >= len(r) || !(isASCIILetter(r[k]) || isDigit(r[k])) {
			break
		}
		j = k - 1
	}
	end := i
	for n := len(compact); n >= 15; n-- {
		e := ends[n-1]
		if e < len(r) && isWordRune(r[e]) {
			continue // ends inside a word
		}
		if ibanValid(compact[:n]) {
			t.emit(string(compact[:n]))
			end = max(end, e)
		}
	}
	return end
}

// maxIBANGap is the longest run of white space between an IBAN's groups.
const maxIBANGap = 4

// skipSpace returns the index after up to maxIBANGap white space
// characters from j.
func skipSpace(r []rune, j int) int {
	k := j
	for k < len(r) && k-j < maxIBANGap && unicode.IsSpace(r[k]) {
		k++
	}
	return k
}

func ibanValid(b []byte) bool {
	rem := 0
	for k := range b {
		c := b[(k+4)%len(b)] // the first four characters go last
		switch {
		case '0' <= c && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case 'a' <= c && c <= 'z':
			rem = (rem*100 + int(c-'a'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// phone recognises 7 to 15 digits, optionally after +, in groups separated
// by single hyphens, dots, parentheses or (after +, a parenthesis or a
// leading 0) spaces. Its tokens are the
// digits and "tel:" with the last nine digits, so that the same number
// written with and without its country code (or trunk 0) matches.
func (t *tokenizer) phone(r []rune, i int) int {
	j := i
	if j < len(r) && r[j] == '+' {
		j++
	}
	// Spaces separate groups only in a number that starts like a phone
	// number (+, a parenthesis or a trunk 0): "2024 100" is two numbers.
	spaces := r[i] == '+' || r[i] == '(' || r[i] == '0'
	var digits []byte
	end := i
	sep := false
	for ; j < len(r); j++ {
		if j-i > maxPhone {
			return i // too long to be one number; its parts are tried on their own
		}
		c := r[j]
		switch {
		case isDigit(c):
			digits = append(digits, byte(c))
			end, sep = j+1, false
		case (c == ' ' && spaces || c == '-' || c == '.' || c == '(' || c == ')') && !sep:
			sep = c == ' ' || c == '-' || c == '.'
		default:
			j = len(r)
		}
		if len(digits) > 15 {
			return i
		}
	}
	if len(digits) < 7 || end < len(r) && isWordRune(r[end]) {
		return i
	}
	t.emit(string(digits))
	t.emit("tel:" + string(digits[max(0, len(digits)-9):]))
	return end
}

func hasPrefix(r []rune, p string) bool {
	if len(r) < len(p) {
		return false
	}
	for k, c := range p {
		if r[k] != c {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// skeleton maps common Cyrillic, Greek, Latin and Armenian look-alikes of
// Latin letters to those letters (a subset of Unicode's confusables, UTS
// #39) and drops invisible format characters.
func skeleton(c rune) rune {
	if c < 0xAD {
		return c
	}
	if m, ok := confusables[c]; ok {
		return m
	}
	if unicode.Is(unicode.Cf, c) {
		return -1 // invisible format characters: zero width space, soft hyphen, BOM
	}
	return c
}

var confusables = map[rune]rune{
	// Cyrillic
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T', 'Х': 'X', 'У': 'Y',
	'Ѕ': 'S', 'І': 'I', 'Ј': 'J', 'Ԁ': 'D', 'Ԛ': 'Q', 'Ԝ': 'W',
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'ѕ': 's', 'і': 'i', 'ј': 'j',
	'ԁ': 'd', 'һ': 'h', 'ԛ': 'q', 'ԝ': 'w', 'ӏ': 'l',
	// Greek
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O', 'Ρ': 'P',
	'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
	'ο': 'o', 'α': 'a', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ρ': 'p', 'υ': 'u', 'χ': 'x',
	// Latin and Armenian
	'ı': 'i', 'ɑ': 'a', 'ɡ': 'g', 'օ': 'o',
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// unescapeJSON undoes the JSON string escapes in s (\uXXXX, surrogate
// pairs, \n, \" and the rest) wherever they are; a malformed escape is
// left as it is.
func unescapeJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		if r, n := jsonEscape(s[i:]); n > 0 {
			if s[i+1] == 'x' {
				b.WriteByte(byte(r)) // \xHH escapes bytes: \xd0\xb5 is е
			} else {
				b.WriteRune(r)
			}
			i += n - 1
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// jsonEscape reads the escape at the start of s, returning the character
// and the bytes it takes, or 0 bytes if there is none.
func jsonEscape(s string) (rune, int) {
	if c := strings.IndexByte(`"\/bfnrt`, s[1]); c >= 0 {
		return rune("\"\\/\b\f\n\r\t"[c]), 2
	}
	if strings.IndexByte("!#$%&'()*+,-.:;<=>?@[]^_`{|}~", s[1]) >= 0 {
		return rune(s[1]), 2 // a backslash before punctuation: evil\.test
	}
	if s[1] == 'x' && len(s) >= 4 {
		if r, err := strconv.ParseUint(s[2:4], 16, 8); err == nil {
			return rune(r), 4 // \x65
		}
	}
	if s[1] != 'u' || len(s) < 6 {
		return 0, 0
	}
	r, err := strconv.ParseUint(s[2:6], 16, 32)
	if err != nil {
		return 0, 0
	}
	if utf16.IsSurrogate(rune(r)) && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
		if r2, err := strconv.ParseUint(s[8:12], 16, 32); err == nil {
			if p := utf16.DecodeRune(rune(r), rune(r2)); p != utf8.RuneError {
				return p, 12
			}
		}
	}
	return rune(r), 6
}
