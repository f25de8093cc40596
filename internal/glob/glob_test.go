package glob_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/glob"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// Literals.
		{"", "", true},
		{"", "a", false},
		{"read_file", "read_file", true},
		{"read_file", "read_files", false},
		{"read_file", "Read_file", false},
		{"/w/a.txt", "/w/a.txt", true},

		// '*' stays within a path element.
		{"*", "", true},
		{"*", "anything", true},
		{"*", "a/b", false},
		{"*", "/", false},
		{"read_*", "read_file", true},
		{"read_*", "read_", true},
		{"read_*", "read", false},
		{"read_*", "read_dir/x", false},
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"*/*.go", "cmd/main.go", true},
		{"/w/*", "/w/a.txt", true},
		{"/w/*", "/w/sub/a.txt", false},
		{"*a*b", "xaybzb", true},
		{"*a*b", "xaybzbc", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "a/b/c", false},
		{"日*", "日本語", true},

		// '**' crosses path elements.
		{"**", "", true},
		{"**", "a/b/c", true},
		{"***", "a/b", true},
		{"/w/**", "/w/a/b.txt", true},
		{"/w/**", "/w/", true},
		{"/w/**", "/w", false},
		{"/w/**", "/x/a", false},
		{"**.go", "cmd/main.go", true},
		{"a**b", "a/x/y/b", true},
		{"a**b", "ab", true},
		{"a**/b", "a/b", true},
		{"a**/b", "ax/y/b", true},
		{"a**/b", "ab", false}, // "**/" is an element only at the start or after '/'

		// A "**/" element also matches zero elements.
		{"**/.env*", ".env", true},
		{"**/.env*", "a/.env.local", true},
		{"**/.env*", "/w/x/.env", true},
		{"**/.env*", ".envrc", true},
		{"**/.env*", "a/b.env", false},
		{"**/.env*", "a/.env/x", false},
		{"**/b", "b", true},
		{"**/b", "/b", true},
		{"**/b", "a/b", true},
		{"**/b", "ab", false},
		{"x/**/y", "x/y", true},
		{"x/**/y", "x/a/y", true},
		{"x/**/y", "x/a/b/y", true},
		{"x/**/y", "x//y", true},
		{"x/**/y", "xy", false},
		{"x/**/y", "x/ay", false},
		{"x/**/**/y", "x/y", true},
		{"x/**/**/y", "x/a/b/y", true},
		{"a/**/", "a/", true},
		{"a/**/", "a/b/", true},
		{"a/**/", "a/b", false},
		{"**/", "", true},
		{"**/", "x/", true},
		{"**/", "x", false},
		{"***/x", "x", true},

		// '?' is one character (rune) except '/'.
		{"?", "a", true},
		{"?", "", false},
		{"?", "ab", false},
		{"?", "/", false},
		{"?", "é", true},
		{"?", "😀", true},
		{"??", "é", false},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"日?語", "日本語", true},
		{"?*", "", false},
		{"?*", "x", true},

		// '\' escapes.
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`\**`, "*abc", true},
		{`\**`, "abc", false},
		{`a\?b`, "a?b", true},
		{`a\?b`, "axb", false},
		{`\\`, `\`, true},
		{`\a\b`, "ab", true},
		{`\é`, "é", true},
		{`\/**/x`, "/x", true},

		// Malformed patterns match nothing.
		{`a\`, `a\`, false},
		{`a\`, "a", false},
		{`*\`, `x\`, false},

		// Bytes that are not valid UTF-8 are single characters.
		{"?", "\xff", true},
		{"?", "\xc3", true},
		{"??", "\xc3\xa9", false},
		{"*", "\xff\xfe", true},
		{"\xff", "\xff", true},
		{"\xff*", "\xfe", false},
		{"a\xffb?", "a\xffbc", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, glob.Match(tt.pattern, tt.name), "Match(%q, %q)", tt.pattern, tt.name)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []string{"", "a", "*", "**/x", `a\*`, `\\`, `\` + "é"} {
		assert.NoError(t, glob.Validate(p), p)
	}
	for _, p := range []string{`\`, `a\`, `\\\`, `**\`} {
		err := glob.Validate(p)
		require.Error(t, err, p)
		assert.True(t, strings.HasPrefix(err.Error(), "glob: "), err.Error())
	}
}

func TestLiteral(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{"", true},
		{"read_file", true},
		{"/w/a.txt", true},
		{"read_*", false},
		{"a?", false},
		{"**/x", false},
		{`a\*`, false}, // matches "a*", so equality with the pattern would be wrong
		{`a\b`, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, glob.Literal(tt.pattern), tt.pattern)
		if tt.want {
			assert.True(t, glob.Match(tt.pattern, tt.pattern))
			assert.False(t, glob.Match(tt.pattern, tt.pattern+"x"))
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	for _, tt := range []struct{ pattern, name string }{
		{"read_*", "read_file"},
		{"**/.env*", "/home/user/project/.env.local"},
		{"/w/**/*.go", "/w/cmd/tool/main.go"},
		{"*a*a*a*a*a*a*b*", strings.Repeat("a", 1000)},
		{strings.Repeat("?", 63), strings.Repeat("x", 63)},
	} {
		allocs := testing.AllocsPerRun(100, func() { glob.Match(tt.pattern, tt.name) })
		assert.Zero(t, allocs, "Match(%q, ...)", tt.pattern)
	}
}

func TestMatchLongPattern(t *testing.T) {
	// More than 64 tokens and 128 states take the allocating path.
	p := strings.Repeat("a*", 100) + "b"
	n := strings.Repeat("a", 99) + "b"
	assert.False(t, glob.Match(p, n))
	assert.True(t, glob.Match(p, strings.Repeat("a", 200)+"b"))
	assert.True(t, glob.Match(strings.Repeat("?", 200), strings.Repeat("é", 200)))
	assert.False(t, glob.Match(strings.Repeat("?", 200), strings.Repeat("é", 199)))
}

func TestMatchInvalidUTF8Boundaries(t *testing.T) {
	// A literal byte matches only a character that is that byte alone.
	assert.False(t, glob.Match("\xc3?", "é"))
	assert.True(t, glob.Match("\xc3?", "\xc3x"))
	assert.False(t, glob.Match("*\xa9", "é"))
	assert.True(t, glob.Match("*\xa9", "x\xa9"))
	assert.False(t, glob.Match("**\xa5", "日"))
	assert.True(t, glob.Match("\xe6*", "\xe6\x97"))
	assert.False(t, glob.Match("\xe6*", "日"))
}
