package audit_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// readChain concatenates the files of the log at path, in chain order.
func readChain(t testing.TB, path string) ([]string, []byte) {
	t.Helper()
	files, err := audit.LogFiles(path)
	require.NoError(t, err)
	var data []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		data = append(data, b...)
	}
	return files, data
}

func TestOpenFileRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	opts := audit.FileOptions{Sync: audit.SyncNone, MaxBytes: 2000, SigningKey: testKey, CheckpointEvery: 10}
	strict := audit.VerifyOptions{PublicKey: testPub, RequireClosed: true}

	for run := range 2 { // the second run resumes the chain in the active file
		l, err := audit.OpenFile(path, opts)
		require.NoError(t, err)
		for i := range 20 {
			r := decision(fmt.Sprintf("r%d-%d", run, i), "deny")
			writeAll(t, l, r)
		}
		require.NoError(t, l.Close())
	}
	files, data := readChain(t, path)
	require.Greater(t, len(files), 3, "rotated: %v", files)
	assert.Equal(t, path, files[len(files)-1])
	sum, err := audit.Verify(bytes.NewReader(data), strict)
	require.NoError(t, err)
	assert.Equal(t, 40, sum.Decisions)
	assert.True(t, sum.Closed)
	validateLog(t, data)

	reasons := map[string]int{}
	for _, f := range files[:len(files)-1] {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.LessOrEqual(t, len(b), 2000, "%s: rotated before the record that would pass MaxBytes", f)
		last := bytes.LastIndexByte(b[:len(b)-1], '\n')
		r := decodeRecord(t, b[last+1:len(b)-1])
		require.Equal(t, audit.KindCheckpoint, r.Kind, "%s ends with a checkpoint", f)
		assert.Contains(t, []string{audit.CheckpointRotate, audit.CheckpointInterval, audit.CheckpointClose}, r.Checkpoint.Reason)
		reasons[r.Checkpoint.Reason]++
		assert.Equal(t, audit.RotatedName(path, r.Seq), f, "named after its last seq")
	}

	assert.Positive(t, reasons[audit.CheckpointRotate], "%v", reasons)

	// A lost file in the middle breaks the chain where it was.
	var cut []byte
	for i, f := range files {
		if i == 1 {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		cut = append(cut, b...)
	}
	_, err = audit.Verify(bytes.NewReader(cut), strict)
	var ve *audit.VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, ve.Reason, "where")
}

// TestOpenFileRotationResume: a crash between renaming the full file and
// creating the new one leaves no file at path; the next OpenFile continues
// the chain of the newest rotated file.
func TestOpenFileRotationResume(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	opts := audit.FileOptions{HMACKey: []byte("k"), SigningKey: testKey}
	l, err := audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, decision("a", "deny"), decision("b", "deny"))
	require.NoError(t, l.Close()) // seq 2: the close checkpoint
	require.NoError(t, os.Rename(path, audit.RotatedName(path, 2)))
	// Unrelated files beside it are ignored.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "decisions-1.jsonl"), []byte("x"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "other-00000000000000000009.jsonl"), []byte("x"), 0o600))

	for _, want := range []uint64{3, 5} { // again from the empty file it created
		l, err = audit.OpenFile(path, opts)
		require.NoError(t, err)
		r := decision(fmt.Sprint("c", want), "deny")
		writeAll(t, l, r)
		assert.Equal(t, want, r.Seq, "the chain continues")
		require.NoError(t, l.Close())
		if want == 3 {
			// Leave the active file empty again, as after a rotation.
			require.NoError(t, os.Rename(path, audit.RotatedName(path, 4)))
			require.NoError(t, os.WriteFile(path, nil, 0o600))
		}
	}
	files, data := readChain(t, path)
	assert.Len(t, files, 3)
	sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{HMACKey: []byte("k"), PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err)
	assert.Equal(t, 7, sum.Records)

	// A rotated file that does not end with a whole record stops OpenFile.
	bad := filepath.Join(t.TempDir(), "decisions.jsonl")
	require.NoError(t, os.WriteFile(audit.RotatedName(bad, 0), []byte(`{"v":1,"seq":0`), 0o600))
	_, err = audit.OpenFile(bad, audit.FileOptions{})
	assert.ErrorContains(t, err, "resume from rotated file")
}

func TestRotatedNameAndLogFiles(t *testing.T) {
	assert.Equal(t, "/x/decisions-00000000000000000042.jsonl", audit.RotatedName("/x/decisions.jsonl", 42))
	assert.Equal(t, "log-18446744073709551615", audit.RotatedName("log", 1<<64-1))

	files, err := audit.LogFiles(filepath.Join(t.TempDir(), "none.jsonl"))
	require.NoError(t, err)
	assert.Empty(t, files)

	_, err = audit.OpenFile(filepath.Join(t.TempDir(), "a"), audit.FileOptions{MaxBytes: -1})
	assert.ErrorContains(t, err, "negative MaxBytes")
	_, err = audit.OpenFile(filepath.Join(t.TempDir(), "a"), audit.FileOptions{SigningKey: testKey[:3]})
	assert.ErrorContains(t, err, "not an ed25519 private key")
}

// TestOpenFileCheckpointsResume: checkpoints continue across reopen, and
// every Close adds a close checkpoint.
func TestOpenFileCheckpointsResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	opts := audit.FileOptions{CheckpointEvery: 2, SigningKey: testKey, HMACKey: []byte("k")}
	for range 3 {
		l, err := audit.OpenFile(path, opts)
		require.NoError(t, err)
		rs := sampleRecords(2) // 3 records
		writeAll(t, l, rs...)
		require.NoError(t, l.Close())
	}
	f := openFile(t, path)
	sum, err := audit.Verify(io.Reader(f), audit.VerifyOptions{PublicKey: testPub, HMACKey: []byte("k"), RequireClosed: true})
	require.NoError(t, err)
	assert.Equal(t, 9, sum.Decisions+sum.Outcomes)
	assert.Equal(t, 3+3, sum.Checkpoints, "one interval and one close checkpoint per run")
	assert.Equal(t, sum.Checkpoints, sum.Signed)
}
