package scope_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestIsUnder(t *testing.T) {
	tests := []struct {
		p, base string
		want    bool
		err     string
	}{
		{"/w/a.txt", "/w", true, ""},
		{"/w", "/w", true, ""},
		{"/w/", "/w", true, ""},
		{"/w/a/../b", "/w", true, ""},
		{"/w/../etc/passwd", "/w", false, ""},
		{"/w/./../w2", "/w", false, ""},
		{"/w2/a", "/w", false, ""},
		{"/w2", "/w", false, ""},
		{"//w//a", "/w", true, ""},
		{"/anything", "/", true, ""},
		{"a/b", "/w", false, ""},
		{"/w/a", "w", false, ""},
		{"a/b", "a", true, ""},
		{"../a", ".", false, ""},
		{"a/../../x", ".", false, ""},
		{"/w/%2e%2e/etc", "/w", true, ""}, // percent-encoding is not decoded by file systems
		{"/w/..\\..\\etc", "/w", false, "backslash"},
		{"/w/a\x00b", "/w", false, "NUL"},
		{"", "/w", false, "empty"},
	}
	for _, tt := range tests {
		got, err := scope.IsUnder(tt.p, tt.base)
		if tt.err != "" {
			require.Error(t, err, "%q under %q", tt.p, tt.base)
			assert.Contains(t, err.Error(), tt.err)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "%q under %q", tt.p, tt.base)
	}
}

// FuzzIsUnder checks isUnder against filepath.Rel on cleaned absolute
// paths.
func FuzzIsUnder(f *testing.F) {
	for _, s := range [][2]string{{"/w/a", "/w"}, {"/w/../x", "/w"}, {"/w2", "/w"}, {"/", "/"}, {"/a/b/c", "/a/b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, base string) {
		got, err := scope.IsUnder(p, base)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || !strings.HasPrefix(base, "/") {
			return
		}
		rel, rerr := filepath.Rel(filepath.Clean(base), filepath.Clean(p))
		want := rerr == nil && rel != ".." && !strings.HasPrefix(rel, "../")
		if got != want {
			t.Fatalf("IsUnder(%q, %q) = %v, filepath.Rel says %q (%v)", p, base, got, rel, rerr)
		}
	})
}

func TestURLHost(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"https://Example.COM/a?b", "example.com", ""},
		{"http://example.com:8080/", "example.com", ""},
		{"http://[::1]:80/", "::1", ""},
		{"https://example.com./", "example.com", ""},
		{"https://evil.test@example.com/", "", "user information"},
		{"/relative/path", "", "not an absolute URL"},
		{"::", "", "urlHost"},
	}
	for _, tt := range tests {
		got, err := scope.URLHost(tt.in)
		if tt.err != "" {
			require.Error(t, err, tt.in)
			assert.Contains(t, err.Error(), tt.err)
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got)
	}
}

func TestCELFunctions(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  web:
    grants:
      - tools: [fetch]
        when: args.url.urlHost() in ["example.com", "api.example.com"]
  net:
    grants:
      - tools: [connect]
        when: cidr("10.0.0.0/8").containsIP(args.ip)
  files:
    grants:
      - tools: [open]
        when: args.path.glob("/w/**/*.md") && !args.path.glob("/w/private/**")
  lists:
    grants:
      - tools: [tag]
        when: sets.contains(["a", "b", "c"], args.tags) && args.name.lowerAscii() == "x"
`)
	all := []string{"web", "net", "files", "lists"}
	tests := []struct {
		tool string
		args map[string]any
		want scope.Effect
	}{
		{"fetch", map[string]any{"url": "https://EXAMPLE.com/x"}, scope.Allow},
		{"fetch", map[string]any{"url": "https://example.com.evil.test/"}, scope.Deny},
		{"fetch", map[string]any{"url": "https://example.com@evil.test/"}, scope.Deny},
		{"connect", map[string]any{"ip": "10.1.2.3"}, scope.Allow},
		{"connect", map[string]any{"ip": "11.1.2.3"}, scope.Deny},
		{"connect", map[string]any{"ip": "not an ip"}, scope.Deny},
		{"open", map[string]any{"path": "/w/docs/a/readme.md"}, scope.Allow},
		{"open", map[string]any{"path": "/w/private/a.md"}, scope.Deny},
		{"open", map[string]any{"path": "/w/docs/a.txt"}, scope.Deny},
		{"tag", map[string]any{"tags": []any{"a", "c"}, "name": "X"}, scope.Allow},
		{"tag", map[string]any{"tags": []any{"a", "z"}, "name": "X"}, scope.Deny},
	}
	for _, tt := range tests {
		d := p.Decide(t.Context(), in("u", all, tt.tool, tt.args))
		assert.Equal(t, tt.want, d.Effect, "%s %v: %s", tt.tool, tt.args, d.Reason)
	}
}
