package scope_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/agentguard/agentguard/scope"
)

// A rooted deny glob holds against every spelling of a denied path that
// the isUnder grant still allows.
func TestDenyGlobSeesCleanedPath(t *testing.T) {
	p := compile(t, `
version: 1
scopes:
  files:
    grants:
      - tools: [read]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: no-secrets
    effect: deny
    tools: [read]
    when: args.path.glob("/w/secrets/**")
  - name: no-dotenv
    effect: deny
    tools: [read]
    when: args.path.glob("**/.env*")
`)
	for _, path := range []string{
		"/w/secrets/key",
		"/w/secrets",
		"/w/./secrets/key",
		"/w//secrets/key",
		"/w/x/../secrets/key",
		"/w/secrets/./key",
		"/w/secrets/",
		"/w/secrets/.",
		"/w/secrets/sub/..",
		"/w/a/./.env",
		"/w/a/../.env.local",
	} {
		d := p.Decide(t.Context(), in("u", []string{"files"}, "read", map[string]any{"path": path}))
		assert.Equal(t, scope.Deny, d.Effect, "%s: %s", path, d.Reason)
		assert.Contains(t, d.Reason, "denied by rule", path)
	}
	for _, path := range []string{"/w/public/a", "/w/secrets/../public/a", "/w/secretsx/a"} {
		d := p.Decide(t.Context(), in("u", []string{"files"}, "read", map[string]any{"path": path}))
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", path, d.Reason)
	}
}
