package guardmcp_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// proxyResultsPolicy redacts secrets and IBANs from what the filesystem
// server returns and withholds a private key.
const proxyResultsPolicy = `
version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
results:
  patterns:
    - {name: iban, regex: 'DE[0-9]{20}'}
  rules:
    - name: no-private-keys
      effect: withhold
      tools: ["*"]
      when: '"private_key" in findings'
`

// TestMCPGuardResultGuard runs mcpguard over stdio in front of the Node
// filesystem server: a file holding an AWS key and an IBAN comes back with
// both redacted and the rest intact, a private key is withheld as a tool
// error the model reads, a clean file passes untouched, and the outcome
// records say what was done.
func TestMCPGuardResultGuard(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	root, ws := workspace(t)
	files := map[string]string{
		"notes.txt":  "deploy key AKIAIOSFODNN7EXAMPLE, pay DE89370400440532013000 today",
		"id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n",
		"plain.txt":  "nothing to see here",
	}
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(ws, name), []byte(body), 0o644))
	}
	policy := filepath.Join(root, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(proxyResultsPolicy), 0o644))
	logPath := filepath.Join(root, "decisions.jsonl")
	argv := []string{guard, "-policy", policy, "-audit", logPath, "-principal", "agent", "-scopes", "all",
		"--", "node", filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js"), ws}
	read := func(name string) toolCall {
		return toolCall{"read_text_file", map[string]any{"path": filepath.Join(ws, name)}}
	}
	res := nodeSession(t, argv, []toolCall{read("notes.txt"), read("id_ed25519"), read("plain.txt")})
	require.Len(t, res.Calls, 3)

	notes := res.Calls[0]
	assert.False(t, notes.IsError, notes.Text)
	assert.NotContains(t, notes.Text, "AKIAIOSFODNN7EXAMPLE")
	assert.NotContains(t, notes.Text, "DE89370400440532013000")
	assert.Contains(t, notes.Text, "deploy key redacted:")
	assert.Contains(t, notes.Text, " today")

	key := res.Calls[1]
	assert.True(t, key.IsError, key.Text)
	assert.Contains(t, key.Text, "withheld")
	assert.NotContains(t, key.Text, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ")
	assert.NotRegexp(t, `\b(toolguard|guardmcp|scope|audit):`, key.Text)

	assert.False(t, res.Calls[2].IsError)
	assert.Contains(t, res.Calls[2].Text, "nothing to see here")

	var actions []string
	for _, r := range allRecords(t, logPath) {
		if r.Kind == audit.KindOutcome {
			actions = append(actions, r.ResultAction)
		}
	}
	assert.Equal(t, []string{"redacted", "withheld", ""}, actions)
	b, err := os.ReadFile(logPath)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "AKIAIOSFODNN7EXAMPLE", "the log holds no secret either")
}
