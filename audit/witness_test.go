package audit_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// TestWitnessFile: the witness keeps every checkpoint (interval, rotate,
// close) apart from the log, and Verify matches the log against it.
func TestWitnessFile(t *testing.T) {
	dir := t.TempDir()
	path, wpath := filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "w", "checkpoints.jsonl")
	require.NoError(t, os.MkdirAll(filepath.Dir(wpath), 0o700))
	for run := range 2 {
		w, err := audit.OpenWitness(wpath, testPub)
		require.NoError(t, err)
		l, err := audit.OpenFile(path, audit.FileOptions{SigningKey: testKey, CheckpointEvery: 4, Witness: w})
		require.NoError(t, err)
		writeAll(t, l, sampleRecords(5+run)...)
		require.NoError(t, l.Close())
		require.NoError(t, w.Close())
	}
	log, witness := mustRead(t, path), mustRead(t, wpath)
	wlines := bytes.Split(bytes.TrimSuffix(witness, []byte("\n")), []byte("\n"))
	cps := 0
	for _, line := range bytes.Split(bytes.TrimSuffix(log, []byte("\n")), []byte("\n")) {
		if bytes.Contains(line, []byte(`"kind":"checkpoint"`)) {
			assert.Equal(t, string(line), string(wlines[cps]), "the witness holds the log's checkpoint lines, in order")
			cps++
		}
	}
	require.Equal(t, len(wlines), cps)
	require.Greater(t, cps, 3)

	sum, err := audit.Verify(bytes.NewReader(log), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(witness)})
	require.NoError(t, err)
	assert.Equal(t, uint64(sum.Records-1), sum.Witnessed, "the last checkpoint witnessed is the close checkpoint, the last line, which covers the lines before it")
	assert.Equal(t, sum.Records, sum.Sealed+sum.Checkpoints)

	// The witness is checked, not trusted: an edited witness line, one
	// signed by another key, or one out of order is an error.
	_, err = audit.Verify(bytes.NewReader(log), audit.VerifyOptions{PublicKey: otherPub, Witness: bytes.NewReader(witness)})
	require.ErrorContains(t, err, "witness line 1")
	swapped := append(append([][]byte{}, wlines[1], wlines[0]), wlines[2:]...)
	_, err = audit.Verify(bytes.NewReader(log), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(join(swapped))})
	require.ErrorContains(t, err, "the witness itself was rewritten")
	_, err = audit.Verify(bytes.NewReader(log), audit.VerifyOptions{Witness: bytes.NewReader(witness)})
	require.ErrorContains(t, err, "needs the PublicKey")
	edited := bytes.Replace(witness, []byte(`"reason":"close"`), []byte(`"reason":"rotate"`), 1)
	_, err = audit.Verify(bytes.NewReader(log), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(edited)})
	require.NoError(t, err, "the witness vouches for the signed note (origin, size, root) only; the reason is not part of it")

	// Whoever holds the signing key can re-sign a rewritten log, but not
	// change what the witness saw: a log rewritten before a witnessed
	// checkpoint fails at that checkpoint's size.
	forged := filepath.Join(dir, "forged.jsonl")
	for run := range 2 {
		l, err := audit.OpenFile(forged, audit.FileOptions{SigningKey: testKey, CheckpointEvery: 4})
		require.NoError(t, err)
		rs := sampleRecords(5 + run)
		rs[0].Principal = "someone-else"
		writeAll(t, l, rs...)
		require.NoError(t, l.Close())
	}
	_, err = audit.Verify(bytes.NewReader(mustRead(t, forged)), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err, "a valid log, signed by the key")
	_, err = audit.Verify(bytes.NewReader(mustRead(t, forged)), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(witness)})
	var ve *audit.VerifyError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, ve.Reason, "not the log its witness saw")
	assert.Equal(t, 5, ve.Line, "at the first witnessed size, 4")
}

