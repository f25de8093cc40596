package scope

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/agentguard/agentguard/internal/glob"
)

// defaultPorts are the ports GlobURL leaves out, as clients do.
var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443", "ftp": "21"}

// GlobURL returns the form of the absolute URL raw that the CEL function
// glob matches a URL-shaped pattern ("https://*.example.com/**") against:
//
//	scheme://host[:port]/path[?query]
//
// with the scheme in lower case, the host as urlHost gives it (canonical:
// lower case, IDNA-mapped, IPv4 in dotted decimal, IPv4-mapped IPv6
// unmapped; an IPv6 address in brackets), the port as a plain number and
// left out when it is the scheme's default (80 for http and ws, 443 for
// https and wss, 21 for ftp), the path percent-decoded, cleaned as
// path.Clean does (a trailing slash kept) and encoded again as Go's
// net/url encodes a path, the query as written, and no fragment (a client
// does not send it). So "HTTPS://A.Example.COM./x/%2e%2e/y#f" is matched
// as "https://a.example.com/y". Because the host is always followed by
// ":", "/" or the end, a "*" in the host part of a pattern cannot stretch
// over "?", "#" or "@" into another part of the URL.
//
// It returns an error for everything urlHost refuses (no scheme, no host,
// user information, a backslash in the host, a bad port, a host without a
// canonical form) and for a path with a backslash or a NUL byte, also
// percent-encoded (browsers and many servers read "\\" as "/", so
// "/public/..%5cadmin" can be "/admin"), and for parameters in the path
// (";", also encoded: "/admin;x", "/x/..;/admin", "/admin%3Bx", which a
// proxy that decodes hands on as "/admin;x"), which servlet containers
// drop before routing and other servers keep, so in a policy such a URL
// never matches a grant's glob and always matches a deny rule's.
func GlobURL(raw string) (string, error) {
	host, err := URLHost(raw)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", err // URLHost parsed it already
	}
	if strings.ContainsAny(u.Path, "\\\x00") {
		return "", fmt.Errorf("glob: URL %q has a backslash or NUL in its path, which servers read in different ways", raw)
	}
	if strings.IndexByte(u.Path, ';') >= 0 {
		return "", fmt.Errorf("glob: URL %q has parameters (\";\") in its path, which servlet containers drop and other servers keep", raw)
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if strings.IndexByte(host, ':') >= 0 {
		b.WriteString("[" + host + "]")
	} else {
		b.WriteString(host)
	}
	if p := u.Port(); p != "" {
		n, _ := strconv.ParseUint(p, 10, 16) // URLHost checked it
		if ps := strconv.FormatUint(n, 10); ps != defaultPorts[u.Scheme] {
			b.WriteString(":" + ps)
		}
	}
	b.WriteString((&url.URL{Path: glob.CleanPath("/" + u.Path)}).EscapedPath())
	if u.ForceQuery || u.RawQuery != "" {
		b.WriteString("?" + u.RawQuery)
	}
	return b.String(), nil
}

// matchGlob is the CEL function s.glob(pattern): a URL-shaped pattern is
// matched as matchURL matches it against GlobURL(s), any other pattern as
// by glob.MatchPath.
func matchGlob(s, pattern string) ref.Val {
	if !glob.URLShaped(pattern) {
		return types.Bool(glob.MatchPath(pattern, s))
	}
	u, err := GlobURL(s)
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Bool(matchURL(pattern, u))
}

// matchURL reports whether a URL pattern matches the canonical URL u: as
// written, or without u's query, or without its query and one trailing
// slash, so that neither carries a URL past a pattern that names its path
// ("https://h/admin" matches "https://h/admin?x=1" and "https://h/admin/",
// "**/*.pem" a key with "?v=1"). A pattern that matches a name matches it
// as a directory too ("https://h/docs/*" matches "https://h/docs/a/"):
// most servers serve both alike. A pattern ending in "/**" also matches
// the URL of the directory itself ("https://h/admin/**" matches
// "https://h/admin").
func matchURL(pattern, u string) bool {
	if matchOrDir(pattern, u) {
		return true
	}
	path, _, query := strings.Cut(u, "?")
	if query && matchOrDir(pattern, path) {
		return true
	}
	trimmed := strings.TrimSuffix(path, "/")
	return trimmed != path && !strings.HasSuffix(trimmed, "/") && strings.Contains(trimmed, "://") && glob.Match(pattern, trimmed)
}

func matchOrDir(pattern, u string) bool {
	if glob.Match(pattern, u) {
		return true
	}
	dir, ok := strings.CutSuffix(pattern, "/**")
	return ok && glob.Match(dir, u)
}
