package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

func TestLogWriteVerify(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	rs := sampleRecords(5) // allowed: 0, 2, 4; denied: 1, 3
	rs[3].Principal = "other-bot"
	writeAll(t, l, rs...)
	require.NoError(t, l.Close())

	sum := checkLog(t, buf.Bytes())
	assert.Equal(t, 8, sum.Records)
	assert.Equal(t, 5, sum.Decisions)
	assert.Equal(t, 3, sum.Outcomes)
	assert.Equal(t, 3, sum.Allowed)
	assert.Equal(t, 2, sum.Denied)
	assert.Equal(t, map[string]int{"no-dotenv": 2}, sum.ByRule)
	assert.Equal(t, map[string]int{"support-bot": 4, "other-bot": 1}, sum.Principals)
	assert.True(t, sum.First.Equal(t0))
	assert.True(t, sum.Last.Equal(rs[7].Time))
	assert.Equal(t, uint64(7), sum.LastSeq)
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	last := sha256.Sum256(lines[7])
	assert.Equal(t, hex.EncodeToString(last[:]), sum.LastHash)
}

func TestLogSetsSeqPrevVersion(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	r1 := decision("c1", "allow")
	r1.Version, r1.Seq, r1.Prev = 0, 99, "junk"
	writeAll(t, l, r1)
	assert.Equal(t, audit.FormatVersion, r1.Version)
	assert.Equal(t, uint64(0), r1.Seq)
	assert.Equal(t, "", r1.Prev)
	assert.Equal(t, string(r1.AppendJSON(nil))+"\n", buf.String(), "the line is the record's encoding")

	r2 := outcome("c1")
	writeAll(t, l, r2)
	h := sha256.Sum256(bytes.TrimSuffix(buf.Bytes()[:bytes.IndexByte(buf.Bytes(), '\n')], nil))
	assert.Equal(t, uint64(1), r2.Seq)
	assert.Equal(t, hex.EncodeToString(h[:]), r2.Prev)
	checkLog(t, buf.Bytes())
}

func TestLogRejectsInvalidRecords(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *audit.Record)
		want   string
	}{
		{"no id", func(r *audit.Record) { r.ID = "" }, "no id"},
		{"no time", func(r *audit.Record) { r.Time = time.Time{} }, "no time"},
		{"year 10000", func(r *audit.Record) { r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside the years"},
		{"unknown kind", func(r *audit.Record) { r.Kind = "verdict" }, "unknown kind"},
		{"empty kind", func(r *audit.Record) { r.Kind = "" }, "unknown kind"},
		{"decision without effect", func(r *audit.Record) { r.Effect = "" }, "not allow or deny"},
		{"decision with ask", func(r *audit.Record) { r.Effect = "ask" }, "not allow or deny"},
		{"outcome with effect", func(r *audit.Record) { r.Kind = audit.KindOutcome }, "outcome record has effect"},
		{"future version", func(r *audit.Record) { r.Version = 3 }, "format version 3"},
		{"bad args hash", func(r *audit.Record) { r.ArgsSHA256 = "ABC" }, "args_sha256"},
		{"uppercase result hash", func(r *audit.Record) { r.ResultSHA256 = "A" + sha("x")[1:] }, "result_sha256"},
		{"bad policy hash", func(r *audit.Record) { r.Policy = "v1" }, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := audit.NewLog(&buf)
			r := decision("c1", "allow")
			tt.mutate(r)
			err := l.Write(context.Background(), r)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "audit: ")
			assert.Zero(t, buf.Len(), "nothing written")

			// A refused record does not break the log.
			writeAll(t, l, decision("c2", "deny"))
			assert.Equal(t, 1, checkLog(t, buf.Bytes()).Records)
		})
	}
	t.Run("nil record", func(t *testing.T) {
		assert.Error(t, audit.NewLog(io.Discard).Write(context.Background(), nil))
	})
}

