package scope_test

import (
	"context"
	"net/netip"
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
// url.Parse accepts the URL, finds no user info, and, where net/url's
// Hostname is already unambiguous (an IP address netip parses, or a plain
// lower-case letters-digits-hyphens name whose last label cannot be read
// as a number), urlHost returns that host (lower-cased, trailing dot
// removed, IPv4-mapped IPv6 unmapped). Other hosts are canonicalised (IDNA,
// IPv4 number forms); internal/hostname's FuzzCanonical checks those.
func FuzzURLHost(f *testing.F) {
	for _, s := range []string{"https://example.com/a", "http://a@b/", "http://[::1]:8080", "https://EXAMPLE.com.", "//x", "https://x\\@y/",
		"http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://ｌｏｃａｌｈｏｓｔ/"} {
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
		want := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
		if a, err := netip.ParseAddr(want); err == nil {
			want = a.Unmap().String()
		} else if !plainName(want) {
			return
		}
		if h != want {
			t.Fatalf("URLHost(%q) = %q, want %q", raw, h, want)
		}
	})
}

// plainName reports whether s is a name of lower-case ASCII letters,
// digits and hyphens in non-empty labels, with no A-label, whose last
// label has a letter that no IPv4 number form uses.
func plainName(s string) bool {
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "xn--") || strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return false
		}
	}
	return len(s) <= 253 && strings.ContainsAny(labels[len(labels)-1], "ghijklmnopqrstuvwyz-")
}

// FuzzCIDR checks the policy language's cidr(...).containsIP(...) against
// net/netip: whenever a rule's condition evaluates, its result is what
// netip.Prefix.Contains says, and a network or address netip rejects never
// allows a call.
func FuzzCIDR(f *testing.F) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: cidr(args.net).containsIP(args.ip)
`))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range [][2]string{
		{"10.0.0.0/8", "10.1.2.3"}, {"10.0.0.0/8", "11.0.0.1"}, {"10.1.2.3/8", "10.9.9.9"},
		{"::1/128", "::1"}, {"fe80::/10", "fe80::1%eth0"}, {"0.0.0.0/0", "::ffff:1.2.3.4"},
		{"192.168.0.0/33", "192.168.0.1"}, {"2001:db8::/32", "2001:db8::ffff"}, {"1.2.3.4/32", "01.2.3.4"},
	} {
		f.Add(s[0], s[1])
	}
	decide := func(network, ip string) scope.Decision {
		return p.Decide(context.Background(), scope.Input{
			Principal: scope.Principal{ID: "u", Scopes: []string{"s"}},
			Tool:      scope.Tool{Name: "t"},
			Args:      map[string]any{"net": network, "ip": ip},
		})
	}
	// The oracle below only speaks when the condition evaluates; make sure it does.
	if d := decide("10.0.0.0/8", "10.1.2.3"); d.Effect != scope.Allow || len(d.Errors) > 0 {
		f.Fatalf("cidr condition does not evaluate: %+v", d)
	}
	f.Fuzz(func(t *testing.T, network, ip string) {
		d := decide(network, ip)
		prefix, perr := netip.ParsePrefix(network)
		addr, aerr := netip.ParseAddr(ip)
		if perr != nil || aerr != nil {
			if d.Effect == scope.Allow {
				t.Fatalf("cidr(%q).containsIP(%q) allowed, but netip rejects it (%v, %v)", network, ip, perr, aerr)
			}
			return
		}
		if len(d.Errors) > 0 {
			if d.Effect == scope.Allow {
				t.Fatalf("allowed despite evaluation errors %v", d.Errors)
			}
			return // cel-go may reject forms netip accepts (zones); it never allows them.
		}
		if got, want := d.Effect == scope.Allow, prefix.Contains(addr); got != want {
			t.Fatalf("cidr(%q).containsIP(%q) = %v, netip says %v", network, ip, got, want)
		}
	})
}
