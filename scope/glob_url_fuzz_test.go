package scope_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// FuzzGlobURL: whatever URL GlobURL accepts, its result is a fixed point,
// parses with net/url to the same canonical host with no user information
// or fragment, and names that host right after "://", so a pattern's host
// part is compared with the host a client connects to and nothing else.
func FuzzGlobURL(f *testing.F) {
	for _, s := range []string{
		"https://a.example.com/public/x", "https://evil.com#.example.com/public/x", "https://evil.com?.example.com/",
		"HTTP://0x7f.1:0080/a/../b", "https://[::ffff:7f00:1]:443/%2e%2e/x", "https://x.example/a%2fb%3f?q#f",
		"https://u@x/", "https://x.example/\u00fc/ /?", "gopher://h:70", "https://x./",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := scope.GlobURL(raw)
		if err != nil {
			return
		}
		again, err := scope.GlobURL(out)
		if err != nil || again != out {
			t.Fatalf("GlobURL(%q) = %q, but GlobURL of that = %q, %v", raw, out, again, err)
		}
		host, err := scope.URLHost(raw)
		if err != nil {
			t.Fatalf("GlobURL accepted %q, urlHost refused it: %v", raw, err)
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("GlobURL(%q) = %q does not parse: %v", raw, out, err)
		}
		if u.User != nil || u.Fragment != "" || u.Hostname() != host {
			t.Fatalf("GlobURL(%q) = %q: user %v, fragment %q, host %q, want host %q", raw, out, u.User, u.Fragment, u.Hostname(), host)
		}
		authority := strings.TrimPrefix(out, u.Scheme+"://")
		if strings.ContainsAny(authority[:strings.IndexByte(authority, '/')], "?#@\\") {
			t.Fatalf("GlobURL(%q) = %q has a delimiter before the path", raw, out)
		}
	})
}
