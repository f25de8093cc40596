// Package hostname turns the host of a URL into the one name or address a
// client connects to, and classifies it (loopback, private, link-local,
// internal).
//
// Canonicalisation follows what clients do before they resolve: the host
// parser of the WHATWG URL Standard (browsers, curl's IPv4 forms, libc's
// inet_aton) and the IDNA mapping of Go's own HTTP client. A host that
// clients could read in more than one way is an error, never a guess.
package hostname

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// maxHostBytes bounds the work on one host: a DNS name has at most 253
// bytes, and its Unicode spelling is rarely more than four times that.
const maxHostBytes = 1024

// profile maps a host as the WHATWG URL Standard's "domain to ASCII" does
// (UTS #46: non-transitional, Bidi and joiner rules, no hyphen checks, no
// STD3 rules, so "_" stays possible). The result is checked by Canonical.
var profile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.Transitional(false),
	idna.StrictDomainName(false),
	idna.CheckHyphens(false),
)

// Error is a host or URL that has no single canonical host.
type Error struct {
	Input  string // the host or URL as given
	Reason string // why, in words, without the input
	Err    error  // the underlying error, if any
}

func (e *Error) Error() string {
	return "hostname: " + strconv.Quote(e.Input) + " " + e.Reason
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func fail(input, format string, args ...any) error {
	return &Error{Input: input, Reason: fmt.Sprintf(format, args...)}
}

// FromURL returns the canonical host of an absolute URL (see Canonical),
// without port or brackets. It refuses, with an *Error:
//   - a URL without a scheme or without a host: whether "www.example.com/a"
//     names a host or a path depends on the base URL the tool resolves it
//     against, which the policy cannot see;
//   - user information ("https://good@evil/"), a classic way to make a URL
//     look as if it went somewhere else;
//   - a backslash in the authority, which browsers read as a slash and
//     curl as part of the user name ("http://evil\@good/");
//   - anything net/url rejects (control characters, spaces, bad escapes),
//     a port above 65535, and every host Canonical refuses.
func FromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		return "", &Error{Input: raw, Reason: "is not a valid URL: " + strings.TrimPrefix(cause.Error(), "net/url: "), Err: err}
	}
	switch {
	case u.Scheme == "":
		return "", fail(raw, "is not an absolute URL: it has no scheme (write it as https://...)")
	case u.Host == "" && u.User == nil:
		return "", fail(raw, "is not an absolute URL with a host")
	case u.User != nil:
		return "", fail(raw, "carries user information, which can disguise the real host")
	case strings.ContainsRune(u.Host, '\\'):
		return "", fail(raw, "has a backslash in its host, which clients read differently")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n > 65535 {
			return "", fail(raw, "has an invalid port %q", p)
		}
	}
	h := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		h = "[" + h + "]"
	}
	c, err := Canonical(h)
	if err != nil {
		var he *Error
		if errors.As(err, &he) {
			return "", &Error{Input: raw, Reason: fmt.Sprintf("has a host, %q, that %s", he.Input, he.Reason), Err: err}
		}
		return "", err
	}
	return c, nil
}

// Canonical returns the host a client connects to for host, which is the
// host part of a URL: a name, an IPv4 address in any WHATWG form, or an
// IPv6 address with or without brackets. The result is
//   - for an IPv4 address, dotted decimal: "2130706433", "0x7f000001",
//     "0177.0.0.1", "127.1" and "１２７.０.０.１" all give "127.0.0.1";
//   - for an IPv6 address, the RFC 5952 form of net/netip, and an
//     IPv4-mapped address in dotted decimal ("[::ffff:127.0.0.1]" gives
//     "127.0.0.1");
//   - for a name, its lower-case ASCII (A-label) form after IDNA UTS #46
//     mapping, without a trailing dot: "ｌｏｃａｌｈｏｓｔ" and "LocalHost."
//     give "localhost", "bücher.de" gives "xn--bcher-kva.de".
//
// It returns an *Error for an empty host, an IPv6 zone ("fe80::1%eth0",
// which names an interface rather than a host), a percent sign (decoding
// is the URL parser's job; one left over means the host was encoded
// twice), a name IDNA rejects, a name that ends in a number but is no
// valid IPv4 address ("1.2.3.4.5", "example.0x"), empty labels, labels
// longer than 63 bytes, names longer than 253 bytes, and any character
// other than letters, digits, "-" and "_" in a name. Canonical is
// idempotent: Canonical(Canonical(h)) == Canonical(h).
func Canonical(host string) (string, error) {
	switch {
	case host == "":
		return "", fail(host, "is empty")
	case len(host) > maxHostBytes:
		cut := 64
		for cut > 0 && !utf8.RuneStart(host[cut]) {
			cut-- // on a character boundary, so the error stays valid UTF-8
		}
		return "", fail(host[:cut]+"...", "is longer than %d bytes", maxHostBytes)
	case host[0] == '[':
		if host[len(host)-1] != ']' {
			return "", fail(host, "is an unterminated IPv6 literal")
		}
		return canonicalIPv6(host, host[1:len(host)-1])
	case strings.IndexByte(host, ':') >= 0:
		return canonicalIPv6(host, host)
	case strings.IndexByte(host, '%') >= 0:
		return "", fail(host, "contains a percent sign (is it encoded twice?)")
	case !utf8.ValidString(host):
		return "", fail(host, "is not valid UTF-8")
	}
	s, err := profile.ToASCII(host)
	if err != nil {
		return "", &Error{Input: host, Reason: "is not a valid domain name under IDNA (UTS #46): " + idnaReason(err), Err: err}
	}
	s = strings.TrimSuffix(s, ".")
	if err := checkLabels(host, s); err != nil {
		return "", err
	}
	if endsInNumber(s) {
		a, ok := parseIPv4(s)
		if !ok {
			return "", fail(host, "ends in a number but is not a valid IPv4 address")
		}
		return a.String(), nil
	}
	return s, nil
}

func canonicalIPv6(host, inner string) (string, error) {
	if strings.IndexByte(inner, '%') >= 0 {
		return "", fail(host, "has an IPv6 zone, which names a network interface, not a host")
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || !a.Is6() {
		return "", fail(host, "is not a valid IPv6 address")
	}
	return a.Unmap().String(), nil
}

// checkLabels checks the ASCII form s of host: non-empty labels of at most
// 63 bytes, at most 253 bytes in all, only letters, digits, "-" and "_".
func checkLabels(host, s string) error {
	if s == "" {
		return fail(host, "is empty")
	}
	if len(s) > 253 {
		return fail(host, "is longer than 253 bytes")
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fail(host, "contains %q, which is not allowed in a host name", rune(c))
			}
			continue
		}
		switch n := i - start; {
		case n == 0:
			return fail(host, "has an empty label")
		case n > 63:
			return fail(host, "has a label longer than 63 bytes")
		}
		start = i + 1
	}
	return nil
}

// idnaReason returns the idna error without its package name.
func idnaReason(err error) string {
	return strings.TrimPrefix(err.Error(), "idna: ")
}