func TestLogCanceledContext(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Write(ctx, decision("c1", "deny"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, buf.Len())
	writeAll(t, l, decision("c2", "deny"))
	assert.Equal(t, 1, checkLog(t, buf.Bytes()).Records)
}

// failingWriter stores what it is given until it fails.
type failingWriter struct {
	buf     bytes.Buffer
	okCalls int   // calls that succeed
	short   bool  // fail by writing half without an error
	err     error // or fail with this error
	calls   int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls <= w.okCalls {
		return w.buf.Write(p)
	}
	if w.short {
		return w.buf.Write(p[:len(p)/2])
	}
	return 0, w.err
}

func TestLogFailingWriter(t *testing.T) {
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name string
		w    *failingWriter
		want error
	}{
		{"error", &failingWriter{okCalls: 3, err: errDisk}, errDisk},
		{"short write", &failingWriter{okCalls: 3, short: true}, io.ErrShortWrite},
		{"first write fails", &failingWriter{okCalls: 0, err: errDisk}, errDisk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := audit.NewLog(tt.w)
			accepted := 0
			var errs []error
			for i := range 6 {
				err := l.Write(context.Background(), decision(fmt.Sprint("c", i), "deny"))
				if err == nil {
					accepted++
				} else {
					errs = append(errs, err)
				}
			}
			assert.Equal(t, tt.w.okCalls, accepted)
			require.Len(t, errs, 6-tt.w.okCalls)
			assert.ErrorIs(t, errs[0], tt.want)
			for _, err := range errs[1:] {
				assert.ErrorIs(t, err, tt.want, "later writes fail with the cause")
				assert.Contains(t, err.Error(), "unusable")
			}
			assert.Equal(t, tt.w.okCalls+1, tt.w.calls, "no write attempted after the failure")

			// Nothing lost silently: every accepted record is there and
			// verifies; the only other bytes are the partial line.
			data := tt.w.buf.Bytes()
			good := data[:bytes.LastIndexByte(data, '\n')+1]
			assert.Equal(t, accepted, checkLog(t, good).Records)
			_, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{})
			if tt.w.short {
				var ve *audit.VerifyError
				require.ErrorAs(t, err, &ve)
				assert.Contains(t, ve.Reason, "incomplete last line")
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestLogClose(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	l := audit.NewLog(bw)
	writeAll(t, l, decision("c1", "deny"))
	assert.Zero(t, buf.Len(), "still buffered")
	require.NoError(t, l.Close())
	assert.Equal(t, 1, checkLog(t, buf.Bytes()).Records, "Close flushed")
	assert.ErrorIs(t, l.Write(context.Background(), decision("c2", "deny")), audit.ErrClosed)
	assert.ErrorIs(t, l.Close(), audit.ErrClosed)
}

func TestLogZeroAndNil(t *testing.T) {
	var zero audit.Log
	assert.Error(t, zero.Write(context.Background(), decision("c", "deny")))
	assert.Error(t, zero.Close())
	var nilLog *audit.Log
	assert.Error(t, nilLog.Write(context.Background(), decision("c", "deny")))
	assert.Error(t, nilLog.Close())
	assert.Error(t, audit.NewLog(nil).Write(context.Background(), decision("c", "deny")))
}

func TestLogConcurrent(t *testing.T) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	const writers, each = 64, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				assert.NoError(t, l.Write(context.Background(), decision(id, "allow")))
				assert.NoError(t, l.Write(context.Background(), outcome(id)))
			}
		})
	}
	wg.Wait()
	sum := checkLog(t, buf.Bytes())
	assert.Equal(t, 2*writers*each, sum.Records)
	assert.Equal(t, writers*each, sum.Outcomes)
}

func TestSinkFuncAndDiscard(t *testing.T) {
	var got []string
	s := audit.SinkFunc(func(_ context.Context, r *audit.Record) error {
		got = append(got, r.ID)
		return nil
	})
	require.NoError(t, s.Write(context.Background(), decision("c1", "deny")))
	assert.Equal(t, []string{"c1"}, got)
	assert.Error(t, audit.SinkFunc(nil).Write(context.Background(), decision("c1", "deny")))
	assert.NoError(t, audit.Discard.Write(context.Background(), decision("c1", "deny")))

	var _ audit.Sink = audit.NewLog(io.Discard)
}
