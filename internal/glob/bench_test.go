package glob_test

import (
	"strings"
	"testing"

	"github.com/agentguard/agentguard/internal/glob"
)

var sink bool

func BenchmarkMatch(b *testing.B) {
	for _, bm := range []struct{ name, pattern, in string }{
		{"literal", "read_file", "read_file"},
		{"prefix", "read_*", "read_text_file"},
		{"dotenv", "**/.env*", "/home/user/project/config/.env.local"},
		{"dotenv-miss", "**/.env*", "/home/user/project/config/settings.yaml"},
		{"path", "/w/**/*.go", "/w/cmd/agentguard/internal/main.go"},
		{"question", "file-??.txt", "file-日本.txt"},
		{"pathological-100KB", "*a*a*a*a*a*a*b*", strings.Repeat("a", 100_000)},
		{"pathological-suffix-100KB", "*a*a*a*a*a*a*b", strings.Repeat("a", 100_000)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = glob.Match(bm.pattern, bm.in)
			}
		})
	}
}

func BenchmarkMatchParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !glob.Match("**/.env*", "/home/user/project/config/.env.local") {
				b.Error("no match")
				return
			}
		}
	})
}

func BenchmarkMatchPath(b *testing.B) {
	b.ReportAllocs()
	for _, name := range []string{"/w/docs/a/readme.md", "/w/./docs//a/../readme.md"} {
		b.Run("Match/"+name, func(b *testing.B) {
			for b.Loop() {
				glob.Match("**/.env*", name)
			}
		})
		b.Run("MatchPath/"+name, func(b *testing.B) {
			for b.Loop() {
				glob.MatchPath("**/.env*", name)
			}
		})
	}
}
