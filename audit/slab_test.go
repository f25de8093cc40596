package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// TestChainLinksStayIntact keeps the Prev of every record written, across
// many slabs of link strings, and checks each against the hash of the line
// before it, computed here: a link string handed out earlier is never
// overwritten by later ones.
func TestChainLinksStayIntact(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	ctx := context.Background()
	const n = 1000
	prevs := make([]string, n)
	for i := range n {
		r := typicalDecision()
		r.ID = fmt.Sprintf("call-%d", i)
		require.NoError(t, l.Write(ctx, r))
		prevs[i] = r.Prev
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	require.Len(t, lines, n)
	require.Empty(t, prevs[0])
	for i := 1; i < n; i++ {
		sum := sha256.Sum256(lines[i-1])
		require.Equal(t, hex.EncodeToString(sum[:]), prevs[i], "record %d", i)
	}
	_, err := audit.Verify(bytes.NewReader(buf.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
}

// TestLogWriteAllocations bounds the allocations of one record written to
// io.Discard: the chain link comes from a slab, not an allocation per
// record.
func TestLogWriteAllocations(t *testing.T) {
	l := audit.NewLog(io.Discard)
	r := typicalDecision()
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := l.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, 0.1, "allocations per record")
}
