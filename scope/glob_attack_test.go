package scope_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func decideArgs(t *testing.T, p *scope.Policy, tool string, args map[string]any) scope.Decision {
	t.Helper()
	return p.Decide(t.Context(), scope.Input{
		Principal: scope.Principal{ID: "u", Scopes: []string{"s"}, Attrs: map[string]any{"workspace": "/w"}},
		Tool:      scope.Tool{Name: tool},
		Args:      args,
	})
}

// TestGlobAttacksRootedDeny: more spellings of a denied path against a
// rooted deny glob: "//" at the start, ".." above the root, ".." inside
// the denied directory, "**" in the middle of the pattern.
func TestGlobAttacksRootedDeny(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [read]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - {name: secrets, effect: deny, tools: [read], when: 'args.path.glob("/w/secrets/**")'}
  - {name: keys, effect: deny, tools: [read], when: 'args.path.glob("/w/**/id_rsa")'}
`)
	for _, path := range []string{
		"//w/secrets/key", "/../w/secrets/key", "/w/secrets/../secrets/key", "/w/secrets//", "/w/secrets/a/../..//secrets/k",
		"/w/id_rsa", "/w/a/./b/id_rsa", "/w/a//id_rsa", "/w/a/../id_rsa", "/w/secrets/x/..",
	} {
		d := decideArgs(t, p, "read", map[string]any{"path": path})
		assert.Equal(t, scope.Deny, d.Effect, "%s: %s", path, d.Reason)
	}
	for _, path := range []string{"/w/secretsx/key", "/w/notes", "/w/id_rsa.pub"} {
		d := decideArgs(t, p, "read", map[string]any{"path": path})
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", path, d.Reason)
	}
}

// TestGlobAttacksRelativeGrant: a grant that admits relative paths by a
// pattern without a leading slash ("public/**") is matched against the
// cleaned path, so ".." cannot walk out of the directory it names, and a
// deny rule written the same way sees every spelling.
func TestGlobAttacksRelativeGrant(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [read]
        when: 'args.path.glob("public/**")'
rules:
  - {name: keys, effect: deny, tools: [read], when: 'args.path.glob("public/keys/**")'}
`)
	for _, path := range []string{
		"public/../../etc/passwd", "public/../secret", "public/a/../../x",
		"public/keys/k", "public/./keys/k", "public//keys/k", "public/x/../keys/k", "./public/keys/k",
	} {
		d := decideArgs(t, p, "read", map[string]any{"path": path})
		assert.NotEqual(t, scope.Allow, d.Effect, "%s: %s", path, d.Reason)
	}
	for _, path := range []string{"public/a.txt", "public/a/../b.txt", "./public/a.txt"} {
		d := decideArgs(t, p, "read", map[string]any{"path": path})
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", path, d.Reason)
	}
}

