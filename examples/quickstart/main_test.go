package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The quick start must show an allowed call and a denial of every kind, and
// end with a verified audit log.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	s := out.String()
	t.Log(s)
	assert.Contains(t, s, "ALLOW read_file")
	for _, stage := range []string{"[arguments]", "[policy] no scope", "[policy] denied by rule", "[tool]", "[limit]", "[approval]"} {
		assert.Contains(t, s, "DENY  ", stage)
		assert.True(t, strings.Contains(s, stage), "no denial %s in:\n%s", stage, s)
	}
	assert.Contains(t, s, "duplicate object key")
	assert.Contains(t, s, "ALLOW send_email  → \"queued for billing@partner.example.net\"", "an approved call runs")
	assert.Contains(t, s, "audit log verified: 18 records (13 decisions: 5 allowed, 8 denied; 5 outcomes)")
}
