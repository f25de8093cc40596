package audittest_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/audit/audittest"
)

// memSink stores deep-enough copies of records in memory; bugs switch on
// the defects the kit must catch.
type memSink struct {
	mu     sync.Mutex
	recs   []*audit.Record
	accept int // -1: unlimited
	bug    string
	n      int
}

func (s *memSink) Write(ctx context.Context, r *audit.Record) error {
	if r == nil {
		return errors.New("nil record")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	switch {
	case s.accept == 0:
		if s.bug == "silent-failure" {
			return nil
		}
		return errors.New("full")
	case s.bug == "drop" && s.n%5 == 0:
		return nil
	case s.bug == "retain":
		s.recs = append(s.recs, r)
		return nil
	}
	if s.accept > 0 {
		s.accept--
	}
	// A deep copy: the caller may reuse the record and its buffers.
	var c audit.Record
	if err := json.Unmarshal(r.AppendJSON(nil), &c); err != nil {
		return err
	}
	s.recs = append(s.recs, &c)
	return nil
}

func (s *memSink) readBack() []audit.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Record
	for _, r := range s.recs {
		out = append(out, *r)
	}
	return out
}

func TestMemSinkConforms(t *testing.T) {
	audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
		s := &memSink{accept: -1}
		return s, s.readBack
	})
	audittest.TestSinkErrors(t, func(t *testing.T, accept int) (audit.Sink, func() []audit.Record) {
		s := &memSink{accept: accept}
		return s, s.readBack
	})
}

const bugEnv = "AUDITTEST_BUG"

// TestBadSinkChild runs the kit against a defective sink; it is run, and
// expected to fail, by TestKitCatchesBadSinks.
func TestBadSinkChild(t *testing.T) {
	bug := os.Getenv(bugEnv)
	if bug == "" {
		t.Skip("run by TestKitCatchesBadSinks")
	}
	if bug == "silent-failure" {
		audittest.TestSinkErrors(t, func(t *testing.T, accept int) (audit.Sink, func() []audit.Record) {
			s := &memSink{accept: accept, bug: bug}
			return s, s.readBack
		})
		return
	}
	audittest.TestSink(t, func(t *testing.T) (audit.Sink, func() []audit.Record) {
		s := &memSink{accept: -1, bug: bug}
		return s, s.readBack
	})
}

func TestKitCatchesBadSinks(t *testing.T) {
	tests := []struct{ bug, want string }{
		{"retain", "--- FAIL: TestBadSinkChild/NotRetained"},
		{"drop", "--- FAIL: TestBadSinkChild/Order"},
		{"silent-failure", "the storage failed, so Write must report it"},
	}
	for _, tt := range tests {
		t.Run(tt.bug, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestBadSinkChild$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), bugEnv+"="+tt.bug)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "the kit passed a defective sink:\n%s", out)
			assert.Contains(t, string(out), tt.want)
		})
	}
}