// TestGlobAttacksURL: a glob on a URL is matched against the URL as a
// client reads it. A "*" in the host part cannot be stretched over "?",
// "#" or "@" into a query, a fragment or user information (the client
// connects to the host before them), the path is cleaned (a server
// resolves "..", also percent-encoded), and the host is canonical, so a
// deny rule on "http://127.0.0.1/**" sees every spelling of the address.
func TestGlobAttacksURL(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [fetch]
        when: 'args.url.glob("https://*.example.com/public/**")'
      - tools: [get]
        when: 'true'
rules:
  - {name: local, effect: deny, tools: [get], when: 'args.url.glob("http://127.0.0.1/**")'}
  - {name: admin, effect: deny, tools: [get], when: 'args.url.glob("https://api.example.com/admin/**")'}
`)
	for _, u := range []string{
		"https://evil.com#.example.com/public/x",
		"https://evil.com?.example.com/public/x",
		"https://evil.com/?.example.com/public/x",
		"https://a.example.com@evil.com/public/x",
		"https://evil.com\\.example.com/public/x",
		"https://a.example.com/public/../admin",
		"https://a.example.com/public/%2e%2e/admin",
		"https://a.example.com/public/%2E%2E/%2E%2E/admin",
		"https://a.example.com/public/..%5cadmin",
		"https://a.example.com/public/..\\admin",
		"https://a.example.com/public/%00/../../admin",
		"www.example.com/public/x",
		"https://a.example.com:99999/public/x",
	} {
		pu, _ := url.Parse(u)
		d := decideArgs(t, p, "fetch", map[string]any{"url": u})
		assert.NotEqual(t, scope.Allow, d.Effect, "%s (Go's client goes to %v): %s", u, hostOf(pu), d.Reason)
	}
	for _, u := range []string{
		"https://a.example.com/public/x", "HTTPS://A.EXAMPLE.COM/public/x", "https://a.example.com./public/x",
		"https://a.example.com:443/public/x", "https://a.example.com/public/a/../b?q=1#frag",
	} {
		d := decideArgs(t, p, "fetch", map[string]any{"url": u})
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", u, d.Reason)
	}
	for _, u := range []string{
		"http://127.0.0.1/x", "http://2130706433/x", "http://0x7f.1/x", "http://[::ffff:127.0.0.1]/x", "HTTP://127.0.0.1:80/x",
		"http://127.0.0.1./x", "http://１２７.０.０.１/x", "https://api.example.com/admin", "https://API.example.com/x/../admin/y",
		"https://api.example.com//admin/y", "https://api.example.com/public/%2e%2e/admin/", "http://user@127.0.0.1/",
	} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.Equal(t, scope.Deny, d.Effect, "%s: %s", u, d.Reason)
		assert.NotContains(t, d.Reason, "hostname:", u)
	}
	d := decideArgs(t, p, "get", map[string]any{"url": "https://api.example.com/public/x"})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
}

func hostOf(u *url.URL) string {
	if u == nil {
		return "(unparsable)"
	}
	return u.Host
}

// TestGlobURLCanonical pins the form a URL-shaped glob matches against.
func TestGlobURLCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://A.Example.COM./x/../y?q=1#f":   "https://a.example.com/y?q=1",
		"http://0x7f.1:0080/":                   "http://127.0.0.1/",
		"http://[::ffff:7f00:1]:8080":           "http://127.0.0.1:8080/",
		"https://[2001:db8::1]:443/a//b/":       "https://[2001:db8::1]/a/b/",
		"https://x.example/%2e%2e/a%2fb":        "https://x.example/a/b",
		"gopher://h.example:70/1":               "gopher://h.example:70/1",
		"https://x.example/public/%2E%2E/admin": "https://x.example/admin",
		"https://x.example?":                    "https://x.example/?",
	} {
		got, err := scope.GlobURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"www.example.com/x", "https://u@x.example/", "https://x.example\\.y/", "https://x.example/a%5cb", "https://x.example/a\\b", "/w/x", "https://:80/", "https://x.example:1x/"} {
		_, err := scope.GlobURL(in)
		assert.Error(t, err, in)
	}
}

// TestLintURLGlobs: a URL-shaped pattern whose scheme, host or port is not
// written the way URLs are matched can never match; Lint says so and gives
// the pattern to write.
func TestLintURLGlobs(t *testing.T) {
	p := compile(t, `version: 1
scopes:
  s:
    grants:
      - tools: [get]
        when: 'true'
rules:
  - {name: upper, effect: deny, tools: [get], when: 'args.url.glob("HTTP://LOCALHOST/**")'}
  - {name: port, effect: deny, tools: [get], when: 'args.url.glob("https://api.example.org:443/admin/**")'}
  - {name: number, effect: deny, tools: [get], when: 'args.url.glob("http://0x7f000001/**")'}
  - {name: wild, effect: deny, tools: [get], when: 'args.url.glob("https://*.Example.com/**")'}
  - {name: fine, effect: deny, tools: [get], when: 'args.url.glob("https://*.example.com/admin/**")'}
  - {name: fine2, effect: deny, tools: [get], when: 'args.url.glob("http://127.0.0.1:8080/**")'}
  - {name: fine3, effect: deny, tools: [get], when: 'args.url.glob("http://127.0.0.1")'}
`)
	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "glob-uncleaned-path" {
			got = append(got, f.Path+" "+f.Message)
		}
	}
	require.Len(t, got, 4, "%q", got)
	assert.Contains(t, got[0], `write "http://localhost/**"`)
	assert.Contains(t, got[1], `write "https://api.example.org/admin/**"`)
	assert.Contains(t, got[2], `write "http://127.0.0.1/**"`)
	assert.Contains(t, got[3], `write "https://*.example.com/**"`)
	for i, u := range []string{"http://localhost/x", "https://api.example.org/admin/x", "http://127.0.0.1/x", "https://a.example.com/"} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.Equal(t, scope.Allow, d.Effect, "rule %d as written does not match %s", i, u)
	}
}

// TestLintGlobBrackets: glob has no character classes, so a deny rule
// written with one ("*.[pP][eE][mM]") never matches the files it seems to
// list; Lint warns, and the rule indeed lets "/w/a.pem" through.
func TestLintGlobBrackets(t *testing.T) {
	p := compile(t, `version: 1
scopes:
  s:
    grants:
      - tools: [read]
        when: 'true'
rules:
  - {name: pem, effect: deny, tools: [read], when: 'args.path.glob("/w/*.[pP][eE][mM]")'}
  - {name: alt, effect: deny, tools: [read], when: 'args.path.glob("/w/{a,b}/**")'}
  - {name: escaped, effect: deny, tools: [read], when: 'args.path.glob("/w/\\[x]")'}
`)
	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "glob-literal-bracket" {
			got = append(got, f.Path)
		}
	}
	assert.Equal(t, []string{"/rules/0/when", "/rules/1/when"}, got)
	d := decideArgs(t, p, "read", map[string]any{"path": "/w/a.pem"})
	assert.Equal(t, scope.Allow, d.Effect, "the bracket rule matches nothing")
}

// TestGlobAttacksURLQuery: a query does not carry a URL past a pattern
// that names its path — an exact URL, a "/**" directory or a file glob —
// while a pattern that names a query (with "\?") still reads it.
func TestGlobAttacksURLQuery(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [get]
        when: 'true'
      - tools: [fetch]
        when: 'args.url.glob("https://api.example.com/v1/items")'
rules:
  - {name: admin, effect: deny, tools: [get], when: 'args.url.glob("http://h.example/admin")'}
  - {name: dir, effect: deny, tools: [get], when: 'args.url.glob("http://h.example/private/**")'}
  - {name: keys, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/**/*.pem")'}
  - {name: debug, effect: deny, tools: [get], when: 'args.url.glob("https://q.example/x\\?debug=*")'}
`)
	for _, u := range []string{
		"http://h.example/admin?x=1", "http://h.example/admin?", "http://h.example/admin/?a=b", "http://h.example/admin#frag",
		"http://h.example/private?x", "http://h.example/private?a=/b",
		"https://h.example/k/key.pem?v=1", "https://h.example/k/key.pem?", "https://h.example/k/key.pem?a=/x",
		"https://q.example/x?debug=1",
	} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.Equal(t, scope.Deny, d.Effect, "%s: %s", u, d.Reason)
	}
	for _, u := range []string{"http://h.example/administrator?x", "https://h.example/k/key.pem.txt?v=1", "https://q.example/x?other=1", "https://q.example/x"} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", u, d.Reason)
	}
	// A grant of a path allows it with a query, and nothing past it.
	d := decideArgs(t, p, "fetch", map[string]any{"url": "https://api.example.com/v1/items?page=2"})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	d = decideArgs(t, p, "fetch", map[string]any{"url": "https://api.example.com/v1/items/../secret?page=2"})
	assert.NotEqual(t, scope.Allow, d.Effect, d.Reason)
	assert.True(t, scope.MatchResource("file:///w/secret/key", "file:///w/secret/key?x=1"))
	assert.True(t, scope.MatchResource("file:///w/secret/**", "file:///w/secret?x=1"))
	assert.False(t, scope.MatchResource("file:///w/secret/key", "file:///w/secret/keys?x=1"))
}

