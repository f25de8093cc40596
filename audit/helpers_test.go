package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// testKey signs the checkpoints of the tests; testPub verifies them.
var (
	testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	testPub = testKey.Public().(ed25519.PublicKey)
)

// t0 is the time of the first test record.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// decision returns a valid decision record for call id.
func decision(id string, effect string) *audit.Record {
	r := &audit.Record{
		Version:   audit.FormatVersion,
		ID:        id,
		Kind:      audit.KindDecision,
		Time:      t0,
		Principal: "support-bot",
		Tool:      "read_file",
		Args:      []byte(`{"path":"/w/a.txt"}`),
		Effect:    effect,
		Stage:     "policy",
		LatencyNS: 1200,
	}
	if effect == "allow" {
		r.Scope, r.Grant = "fs.read", "fs.read#0"
	} else {
		r.Rule, r.Reason = "no-dotenv", "secret files are off limits"
	}
	return r
}

// outcome returns a valid outcome record for call id.
func outcome(id string) *audit.Record {
	return &audit.Record{
		Version:     audit.FormatVersion,
		ID:          id,
		Kind:        audit.KindOutcome,
		Time:        t0.Add(time.Millisecond),
		Principal:   "support-bot",
		Tool:        "read_file",
		DurationNS:  250_000,
		ResultBytes: 5,
	}
}

// fullRecord sets every field of the record format.
func fullRecord() *audit.Record {
	return &audit.Record{
		Version:    audit.FormatVersion,
		Seq:        7,
		ID:         "call-7",
		Kind:       audit.KindDecision,
		Time:       t0,
		Principal:  "support-bot",
		Session:    "sess-1",
		Tool:       "write_file",
		Args:       []byte(`{"content":"redacted:hmac-sha256:00112233445566778899aabbccddeeff","path":"/w/out/x.txt"}`),
		ArgsSHA256: sha("args"),
		Redacted:   []string{"/content"},
		Effect:     "deny",
		Stage:      "limit",
		Rule:       "writes",
		Scope:      "fs.write",
		Grant:      "fs.write#0",
		Reason:     `rate limit "writes" exceeded`,
		Violations: []audit.Violation{{Pointer: "/mode", Message: "must be <= 511"}},
		Limits:     []audit.LimitState{{Name: "writes", Key: "support-bot", Allowed: false, RetryAfterMS: 1500}, {Name: "daily", Allowed: true}},
		Approval:   &audit.Approval{Rule: "ask-writes", Approved: true, By: "alice", Reason: "ok"},
		Shadow:     []audit.Shadow{{Rule: "new-rule", Effect: "deny", Matched: true, Message: "would deny"}, {Rule: "bad", Effect: "deny", Error: "no such key"}},
		Errors:     []string{"rule x: no such key: path"},
		Policy:     sha("policy"),
		LatencyNS:  4200,
		Prev:       sha("prev"),
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// chain encodes records as a log without the Log's checks, setting Seq and
// Prev, so tests can build logs a Log would refuse to write.
func chain(records ...*audit.Record) []byte {
	var out []byte
	prev := ""
	for i, r := range records {
		r.Seq, r.Prev = uint64(i), prev
		if r.Version == 0 {
			r.Version = audit.FormatVersion
		}
		line := r.AppendJSON(nil)
		h := sha256.Sum256(line)
		prev = hex.EncodeToString(h[:])
		out = append(append(out, line...), '\n')
	}
	return out
}

// writeAll writes records to a Log and fails the test on any error.
func writeAll(t testing.TB, l *audit.Log, records ...*audit.Record) {
	t.Helper()
	for _, r := range records {
		require.NoError(t, l.Write(context.Background(), r))
	}
}

// sampleLog returns a log with n calls, alternately allowed (decision and
// outcome) and denied (decision only).
func sampleRecords(n int) []*audit.Record {
	var rs []*audit.Record
	for i := range n {
		id := fmt.Sprintf("call-%d", i)
		if i%2 == 0 {
			rs = append(rs, decision(id, "allow"), outcome(id))
		} else {
			rs = append(rs, decision(id, "deny"))
		}
	}
	return rs
}

// validateLine checks one line against record.schema.json.
func validateLine(t testing.TB, line []byte) { audit.ValidateLine(t, line) }

// validateLog checks every line of a log against record.schema.json.
func validateLog(t testing.TB, data []byte) { audit.ValidateLog(t, data) }

// recordSchema is the compiled record.schema.json.
func recordSchema(t testing.TB) *jsonschema.Schema { return audit.RecordSchema(t) }

// checkLog verifies a log, validates every line against record.schema.json
// and returns the Summary. Every test that produces a log ends here.
func checkLog(t testing.TB, data []byte) audit.Summary {
	t.Helper()
	sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{})
	require.NoError(t, err)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(data) == 0 {
		lines = nil
	}
	require.Len(t, lines, sum.Records)
	for _, line := range lines {
		validateLine(t, line)
	}
	return sum
}

// checkFile is checkLog for a file.
func checkFile(t testing.TB, path string) audit.Summary {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return checkLog(t, data)
}
