package scope_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/agentguard/agentguard/scope"
)

// TestLintNonCanonicalHost: a deny rule comparing urlHost with a host in a
// form urlHost never returns never denies; Lint says so, and says nothing
// about canonical hosts.
func TestLintNonCanonicalHost(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  web:
    grants:
      - tools: [fetch]
        when: urlHost(args.url) in ["api.example.com", "Bücher.de"]
rules:
  - name: no-metadata
    effect: deny
    tools: [fetch]
    when: urlHost(args.url) == "Metadata.Google.Internal." || args.url.urlHost() == "0x7f000001"
  - name: no-loopback6
    effect: deny
    tools: [fetch]
    when: '"[::1]" == urlHost(args.url) || urlHost(args.url).endsWith(".Corp.Example.com")'
  - name: fine
    effect: deny
    tools: [fetch]
    when: urlHost(args.url) in ["127.0.0.1", "::1", "localhost"] || urlHost(args.url).endsWith(".internal")
`)
	// Written that way, the rule does not deny what it names.
	open := compile(t, `
version: 1
scopes: {web: {grants: [{tools: [fetch]}]}}
rules:
  - {name: no-metadata, effect: deny, tools: [fetch], when: 'urlHost(args.url) == "Metadata.Google.Internal."'}
`)
	d := open.Decide(t.Context(), in("u", []string{"web"}, "fetch", map[string]any{"url": "http://metadata.google.internal/"}))
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
	assert.NotEmpty(t, scope.Lint(open, scope.LintOptions{}))

	var got []string
	for _, f := range scope.Lint(p, scope.LintOptions{}) {
		if f.Code == "non-canonical-host" {
			got = append(got, f.Message)
		}
	}
	want := []string{
		`rule "no-metadata" compares a host with "Metadata.Google.Internal.", which a canonical host never equals: write "metadata.google.internal"`,
		`rule "no-metadata" compares a host with "0x7f000001", which a canonical host never equals: write "127.0.0.1"`,
		`rule "no-loopback6" compares a host with "[::1]", which a canonical host never equals: write "::1"`,
		`rule "no-loopback6" compares a host with ".Corp.Example.com", which a canonical host never equals: write ".corp.example.com"`,
		`grant web#0 compares a host with "Bücher.de", which a canonical host never equals: write "xn--bcher-kva.de"`,
	}
	assert.ElementsMatch(t, want, got, strings.Join(got, "\n"))
}