// TestLintURLGlobPaths: URLs are matched with their paths encoded as Go's
// net/url encodes them, so a pattern whose path holds a space, a letter
// outside ASCII or a parenthesis as written never matches; Lint says so
// and gives the pattern to write, which does match.
func TestLintURLGlobPaths(t *testing.T) {
	p := compile(t, `version: 1
scopes:
  s:
    grants:
      - tools: [get]
        when: 'true'
rules:
  - {name: space, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/my docs/**")'}
  - {name: accent, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/café/*")'}
  - {name: paren, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/wiki/A_(b)")'}
  - {name: fine, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/a%20b/**")'}
  - {name: fine2, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/x/*\\?q=a b")'}
`)
	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "glob-uncleaned-path" {
			got = append(got, f.Message)
		}
	}
	require.Len(t, got, 3, "%q", got)
	assert.Contains(t, got[0], `write "https://h.example/my%20docs/**"`)
	assert.Contains(t, got[1], `write "https://h.example/caf%C3%A9/*"`)
	assert.Contains(t, got[2], `write "https://h.example/wiki/A_%28b%29"`)
	for _, c := range []struct{ pattern, url string }{
		{"https://h.example/my%20docs/**", "https://h.example/my docs/x"},
		{"https://h.example/caf%C3%A9/*", "https://h.example/café/x"},
		{"https://h.example/wiki/A_%28b%29", "https://h.example/wiki/A_(b)"},
	} {
		q := compile(t, "version: 1\nscopes:\n  s: {grants: [{tools: [get], when: 'args.url.glob(\""+c.pattern+"\")'}]}\n")
		d := decideArgs(t, q, "get", map[string]any{"url": c.url})
		assert.Equal(t, scope.Allow, d.Effect, "%s should match %s: %s", c.pattern, c.url, d.Reason)
	}
}

