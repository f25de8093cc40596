package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// signedLog writes records with checkpoints every `every` records and
// closes the log; it returns the lines without newlines.
func signedLog(t testing.TB, opts audit.LogOptions, records ...*audit.Record) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	l, err := audit.NewLogWithOptions(&buf, opts)
	require.NoError(t, err)
	writeAll(t, l, records...)
	require.NoError(t, l.Close())
	return bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
}

func decodeRecord(t testing.TB, line []byte) audit.Record {
	t.Helper()
	var r audit.Record
	require.NoError(t, json.Unmarshal(line, &r))
	return r
}

func TestCheckpoints(t *testing.T) {
	rs := sampleRecords(5) // 8 records
	ls := signedLog(t, audit.LogOptions{CheckpointEvery: 3, SigningKey: testKey}, rs...)
	// r r r cp r r r cp r r close
	require.Len(t, ls, 11)
	data := join(ls)
	sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err)
	assert.Equal(t, 11, sum.Records)
	assert.Equal(t, 3, sum.Checkpoints)
	assert.Equal(t, 3, sum.Signed)
	assert.True(t, sum.Closed)
	assert.Equal(t, 5, sum.Decisions)
	assert.Equal(t, 3, sum.Outcomes)
	checkLog(t, data) // schema-valid, and verifies without a key too

	for i, reason := range map[int]string{3: audit.CheckpointInterval, 7: audit.CheckpointInterval, 10: audit.CheckpointClose} {
		cp := decodeRecord(t, ls[i])
		require.Equal(t, audit.KindCheckpoint, cp.Kind, "line %d", i+1)
		require.NotNil(t, cp.Checkpoint)
		assert.Equal(t, reason, cp.Checkpoint.Reason)
		assert.Equal(t, uint64(i), cp.Checkpoint.Records)
		assert.Equal(t, uint64(i-1), cp.Checkpoint.Seq)
		assert.Equal(t, lineHash(ls[i-1]), cp.Checkpoint.Hash)
		assert.Equal(t, cp.Prev, cp.Checkpoint.Hash)
		assert.Equal(t, audit.KeyID(testPub), cp.Checkpoint.KeyID)
		assert.Len(t, cp.Checkpoint.Sig, 128)
	}
	assert.Len(t, audit.KeyID(testPub), 16)
}

func TestCheckpointOptions(t *testing.T) {
	tests := []struct {
		name        string
		opts        audit.LogOptions
		checkpoints int
	}{
		{"none", audit.LogOptions{}, 0},
		{"unsigned interval", audit.LogOptions{CheckpointEvery: 2}, 3}, // after 2, 4 and on close
		{"signing key only: close", audit.LogOptions{SigningKey: testKey}, 1},
		{"hmac only: close", audit.LogOptions{HMACKey: []byte("k")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := signedLog(t, tt.opts, decision("a", "deny"), decision("b", "deny"), decision("c", "deny"), decision("d", "deny"))
			sum, err := audit.Verify(bytes.NewReader(join(ls)), audit.VerifyOptions{HMACKey: tt.opts.HMACKey})
			require.NoError(t, err)
			assert.Equal(t, tt.checkpoints, sum.Checkpoints)
			assert.Equal(t, tt.checkpoints > 0, sum.Closed)
			validateLog(t, join(ls))
		})
	}

	_, err := audit.NewLogWithOptions(&bytes.Buffer{}, audit.LogOptions{CheckpointEvery: -1})
	assert.ErrorContains(t, err, "audit: negative CheckpointEvery")
	_, err = audit.NewLogWithOptions(&bytes.Buffer{}, audit.LogOptions{SigningKey: testKey[:10]})
	assert.ErrorContains(t, err, "not an ed25519 private key")
	_, err = audit.Verify(strings.NewReader(""), audit.VerifyOptions{PublicKey: testPub[:5]})
	assert.ErrorContains(t, err, "not an ed25519 public key")
}

