package audit_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

var allModes = []audit.SyncMode{audit.SyncEachRecord, audit.SyncInterval, audit.SyncNone}

func TestOpenFileSyncModes(t *testing.T) {
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			l, err := audit.OpenFile(path, audit.FileOptions{Sync: mode, Interval: 5 * time.Millisecond})
			require.NoError(t, err)
			rs := sampleRecords(6)
			writeAll(t, l, rs...)

			// In every mode the records are in the file when Write returns.
			sum := checkFile(t, path)
			assert.Equal(t, len(rs), sum.Records)

			if mode == audit.SyncInterval {
				require.Eventually(t, func() bool { return audit.SyncRounds(l) > 0 }, 5*time.Second, time.Millisecond,
					"the background loop syncs")
			}
			if mode == audit.SyncEachRecord {
				assert.Equal(t, uint64(len(rs)), audit.SyncRounds(l), "one fsync per sequential write")
			}
			require.NoError(t, l.Close())
			assert.Positive(t, audit.SyncRounds(l), "Close syncs")
			assert.ErrorIs(t, l.Write(context.Background(), decision("late", "deny")), audit.ErrClosed)
			assert.ErrorIs(t, l.Close(), audit.ErrClosed)

			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
			assert.Equal(t, len(rs), checkFile(t, path).Records)
		})
	}
}

func TestOpenFileResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	for round := range 3 {
		l, err := audit.OpenFile(path, audit.FileOptions{})
		require.NoError(t, err)
		r := decision(fmt.Sprint("r", round), "allow")
		writeAll(t, l, r)
		assert.Equal(t, uint64(2*round), r.Seq, "the chain continues")
		writeAll(t, l, outcome(r.ID))
		require.NoError(t, l.Close())
	}
	sum := checkFile(t, path)
	assert.Equal(t, 6, sum.Records)
	assert.Equal(t, uint64(5), sum.LastSeq)

	// Resuming an empty file starts a new chain.
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	l, err := audit.OpenFile(empty, audit.FileOptions{})
	require.NoError(t, err)
	r := decision("c", "deny")
	writeAll(t, l, r)
	assert.Equal(t, uint64(0), r.Seq)
	require.NoError(t, l.Close())
	checkFile(t, empty)
}

func TestOpenFileTornTail(t *testing.T) {
	for _, torn := range []string{`{`, `{"v":1,"seq":2,"id":"c2","kind":"deci`, `{"v"`} {
		t.Run(torn, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			l, err := audit.OpenFile(path, audit.FileOptions{})
			require.NoError(t, err)
			writeAll(t, l, decision("c0", "allow"), outcome("c0"))
			require.NoError(t, l.Close())
			good, err := os.ReadFile(path)
			require.NoError(t, err)

			// A crash in the middle of the next write.
			require.NoError(t, os.WriteFile(path, append(good, torn...), 0o600))
			_, err = audit.Verify(openFile(t, path), audit.VerifyOptions{})
			require.Error(t, err)

			l, err = audit.OpenFile(path, audit.FileOptions{})
			require.NoError(t, err)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(good), string(after), "the torn line is cut off on open")

			r := decision("c2", "deny")
			writeAll(t, l, r)
			assert.Equal(t, uint64(2), r.Seq)
			require.NoError(t, l.Close())
			assert.Equal(t, 3, checkFile(t, path).Records)
		})
	}

	t.Run("only a torn line", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "decisions.jsonl")
		require.NoError(t, os.WriteFile(path, []byte(`{"v":1,"se`), 0o600))
		l, err := audit.OpenFile(path, audit.FileOptions{})
		require.NoError(t, err)
		writeAll(t, l, decision("c0", "deny"))
		require.NoError(t, l.Close())
		assert.Equal(t, 1, checkFile(t, path).Records)
	})
}

func openFile(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestOpenFileRefusesForeignFiles: OpenFile never truncates or appends to a
// file whose end is not a record.
func TestOpenFileRefusesForeignFiles(t *testing.T) {
	valid := chain(decision("c0", "allow"))
	last := decision("c0", "deny")
	last.Seq = math.MaxUint64
	full := string(last.AppendJSON(nil)) + "\n"
	tests := []struct {
		name, content, want string
	}{
		{"text without newline", "hello world", "does not end with a complete record"},
		{"text lines", "hello\nworld\n", "last record (offset 6) is invalid"},
		{"log then junk", string(valid) + "junk\n", "is invalid"},
		{"log then torn junk", string(valid) + "junk", "does not end with a complete record"},
		{"blank last line", string(valid) + "\n", "empty line"},
		{"no seq left", full, "no sequence numbers left"},
		{"edited last record", strings.Replace(string(valid), `"tool":`, `"tool": `, 1), "not the canonical encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "file")
			require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o644))
			_, err := audit.OpenFile(path, audit.FileOptions{})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.content, string(after), "file untouched")
		})
	}

	_, err := audit.OpenFile(t.TempDir(), audit.FileOptions{})
	assert.Error(t, err, "a directory")
	_, err = audit.OpenFile(filepath.Join(t.TempDir(), "no", "such", "dir", "f"), audit.FileOptions{})
	assert.Error(t, err)
}

