package audittest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// NewSinkFunc makes a fresh sink for one test and returns it with a function
// that reads back, in order, every record the sink has stored so far.
type NewSinkFunc func(t *testing.T) (audit.Sink, func() []audit.Record)

// NewFailingSinkFunc makes a fresh sink whose storage accepts the first
// accept records and fails every write after them, and a read-back
// function as for [NewSinkFunc].
type NewFailingSinkFunc func(t *testing.T, accept int) (audit.Sink, func() []audit.Record)

// TestSink runs the conformance tests against sinks from newSink, each in
// its own subtest with a fresh sink. See the package documentation for what
// is checked.
func TestSink(t *testing.T, newSink NewSinkFunc) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, newSink NewSinkFunc)
	}{
		{"RoundTrip", testRoundTrip},
		{"Order", testOrder},
		{"Concurrent", testConcurrent},
		{"NotRetained", testNotRetained},
		{"CanceledContext", testCanceled},
		{"NilRecord", testNilRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newSink) })
	}
}

// TestSinkErrors checks that a sink reports every record it failed to
// store: with storage that accepts 3 records, the first 3 sequential Writes
// must succeed, the rest must fail, and exactly the records whose Write
// succeeded must be read back.
func TestSinkErrors(t *testing.T, newFailing NewFailingSinkFunc) {
	t.Helper()
	const accept, total = 3, 6
	sink, readBack := newFailing(t, accept)
	ctx := context.Background()
	var stored []string
	for i := range total {
		r := decision(i, "deny")
		err := sink.Write(ctx, r)
		if i < accept {
			require.NoError(t, err, "write %d of %d, within what the storage accepts", i+1, total)
		} else {
			assert.Error(t, err, "write %d: the storage failed, so Write must report it", i+1)
		}
		if err == nil {
			stored = append(stored, r.ID)
		}
	}
	assert.Equal(t, stored, ids(readBack()), "exactly the records whose Write returned nil are stored")
}

// base is the time of the kit's records: whole milliseconds, since some
// sinks (slog's JSON handler) keep no finer times.
var base = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func decision(i int, effect string) *audit.Record {
	r := &audit.Record{
		Version:   audit.FormatVersion,
		ID:        fmt.Sprintf("audittest-%d", i),
		Kind:      audit.KindDecision,
		Time:      base.Add(time.Duration(i) * time.Millisecond),
		Principal: "audittest-bot",
		Tool:      "write_file",
		Args:      json.RawMessage(`{"content":"hello","path":"/w/out/a.txt"}`),
		Effect:    effect,
		Stage:     "policy",
		Reason:    "no scope grants write_file",
		LatencyNS: 1500,
	}
	if effect == "allow" {
		r.Scope, r.Grant, r.Reason = "fs.write", "fs.write#0", `allowed by scope "fs.write"`
	}
	return r
}

