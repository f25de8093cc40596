package audit_test

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentguard/agentguard/audit"
)

// openCheckpointNote verifies a checkpoint's note with x/mod's own note
// package, as a C2SP witness would, and returns its size and root.
func openCheckpointNote(t *testing.T, msg string) (uint64, tlog.Hash) {
	t.Helper()
	vkey, err := note.NewEd25519VerifierKey(audit.Origin(testPub), testPub)
	require.NoError(t, err)
	v, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	n, err := note.Open([]byte(msg), note.VerifierList(v))
	require.NoError(t, err)
	lines := strings.Split(n.Text, "\n")
	require.Len(t, lines, 4)
	require.Equal(t, audit.Origin(testPub), lines[0])
	size, err := strconv.ParseUint(lines[1], 10, 64)
	require.NoError(t, err)
	b, err := base64.StdEncoding.DecodeString(lines[2])
	require.NoError(t, err)
	var root tlog.Hash
	copy(root[:], b)
	return size, root
}

// TestTreeProofs: every checkpoint's root is the RFC 6962 tree of the
// lines before it, as tlog computes it from scratch; an auditor holding a
// signed checkpoint checks one line with an inclusion proof, and two
// checkpoints with a consistency proof, without the rest of the log.
func TestTreeProofs(t *testing.T) {
	ls := signedLog(t, audit.LogOptions{CheckpointEvery: 5, SigningKey: testKey}, sampleRecords(14)...)
	data := join(ls)
	_, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err)
	tree, err := audit.ReadTree(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, uint64(len(ls)), tree.Size())

	type cp struct {
		size uint64
		root tlog.Hash
	}
	var cps []cp
	for _, line := range ls {
		r := decodeRecord(t, line)
		if r.Kind != audit.KindCheckpoint {
			continue
		}
		size, root := openCheckpointNote(t, r.Checkpoint.Note)
		require.Equal(t, r.Checkpoint.Records, size)
		want, err := tree.Root(size)
		require.NoError(t, err)
		require.Equal(t, want, root, "checkpoint %d: the note's root is tlog's tree hash", size)
		hexRoot, err := audit.ParseRoot(r.Checkpoint.Root)
		require.NoError(t, err)
		require.Equal(t, want, hexRoot)
		cps = append(cps, cp{size, root})
	}
	require.GreaterOrEqual(t, len(cps), 4)
	last := cps[len(cps)-1]

	for seq := range last.size {
		p, err := tree.InclusionProof(seq, last.size)
		require.NoError(t, err)
		require.NoError(t, audit.CheckInclusion(p, last.size, last.root, seq, ls[seq]), "line %d", seq)
		edited := bytes.Replace(ls[seq], []byte(`"v":2`), []byte(`"v":1`), 1)
		assert.Error(t, audit.CheckInclusion(p, last.size, last.root, seq, edited), "an edited line is not in the tree")
		if seq > 0 {
			assert.Error(t, audit.CheckInclusion(p, last.size, last.root, seq, ls[seq-1]), "another line is not at this position")
		}
	}
	for i := range cps {
		for _, newer := range cps[i:] {
			p, err := tree.ConsistencyProof(cps[i].size, newer.size)
			require.NoError(t, err)
			require.NoError(t, audit.CheckConsistency(p, cps[i].size, cps[i].root, newer.size, newer.root))
			if cps[i].size > 0 && cps[i].size < newer.size {
				assert.Error(t, audit.CheckConsistency(p, cps[i].size, newer.root, newer.size, newer.root), "a forked old tree is not a prefix")
			}
		}
	}

	_, err = tree.InclusionProof(last.size, last.size)
	assert.Error(t, err)
	_, err = tree.ConsistencyProof(2, 1)
	assert.Error(t, err)
	_, err = tree.Root(tree.Size() + 1)
	assert.Error(t, err)
	_, err = audit.ReadTree(strings.NewReader("{}\n{"))
	assert.ErrorContains(t, err, "no newline")
	_, err = audit.ParseRoot("zz")
	assert.Error(t, err)
}
