package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// flakySink stores records in a real hash-chained log but refuses one write
// in ten, at random, before storing anything — a disk that comes and goes.
type flakySink struct {
	rec     *recorder
	failed  atomic.Int64
	mu      sync.Mutex
	decided map[string]bool // call ids whose decision record is stored
}

func (s *flakySink) Write(ctx context.Context, r *audit.Record) error {
	if rand.IntN(10) == 0 {
		s.failed.Add(1)
		return errors.New("disk went away")
	}
	if err := s.rec.Write(ctx, r); err != nil {
		return err
	}
	if r.Kind == audit.KindDecision {
		s.mu.Lock()
		s.decided[r.ID] = true
		s.mu.Unlock()
	}
	return nil
}

func (s *flakySink) hasDecision(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.decided[id]
}

// 64 goroutines call for a while through a sink that fails at random,
// handlers that panic or hang past their timeout, and policy reloads. Every
// call must end in at most one decision record (none exactly when its record
// could not be written, and then it is denied); no handler may run before its
// decision record is stored; the counts must match; the log must verify.
func TestStressWithFaults(t *testing.T) {
	open, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: ['*']}]}\nrules:\n  - {name: no-secrets, effect: deny, tools: ['*'], when: 'has(args.secret)'}\n"))
	require.NoError(t, err)
	closed, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: ['*']}]}\nrules:\n  - {name: maintenance, effect: deny, tools: [slow]}\n"))
	require.NoError(t, err)
	sink := &flakySink{rec: newRecorder(), decided: map[string]bool{}}
	g, err := toolguard.New(open, toolguard.WithSink(sink), toolguard.WithToolTimeout(5*time.Millisecond))
	require.NoError(t, err)

	var handlerRuns, unrecordedRuns atomic.Int64
	guarded := func(fn func(ctx context.Context) (any, error)) toolguard.Handler {
		return func(ctx context.Context, _ json.RawMessage) (any, error) {
			handlerRuns.Add(1)
			id, ok := toolguard.CallIDFrom(ctx)
			if !ok || !sink.hasDecision(id) {
				unrecordedRuns.Add(1)
			}
			return fn(ctx)
		}
	}
	require.NoError(t, g.Register(toolguard.Tool{Name: "ok", Handler: guarded(func(context.Context) (any, error) { return "fine", nil })}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "panics", Handler: guarded(func(context.Context) (any, error) { panic("handler bug") })}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "slow", Handler: guarded(func(ctx context.Context) (any, error) {
		<-ctx.Done() // hangs past the tool timeout, then notices
		return nil, ctx.Err()
	})}))

	stop := make(chan struct{})
	var calls, denied, auditDenied, ran atomic.Int64
	var wg sync.WaitGroup
	tools := []string{"ok", "ok", "panics", "slow", "ok", "unknown"}
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: fmt.Sprint("agent-", i), Scopes: []string{"s"}})
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				args := `{"n":1}`
				if n%7 == 0 {
					args = `{"secret":"x"}`
				}
				calls.Add(1)
				_, err := g.Call(ctx, tools[(i+n)%len(tools)], json.RawMessage(args))
				switch {
				case errors.Is(err, toolguard.ErrDenied):
					denied.Add(1)
					if errors.Is(err, toolguard.ErrAuditUnavailable) {
						auditDenied.Add(1)
					}
				default:
					ran.Add(1) // the handler ran: success, tool error, panic or timeout
				}
			}
		}(i)
	}
	reloads := 0
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		p := open
		if reloads%2 == 0 {
			p = closed
		}
		require.NoError(t, g.SetPolicy(p))
		reloads++
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()

	recs := sink.rec.records()
	decisions, allowRecs, denyRecs := 0, 0, 0
	perCall := map[string]int{}
	for _, r := range recs {
		if r.Kind != audit.KindDecision {
			continue
		}
		decisions++
		perCall[r.ID]++
		if r.Effect == "allow" {
			allowRecs++
		} else {
			denyRecs++
		}
	}
	for id, n := range perCall {
		require.Equal(t, 1, n, "call %s has %d decision records", id, n)
	}
	assert.Zero(t, unrecordedRuns.Load(), "a handler ran before its decision record was stored")
	assert.Equal(t, ran.Load(), handlerRuns.Load(), "a call returned as run but its handler did not run, or the reverse")
	assert.EqualValues(t, ran.Load(), allowRecs, "every run has an allow record")
	assert.EqualValues(t, calls.Load()-auditDenied.Load(), decisions, "every call has one decision record, except those denied for want of one")
	assert.EqualValues(t, denied.Load()-auditDenied.Load(), denyRecs)
	sum := sink.rec.verify(t)
	assert.Equal(t, len(recs), sum.Records)
	t.Logf("%d calls, %d reloads: %d ran, %d denied (%d because the sink failed), %d sink failures in all",
		calls.Load(), reloads, ran.Load(), denied.Load(), auditDenied.Load(), sink.failed.Load())
}
