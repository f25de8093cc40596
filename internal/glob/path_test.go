package glob_test

import (
	"path"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/agentguard/agentguard/internal/glob"
)

// A rooted or "**/" pattern sees the cleaned path, so other spellings of a
// denied path still match; other patterns see the name as given.
func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"/w/secrets/**", "/w/secrets/key", true},
		{"/w/secrets/**", "/w/./secrets/key", true},
		{"/w/secrets/**", "/w//secrets/key", true},
		{"/w/secrets/**", "//w/secrets/key", true},
		{"/w/secrets/**", "/w/x/../secrets/key", true},
		{"/w/secrets/**", "/w/secrets/./key", true},
		{"/w/secrets/**", "/w/secrets/", true},
		{"/w/secrets/**", "/w/secrets/.", true},
		{"/w/secrets/**", "/w/secrets/x/..", true},
		{"/w/secrets/**", "/w/secrets/x/../", true},
		{"/w/secrets/**", "/w/secrets/../public/a", false},
		{"/w/secrets/**", "/w/secrets", true}, // the directory itself
		{"/w/secrets/**", "/w/./secrets", true},
		{"/w/secrets/**", "/w/secretsx", false},
		{"/w/secrets/**", "/w", false},
		{"**/node_modules/**", "/a/node_modules", true},
		{"/**", "/", true},
		{"/w/secrets/*.key", "/w/secrets/sub/../a.key", true},
		{"/w/secrets/*.key", "/w/secrets/sub/a.key", false},
		{"**/.env*", "/w/a/./.env", true},
		{"**/.env*", "/w/.env.local/x/..", false}, // ".env.local/" is a directory
		{"**/secrets/*", "/w/secrets/./key", true},
		{"**/secrets/*", "w/secrets//key", true},
		{"/w/secrets/**", "", false},
		// Not path-shaped: matched as given.
		{"https://*.example.com/**", "https://a.example.com/x/../y", true},
		{"https://evil.test/**", "https://evil.test/x", true},
		{"**secrets**", "/w/./secrets", true},
		{"w/secrets/**", "w/./secrets/key", true}, // relative patterns are path-shaped too
		{"public/**", "public/../../etc/passwd", false},
		{"public/**", "./public/a", true},
		{"read_*", "read_file", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, glob.MatchPath(tt.pattern, tt.name), "MatchPath(%q, %q)", tt.pattern, tt.name)
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/w/secrets/key":      "/w/secrets/key",
		"/w/./secrets//key":   "/w/secrets/key",
		"/w/secrets/":         "/w/secrets/",
		"/w/secrets/.":        "/w/secrets/",
		"/w/secrets/x/..":     "/w/secrets/",
		"/..":                 "/",
		"/":                   "/",
		"a/..":                ".",
		"..":                  "..",
		"../a/./b/":           "../a/b/",
		"":                    "",
		"/w/a/../../../etc/x": "/etc/x",
	} {
		assert.Equal(t, want, glob.CleanPath(in), "CleanPath(%q)", in)
	}
}

func TestMatchPathAllocs(t *testing.T) {
	n := testing.AllocsPerRun(100, func() {
		if !glob.MatchPath("/w/secrets/**", "/w/secrets/key") {
			t.Fatal("no match")
		}
	})
	assert.Zero(t, n, "a clean name is matched without allocating")
}

// isClean (through CleanPath) agrees with path.Clean.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/w/a", "/w//a", "a/./b", "../a", "/", "//", "a/", "/..", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := glob.CleanPath(s)
		if s == "" {
			if c != "" {
				t.Fatalf("CleanPath(\"\") = %q", c)
			}
			return
		}
		if want := path.Clean(s); strings.TrimSuffix(c, "/") != strings.TrimSuffix(want, "/") && c != want {
			t.Fatalf("CleanPath(%q) = %q, path.Clean = %q", s, c, want)
		}
	})
}
