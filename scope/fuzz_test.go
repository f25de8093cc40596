package scope_test

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// FuzzParse feeds arbitrary bytes to the policy loader: it must return a
// policy or an error, never panic, and a policy it returns must decide
// without panicking.
func FuzzParse(f *testing.F) {
	for _, path := range []string{"testdata/policy.yaml", "../examples/quickstart/policy.yaml", "../examples/policytest/policy.yaml"} {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("version: 1\nscopes: {s: {grants: [{tools: ['*'], when: 'args.x.map(a, a).size() > 0'}]}}\n"))
	f.Add([]byte("version: 1\nrules: [{name: r, effect: deny, tools: ['**'], when: '[1,2,3].all(x, [1,2].exists(y, x == y))'}]\n"))
	f.Add([]byte("{\"version\":1,\"limits\":{\"l\":{\"quota\":\"3/day\",\"cost\":\"size(args.s)\"}}}"))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := scope.Parse(src)
		if err != nil {
			if p != nil {
				t.Fatal("policy and error both returned")
			}
			return
		}
		for _, tool := range []string{"t", "read_file", "x"} {
			_ = p.Decide(context.Background(), scope.Input{
				Principal: scope.Principal{ID: "u", Scopes: []string{"s"}},
				Tool:      scope.Tool{Name: tool},
				Args:      map[string]any{"x": []any{"a"}, "s": "abc", "path": "/w/a"},
			})
		}
		_ = scope.Lint(p, scope.LintOptions{})
	})
}

// FuzzURLHost checks urlHost against net/url: whenever it returns a host,
// that host is the lower-cased Hostname url.Parse finds, and user info is
// never accepted.
func FuzzURLHost(f *testing.F) {
	for _, s := range []string{"https://example.com/a", "http://a@b/", "http://[::1]:8080", "https://EXAMPLE.com.", "//x", "https://x\\@y/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		h, err := scope.URLHost(raw)
		if err != nil {
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("URLHost(%q) = %q but url.Parse fails: %v", raw, h, perr)
		}
		if u.User != nil {
			t.Fatalf("URLHost(%q) accepted user info", raw)
		}
		if want := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."); h != want {
			t.Fatalf("URLHost(%q) = %q, want %q", raw, h, want)
		}
	})
}