// TestURLSlashReadsAsTheName: a URL with one trailing slash is matched
// as the name without it, which most servers serve alike; so a deny rule
// ending in a wildcard catches "a/" as it catches "a", and a grant of a
// name covers it with the slash (and nothing deeper).
func TestURLSlashReadsAsTheName(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [get]
        when: 'args.url.glob("https://h.example/docs/*")'
      - tools: [fetch]
        when: 'true'
rules:
  - {name: private, effect: deny, tools: [fetch], when: 'args.url.glob("https://h.example/private/*")'}
`)
	for _, u := range []string{"https://h.example/private/a/", "https://h.example/private/a/?x=1", "https://h.example/private/a//", "https://h.example/private/a"} {
		d := decideArgs(t, p, "fetch", map[string]any{"url": u})
		assert.Equal(t, scope.Deny, d.Effect, "%s: %s", u, d.Reason)
	}
	for _, u := range []string{"https://h.example/docs/a", "https://h.example/docs/a/", "https://h.example/docs/a?page=2"} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", u, d.Reason)
	}
	for _, u := range []string{"https://h.example/docs/a/b", "https://h.example/docs/a/b/"} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.NotEqual(t, scope.Allow, d.Effect, "%s: %s", u, d.Reason)
	}
	assert.True(t, scope.MatchResource("file:///w/secret", "file:///w/secret/"))
	assert.False(t, scope.MatchResource("file:///w/*", "file:///w/secret/key/"))
}

// TestGlobURLPathParameters: parameters in a path ("/admin;x", also
// encoded, which a proxy that decodes hands on as ";"), which servlet
// containers drop before routing and other servers keep, make a URL match
// no grant and every deny rule.
func TestGlobURLPathParameters(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  s:
    grants:
      - tools: [fetch]
        when: 'args.url.glob("https://h.example/pub/**")'
      - tools: [get]
        when: 'true'
rules:
  - {name: admin, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/admin/**")'}
  - {name: exact, effect: deny, tools: [get], when: 'args.url.glob("https://h.example/root")'}
`)
	for _, u := range []string{"https://h.example/pub/..;/admin", "https://h.example/pub/..;x/..;/admin", "https://h.example/pub/%2e%2e;/admin",
		"https://h.example/pub/..%3B/admin", "https://h.example/pub/.;/x", "https://h.example/admin/..%3B/pub/x", "https://h.example/pub/a;v=1"} {
		d := decideArgs(t, p, "fetch", map[string]any{"url": u})
		assert.NotEqual(t, scope.Allow, d.Effect, "%s: %s", u, d.Reason)
	}
	for _, u := range []string{"https://h.example/admin/..%3B/x", "https://h.example/admin/..;/x", "https://h.example/admin/x",
		"https://h.example/admin;x/secret", "https://h.example/admin;jsessionid=1", "https://h.example/root;x", "https://h.example/x/..;/root",
		"https://h.example/admin%3bx", "https://h.example/%3b/admin", "https://h.example/root%3B"} {
		d := decideArgs(t, p, "get", map[string]any{"url": u})
		assert.Equal(t, scope.Deny, d.Effect, "%s: %s", u, d.Reason)
	}
	d := decideArgs(t, p, "fetch", map[string]any{"url": "https://h.example/pub/a%3Bv=1"})
	assert.NotEqual(t, scope.Allow, d.Effect, "a proxy that decodes hands it on as a;v=1: %s", d.Reason)
	for _, u := range []string{"https://h.example/pub/a", "https://h.example/pub/..a/b"} {
		d := decideArgs(t, p, "fetch", map[string]any{"url": u})
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", u, d.Reason)
	}
}
