package guardmcp_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

type poisonCase struct {
	Case   string            `json:"case"`
	Want   string            `json:"want"`
	Tool   json.RawMessage   `json:"tool"`
	Others []json.RawMessage `json:"others"`
}

func readCorpus(t testing.TB) []poisonCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "poison", "corpus.json"))
	require.NoError(t, err)
	var cs []poisonCase
	require.NoError(t, json.Unmarshal(b, &cs))
	require.NotEmpty(t, cs)
	return cs
}

// TestScanCorpus: every poisoned definition of the corpus is flagged with
// the rule it was written for, on the tool it poisons.
func TestScanCorpus(t *testing.T) {
	for _, c := range readCorpus(t) {
		t.Run(c.Case, func(t *testing.T) {
			fs, err := guardmcp.ScanTools(append([]json.RawMessage{c.Tool}, c.Others...), guardmcp.ScanOptions{})
			require.NoError(t, err)
			var rules []string
			for _, f := range fs {
				if f.Tool == "add" {
					rules = append(rules, f.Rule)
				}
			}
			assert.Contains(t, rules, c.Want, "findings: %+v", fs)
			for _, f := range fs {
				t.Logf("%s %s %s: %s", f.Rule, f.Severity, f.Pointer, f.Excerpt)
			}
		})
	}
}
