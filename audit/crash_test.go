//go:build unix

package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

const (
	crashPathEnv = "AUDIT_CRASH_LOG"
	crashModeEnv = "AUDIT_CRASH_SYNC"
	crashKeysEnv = "AUDIT_CRASH_KEYS"
	// crashDeferEnv makes the child write a decision and an outcome per
	// call, with FileOptions.DeferOutcomes.
	crashDeferEnv = "AUDIT_CRASH_DEFER"
)

// crashOptions is the configuration of the crashing writer: checkpoints,
// a keyed chain and rotation, so a kill can land in any of them.
func crashOptions(mode audit.SyncMode) audit.FileOptions {
	return audit.FileOptions{Sync: mode, Interval: 2 * time.Millisecond, CheckpointEvery: 25,
		SigningKey: testKey, HMACKey: []byte("crash key"), MaxBytes: 32 << 10}
}

var crashVerify = audit.VerifyOptions{PublicKey: testPub, HMACKey: []byte("crash key")}

// TestCrashChild is the process TestCrashRecovery kills: it appends records
// from 8 goroutines until killed and prints the seq of each record Write
// accepted.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("run by TestCrashRecovery")
	}
	var mode audit.SyncMode
	require.NoError(t, mode.UnmarshalText([]byte(os.Getenv(crashModeEnv))))
	opts := crashOptions(mode)
	if keys := os.Getenv(crashKeysEnv); keys != "" {
		opts = keyedCrashOptions(keys, mode)
	}
	deferred := os.Getenv(crashDeferEnv) == "1"
	opts.DeferOutcomes = deferred
	l, err := audit.OpenFile(path, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("p%d-w%d-%d", os.Getpid(), w, i)
				records := []*audit.Record{decision(id, "deny")}
				if deferred {
					records = []*audit.Record{decision(id, "allow"), outcome(id)}
				}
				for _, r := range records {
					if err := l.Write(context.Background(), r); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(4)
					}
					mu.Lock()
					fmt.Fprintln(out, r.Seq)
					out.Flush()
					mu.Unlock()
				}
			}
		}()
	}
	select {}
}

// TestCrashRecovery SIGKILLs a writer 20 times under load. Each time the
// log verifies up to its last complete line, holds every record a Write
// accepted, and the next writer resumes the chain. Every fourth writer
// writes a decision and an outcome per call with DeferOutcomes: a kill of
// the process loses none of the outcomes Write accepted without their
// fsync either.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	modes := []audit.SyncMode{audit.SyncNone, audit.SyncInterval, audit.SyncEachRecord}
	records, torn := 0, 0
	start := time.Now()
	for round := range 20 {
		mode := modes[round%len(modes)]
		deferred := round%4 == 3
		if deferred {
			mode = audit.SyncEachRecord
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashModeEnv+"="+mode.String())
		if deferred {
			cmd.Env = append(cmd.Env, crashDeferEnv+"=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())

		// Kill after a varying number of accepted records.
		killAt := int64(50 + 37*round)
		var acked, maxSeq atomic.Int64
		maxSeq.Store(-1)
		enough := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				seq, err := strconv.ParseInt(sc.Text(), 10, 64)
				if err != nil {
					continue // a line cut by the kill
				}
				if seq > maxSeq.Load() {
					maxSeq.Store(seq)
				}
				if acked.Add(1) == killAt {
					close(enough)
				}
			}
		}()
		select {
		case <-enough:
		case <-done:
			t.Fatalf("round %d: writer exited: %s", round, stderr.String())
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: writer too slow: %d records", round, acked.Load())
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		<-done
		_ = cmd.Wait()
		require.Empty(t, stderr.String(), "round %d", round)

		_, data := readChain(t, path)
		good := data[:bytes.LastIndexByte(data, '\n')+1]
		sum, err := audit.Verify(bytes.NewReader(good), crashVerify)
		require.NoError(t, err, "round %d (%s): the log verifies up to its last complete line", round, mode)
		require.GreaterOrEqual(t, int64(sum.LastSeq), maxSeq.Load(), "round %d: every accepted record is there", round)
		require.Greater(t, sum.Records, records, "round %d: the chain grew", round)
		records = sum.Records
		if len(good) < len(data) {
			torn++
			_, err := audit.Verify(bytes.NewReader(data), crashVerify)
			var ve *audit.VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, sum.Records+1, ve.Line)
			assert.Contains(t, ve.Reason, "incomplete last line")
		}
	}

	// One more start resumes the chain and closes it cleanly.
	l, err := audit.OpenFile(path, crashOptions(audit.SyncEachRecord))
	require.NoError(t, err)
	r := decision("last", "deny")
	writeAll(t, l, r)
	require.NoError(t, l.Close())
	files, data := readChain(t, path)
	// The start found the file ended by a kill: it marked the spot with a
	// recover checkpoint right after the last complete record (and the
	// first write may then have rotated the file).
	lines := bytes.Split(data, []byte("\n"))
	assert.Contains(t, string(lines[records]), `"reason":"recover"`)
	assert.GreaterOrEqual(t, r.Seq, uint64(records)+1, "resumed after the last complete record")
	opts := crashVerify
	opts.RequireClosed = true
	_, err = audit.Verify(bytes.NewReader(data), opts)
	require.ErrorContains(t, err, "was resumed at seq", "RequireClosed alone does not take a crash for a clean log")
	opts.AcceptRecovered = true
	sum, err := audit.Verify(bytes.NewReader(data), opts)
	require.NoError(t, err)
	assert.True(t, sum.Closed)
	assert.Len(t, sum.Recovered, 20, "each start after a kill left a recover checkpoint")
	assert.Equal(t, uint64(records), sum.Recovered[len(sum.Recovered)-1])
	assert.Greater(t, len(files), 1, "rotated while crashing")
	t.Logf("20 kills in %v: %d records, %d checkpoints, %d files, %d torn tails cut", time.Since(start).Round(time.Millisecond), sum.Records, sum.Checkpoints, len(files), torn)
}