func TestLogRefusesCheckpointRecords(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	r := &audit.Record{ID: "x", Kind: audit.KindCheckpoint, Time: t0, Checkpoint: &audit.Checkpoint{Reason: audit.CheckpointClose}}
	err := l.Write(context.Background(), r)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "written by the Log itself")
	d := decision("c", "deny")
	d.Checkpoint = &audit.Checkpoint{Reason: audit.CheckpointClose}
	assert.ErrorContains(t, l.Write(context.Background(), d), "decision record has a checkpoint")
	assert.Zero(t, buf.Len())
}

// otherKey is a second signing key.
var otherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))

var otherPub = otherKey.Public().(ed25519.PublicKey)

func TestVerifyCheckpointFailures(t *testing.T) {
	signed := audit.LogOptions{CheckpointEvery: 3, SigningKey: testKey}
	strict := audit.VerifyOptions{PublicKey: testPub, RequireClosed: true}
	tests := []struct {
		name     string
		log      audit.LogOptions
		tamper   func(ls [][]byte) [][]byte
		verify   audit.VerifyOptions
		line     int
		contains string
	}{
		{"signed by another key", audit.LogOptions{CheckpointEvery: 3, SigningKey: otherKey}, nil, strict, 1, "not signed by the given key"},
		{"unsigned checkpoints", audit.LogOptions{CheckpointEvery: 3}, nil, strict, 1, "the record is not signed"},
		{"unsigned checkpoints, verified with an HMAC key", audit.LogOptions{CheckpointEvery: 3, HMACKey: []byte("k")}, nil,
			audit.VerifyOptions{PublicKey: testPub, HMACKey: []byte("k")}, 4, "checkpoint is not signed"},
		{"signed by another key, verified with an HMAC key", audit.LogOptions{CheckpointEvery: 3, SigningKey: otherKey, HMACKey: []byte("k")}, nil,
			audit.VerifyOptions{PublicKey: testPub, HMACKey: []byte("k")}, 4, "not by the given key"},
		{"signature byte changed", signed, func(ls [][]byte) [][]byte {
			last := ls[len(ls)-1]
			i := bytes.Index(last, []byte(`"sig":"`)) + len(`"sig":"`)
			last[i] = map[bool]byte{true: 'b', false: 'a'}[last[i] == 'a']
			return ls
		}, strict, 11, "bad checkpoint signature"},
		{"close checkpoint re-signed by another key", signed, func(ls [][]byte) [][]byte {
			r := decodeRecord(t, ls[10])
			r.Checkpoint.Sig, r.Checkpoint.KeyID = "", ""
			unsigned := r.AppendJSON(nil)
			r.Checkpoint.KeyID = audit.KeyID(otherKey.Public().(ed25519.PublicKey))
			r.Checkpoint.Sig = fmt.Sprintf("%x", ed25519.Sign(otherKey, unsigned))
			ls[10] = r.AppendJSON(nil)
			return ls
		}, strict, 11, "not by the given key"},
		{"truncated after an interval checkpoint", signed, func(ls [][]byte) [][]byte { return ls[:8] }, strict, 9,
			"does not end with a close checkpoint: records after line 8 (the last checkpoint) may have been cut off"},
		{"truncated within the tail", signed, func(ls [][]byte) [][]byte { return ls[:9] }, strict, 10, "after line 8"},
		{"close checkpoint removed", signed, func(ls [][]byte) [][]byte { return ls[:10] }, strict, 11, "does not end with a close checkpoint"},
		{"no checkpoints at all", audit.LogOptions{}, nil, audit.VerifyOptions{RequireClosed: true}, 9, "has no checkpoints"},
		{"forged unsigned close appended after truncation", signed, func(ls [][]byte) [][]byte {
			ls = ls[:9]
			tree, err := audit.ReadTree(bytes.NewReader(join(ls)))
			require.NoError(t, err)
			root, err := tree.Root(9)
			require.NoError(t, err)
			cp := &audit.Record{Version: audit.FormatVersion, Seq: 9, ID: "checkpoint-9", Kind: audit.KindCheckpoint, Time: t0,
				Checkpoint: &audit.Checkpoint{Seq: 8, Hash: lineHash(ls[8]), Records: 9, Reason: audit.CheckpointClose, Root: fmt.Sprintf("%x", root[:])}, Prev: lineHash(ls[8])}
			return append(ls, cp.AppendJSON(nil))
		}, strict, 10, "checkpoint is not signed"},
		{"checkpoint claims fewer records", signed, func(ls [][]byte) [][]byte {
			r := decodeRecord(t, ls[3])
			r.Checkpoint.Records, r.Checkpoint.Seq = 2, 1
			ls[3] = r.AppendJSON(nil)
			return ls
		}, audit.VerifyOptions{}, 4, "checkpoint claims 2 records"},
		{"keyed log without its key", audit.LogOptions{HMACKey: []byte("k")}, nil, audit.VerifyOptions{}, 1, "verify the log with its HMAC key"},
		{"keyed log with another key", audit.LogOptions{HMACKey: []byte("k")}, nil, audit.VerifyOptions{HMACKey: []byte("j")}, 1, "mac does not match"},
		{"unkeyed log with a key", audit.LogOptions{}, nil, audit.VerifyOptions{HMACKey: []byte("k")}, 1, "has no mac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := signedLog(t, tt.log, sampleRecords(5)...)
			if tt.tamper != nil {
				ls = tt.tamper(ls)
			}
			sum, err := audit.Verify(bytes.NewReader(join(ls)), tt.verify)
			var ve *audit.VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tt.line, ve.Line, "reason: %s", ve.Reason)
			assert.Contains(t, ve.Reason, tt.contains)
			assert.Equal(t, min(tt.line-1, len(ls)), sum.Records)
		})
	}

	// The untampered logs verify with the right options.
	ls := signedLog(t, audit.LogOptions{HMACKey: []byte("k"), SigningKey: testKey, CheckpointEvery: 2}, sampleRecords(5)...)
	sum, err := audit.Verify(bytes.NewReader(join(ls)), audit.VerifyOptions{HMACKey: []byte("k"), PublicKey: testPub, RequireClosed: true})
	require.NoError(t, err)
	assert.True(t, sum.Closed)
	assert.Equal(t, 5, sum.Signed)
	validateLog(t, join(ls))
}