// TestWitnessRefusesRollback: a Log whose file was cut back to an earlier
// checkpoint cannot deliver its next checkpoint to the witness, which has
// seen a larger tree: the rollback is refused as it happens, and the Log
// refuses further records (fail closed).
func TestWitnessRefusesRollback(t *testing.T) {
	dir := t.TempDir()
	path, wpath := filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "checkpoints.jsonl")
	w, err := audit.OpenWitness(wpath, testPub)
	require.NoError(t, err)
	defer w.Close()
	opts := audit.FileOptions{SigningKey: testKey, Witness: w}
	l, err := audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(2)...)
	require.NoError(t, l.Close())
	first := mustRead(t, path)
	l, err = audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(2)[1:]...)
	require.NoError(t, l.Close())

	require.NoError(t, os.WriteFile(path, first, 0o600)) // roll back
	_, err = audit.OpenFile(path, opts)
	require.ErrorContains(t, err, "cut back or rolled back", "a WitnessFile is asked at open")
	_, err = audit.Verify(bytes.NewReader(first), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err, "the file itself is a valid, closed log")

	// Any other Sink is only told checkpoints: the rollback is refused at
	// the next one.
	opts.Witness = audit.SinkFunc(w.Write)
	l, err = audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, decision("x", "deny"))
	err = l.Close()
	require.ErrorContains(t, err, "rolled back")
	require.ErrorContains(t, err, "not delivered to the witness")

	assert.ErrorContains(t, l.Write(context.Background(), decision("y", "deny")), "log closed")

	// A fork: cut back again and grow to the witnessed size with other
	// records: same size, another tree.
	require.NoError(t, os.WriteFile(path, first, 0o600))
	l, err = audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, decision("y", "deny"), decision("y2", "deny"))
	require.ErrorContains(t, l.Close(), "forked")

	// Interval checkpoints are witnessed as they are written: the Write
	// that wrote one fails, and the Log refuses every later record.
	require.NoError(t, os.WriteFile(path, first, 0o600))
	l, err = audit.OpenFile(path, audit.FileOptions{SigningKey: testKey, CheckpointEvery: 1, Witness: audit.SinkFunc(w.Write)})
	require.NoError(t, err)
	require.ErrorContains(t, l.Write(context.Background(), decision("z", "deny")), "rolled back")
	assert.ErrorContains(t, l.Write(context.Background(), decision("z2", "deny")), "log unusable")
	require.NoError(t, l.Close(), "a broken log closes without a checkpoint")
}

// TestWitnessAnySink: any Sink can be the witness, and a witness that
// fails makes the Write that wrote the checkpoint fail, and every later
// one: no record goes unwitnessed silently.
func TestWitnessAnySink(t *testing.T) {
	var mu sync.Mutex
	var got []audit.Record
	fail := false
	sink := audit.SinkFunc(func(_ context.Context, r *audit.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return errors.New("witness unreachable")
		}
		got = append(got, *r)
		return nil
	})
	var buf bytes.Buffer
	l, err := audit.NewLogWithOptions(&buf, audit.LogOptions{SigningKey: testKey, CheckpointEvery: 2, Witness: sink})
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(2)...) // 3 records: a checkpoint after the second
	require.Len(t, got, 1)
	cp := got[0]
	assert.Equal(t, audit.KindCheckpoint, cp.Kind)
	assert.True(t, strings.HasPrefix(cp.Checkpoint.Note, audit.Origin(testPub)+"\n2\n"), "a C2SP checkpoint note: %q", cp.Checkpoint.Note)
	mu.Lock()
	fail = true
	mu.Unlock()
	err = l.Write(context.Background(), decision("n", "deny")) // a checkpoint is due with it
	require.ErrorContains(t, err, "witness unreachable")
	assert.ErrorContains(t, l.Write(context.Background(), decision("o", "deny")), "log unusable")

	_, err = audit.NewLogWithOptions(&buf, audit.LogOptions{Witness: sink})
	assert.ErrorContains(t, err, "needs a SigningKey")
}

// TestOpenWitnessChecksItsFile: an existing witness file must verify.
func TestOpenWitnessChecksItsFile(t *testing.T) {
	wpath := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	require.NoError(t, os.WriteFile(wpath, []byte(`{"not":"a checkpoint"}`+"\n"), 0o600))
	_, err := audit.OpenWitness(wpath, testPub)
	require.ErrorContains(t, err, "witness line 1")
	_, err = audit.OpenWitness(wpath, testPub[:5])
	require.ErrorContains(t, err, "public key")
	w, err := audit.OpenWitness(filepath.Join(t.TempDir(), "w.jsonl"), testPub)
	require.NoError(t, err)
	assert.ErrorContains(t, w.Write(context.Background(), decision("a", "deny")), "not a signed checkpoint")
	require.NoError(t, w.Close())
	assert.ErrorIs(t, w.Close(), audit.ErrClosed)
}

