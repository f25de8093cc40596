package redislimit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/redislimit"
)

// slack is how much longer than its timeout a Take may take: scheduling,
// and the race detector on a busy machine. It is well under the client's
// own 3s read timeout, which an unbounded Take would wait for.
const slack = 900 * time.Millisecond

const guardPolicy = `version: 1
scopes:
  s:
    grants:
      - tools: [echo]
        limit: [calls, slots]
limits:
  calls: {rate: 1000/s}
  slots: {concurrency: 10}
`

func newGuard(t *testing.T, l toolguard.Limiter, sink audit.Sink) (*toolguard.Guard, context.Context) {
	t.Helper()
	p, err := scope.Parse([]byte(guardPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithLimiter(l), toolguard.WithSink(sink))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "echo", Handler: func(context.Context, json.RawMessage) (any, error) { return "ok", nil }}))
	return g, toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bot", Scopes: []string{"s"}})
}

// Redis slow, then down, then back: calls are denied with a clear reason
// within the timeout, and flow again once Redis is back.
func TestRedisOutageFailsClosed(t *testing.T) {
	srv := startRedis(t)
	const timeout = 100 * time.Millisecond
	l, err := redislimit.New(srv.Client(), redislimit.Options{Timeout: timeout}) // the client's defaults: 3s read timeout, 3 retries
	require.NoError(t, err)
	g, ctx := newGuard(t, l, audit.Discard)
	uses := []scope.LimitUse{use(sharedRateLimit, "all", 1), use(sharedCapLimit, "all", 1)}
	take := func() ([]toolguard.LimitResult, func(), time.Duration, error) {
		start := time.Now()
		res, release, err := l.Take(context.Background(), start, uses, false)
		return res, release, time.Since(start), err
	}

	flowing := func() bool {
		res, release, _, err := take()
		if err != nil {
			return false // the first calls dial and load the script: slow under -race
		}
		require.True(t, res[0].Allowed && res[1].Allowed)
		require.NotNil(t, release)
		release()
		_, err = g.Call(ctx, "echo", nil)
		return err == nil
	}
	require.Eventually(t, flowing, 10*time.Second, 10*time.Millisecond)

	for _, stage := range []struct {
		name         string
		before       func()
		wantErr      string
		after        func()
		denyThrough  bool
		attemptCount int
	}{
		{name: "paused", before: srv.Pause, after: srv.Resume, wantErr: "redislimit: redis is unavailable: no answer within 100ms", attemptCount: 3},
		{name: "stopped", before: srv.Stop, after: srv.Start, wantErr: "redislimit: redis is unavailable", attemptCount: 5},
	} {
		t.Run(stage.name, func(t *testing.T) {
			stage.before()
			for i := 0; i < stage.attemptCount; i++ {
				res, release, took, err := take()
				require.ErrorIs(t, err, redislimit.ErrUnavailable)
				assert.ErrorContains(t, err, stage.wantErr)
				assert.Nil(t, res)
				assert.Nil(t, release)
				assert.Less(t, took, timeout+slack, "Take must give up at the timeout")
			}
			start := time.Now()
			_, err := g.Call(ctx, "echo", nil)
			assert.Less(t, time.Since(start), timeout+slack)
			require.ErrorIs(t, err, toolguard.ErrRateLimited)
			// The model reads the reason without Go package names.
			assert.ErrorContains(t, err, "the rate limiter could not decide, so the call is denied to be safe: redis is unavailable")
			var de *toolguard.DeniedError
			require.ErrorAs(t, err, &de)
			assert.NotContains(t, de.ModelText(), "redislimit:")

			stage.after()
			require.Eventually(t, flowing, 10*time.Second, 10*time.Millisecond, "calls must flow again once Redis is back")
		})
	}
}

// With FailOpen, a call Redis cannot decide is allowed, and the decision
// record says the limit failed open, and why.
func TestFailOpenIsRecorded(t *testing.T) {
	srv := startRedis(t)
	l, err := redislimit.New(srv.Client(), redislimit.Options{Timeout: time.Second, FailOpen: true}) // down, each Take waits it out: go-redis retries dials
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	log, err := audit.OpenFile(path, audit.FileOptions{})
	require.NoError(t, err)
	g, ctx := newGuard(t, l, log)

	// Up: limits apply as usual, nothing failed open.
	res, _, err := l.Take(context.Background(), time.Now(), []scope.LimitUse{use(hourly, "u", 4)}, false)
	require.NoError(t, err)
	assert.False(t, res[0].Allowed, "fail open does not mean no limits")
	assert.False(t, res[0].FailedOpen)
	_, err = g.Call(ctx, "echo", nil)
	require.NoError(t, err)

	srv.Stop()
	res, release, err := l.Take(context.Background(), time.Now(), []scope.LimitUse{use(hourly, "u", 4), use(builds, "u", 1)}, false)
	require.NoError(t, err)
	assert.Nil(t, release)
	for _, r := range res {
		assert.True(t, r.Allowed)
		assert.True(t, r.FailedOpen)
		assert.Contains(t, r.Err, "redislimit: redis is unavailable")
	}
	out, err := g.Call(ctx, "echo", nil)
	require.NoError(t, err)
	assert.Equal(t, "ok", out)

	// A cancelled context is not a Redis failure: it does not fail open.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err = l.Take(cctx, time.Now(), []scope.LimitUse{use(hourly, "u", 1)}, false)
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, log.Close())
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	sum, err := audit.Verify(bytes.NewReader(raw), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Allowed)

	var failedOpen []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var rec struct {
			Kind   string           `json:"kind"`
			Limits []map[string]any `json:"limits"`
			Errors []string         `json:"errors"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		if rec.Kind != "decision" || len(rec.Limits) == 0 || rec.Limits[0]["failed_open"] == nil {
			continue
		}
		failedOpen = append(failedOpen, rec.Limits...)
		require.Len(t, rec.Errors, 2)
		assert.Contains(t, rec.Errors[0], `limit "calls" failed open: redislimit: redis is unavailable`)
		assert.Contains(t, rec.Errors[1], `limit "slots" failed open: redislimit: redis is unavailable`)
	}
	require.Len(t, failedOpen, 2, "one decision, two limits, both failed open")
	for _, lim := range failedOpen {
		assert.Equal(t, true, lim["failed_open"])
		assert.Equal(t, true, lim["allowed"])
	}
}
