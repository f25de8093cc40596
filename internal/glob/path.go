package glob

import (
	"path"
	"strings"
)

// PathShaped reports whether pattern names file paths: it contains a '/'
// and is not URL-shaped (see URLShaped). Rooted patterns ("/w/secrets/**"),
// "**/" patterns ("**/.env*") and relative ones ("public/**") are
// path-shaped. MatchPath cleans the names it matches against such
// patterns.
func PathShaped(pattern string) bool {
	return strings.IndexByte(pattern, '/') >= 0 && !URLShaped(pattern)
}

// URLShaped reports whether pattern names URLs: it contains "://" before
// any other '/' ("https://*.example.com/**", "http*://h/**").
func URLShaped(pattern string) bool {
	i := strings.Index(pattern, "://")
	return i > 0 && strings.IndexByte(pattern[:i], '/') < 0
}

// MatchPath is Match for patterns that may name paths. When pattern is
// path-shaped (see PathShaped), name is first cleaned lexically as by
// path.Clean — ".", "..", and repeated slashes are resolved, so
// "/w/./secrets/key", "/w//secrets/key" and "/w/x/../secrets/key" are all
// matched as "/w/secrets/key", and "public/../../etc/passwd" as
// "../etc/passwd", which "public/**" does not match — and a name whose last element is "", "."
// or ".." keeps one trailing slash ("/w/secrets/." is matched as
// "/w/secrets/"), because it names a directory. A path-shaped pattern
// ending in "/**" also matches the directory it names: "/w/secrets/**"
// matches "/w/secrets" as well as everything below it. Other patterns are
// matched against name as it is, as by Match.
//
// Cleaning is lexical: it does not follow symbolic links. MatchPath does not
// allocate when name is already clean.
func MatchPath(pattern, name string) bool {
	if !PathShaped(pattern) {
		return Match(pattern, name)
	}
	name = CleanPath(name)
	if Match(pattern, name) {
		return true
	}
	dir, ok := strings.CutSuffix(pattern, "/**")
	return ok && dir != "" && Match(dir, name)
}

// CleanPath is name cleaned as MatchPath cleans it for a path-shaped
// pattern.
func CleanPath(name string) string {
	if name == "" || isClean(name) {
		return name
	}
	c := path.Clean(name)
	if c == name || c == "/" || c == "." {
		return c
	}
	if strings.HasSuffix(name, "/") || strings.HasSuffix(name, "/.") || strings.HasSuffix(name, "/..") {
		if !strings.HasSuffix(c, "/") {
			c += "/"
		}
	}
	return c
}

// isClean is a fast sufficient test for path.Clean(p) == p, for a
// non-empty p: no empty, "." or ".." element, and no trailing slash (but
// "/" itself).
func isClean(p string) bool {
	if p == "/" {
		return true
	}
	start := 0
	if p[0] == '/' {
		start = 1
	}
	for i := start; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch i - start {
		case 0:
			return false
		case 1:
			if p[start] == '.' {
				return false
			}
		case 2:
			if p[start] == '.' && p[start+1] == '.' {
				return false
			}
		}
		start = i + 1
	}
	return true
}
