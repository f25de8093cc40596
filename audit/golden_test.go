package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// TestGoldenLog writes testdata/decisions.jsonl, the log ExampleVerify and
// the fuzz targets start from; a difference is a change of the format.
func TestGoldenLog(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	rs := sampleRecords(3)
	for i, r := range rs {
		r.Time = t0.Add(time.Duration(i) * time.Second)
	}
	writeAll(t, l, rs...)
	path := filepath.Join("testdata", "decisions.jsonl")
	if *update {
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), buf.String())
	checkLog(t, want)
}
