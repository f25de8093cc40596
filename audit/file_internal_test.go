package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testRecord(id string) *Record {
	return &Record{ID: id, Kind: KindDecision, Time: time.Unix(1700000000, 0), Tool: "t", Effect: "deny"}
}

// gatedLog opens a SyncEachRecord log whose fsyncs block until released.
func gatedLog(t *testing.T) (l *Log, path string, entered chan struct{}, release chan error) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := OpenFile(path, FileOptions{})
	require.NoError(t, err)
	entered = make(chan struct{}, 100)
	release = make(chan error)
	f := l.f
	l.sync.sync = func() error {
		entered <- struct{}{}
		if err := <-release; err != nil {
			return err
		}
		return f.Sync()
	}
	return l, path, entered, release
}

func verifyFile(t *testing.T, path string) Summary {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sum, err := Verify(f, VerifyOptions{})
	require.NoError(t, err)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	validateLog(t, data)
	return sum
}

// TestGroupCommit: writers that arrive while an fsync is running share the
// next one, and none returns before its record is covered by an fsync.
func TestGroupCommit(t *testing.T) {
	l, path, entered, release := gatedLog(t)
	const n = 8
	done := make(chan error, n)

	go func() { done <- l.Write(context.Background(), testRecord("leader")) }()
	<-entered // the first writer is syncing its own record

	for i := range n - 1 {
		go func() { done <- l.Write(context.Background(), testRecord(fmt.Sprint("w", i))) }()
	}
	require.Eventually(t, func() bool { return l.sync.written.Load() == n }, 5*time.Second, time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("a Write returned before any fsync finished: %v", err)
	default:
	}

	release <- nil // round 1 covers only the leader's record
	require.NoError(t, <-done)
	<-entered // one waiter leads round 2 for all the others
	select {
	case err := <-done:
		t.Fatalf("a Write returned before its fsync: %v", err)
	case <-time.After(10 * time.Millisecond):
	}
	release <- nil
	for range n - 1 {
		require.NoError(t, <-done)
	}
	assert.Equal(t, uint64(2), l.sync.rounds, "8 records, 2 fsyncs")
	assert.Equal(t, uint64(n), l.sync.synced)

	go func() { // Close has nothing left to sync: this stays unused
		select {
		case release <- nil:
		case <-time.After(time.Second):
		}
	}()
	require.NoError(t, l.Close())
	assert.Equal(t, uint64(2), l.sync.rounds)
	assert.Equal(t, n, verifyFile(t, path).Records)
}

// TestSyncFailure: a failed fsync fails every writer waiting for it and
// every later Write, and Close reports it.
func TestSyncFailure(t *testing.T) {
	l, path, entered, release := gatedLog(t)
	errIO := errors.New("EIO")
	done := make(chan error, 2)
	go func() { done <- l.Write(context.Background(), testRecord("a")) }()
	<-entered
	go func() { done <- l.Write(context.Background(), testRecord("b")) }()
	require.Eventually(t, func() bool { return l.sync.written.Load() == 2 }, 5*time.Second, time.Millisecond)
	release <- errIO
	for range 2 {
		err := <-done
		require.ErrorIs(t, err, errIO)
		assert.Contains(t, err.Error(), "not confirmed durable")
	}
	err := l.Write(context.Background(), testRecord("c"))
	require.ErrorIs(t, err, errIO)
	assert.Contains(t, err.Error(), "unusable")
	assert.ErrorIs(t, l.Close(), errIO)
	// The records whose fsync failed are whole: the file still verifies.
	assert.Equal(t, 2, verifyFile(t, path).Records)
}

// TestSyncIntervalFailure: a failed background fsync fails later writes.
func TestSyncIntervalFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := OpenFile(path, FileOptions{Sync: SyncInterval, Interval: time.Millisecond})
	require.NoError(t, err)
	errIO := errors.New("EIO")
	l.sync.mu.Lock()
	l.sync.sync = func() error { return errIO }
	l.sync.mu.Unlock()
	require.NoError(t, l.Write(context.Background(), testRecord("a")))
	require.Eventually(t, func() bool { return l.sync.failure() != nil }, 5*time.Second, time.Millisecond)
	assert.ErrorIs(t, l.Write(context.Background(), testRecord("b")), errIO)
	assert.ErrorIs(t, l.Close(), errIO)
}

// TestWaitCanceled: a writer whose context ends while waiting for its fsync
// gets an error; the record is whole in the file.
func TestWaitCanceled(t *testing.T) {
	l, path, entered, release := gatedLog(t)
	done := make(chan error, 1)
	go func() { done <- l.Write(context.Background(), testRecord("a")) }()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		err := l.Write(ctx, testRecord("b"))
		assert.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "written but not confirmed durable")
	})
	require.Eventually(t, func() bool { return l.sync.written.Load() == 2 }, 5*time.Second, time.Millisecond)
	cancel()
	wg.Wait()
	release <- nil
	require.NoError(t, <-done)
	go func() {
		<-entered
		release <- nil
	}()
	require.NoError(t, l.Close(), "Close syncs the canceled writer's record")
	assert.Equal(t, 2, verifyFile(t, path).Records)
}
