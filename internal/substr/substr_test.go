package substr

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naive is what AppendMatches must agree with: every pattern that occurs.
func naive(patterns []string, text string) []int32 {
	var out []int32
	for i, p := range patterns {
		if p != "" && strings.Contains(text, p) {
			out = append(out, int32(i))
		}
	}
	return out
}

func found(m *Matcher, text string) []int32 {
	got := m.AppendMatches(nil, text)
	slices.Sort(got)
	if n := len(got); len(slices.Compact(got)) != n {
		panic("a pattern was reported twice")
	}
	return got
}

func TestMatcherFindsEveryPattern(t *testing.T) {
	patterns := []string{"he", "she", "his", "hers", "", "h", "/secret-1/", "/secret-10/", "e"}
	m := New(patterns)
	for _, text := range []string{"", "ushers", "ahishers", "/a/secret-10/b", "/secret-1/", "xyz", "hhhh", "\xff\x00he"} {
		if got, want := found(m, text), naive(patterns, text); !slices.Equal(got, want) {
			t.Errorf("%q: got %v, want %v", text, got, want)
		}
	}
}

func TestMatcherAgreesWithContains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab/c\x00\xe9"[r.IntN(6)]
		}
		return string(b)
	}
	for range 300 {
		patterns := make([]string, 1+r.IntN(40))
		for i := range patterns {
			patterns[i] = word(r.IntN(5))
		}
		m := New(patterns)
		for range 20 {
			text := word(r.IntN(30))
			if got, want := found(m, text), naive(patterns, text); !slices.Equal(got, want) {
				t.Fatalf("patterns %q, text %q: got %v, want %v", patterns, text, got, want)
			}
		}
	}
}

// TestMatcherBoundedWork: patterns that are all suffixes of each other, in
// a text that repeats them, report each pattern once.
func TestMatcherBoundedWork(t *testing.T) {
	patterns := make([]string, 200)
	for i := range patterns {
		patterns[i] = strings.Repeat("a", i+1)
	}
	m := New(patterns)
	got := m.AppendMatches(nil, strings.Repeat("a", 1<<20))
	if len(got) != len(patterns) {
		t.Fatalf("%d matches reported, want %d (one per pattern)", len(got), len(patterns))
	}
	allocs := testing.AllocsPerRun(100, func() { _ = m.AppendMatches(got[:0], "aaaa") })
	if allocs != 0 {
		t.Errorf("%v allocations per match, want 0", allocs)
	}
}

func FuzzMatcher(f *testing.F) {
	f.Add("he,she,his,hers", "ushers")
	f.Fuzz(func(t *testing.T, list, text string) {
		patterns := strings.Split(list, ",")
		if len(patterns) > 64 {
			patterns = patterns[:64]
		}
		if got, want := found(New(patterns), text), naive(patterns, text); !slices.Equal(got, want) {
			t.Fatalf("patterns %q, text %q: got %v, want %v", patterns, text, got, want)
		}
	})
}

func BenchmarkMatcher1000(b *testing.B) {
	patterns := make([]string, 1000)
	for i := range patterns {
		patterns[i] = "/secret-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "/"
	}
	m := New(patterns)
	text := "/workspace/project/src/main/resources/config/app.yaml"
	var buf []int32
	b.ReportAllocs()
	for b.Loop() {
		buf = m.AppendMatches(buf[:0], text)
	}
}