// TestVerifyOldLogs: logs written in format version 1 (testdata/v1, written
// by the previous version of this package) still verify, with the
// guarantees version 1 had: a key cannot vouch for a version 1 line that
// is not a signed checkpoint, so such an end needs AcceptVersion1End.
func TestVerifyOldLogs(t *testing.T) {
	tests := []struct {
		path   string
		opts   audit.VerifyOptions
		reason string // "" when it verifies
	}{
		{"testdata/v1/decisions.jsonl", audit.VerifyOptions{}, ""},
		{"testdata/v1/plain.jsonl", audit.VerifyOptions{}, ""},
		{"testdata/v1/signed.jsonl", audit.VerifyOptions{PublicKey: testPub, RequireClosed: true}, ""},
		{"testdata/v1/hmac.jsonl", audit.VerifyOptions{HMACKey: []byte("v1 key"), AcceptVersion1End: true, RequireClosed: true}, ""},
		{"testdata/v1/hmac.jsonl", audit.VerifyOptions{HMACKey: []byte("v1 key")}, "format version 1 and not a signed checkpoint"},
		{"testdata/v1/decisions.jsonl", audit.VerifyOptions{PublicKey: testPub}, "format version 1 and not a signed checkpoint"},
		{"testdata/v1/plain.jsonl", audit.VerifyOptions{PublicKey: testPub, AcceptVersion1End: true}, ""},
		{"testdata/v1/signed.jsonl", audit.VerifyOptions{PublicKey: otherPub}, "not by the given key"},
		{"testdata/v1/hmac.jsonl", audit.VerifyOptions{HMACKey: []byte("other"), AcceptVersion1End: true}, "prev hash does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			data, err := os.ReadFile(tt.path)
			require.NoError(t, err)
			require.True(t, bytes.HasPrefix(data, []byte(`{"v":1,`)), "a version 1 fixture")
			sum, err := audit.Verify(bytes.NewReader(data), tt.opts)
			if tt.reason != "" {
				require.ErrorContains(t, err, tt.reason)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, bytes.Count(data, []byte("\n")), sum.Records)
			assert.Zero(t, sum.Sealed, "version 1 records carry no mac or sig")
			validateLog(t, data)
		})
	}
}