// full sets every member a decision can have.
func full(i int) *audit.Record {
	r := decision(i, "allow")
	r.Session = "sess-1"
	r.Correlation = &audit.Correlation{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Conversation: "conv-1", Turn: "3", Message: "msg-9"}
	r.ArgsSHA256 = "0f0d6c6b4a3d1d8b8f1f4e1e2a7f4c1b9e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b"
	r.Redacted = []string{"/content"}
	r.Args = json.RawMessage(`{"content":"redacted:hmac-sha256:00112233445566778899aabbccddeeff","path":"/w/out/a.txt"}`)
	r.Violations = []audit.Violation{{Pointer: "/mode", Message: "must be <= 511"}}
	r.Limits = []audit.LimitState{{Name: "writes", Key: "audittest-bot", Allowed: true}}
	r.Approval = &audit.Approval{Rule: "ask-writes", Approved: true, By: "alice", Reason: "ok"}
	r.Shadow = []audit.Shadow{{Rule: "new-rule", Effect: "deny", Matched: true, Message: "would deny"}}
	r.Candidate = &audit.Candidate{Policy: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", Effect: "deny", Rule: "new-rule", Reason: "would deny"}
	r.Errors = []string{"rule x: no such key"}
	r.Policy = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	return r
}

func outcome(i int) *audit.Record {
	return &audit.Record{
		Version:      audit.FormatVersion,
		ID:           fmt.Sprintf("audittest-%d", i),
		Kind:         audit.KindOutcome,
		Time:         base.Add(time.Duration(i)*time.Millisecond + time.Second),
		Principal:    "audittest-bot",
		Tool:         "write_file",
		DurationNS:   250_000,
		Error:        "disk full",
		ErrorClass:   "tool_error",
		ResultBytes:  5,
		ResultSHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	}
}

func ids(rs []audit.Record) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// assertSame compares the members a sink must keep.
func assertSame(t *testing.T, want *audit.Record, got audit.Record) {
	t.Helper()
	assert.Equal(t, want.ID, got.ID)
	assert.Equal(t, want.Kind, got.Kind)
	assert.True(t, want.Time.Equal(got.Time), "time %v, want %v", got.Time, want.Time)
	assert.Equal(t, want.Principal, got.Principal)
	assert.Equal(t, want.Session, got.Session)
	assert.Equal(t, want.Correlation, got.Correlation)
	assert.Equal(t, want.Tool, got.Tool)
	if len(want.Args) > 0 {
		assert.JSONEq(t, string(want.Args), string(got.Args))
	} else {
		assert.Empty(t, got.Args)
	}
	assert.Equal(t, want.ArgsSHA256, got.ArgsSHA256)
	assert.Equal(t, want.Redacted, got.Redacted)
	assert.Equal(t, want.Effect, got.Effect)
	assert.Equal(t, want.Stage, got.Stage)
	assert.Equal(t, want.Rule, got.Rule)
	assert.Equal(t, want.Scope, got.Scope)
	assert.Equal(t, want.Grant, got.Grant)
	assert.Equal(t, want.Reason, got.Reason)
	assert.Equal(t, want.Violations, got.Violations)
	assert.Equal(t, want.Limits, got.Limits)
	assert.Equal(t, want.Approval, got.Approval)
	assert.Equal(t, want.Shadow, got.Shadow)
	assert.Equal(t, want.Candidate, got.Candidate)
	assert.Equal(t, want.Errors, got.Errors)
	assert.Equal(t, want.Policy, got.Policy)
	assert.Equal(t, want.LatencyNS, got.LatencyNS)
	assert.Equal(t, want.DurationNS, got.DurationNS)
	assert.Equal(t, want.Error, got.Error)
	assert.Equal(t, want.ErrorClass, got.ErrorClass)
	assert.Equal(t, want.ResultBytes, got.ResultBytes)
	assert.Equal(t, want.ResultSHA256, got.ResultSHA256)
}

func testRoundTrip(t *testing.T, newSink NewSinkFunc) {
	sink, readBack := newSink(t)
	ctx := context.Background()
	want := []*audit.Record{full(0), outcome(0), decision(1, "deny")}
	copies := make([]audit.Record, len(want))
	for i, r := range want {
		copies[i] = *r
		require.NoError(t, sink.Write(ctx, r))
	}
	got := readBack()
	require.Len(t, got, len(want))
	for i := range want {
		assertSame(t, &copies[i], got[i])
	}
}

func testOrder(t *testing.T, newSink NewSinkFunc) {
	sink, readBack := newSink(t)
	ctx := context.Background()
	var want []string
	for i := range 50 {
		r := decision(i, "deny")
		require.NoError(t, sink.Write(ctx, r))
		want = append(want, r.ID)
	}
	assert.Equal(t, want, ids(readBack()))
}

func testConcurrent(t *testing.T, newSink NewSinkFunc) {
	sink, readBack := newSink(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := decision(w*each+i, "deny")
				r.Principal = fmt.Sprint("writer-", w)
				assert.NoError(t, sink.Write(context.Background(), r))
			}
		})
	}
	wg.Wait()
	got := readBack()
	require.Len(t, got, writers*each, "every record stored exactly once")
	seen := map[string]bool{}
	last := map[string]int{} // per writer: index of its last record
	for _, r := range got {
		assert.False(t, seen[r.ID], "record %s stored twice", r.ID)
		seen[r.ID] = true
		var n int
		_, err := fmt.Sscanf(r.ID, "audittest-%d", &n)
		require.NoError(t, err)
		if prev, ok := last[r.Principal]; ok {
			assert.Greater(t, n, prev, "%s's records out of order", r.Principal)
		}
		last[r.Principal] = n
	}
	assert.Len(t, seen, writers*each)
}

func testNotRetained(t *testing.T, newSink NewSinkFunc) {
	sink, readBack := newSink(t)
	ctx := context.Background()
	r := full(0)
	r.Args = slices.Clone(r.Args) // the kit's own buffer, changed below
	// What was written, deeply copied: a sink must not see later changes
	// to the record or to anything it points to.
	var want audit.Record
	require.NoError(t, json.Unmarshal(r.AppendJSON(nil), &want))
	require.NoError(t, sink.Write(ctx, r))

	// The caller reuses its record and every buffer in it, as the guard
	// does with pooled records.
	r.ID = "changed"
	r.Reason = "changed"
	copy(r.Args, `{"content":"CHANGED`)
	r.Redacted[0] = "/changed"
	r.Violations[0].Message = "changed"
	r.Limits[0].Name = "changed"
	r.Shadow[0].Rule = "changed"
	r.Errors[0] = "changed"
	r.Correlation.TraceID = "changed"
	r.Approval.By = "mallory"
	r.Candidate.Effect = "allow"
	require.NoError(t, sink.Write(ctx, decision(1, "deny")))

	got := readBack()
	require.Len(t, got, 2)
	assertSame(t, &want, got[0])
}

func testCanceled(t *testing.T, newSink NewSinkFunc) {
	sink, readBack := newSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	canceled := decision(0, "deny")
	err := sink.Write(ctx, canceled)
	after := decision(1, "deny")
	require.NoError(t, sink.Write(context.Background(), after), "the sink stays usable after a cancelled Write")

	got := readBack()
	if err == nil {
		require.Equal(t, []string{canceled.ID, after.ID}, ids(got), "Write returned nil, so the record is stored")
	} else {
		require.Contains(t, [][]string{{after.ID}, {canceled.ID, after.ID}}, ids(got),
			"a failed Write stores the whole record or nothing")
	}
	if len(got) == 2 {
		assertSame(t, decision(0, "deny"), got[0])
	}
	assertSame(t, decision(1, "deny"), got[len(got)-1])
}

func testNilRecord(t *testing.T, newSink NewSinkFunc) {
	sink, readBack := newSink(t)
	var err error
	require.NotPanics(t, func() { err = sink.Write(context.Background(), nil) })
	assert.Error(t, err, "a nil record is an error")
	assert.Empty(t, readBack())
}
