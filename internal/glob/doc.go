// Package glob matches tool names and file paths against glob patterns, as
// used in policy grants ("read_*") and rules ("**/.env*").
//
// # Syntax
//
//	pattern  matches
//	*        any run of characters except '/'
//	**       any run of characters, '/' included
//	**/      as a whole path element: zero or more elements, so "**/.env*"
//	         matches ".env", "a/.env.local" and "/w/x/.env"
//	?        one character (a rune, not a byte) except '/'
//	\c       the character c itself, e.g. \* for a star
//
// Every other character matches itself; matching is case-sensitive. A
// pattern ending in a lone '\' is malformed: Validate reports it, so load
// patterns through Validate, and Match never matches it.
//
// # Paths
//
// Match compares characters: "/w/./secrets/key" does not match
// "/w/secrets/**". MatchPath, which the policy language's glob uses, first
// cleans the name when the pattern is path-shaped — it contains a "/" and
// no "://" — so every lexical spelling of a path matches as the path itself,
// and lets "/w/secrets/**" match the directory "/w/secrets" too. Cleaning
// is lexical: a symbolic link still leads wherever it points.
//
// # Cost
//
// Match simulates an automaton over the name, reading each character once:
// the work is at most the pattern length times the name length, never
// exponential, whatever a hostile pattern or name looks like. It allocates
// nothing for patterns of fewer than 64 characters.
//
// Patterns without wildcards are common ("read_file"). Literal reports them
// so callers can keep them in a map and test names by lookup.
package glob
