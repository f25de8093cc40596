//go:build unix

package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// callRecords sorts a log's records by the text argument of their call:
// the decision and the outcome of each call.
type callRecords struct {
	decision map[string]audit.Record // by args.text
	outcome  map[string]audit.Record // by call ID
}

func readCalls(t *testing.T, data []byte) callRecords {
	t.Helper()
	cr := callRecords{decision: map[string]audit.Record{}, outcome: map[string]audit.Record{}}
	for line := range bytes.Lines(data) {
		var r audit.Record
		require.NoError(t, json.Unmarshal(line, &r))
		switch r.Kind {
		case audit.KindDecision:
			var args struct{ Text string }
			require.NoError(t, json.Unmarshal(r.Args, &args))
			cr.decision[args.Text] = r
		case audit.KindOutcome:
			_, dup := cr.outcome[r.ID]
			require.False(t, dup, "one outcome per call")
			cr.outcome[r.ID] = r
		}
	}
	return cr
}

// startDurabilityGuard starts mcpguard with its default -sync each in front
// of the misbehaving test upstream. The background fsync of outcomes is
// put off for an hour, so only calls and exit make them durable.
func startDurabilityGuard(t *testing.T, ctx context.Context) (*stdioClient, string) {
	t.Helper()
	guard := buildBin(t, "mcpguard")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	logPath := filepath.Join(dir, "decisions.jsonl")
	require.NoError(t, os.WriteFile(policy, []byte(misbehavingPolicy), 0o644))
	return startStdioClient(t, ctx, misbehavingArgv(t, guard, policy, logPath, "-sync-interval", "1h")), logPath
}

// TestMCPGuardOutcomesOnCleanShutdown: with outcomes joining the next
// group commit, a clean exit — SIGTERM, or the client closing stdin —
// still leaves every call's decision and outcome in the log, which
// verifies.
func TestMCPGuardOutcomesOnCleanShutdown(t *testing.T) {
	for _, how := range []string{"SIGTERM", "stdin closed"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sc, logPath := startDurabilityGuard(t, ctx)
			const calls = 5
			for i := range calls {
				res := sc.call(t, ctx, toolCall{"echo", map[string]any{"text": fmt.Sprint("c", i)}})
				require.Equal(t, fmt.Sprint("echo c", i), res.Text)
			}
			if how == "SIGTERM" {
				sc.stop(t)
			} else {
				require.NoError(t, sc.c.Close()) // closes stdin and waits for the exit
				require.NotNil(t, sc.cmd.ProcessState)
				assert.True(t, sc.cmd.ProcessState.Success(), "stderr: %s", sc.stderr.String())
			}
			data, err := os.ReadFile(logPath)
			require.NoError(t, err)
			_, err = audit.Verify(bytes.NewReader(data), audit.VerifyOptions{})
			require.NoError(t, err)
			cr := readCalls(t, data)
			require.Len(t, cr.decision, calls)
			for i := range calls {
				d, ok := cr.decision[fmt.Sprint("c", i)]
				require.True(t, ok, "decision of call %d", i)
				o, ok := cr.outcome[d.ID]
				require.True(t, ok, "outcome of call %d, the last one included", i)
				assert.Greater(t, o.Seq, d.Seq)
			}
		})
	}
}

// TestMCPGuardSIGKILL kills mcpguard with SIGKILL while 4 clients' calls
// are in flight. The log verifies up to its last complete line and
// resumes; every call a client got an answer for has its decision and its
// outcome in the log (both are written to the file before the answer is
// sent); every outcome follows its decision. What the kill loses is at
// most the outcomes of the calls in flight: a decision without an outcome
// is a call that had not returned.
func TestMCPGuardSIGKILL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc, logPath := startDurabilityGuard(t, ctx)

	var mu sync.Mutex
	var answered []string
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				text := fmt.Sprintf("w%d-%d", w, i)
				res, err := sc.callErr(ctx, toolCall{"echo", map[string]any{"text": text}})
				select {
				case <-killed:
					return // an answer may still have been read: not counted
				default:
				}
				if err != nil {
					t.Errorf("call before the kill: %v", err)
					return
				}
				if res.Text != "echo "+text {
					t.Errorf("answer %q to %s", res.Text, text)
					return
				}
				mu.Lock()
				answered = append(answered, text)
				n := len(answered)
				mu.Unlock()
				if n >= 200 {
					return
				}
			}
		}()
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answered) >= 60
	}, 30*time.Second, time.Millisecond, "calls answered; stderr: %s", sc.stderr.String())
	mu.Lock()
	got := append([]string(nil), answered...)
	require.NoError(t, sc.cmd.Process.Signal(syscall.SIGKILL))
	close(killed)
	mu.Unlock()
	_ = sc.cmd.Wait()
	sc.c.Close()
	wg.Wait()

	data, err := os.ReadFile(logPath)
	require.NoError(t, err)
	good := data[:bytes.LastIndexByte(data, '\n')+1] // a line torn by the kill is not a record
	sum, err := audit.Verify(bytes.NewReader(good), audit.VerifyOptions{})
	require.NoError(t, err, "the log verifies up to its last complete line")
	l, err := audit.OpenFile(logPath, audit.FileOptions{})
	require.NoError(t, err, "the next start resumes the chain")
	require.NoError(t, l.Close())

	cr := readCalls(t, good)
	for _, text := range got {
		d, ok := cr.decision[text]
		require.True(t, ok, "decision of answered call %s", text)
		o, ok := cr.outcome[d.ID]
		require.True(t, ok, "outcome of answered call %s", text)
		assert.Greater(t, o.Seq, d.Seq)
	}
	byID := map[string]audit.Record{}
	for _, d := range cr.decision {
		byID[d.ID] = d
	}
	inFlight := 0
	for id, o := range cr.outcome {
		d, ok := byID[id]
		require.True(t, ok, "no outcome without its decision")
		assert.Greater(t, o.Seq, d.Seq)
	}
	for id := range byID {
		if _, ok := cr.outcome[id]; !ok {
			inFlight++
		}
	}
	assert.LessOrEqual(t, inFlight, 4, "only calls in flight lack an outcome: one per client at most")
	t.Logf("%d records, %d calls answered before the kill, %d in flight without an outcome", sum.Records, len(got), inFlight)
}
