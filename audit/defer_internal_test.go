package audit

import (
	"bytes"
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

// durableLog opens a DeferOutcomes log whose fsyncs also keep an image of
// what is certainly on stable storage: the file as read just before each
// fsync. A machine crash cannot be caused in a test; the image is what one
// would leave, at the latest fsync.
func durableLog(t *testing.T, interval time.Duration) (l *Log, path string, image func() []byte) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := OpenFile(path, FileOptions{DeferOutcomes: true, Interval: interval, HMACKey: []byte("k")})
	require.NoError(t, err)
	var mu sync.Mutex
	var durable []byte
	f := l.f
	l.sync.sync = func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		mu.Lock()
		durable = data
		mu.Unlock()
		return nil
	}
	return l, path, func() []byte {
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(durable)
	}
}

func outcomeRecord(id string) *Record {
	return &Record{ID: id, Kind: KindOutcome, Time: time.Unix(1700000000, 0), Tool: "t", DurationNS: 1000}
}

// TestDeferOutcomesOneFsyncPerCall: with DeferOutcomes a decision waits for
// its fsync and the outcome does not, so a run of sequential calls costs
// one fsync a call, and each decision is durable when its Write returns.
func TestDeferOutcomesOneFsyncPerCall(t *testing.T) {
	l, _, image := durableLog(t, time.Hour)
	ctx := context.Background()
	const calls = 20
	for i := range calls {
		d := testRecord(fmt.Sprint("c", i))
		d.Effect = "allow"
		require.NoError(t, l.Write(ctx, d))
		assert.Contains(t, string(image()), `"id":"c`+fmt.Sprint(i)+`"`, "decision %d durable before the tool runs", i)
		require.NoError(t, l.Write(ctx, outcomeRecord(d.ID)))
	}
	l.sync.mu.Lock()
	rounds, synced := l.sync.rounds, l.sync.synced
	l.sync.mu.Unlock()
	assert.Equal(t, uint64(calls), rounds, "one fsync a call")
	assert.Equal(t, uint64(2*calls-1), synced, "all but the last outcome durable; it joins the next fsync")
	require.NoError(t, l.Close())
	img := image()
	sum, err := Verify(bytes.NewReader(img), VerifyOptions{HMACKey: []byte("k"), RequireClosed: true})
	require.NoError(t, err, "Close makes every outcome durable")
	assert.Equal(t, 2*calls+1, sum.Records, "every record and the close checkpoint")
}

// TestDeferOutcomesWithoutOption: the zero FileOptions still waits for
// every record, outcomes included.
func TestDeferOutcomesWithoutOption(t *testing.T) {
	l, _, _, release := gatedLog(t)
	done := make(chan error, 1)
	go func() { done <- l.Write(context.Background(), outcomeRecord("o")) }()
	select {
	case err := <-done:
		t.Fatalf("outcome returned before its fsync: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release <- nil
	require.NoError(t, <-done)
	require.NoError(t, l.Close())
}

// TestDeferOutcomesIntervalFlush: an outcome with no record after it is
// made durable by the background fsync, without another Write.
func TestDeferOutcomesIntervalFlush(t *testing.T) {
	l, _, image := durableLog(t, 20*time.Millisecond)
	ctx := context.Background()
	d := testRecord("c")
	d.Effect = "allow"
	require.NoError(t, l.Write(ctx, d))
	require.NoError(t, l.Write(ctx, outcomeRecord("c")))
	assert.NotContains(t, string(image()), `"kind":"outcome"`, "not yet synced")
	require.Eventually(t, func() bool {
		return bytes.Contains(image(), []byte(`"kind":"outcome"`))
	}, 5*time.Second, 5*time.Millisecond, "synced within the interval")
	require.NoError(t, l.Close())
}

// TestDeferOutcomesMachineCrash: calls run from 4 goroutines; at random
// moments the durable image is taken as a machine crash would leave it.
// Each image verifies, resumes, and holds every decision whose tool had
// started running; what it lacks is only outcomes and decisions whose
// Write had not returned.
func TestDeferOutcomesMachineCrash(t *testing.T) {
	l, _, image := durableLog(t, 5*time.Millisecond)
	ctx := context.Background()
	var mu sync.Mutex
	ran := map[string]bool{} // decisions whose Write returned: the tool ran
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				d := testRecord(fmt.Sprintf("w%d-%d", w, i))
				d.Effect = "allow"
				if err := l.Write(ctx, d); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ran[d.ID] = true
				mu.Unlock()
				if err := l.Write(ctx, outcomeRecord(d.ID)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt() // a failed require must not leave writers behind the test
	lostOutcomes := 0
	for range 10 {
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		started := make(map[string]bool, len(ran))
		for id := range ran {
			started[id] = true
		}
		mu.Unlock()
		// The fsync may have caught a line half written, as a real crash
		// can: OpenFile cuts such a torn tail, and what is left verifies.
		crashed := filepath.Join(t.TempDir(), "crashed.jsonl")
		require.NoError(t, os.WriteFile(crashed, image(), 0o600))
		rl, err := OpenFile(crashed, FileOptions{HMACKey: []byte("k")})
		require.NoError(t, err, "the durable image resumes")
		require.NoError(t, rl.Close())
		img, err := os.ReadFile(crashed)
		require.NoError(t, err)
		_, err = Verify(bytes.NewReader(img), VerifyOptions{HMACKey: []byte("k")})
		require.NoError(t, err, "the durable image verifies once its torn tail is cut")
		decided, outcomes := map[string]bool{}, map[string]bool{}
		for line := range bytes.Lines(img) {
			rec, reason := parseLine(bytes.TrimSuffix(line, []byte("\n")))
			require.Empty(t, reason)
			switch rec.Kind {
			case KindDecision:
				decided[rec.ID] = true
			case KindOutcome:
				outcomes[rec.ID] = true
			}
		}
		for id := range started {
			require.True(t, decided[id], "decision %s: its tool ran, so it is durable", id)
			if !outcomes[id] {
				lostOutcomes++
			}
		}
	}
	halt()
	require.NoError(t, l.Close())
	t.Logf("outcomes not yet durable at the simulated crashes: %d", lostOutcomes)
}

// TestDeferOutcomesFsyncFailure: when the fsync that should have made a
// deferred outcome durable fails, the failure is not lost: the next
// decision's Write fails (so its call is denied), and so does Close.
func TestDeferOutcomesFsyncFailure(t *testing.T) {
	errIO := errors.New("EIO")
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	l, err := OpenFile(path, FileOptions{DeferOutcomes: true, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	var mu sync.Mutex
	var failing bool
	f := l.f
	l.sync.sync = func() error {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errIO
		}
		return f.Sync()
	}
	ctx := context.Background()
	d := testRecord("c1")
	d.Effect = "allow"
	require.NoError(t, l.Write(ctx, d))
	mu.Lock()
	failing = true
	mu.Unlock()
	require.NoError(t, l.Write(ctx, outcomeRecord("c1")), "the outcome does not wait for its fsync")
	require.Eventually(t, func() bool { return l.sync.failure() != nil }, 5*time.Second, time.Millisecond,
		"the background fsync ran and failed")
	err = l.Write(ctx, testRecord("c2"))
	require.ErrorIs(t, err, errIO, "the next decision is refused")
	require.ErrorIs(t, l.Close(), errIO)
}
