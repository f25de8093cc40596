package glob

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// stepBound is the promised worst case: automaton states × characters.
func stepBound(pattern, name string) int {
	return (len(pattern) + 2) * (utf8.RuneCountInString(name) + 1)
}

func TestMatchWorkIsBounded(t *testing.T) {
	long := strings.Repeat("a", 100_000)
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*a*a*a*a*a*a*b", long, false},  // rejected by the literal suffix at once
		{"*a*a*a*a*a*a*b*", long, false}, // the full automaton runs
		{"**a**a**a**a**a**a**b**", long, false},
		{"*a*a*a*a*a*a*a*", long, true},
		{"**/**/**/**/**/**/x", strings.Repeat("a/", 50_000), false},
		{strings.Repeat("?*", 30) + "b", long, false},
	}
	for _, tt := range tests {
		got, steps := match(tt.pattern, tt.name)
		assert.Equal(t, tt.want, got, tt.pattern)
		assert.LessOrEqual(t, steps, stepBound(tt.pattern, tt.name), tt.pattern)
	}

	// A backtracking matcher would take exponential time here; the
	// automaton takes at most states steps per character.
	_, steps := match("*a*a*a*a*a*a*b*", long)
	assert.LessOrEqual(t, steps, 15*len(long))
}

// reference translates pattern to a regular expression, independently of
// compile, following the documented syntax.
func reference(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; c {
		case '\\':
			if i+1 == len(pattern) {
				return nil, errTrailingBackslash
			}
			_, w := utf8.DecodeRuneInString(pattern[i+1:])
			b.WriteString(regexp.QuoteMeta(pattern[i+1 : i+1+w]))
			i += 1 + w
		case '*':
			j := i
			for j < len(pattern) && pattern[j] == '*' {
				j++
			}
			elementStart := i == 0 || pattern[i-1] == '/'
			switch {
			case j-i == 1:
				b.WriteString(`[^/]*`)
			case elementStart && j < len(pattern) && pattern[j] == '/':
				b.WriteString(`(?:.*/)?`)
				j++
			default:
				b.WriteString(`.*`)
			}
			i = j
		case '?':
			b.WriteString(`[^/]`)
			i++
		default:
			_, w := utf8.DecodeRuneInString(pattern[i:])
			b.WriteString(regexp.QuoteMeta(pattern[i : i+w]))
			i += w
		}
	}
	b.WriteString(`\z`)
	return regexp.Compile(b.String())
}

func TestReference(t *testing.T) {
	re, err := reference(`**/.env*`)
	require.NoError(t, err)
	assert.True(t, re.MatchString("a/.env"))
	assert.False(t, re.MatchString("a.env"))
}

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"**/.env*", "/w/x/.env"}, {"**/.env*", ".env"}, {"read_*", "read_file"}, {"*", "a/b"},
		{"x/**/y", "x/y"}, {"a**/b", "ab"}, {"?", "é"}, {`\*\?`, "*?"}, {"*a*a*b*", "aaaaaaaa"},
		{"a/**/", "a/"}, {"**/", ""}, {"***/x", "x"}, {"/w/**/*.go", "/w/cmd/main.go"},
		{"\xc3?", "é"}, {"*\xa9", "é"}, {"\xff*\xe6", "\xff\xe6\x97\xa5"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got, steps := match(pattern, name)
		if steps > stepBound(pattern, name) {
			t.Fatalf("Match(%q, %q) took %d steps", pattern, name, steps)
		}
		if Literal(pattern) && got != (pattern == name) {
			t.Fatalf("literal Match(%q, %q) = %v", pattern, name, got)
		}
		kinds, offs, ok := compile(nil, nil, pattern)
		if !ok {
			if got || Validate(pattern) == nil {
				t.Fatalf("malformed %q matched %q", pattern, name)
			}
			return
		}
		// The plain automaton, without Match's shortcuts, on any bytes.
		if plain, _ := runLarge(pattern, kinds, offs, name); got != plain {
			t.Fatalf("Match(%q, %q) = %v, the plain automaton says %v", pattern, name, got, plain)
		}
		// Regular expressions read invalid UTF-8 as U+FFFD; compare only valid text.
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) {
			return
		}
		re, err := reference(pattern)
		if err != nil {
			t.Fatalf("reference(%q): %v", pattern, err)
		}
		if want := re.MatchString(name); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference %s says %v", pattern, name, got, re, want)
		}
	})
}

// TestRunLargeAgrees checks the multi-word automaton, used only for long
// patterns, against the one-word automaton on short ones.
func TestRunLargeAgrees(t *testing.T) {
	patterns := []string{
		"*", "**", "?", "a*b", "**/.env*", "x/**/y", "a/**/", "**/", "***/x", "a**/b", "*a*a*b*",
		`\*?`, "?*?", "日?*", "/w/**/*.go", "**/**/z",
	}
	names := []string{
		"", "a", "ab", "a/b", ".env", "a/.env.local", "/w/x/.env", "x/y", "x/a/b/y", "x//y", "a/", "a/b/",
		"x", "/x", "aaab", "*x", "日本", "/w/cmd/main.go", "z", "a/b/z", "\xff/z",
	}
	for _, p := range patterns {
		kinds, offs, ok := compile(nil, nil, p)
		require.True(t, ok, p)
		for _, n := range names {
			small, _ := run(p, kinds, offs, n)
			large, _ := runLarge(p, kinds, offs, n)
			assert.Equal(t, small, large, "Match(%q, %q)", p, n)
			assert.Equal(t, Match(p, n), small, "Match(%q, %q)", p, n)
		}
	}
}
