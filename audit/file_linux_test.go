//go:build linux

package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// TestOpenFileWriteErrorTruncates makes a real write fail half way with
// RLIMIT_FSIZE (the Go runtime ignores SIGXFSZ, so write returns EFBIG): the
// partial record is cut off, Write returns the error, and the chain goes on
// once the file can grow again.
func TestOpenFileWriteErrorTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err)
	defer l.Close()
	writeAll(t, l, decision("c0", "deny"))
	st, err := os.Stat(path)
	require.NoError(t, err)
	good := st.Size()

	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old))
	limit := syscall.Rlimit{Cur: uint64(good) + 40, Max: old.Max}
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit))
	err = l.Write(context.Background(), decision("c1", "deny"))
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old))

	require.ErrorIs(t, err, syscall.EFBIG)
	assert.Contains(t, err.Error(), "record not stored")
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, good, st.Size(), "the partial record was cut off")
	assert.Equal(t, 1, checkFile(t, path).Records)

	r := decision("c2", "deny")
	writeAll(t, l, r)
	assert.Equal(t, uint64(1), r.Seq, "the failed record took no seq")
	assert.Equal(t, 2, checkFile(t, path).Records)
}
