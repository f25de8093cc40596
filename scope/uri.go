package scope

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/glob"
)

// MaxURIBytes is the longest resource URI [ParseURI] accepts.
const MaxURIBytes = 8 << 10

// URI is a resource URI as a policy sees it: in CEL the variable uri, with
// fields raw, canonical, scheme, host, port, path and query. Build one with
// [ParseURI]; grants' and rules' resource patterns are matched against
// Canonical.
type URI struct {
	// Raw is the URI as the client sent it. Other spellings of the same
	// resource have other raw forms: test canonical, path or host in
	// conditions, never raw.
	Raw string `cel:"raw"`
	// Canonical is the one spelling every equivalent spelling of the URI
	// maps to (see ParseURI).
	Canonical string `cel:"canonical"`
	// Scheme is the scheme, in lower case ("file", "https", "demo").
	Scheme string `cel:"scheme"`
	// Host is the canonical host (see CanonicalHost), "" for none (and
	// for file://localhost).
	Host string `cel:"host"`
	// Port is the port as a plain number, "" when absent or the scheme's
	// default.
	Port string `cel:"port"`
	// Path is the path, percent-decoded and cleaned of dot segments.
	Path string `cel:"path"`
	// Query is the query without "?", with escapes of unreserved
	// characters decoded and the others in upper case.
	Query string `cel:"query"`
}

// ParseURI parses an absolute resource URI (as sent in resources/read) and
// computes its canonical form:
//
//	scheme://host[:port]/path[?query]
//
// with the scheme in lower case; the host canonical as for urlHost (lower
// case, IDNA-mapped, IPv4 in dotted decimal, IPv6 in brackets), or empty —
// "file://localhost/x" is "file:///x"; the port a plain number, left out
// when it is the scheme's default; the path percent-decoded, cleaned of
// "." and ".." segments (a ".." cannot climb above "/"; a trailing slash is
// kept) and encoded again as Go's net/url encodes a path; the query with
// escapes of unreserved characters decoded and the other escapes in upper
// case. "scheme:/x" and "scheme:///x" are the same URI. So
// "FILE://LocalHost/w/a/%2E%2E/b%2Fc" and "file:///w/b/c" are one URI.
//
// It refuses, with an error — so in a policy such a URI never matches a
// grant and is always denied — every URI whose meaning depends on who
// reads it:
//   - a relative reference or an opaque URI ("mailto:x", "urn:x");
//   - user information ("file://evil@host/x");
//   - a fragment: it is not part of a resource, and a server that treats
//     the URI as a path would read "file:///w/a#/../../etc/passwd" as
//     /etc/passwd;
//   - a query holding "/", "\\" or NUL once decoded, for the same reason;
//   - a backslash, a NUL or another control character, raw or
//     percent-encoded, anywhere; invalid UTF-8;
//   - a path that still holds a percent escape once decoded ("%252e"):
//     a server that decodes twice would read "..";
//   - a file URI naming a host other than localhost;
//   - a host without a canonical form, a bad port, anything net/url
//     rejects, and a URI longer than [MaxURIBytes].
func ParseURI(raw string) (URI, error) {
	u := URI{Raw: raw}
	if err := checkRawURI(raw); err != nil {
		return u, err
	}
	p, err := url.Parse(raw)
	if err != nil {
		return u, fmt.Errorf("%q is not a valid URI: %w", raw, unwrapURLError(err))
	}
	switch {
	case p.Scheme == "":
		return u, fmt.Errorf("%q is not an absolute URI (it has no scheme)", raw)
	case p.Opaque != "":
		return u, fmt.Errorf("%q is an opaque URI; only hierarchical URIs (scheme://host/path or scheme:///path) are supported", raw)
	case p.User != nil:
		return u, fmt.Errorf("%q carries user information, a common disguise", raw)
	case strings.IndexByte(raw, '#') >= 0:
		return u, fmt.Errorf("%q has a fragment, which servers read in different ways", raw)
	}
	u.Scheme = p.Scheme
	if err := u.setHost(p); err != nil {
		return u, err
	}
	if err := u.setPath(p); err != nil {
		return u, err
	}
	if err := u.setQuery(p); err != nil {
		return u, err
	}
	u.Canonical = u.format()
	return u, nil
}

// checkRawURI refuses what no spelling of a resource URI needs.
func checkRawURI(raw string) error {
	switch {
	case raw == "":
		return errors.New("the URI is empty")
	case len(raw) > MaxURIBytes:
		return fmt.Errorf("the URI is %d bytes long, over the limit of %d", len(raw), MaxURIBytes)
	case !utf8.ValidString(raw):
		return fmt.Errorf("%q is not valid UTF-8", raw)
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%q holds a backslash or a control character, which servers read in different ways", raw)
		}
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func (u *URI) setHost(p *url.URL) error {
	if p.Host == "" {
		return nil
	}
	h := p.Hostname()
	if u.Scheme == "file" {
		if !strings.EqualFold(h, "localhost") || p.Port() != "" {
			return fmt.Errorf("%q names a remote host in a file URI", u.Raw)
		}
		return nil
	}
	host, err := CanonicalHost(h)
	if err != nil {
		return fmt.Errorf("%q: %w", u.Raw, err)
	}
	u.Host = host
	if ps := p.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil {
			return fmt.Errorf("%q has a bad port %q", u.Raw, ps)
		}
		if s := strconv.FormatUint(n, 10); s != defaultPorts[u.Scheme] {
			u.Port = s
		}
	}
	return nil
}