// mutationOptions are the log configurations the mutation test covers.
var mutationOptions = []struct {
	name   string
	log    audit.LogOptions
	verify audit.VerifyOptions
}{
	{"sha256 signed", audit.LogOptions{CheckpointEvery: 6, SigningKey: testKey},
		audit.VerifyOptions{PublicKey: testPub, RequireClosed: true}},
	{"hmac signed", audit.LogOptions{CheckpointEvery: 6, SigningKey: testKey, HMACKey: []byte("chain key")},
		audit.VerifyOptions{PublicKey: testPub, HMACKey: []byte("chain key"), RequireClosed: true}},
}

// TestMutation changes every byte of every record of a generated log,
// deletes, duplicates and swaps every record, and cuts the log after every
// checkpoint: each must fail verification at that record (a changed record
// that is not the last is reported at the next line, whose prev names it).
func TestMutation(t *testing.T) {
	for _, mo := range mutationOptions {
		t.Run(mo.name, func(t *testing.T) {
			rs := sampleRecords(10) // 15 records
			for i, r := range rs {
				r.Correlation = &audit.Correlation{TraceID: fmt.Sprint("trace-", i)}
			}
			lines := signedLog(t, mo.log, rs...)
			n := len(lines)
			require.Equal(t, 15+3, n, "15 records, 2 interval checkpoints, 1 close")
			sum, err := audit.Verify(bytes.NewReader(join(lines)), mo.verify)
			require.NoError(t, err)
			require.Equal(t, n, sum.Records)
			validateLog(t, join(lines))

			clone := func() [][]byte {
				out := make([][]byte, n)
				for i, l := range lines {
					out[i] = bytes.Clone(l)
				}
				return out
			}
			failAt := func(t *testing.T, ls [][]byte, lines ...int) *audit.VerifyError {
				t.Helper()
				_, err := audit.Verify(bytes.NewReader(join(ls)), mo.verify)
				var ve *audit.VerifyError
				require.ErrorAs(t, err, &ve)
				require.Contains(t, lines, ve.Line, "reason: %s", ve.Reason)
				return ve
			}
			// Every byte, or with the race detector (ten times slower)
			// every 7th byte and the last.
			stride := 1
			if raceEnabled {
				stride = 7
			}
			checked := 0
			for i := range n {
				line := i + 1
				// Every byte changed.
				for j := range lines[i] {
					if j%stride != 0 && j != len(lines[i])-1 {
						continue
					}
					ls := clone()
					ls[i][j] ^= 0x01
					if ls[i][j] == '\n' {
						ls[i][j] ^= 0x03
					}
					ve := failAt(t, ls, line, line+1)
					if ve.Line == line+1 {
						require.Contains(t, ve.Reason, fmt.Sprintf("prev hash does not match line %d", line))
					}
					checked++
				}
				// Deleted: the next record's seq is wrong, or, for the
				// last, the log is no longer closed.
				ls := clone()
				failAt(t, append(ls[:i:i], ls[i+1:]...), line)
				// Duplicated: the copy has the wrong seq.
				ls = clone()
				dup := append(append(ls[:i+1:i+1], ls[i]), ls[i+1:]...)
				failAt(t, dup, line+1)
				// Swapped with the next.
				if i+1 < n {
					ls = clone()
					ls[i], ls[i+1] = ls[i+1], ls[i]
					failAt(t, ls, line)
				}
				// Cut after a checkpoint.
				if r := decodeRecord(t, lines[i]); r.Kind == audit.KindCheckpoint && i+1 < n {
					ve := failAt(t, clone()[:i+1], line+1)
					assert.Contains(t, ve.Reason, fmt.Sprintf("after line %d", line))
				}
			}
			t.Logf("%d lines, %d one-byte changes", n, checked)
		})
	}
}
