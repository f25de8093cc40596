package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/audit/audittest"
)

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// limitWriter accepts n writes, then fails.
type limitWriter struct {
	mu  sync.Mutex
	n   int
	buf bytes.Buffer
}

var errStorage = errors.New("storage failed")

func (w *limitWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return 0, errStorage
	}
	w.n--
	return w.buf.Write(p)
}

func (w *limitWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// parseLines decodes JSON Lines into records; lines must be whole.
func parseLines(t *testing.T, data []byte) []audit.Record {
	t.Helper()
	var out []audit.Record
	for line := range bytes.Lines(data) {
		var r audit.Record
		require.NoError(t, json.Unmarshal(line, &r), "line %q", line)
		out = append(out, r)
	}
	return out
}

// logReadBack parses a log and checks it verifies.
func logReadBack(t *testing.T, data func() []byte) func() []audit.Record {
	return func() []audit.Record {
		d := data()
		checkLog(t, d)
		return parseLines(t, d)
	}
}

func TestSinkConformance(t *testing.T) {
	t.Run("Log", func(t *testing.T) {
		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
			var buf lockedBuffer
			return audit.NewLog(&buf), logReadBack(t, buf.Bytes)
		})
	})
	t.Run("LogWithCheckpoints", func(t *testing.T) {
		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
			var buf lockedBuffer
			l, err := audit.NewLogWithOptions(&buf, audit.LogOptions{CheckpointEvery: 7, SigningKey: testKey, HMACKey: []byte("k")})
			require.NoError(t, err)
			return l, func() []audit.Record {
				d := buf.Bytes()
				_, err := audit.Verify(bytes.NewReader(d), audit.VerifyOptions{PublicKey: testPub, HMACKey: []byte("k")})
				require.NoError(t, err)
				validateLog(t, d)
				return withoutCheckpoints(parseLines(t, d))
			}
		})
	})
	t.Run("OpenFile", func(t *testing.T) {
		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			l, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncNone})
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
			return l, logReadBack(t, func() []byte {
				data, err := os.ReadFile(path)
				require.NoError(t, err)
				return data
			})
		})
	})
	t.Run("OpenFileDeferOutcomes", func(t *testing.T) {
		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			l, err := audit.OpenFile(path, audit.FileOptions{DeferOutcomes: true, HMACKey: []byte("k")})
			require.NoError(t, err)
			t.Cleanup(func() { l.Close() })
			return l, func() []audit.Record {
				data, err := os.ReadFile(path)
				require.NoError(t, err)
				_, err = audit.Verify(bytes.NewReader(data), audit.VerifyOptions{HMACKey: []byte("k")})
				require.NoError(t, err)
				validateLog(t, data)
				return withoutCheckpoints(parseLines(t, data))
			}
		})
	})
	t.Run("Multi", func(t *testing.T) {
		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
			var a, b lockedBuffer
			s := audit.Multi(audit.NewLog(&a), audit.NewSlogSink(slog.NewJSONHandler(&b, nil)))
			return s, func() []audit.Record {
				first := logReadBack(t, a.Bytes)()
				second := parseLines(t, b.Bytes())
				require.ElementsMatch(t, ids(first), ids(second), "both sinks hold the same records (concurrent ones possibly in another order)")
				return second
			}
		})
	})
	t.Run("Slog", func(t *testing.T) {
		audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
			var buf lockedBuffer
			return audit.NewSlogSink(slog.NewJSONHandler(&buf, nil)), func() []audit.Record { return parseLines(t, buf.Bytes()) }
		})
	})
}

func TestSinkConformanceErrors(t *testing.T) {
	t.Run("Log", func(t *testing.T) {
		audittest.TestSinkErrors(t, func(t *testing.T, accept int) (audit.Sink, func() []audit.Record) {
			w := &limitWriter{n: accept}
			return audit.NewLog(w), logReadBack(t, w.Bytes)
		})
	})
	t.Run("Multi", func(t *testing.T) {
		audittest.TestSinkErrors(t, func(t *testing.T, accept int) (audit.Sink, func() []audit.Record) {
			var ok lockedBuffer
			w := &limitWriter{n: accept}
			return audit.Multi(audit.NewLog(&ok), audit.NewLog(w)), logReadBack(t, w.Bytes)
		})
	})
	t.Run("Slog", func(t *testing.T) {
		audittest.TestSinkErrors(t, func(t *testing.T, accept int) (audit.Sink, func() []audit.Record) {
			w := &limitWriter{n: accept}
			return audit.NewSlogSink(slog.NewJSONHandler(w, nil)), func() []audit.Record { return parseLines(t, w.Bytes()) }
		})
	})
}

func withoutCheckpoints(rs []audit.Record) []audit.Record {
	out := rs[:0]
	for _, r := range rs {
		if r.Kind != audit.KindCheckpoint {
			out = append(out, r)
		}
	}
	return out
}

func ids(rs []audit.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestMulti(t *testing.T) {
	ctx := context.Background()
	var calls []string
	sink := func(name string, err error) audit.Sink {
		return audit.SinkFunc(func(context.Context, *audit.Record) error {
			calls = append(calls, name)
			return err
		})
	}
	tests := []struct {
		name      string
		sinks     []audit.Sink
		wantCalls []string
		wantErr   string
	}{
		{"all accept", []audit.Sink{sink("a", nil), sink("b", nil)}, []string{"a", "b"}, ""},
		{"second fails", []audit.Sink{sink("a", nil), sink("b", errStorage), sink("c", nil)}, []string{"a", "b"}, "Multi sink 2 of 3: storage failed"},
		{"first fails", []audit.Sink{sink("a", errStorage), sink("b", nil)}, []string{"a"}, "sink 1 of 2"},
		{"no sinks", nil, nil, "no sinks"},
		{"nil sink", []audit.Sink{sink("a", nil), nil}, []string{"a"}, "sink 1 is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			err := audit.Multi(tt.sinks...).Write(ctx, decision("c1", "deny"))
			assert.Equal(t, tt.wantCalls, calls)
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "audit: "))
			if strings.Contains(tt.wantErr, "storage") {
				assert.ErrorIs(t, err, errStorage)
			}
		})
	}
}

func TestSlogSink(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	s := audit.NewSlogSink(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d := decision("c1", "deny")
	d.Correlation = &audit.Correlation{TraceID: "t1"}
	require.NoError(t, s.Write(ctx, d))
	line := buf.String()
	for _, want := range []string{"level=WARN", `msg="audit decision"`, "id=c1", "effect=deny", "correlation.trace_id=t1", `args="{\"path\":\"/w/a.txt\"}"`, "rule=no-dotenv"} {
		assert.Contains(t, line, want)
	}

	tests := []struct {
		name string
		h    slog.Handler
		r    *audit.Record
		want string
	}{
		{"level disabled", slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}), decision("c2", "allow"), "not enabled"},
		{"invalid record", slog.NewTextHandler(&buf, nil), &audit.Record{ID: "x"}, "invalid record"},
		{"nil handler", nil, decision("c3", "deny"), "no handler"},
		{"nil record", slog.NewTextHandler(&buf, nil), nil, "nil record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf.Reset()
			err := audit.NewSlogSink(tt.h).Write(ctx, tt.r)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Zero(t, buf.Len(), "nothing handed over")
		})
	}
}