func TestOpenFileLongLastLine(t *testing.T) {
	// The resume reader grows its window past the first 64 KiB.
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncNone})
	require.NoError(t, err)
	big := decision("big", "deny")
	big.Reason = string(make([]byte, 300<<10)) // NULs: escaped 6x
	writeAll(t, l, decision("c0", "deny"), big)
	require.NoError(t, l.Close())

	l, err = audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncNone})
	require.NoError(t, err)
	r := decision("c2", "deny")
	writeAll(t, l, r)
	assert.Equal(t, uint64(2), r.Seq)
	require.NoError(t, l.Close())
	assert.Equal(t, 3, checkFile(t, path).Records)
}

func TestOpenFileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err)
	_, err = audit.OpenFile(path, audit.FileOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "locked")
	require.NoError(t, l.Close())
	l, err = audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
}

func TestOpenFileOptions(t *testing.T) {
	dir := t.TempDir()
	_, err := audit.OpenFile(filepath.Join(dir, "a"), audit.FileOptions{Sync: 7})
	assert.ErrorContains(t, err, "unknown sync mode")
	_, err = audit.OpenFile(filepath.Join(dir, "b"), audit.FileOptions{Interval: -time.Second})
	assert.ErrorContains(t, err, "negative")

	l, err := audit.OpenFile(filepath.Join(dir, "c"), audit.FileOptions{Perm: 0o640})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	st, err := os.Stat(filepath.Join(dir, "c"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640)&^umask(), st.Mode().Perm())
}

func umask() os.FileMode {
	dir, _ := os.MkdirTemp("", "umask")
	defer os.RemoveAll(dir)
	f, _ := os.OpenFile(filepath.Join(dir, "f"), os.O_CREATE|os.O_WRONLY, 0o777)
	defer f.Close()
	st, _ := f.Stat()
	return 0o777 &^ st.Mode().Perm()
}

func TestSyncModeText(t *testing.T) {
	var zero audit.FileOptions
	assert.Equal(t, audit.SyncEachRecord, zero.Sync, "the zero value is the safe mode")
	for _, m := range allModes {
		text, err := m.MarshalText()
		require.NoError(t, err)
		var back audit.SyncMode
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, m, back)
	}
	var m audit.SyncMode
	assert.Error(t, m.UnmarshalText([]byte("sometimes")))
	_, err := audit.SyncMode(9).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "SyncMode(9)", audit.SyncMode(9).String())
}

// TestOpenFileConcurrentEachRecord: 64 writers with fsync per record; every
// record is present once and the chain verifies.
func TestOpenFileConcurrentEachRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncEachRecord})
	require.NoError(t, err)
	const writers, each = 64, 10
	seqs := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := decision(fmt.Sprintf("w%d-%d", w, i), "deny")
				if !assert.NoError(t, l.Write(context.Background(), r)) {
					return
				}
				seqs[w] = append(seqs[w], r.Seq)
			}
		})
	}
	wg.Wait()
	rounds := audit.SyncRounds(l)
	require.NoError(t, l.Close())

	seen := map[uint64]bool{}
	for _, ss := range seqs {
		for _, s := range ss {
			assert.False(t, seen[s], "seq %d twice", s)
			seen[s] = true
		}
	}
	assert.Len(t, seen, writers*each)
	sum := checkFile(t, path)
	assert.Equal(t, writers*each, sum.Records)
	assert.Equal(t, uint64(writers*each-1), sum.LastSeq)
	assert.LessOrEqual(t, rounds, uint64(writers*each))
	t.Logf("%d records, %d fsyncs", writers*each, rounds)
}

// TestWriteRefusesARecordTooLongToReadBack: a record whose line would be
// longer than OpenFile resumes from and Verify reads is refused, nothing
// is written, and the log goes on: it still verifies, reopens and takes
// the next record.
func TestWriteRefusesARecordTooLongToReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err)
	writeAll(t, l, decision("a", "allow"))
	big := decision("big", "deny")
	big.Reason = strings.Repeat("x", 17<<20)
	err = l.Write(context.Background(), big)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bytes, over the")
	writeAll(t, l, decision("b", "allow"))
	require.NoError(t, l.Close())
	assert.Equal(t, 2, checkFile(t, path).Records)

	l, err = audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err, "the log reopens")
	writeAll(t, l, decision("c", "allow"))
	require.NoError(t, l.Close())
	assert.Equal(t, 3, checkFile(t, path).Records)
}
