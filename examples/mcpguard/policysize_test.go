package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// TestMaxPolicyBytesFlag: the policy size limit defaults to the library's,
// -max-policy-bytes changes it, and a policy over it is refused with an
// error that names the flag.
func TestMaxPolicyBytesFlag(t *testing.T) {
	c, err := parse([]string{"-policy", "p.yaml", "-audit", "a.jsonl", "--", "true"}, io.Discard, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, scope.MaxPolicyBytes, c.maxPolicy)

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	src := testPolicy + strings.Repeat("# padding\n", 100)
	require.NoError(t, os.WriteFile(policy, []byte(src), 0o644))
	logPath := filepath.Join(dir, "decisions.jsonl")
	r := runGuard(t, "-policy", policy, "-audit", logPath, "-principal", "bot", "-max-policy-bytes", "500", "--", "true")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "policy is larger than 500 bytes (raise the limit with -max-policy-bytes)")
	assert.NotContains(t, r.stderr, "WithMaxPolicyBytes", "no Go API names for a command-line user")

	// Within the limit the policy loads: the start fails later, at the
	// upstream command, not at the policy.
	r = runGuard(t, "-policy", policy, "-audit", logPath, "-principal", "bot", "-max-policy-bytes", "5000", "--", filepath.Join(dir, "no-such-command"))
	assert.Equal(t, 1, r.code)
	assert.NotContains(t, r.stderr, "policy is larger")
}