// TestRotatedWitnessedCrash: a rotated, signed, witnessed log whose writer
// crashes resumes in a copy of its files — the Merkle tree rebuilt from the
// newest rotated file's checkpoint and the active file — and the whole
// chain verifies against the witness.
func TestRotatedWitnessedCrash(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	path, wpath := filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "checkpoints.jsonl")
	w, err := audit.OpenWitness(wpath, testPub)
	require.NoError(t, err)
	opts := audit.FileOptions{Sync: audit.SyncNone, MaxBytes: 6000, SigningKey: testKey, CheckpointEvery: 7, Witness: w}
	l, err := audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(30)...)
	// The crash: the files and the witness as they are now.
	files, err := audit.LogFiles(path)
	require.NoError(t, err)
	require.Greater(t, len(files), 2, "rotated")
	for _, f := range append(files, wpath) {
		require.NoError(t, os.WriteFile(filepath.Join(crashed, filepath.Base(f)), mustRead(t, f), 0o600))
	}
	require.NoError(t, l.Close())
	require.NoError(t, w.Close())

	path, wpath = filepath.Join(crashed, "decisions.jsonl"), filepath.Join(crashed, "checkpoints.jsonl")
	require.NotContains(t, string(mustRead(t, path)), `"reason":"close"`, "the active file ends without a close checkpoint")
	w, err = audit.OpenWitness(wpath, testPub)
	require.NoError(t, err)
	defer w.Close()
	opts.Witness = w
	l, err = audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(5)...)
	require.NoError(t, l.Close())

	_, data := readChain(t, path)
	sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true, AcceptRecovered: true, Witness: bytes.NewReader(mustRead(t, wpath))})
	require.NoError(t, err)
	assert.Len(t, sum.Recovered, 1, "the crash is marked")
	assert.Equal(t, uint64(sum.Records-1), sum.Witnessed)
	assert.Equal(t, sum.Records, sum.Sealed+sum.Checkpoints, "every record signed on its own")
	validateLog(t, data)
}

// countedCtx is a context that reports itself canceled after its Err
// method was called n times: a call canceled while its record is written.
type countedCtx struct {
	context.Context
	mu sync.Mutex
	n  int
}

func (c *countedCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestWitnessIgnoresCallerCancel: the checkpoint a record makes due is
// delivered even if that record's caller gives up meanwhile; a canceled
// call must not break the Log for every other caller.
func TestWitnessIgnoresCallerCancel(t *testing.T) {
	var delivered int
	witness := audit.SinkFunc(func(ctx context.Context, r *audit.Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		delivered++
		return nil
	})
	l, err := audit.NewLogWithOptions(&bytes.Buffer{}, audit.LogOptions{SigningKey: testKey, CheckpointEvery: 1, Witness: witness})
	require.NoError(t, err)
	ctx := &countedCtx{Context: context.Background(), n: 2} // Write's own two checks pass
	require.NoError(t, l.Write(ctx, decision("a", "deny")))
	require.Equal(t, 1, delivered)
	require.NoError(t, l.Write(context.Background(), decision("b", "deny")), "the Log still works")
	require.NoError(t, l.Close())
}

// TestResumeWithRotatedFilesArchived: after a crash, OpenFile rebuilds the
// tree from the last checkpoint in the active file, so it needs no rotated
// file (they may have been archived); the checkpoints it then writes hold
// the tree of the whole chain.
func TestResumeWithRotatedFilesArchived(t *testing.T) {
	dir, archive := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	opts := audit.FileOptions{Sync: audit.SyncNone, MaxBytes: 6000, SigningKey: testKey, CheckpointEvery: 4}
	l, err := audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(20)...)
	files, err := audit.LogFiles(path)
	require.NoError(t, err)
	require.Greater(t, len(files), 2)
	active := mustRead(t, path)
	require.NoError(t, l.Close())
	for _, f := range files[:len(files)-1] {
		require.NoError(t, os.Rename(f, filepath.Join(archive, filepath.Base(f))))
	}
	require.NoError(t, os.WriteFile(path, active, 0o600)) // as the crash left it
	require.NotContains(t, string(active[bytes.LastIndexByte(active[:len(active)-1], '\n'):]), `"kind":"checkpoint"`)

	l, err = audit.OpenFile(path, opts)
	require.NoError(t, err)
	writeAll(t, l, sampleRecords(3)...)
	require.NoError(t, l.Close())

	var chain []byte
	for _, f := range files[:len(files)-1] {
		chain = append(chain, mustRead(t, filepath.Join(archive, filepath.Base(f)))...)
	}
	_, rest := readChain(t, path) // the active file, and any rotated since
	chain = append(chain, rest...)
	_, err = audit.Verify(bytes.NewReader(chain), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true, AcceptRecovered: true})
	require.NoError(t, err, "the resumed checkpoints state the whole chain's tree")
}
