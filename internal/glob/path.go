package glob

import (
	"path"
	"strings"
)

// PathShaped reports whether pattern names file paths: it starts with '/'
// (a rooted pattern such as "/w/secrets/**") or with a "**/" element (such
// as "**/.env*"). MatchPath cleans the names it matches against such
// patterns.
func PathShaped(pattern string) bool {
	return strings.HasPrefix(pattern, "/") || strings.HasPrefix(pattern, "**/")
}

// MatchPath is Match for patterns that may name paths. When pattern is
// path-shaped (see PathShaped), name is first cleaned lexically as by
// path.Clean — ".", "..", and repeated slashes are resolved, so
// "/w/./secrets/key", "/w//secrets/key" and "/w/x/../secrets/key" are all
// matched as "/w/secrets/key" — and a name whose last element is "", "."
// or ".." keeps one trailing slash ("/w/secrets/." is matched as
// "/w/secrets/"), because it names a directory. Other patterns are matched
// against name as it is, as by Match.
//
// Cleaning is lexical: it does not follow symbolic links. MatchPath does not
// allocate when name is already clean.
func MatchPath(pattern, name string) bool {
	if PathShaped(pattern) {
		name = CleanPath(name)
	}
	return Match(pattern, name)
}

// CleanPath is name cleaned as MatchPath cleans it for a path-shaped
// pattern.
func CleanPath(name string) string {
	if name == "" {
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
