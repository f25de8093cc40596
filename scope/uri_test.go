package scope_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// TestParseURISpellings: every spelling of one resource has one canonical
// form, so a pattern or rule written for it catches them all.
func TestParseURISpellings(t *testing.T) {
	for canon, spellings := range map[string][]string{
		"file:///w/secret/key": {
			"file:///w/secret/key", "FILE:///w/secret/key", "File://localhost/w/secret/key",
			"file://LOCALHOST/w/secret/key", "file:/w/secret/key", "file:///w/./secret/key",
			"file:///w/x/../secret/key", "file:///w//secret/key", "file:///w/%73ecret/key",
			"file:///w/%2e/secret/key", "file:///w/x/%2E%2E/secret/key", "file:///w%2fsecret%2Fkey",
			"file:///w/x/..%2fsecret/key", "file:///../../w/secret/key",
		},
		"file:///w/secret/":     {"file:///w/secret/", "file:///w/secret/x/..", "file:///w/secret/./"},
		"file:///w/secret/key/": {"file:///w/secret/key/.", "file:///w/secret/key/x/.."},
		"https://example.com/a": {
			"https://example.com/a", "HTTPS://EXAMPLE.COM/a", "https://example.com:443/a",
			"https://example.com.:0443/a",
		},
		"demo://resource/static/document/a%20b.md": {
			"demo://resource/static/document/a%20b.md", "DEMO://Resource/static/document/a b.md",
			"demo://resource/static/document/a%20b.md",
		},
		"http://127.0.0.1:8080/x":   {"http://127.0.0.1:8080/x", "http://0x7f.1:8080/x", "http://[::ffff:127.0.0.1]:8080/x"},
		"demo:///x":                 {"demo:/x", "demo:///x"},
		"memo://insights":           {"memo://insights", "MEMO://INSIGHTS"},
		"db://h/t?page=2&q=a%20b":   {"db://h/t?page=2&q=a%20b", "db://h/t?p%61ge=2&q=a%20b"},
		"db://h/t?q=%C3%A9":         {"db://h/t?q=%c3%a9"},
		"file:///w/%E2%80%AEtxt":    {"file:///w/\u202etxt", "file:///w/%e2%80%aetxt"},
		"https://xn--bcher-kva.ch/": {"https://bücher.ch/", "https://BÜCHER.ch/"},
	} {
		for _, s := range spellings {
			u, err := scope.ParseURI(s)
			if assert.NoError(t, err, s) {
				assert.Equal(t, canon, u.Canonical, "%q", s)
			}
		}
	}
}

// TestParseURIRefuses: URIs whose meaning depends on who reads them are
// refused, so a policy never allows them.
func TestParseURIRefuses(t *testing.T) {
	for _, s := range []string{
		"", "relative/path", "/abs/path", "//host/path", "mailto:a@b", "urn:isbn:1",
		"file://evil@localhost/w/a", "https://good@evil.com/",
		"file:///w/a#/../../etc/passwd", "file:///w/a#", "file:///w/a?/../../etc/passwd",
		"file:///w/a?x=%2F..%2F..", "file:///w/a?x=\\", "file:///w/a\\..\\..\\etc",
		"file:///w/a%5c..%5cetc", "file:///w/a%00.txt", "file:///w/a\x00", "file:///w/\x01a",
		"file:///w/%252e%252e/etc/passwd", "file:///w/%25%32%65", "file:///w/\xff",
		"file:///w/%ff", "file://remote/share/x", "file://localhost:8/x", "http://h:99999/x",
		"http://h:-1/x", "http://[fe80::1%25eth0]/", "http://1.2.3.4.5/", "https://ex%61mple.com/a", "file:///w/%C2%85",
		"file:///" + strings.Repeat("a", scope.MaxURIBytes),
	} {
		u, err := scope.ParseURI(s)
		assert.Error(t, err, "%q parsed as %q", s, u.Canonical)
	}
}

// FuzzParseURI: what ParseURI accepts has a canonical form that is a fixed
// point, holds no dot segment, fragment, backslash, control character or
// double escape, and keeps the scheme and host in lower case.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"file:///w/a", "FILE://localhost/w/../x", "https://EXAMPLE.com:443/a/./b?x=%41",
		"demo://resource/static/document/a%20b.md", "demo:/x", "http://[::1]:80/", "db://h/t?q=%c3%a9",
		"file:///w/%2e%2e/x", "https://bücher.ch/x", "x://h/%2F%2f..%2F",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := scope.ParseURI(s)
		if err != nil {
			return
		}
		c := u.Canonical
		again, err := scope.ParseURI(c)
		require.NoError(t, err, "canonical form %q of %q does not parse", c, s)
		require.Equal(t, c, again.Canonical, "canonical form of %q is not a fixed point", s)
		require.True(t, utf8.ValidString(c))
		require.NotContains(t, c, "#")
		require.NotContains(t, c, "\\")
		for _, seg := range strings.Split(u.Path, "/") {
			require.False(t, seg == "." || seg == "..", "dot segment in %q (from %q)", u.Path, s)
		}
		require.Equal(t, strings.ToLower(u.Scheme), u.Scheme)
		require.Equal(t, u, scope.URI{Raw: s, Canonical: c, Scheme: again.Scheme, Host: again.Host,
			Port: again.Port, Path: again.Path, Query: again.Query}, "fields of %q differ from those of its canonical form", s)
		for _, r := range c {
			require.False(t, r < 0x20 || r == 0x7f, "control character in %q", c)
		}
	})
}