// keyedCrashOptions are one key configuration without rotation, for the
// resume tests: "hmac" or "sign".
func keyedCrashOptions(keys string, mode audit.SyncMode) audit.FileOptions {
	o := audit.FileOptions{Sync: mode, CheckpointEvery: 25}
	if keys == "hmac" {
		o.HMACKey = []byte("crash key")
	} else {
		o.SigningKey = testKey
	}
	return o
}

// killWriter starts TestCrashChild on path and SIGKILLs it once it has
// reported n accepted records.
func killWriter(t *testing.T, path string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), crashPathEnv+"="+path, crashModeEnv+"=none"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	for n := 0; n < 100 && sc.Scan(); n++ {
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	require.Empty(t, stderr.String())
}

// TestResumeRefusesEditedTailAfterKill: a writer is SIGKILLed, so its log
// ends without a close checkpoint, and the last record is edited on disk.
// With a key, OpenFile refuses to continue the chain and leaves the file
// as it is, and Verify reports the last line; the unedited copy resumes.
func TestResumeRefusesEditedTailAfterKill(t *testing.T) {
	for _, keys := range []string{"hmac", "sign"} {
		t.Run(keys, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "decisions.jsonl")
			killWriter(t, path, crashKeysEnv+"="+keys)
			opts := keyedCrashOptions(keys, audit.SyncEachRecord)
			verify := audit.VerifyOptions{HMACKey: opts.HMACKey}
			if keys == "sign" {
				verify.PublicKey = testPub
			}

			data, err := os.ReadFile(path)
			require.NoError(t, err)
			data = data[:bytes.LastIndexByte(data, '\n')+1] // a torn tail is not a record
			lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
			last := decodeRecord(t, lines[len(lines)-1])
			if last.Kind == audit.KindCheckpoint { // killed just after an interval checkpoint
				last = decodeRecord(t, lines[len(lines)-2])
				lines = lines[:len(lines)-1]
			}
			require.Equal(t, audit.KindDecision, last.Kind)
			_, err = audit.Verify(bytes.NewReader(join(lines)), verify)
			require.NoError(t, err, "the crashed log verifies")

			control := filepath.Join(dir, "control.jsonl")
			require.NoError(t, os.WriteFile(control, join(lines), 0o600))
			l, err := audit.OpenFile(control, opts)
			require.NoError(t, err, "the unedited log resumes")
			require.NoError(t, l.Close())

			last.Principal, last.Reason = "mallory", "approved"
			lines[len(lines)-1] = last.AppendJSON(nil)
			edited := join(lines)
			require.NoError(t, os.WriteFile(path, edited, 0o600))
			_, err = audit.OpenFile(path, opts)
			require.ErrorContains(t, err, "does not authenticate under the Log's key")
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, edited, after, "the refused file is left as it is")

			_, err = audit.Verify(bytes.NewReader(edited), verify)
			var ve *audit.VerifyError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, len(lines), ve.Line, "the last line is reported")
		})
	}
}