func (u *URI) setPath(p *url.URL) error {
	d := p.Path // decoded by net/url
	if strings.ContainsAny(d, "\\\x00") || hasControl(d) {
		return fmt.Errorf("%q has an encoded backslash or control character in its path", u.Raw)
	}
	if !utf8.ValidString(d) {
		return fmt.Errorf("%q has a path that is not valid UTF-8 once decoded", u.Raw)
	}
	if hasEscape(d) {
		return fmt.Errorf("%q is encoded twice (its path holds a percent escape once decoded)", u.Raw)
	}
	if d == "" {
		return nil
	}
	if d[0] != '/' {
		d = "/" + d
	}
	u.Path = glob.CleanPath(d) // rooted: a ".." cannot climb above "/"
	return nil
}

func (u *URI) setQuery(p *url.URL) error {
	if p.RawQuery == "" {
		return nil
	}
	d, err := url.QueryUnescape(strings.ReplaceAll(p.RawQuery, "+", "%2B"))
	if err != nil {
		return fmt.Errorf("%q has a bad escape in its query", u.Raw)
	}
	if strings.ContainsAny(d, "/\\\x00") || hasControl(d) || !utf8.ValidString(d) {
		return fmt.Errorf("%q has a query holding a slash, a backslash or a control character, which a server may read as part of the path", u.Raw)
	}
	u.Query = normalizeEscapes(p.RawQuery)
	return nil
}

// format writes the canonical form.
func (u *URI) format() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if strings.IndexByte(u.Host, ':') >= 0 {
		b.WriteString("[" + u.Host + "]")
	} else {
		b.WriteString(u.Host)
	}
	if u.Port != "" {
		b.WriteString(":" + u.Port)
	}
	b.WriteString((&url.URL{Path: u.Path}).EscapedPath())
	if u.Query != "" {
		b.WriteString("?" + u.Query)
	}
	return b.String()
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return false
}

// hasEscape reports whether s holds "%" followed by two hex digits.
func hasEscape(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// normalizeEscapes decodes escapes of unreserved characters and writes the
// others in upper case (RFC 3986, 6.2.2). s's escapes are valid.
func normalizeEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+2 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		c := unhex(s[i+1])<<4 | unhex(s[i+2])
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(s[i+1:i+3]))
		}
		i += 2
	}
	return b.String()
}

// MatchResource reports whether a resource pattern of a policy matches the
// canonical URI c. A pattern is a glob over canonical URIs ("*" stops at
// "/", "**" does not); one ending in "/**" also matches the URI of the
// directory itself, and "**" alone matches every URI. A pattern matches c
// as written or without its query ("file:///w/secret/key" matches
// "file:///w/secret/key?x"), so that a query does not carry a URI past
// a pattern that names its path.
func MatchResource(pattern, c string) bool {
	return matchURL(pattern, c)
}

// checkResourcePattern reports why a resource pattern is not usable: it
// must be "**" or a glob over canonical URIs, written in canonical form
// itself, so that what the policy says is what it matches.
func checkResourcePattern(pat string) error {
	if pat == "**" {
		return nil
	}
	if err := glob.Validate(pat); err != nil {
		return err
	}
	// Stand a letter in for each wildcard and the character itself for
	// each escape: the result must be a canonical URI.
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '*', '?':
			b.WriteByte('x')
		case '\\':
			i++
			b.WriteByte(pat[i])
		default:
			b.WriteByte(c)
		}
	}
	sample := b.String()
	u, err := ParseURI(sample)
	if err != nil {
		return fmt.Errorf("not a URI pattern such as \"file:///w/**\" (or \"**\" for every resource): %w", err)
	}
	if u.Canonical != sample {
		return fmt.Errorf("not in canonical form: write the scheme and host in lower case, without dot segments, default port or needless escapes, as the canonical URIs it is matched against (%q is read as %q)", sample, u.Canonical)
	}
	return nil
}

// literalPrefix returns s up to its first wildcard (or, for a URI
// template, its first "{" expression), with scheme and host in lower case.
func literalPrefix(s string, stops string) string {
	if i := strings.IndexAny(s, stops); i >= 0 {
		s = s[:i]
	}
	// Lower-case scheme and authority, which are case-insensitive.
	if i := strings.Index(s, "://"); i >= 0 {
		end := len(s)
		if j := strings.IndexByte(s[i+3:], '/'); j >= 0 {
			end = i + 3 + j
		}
		s = strings.ToLower(s[:end]) + s[end:]
	}
	return s
}
