package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// checkpointsOf writes n decisions whose principal is who to a Log with a
// checkpoint every 3 records and returns its lines.
func checkpointsOf(t *testing.T, key ed25519.PrivateKey, who string, n int) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	l, err := NewLogWithOptions(&buf, LogOptions{SigningKey: key, CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := &Record{ID: fmt.Sprint(i), Kind: KindDecision, Time: time.Unix(1, 0), Principal: who, Effect: "deny"}
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	return bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
}

// TestWitnessChecksTheProof: a WitnessFile takes a larger tree with the
// compact range of the lines in between only if, appended to the tree it
// holds, the range gives the new root: the same log's range passes,
// another log's (same key, same sizes) or a range from another size
// fails.
func TestWitnessChecksTheProof(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	a, b := checkpointsOf(t, key, "alice", 12), checkpointsOf(t, key, "mallory", 12)
	cp := func(lines [][]byte, seq int) *Record {
		var r Record
		if err := json.Unmarshal(lines[seq], &r); err != nil || r.Kind != KindCheckpoint {
			t.Fatalf("line %d is not a checkpoint: %v", seq, err)
		}
		return &r
	}
	rng := func(lines [][]byte, from, to int) *crange {
		x := &crange{begin: uint64(from), end: uint64(from)}
		for _, line := range lines[from:to] {
			x.appendNode(0, tlog.RecordHash(line))
		}
		return x
	}
	// Checkpoints at seq 3, 7, 11 state trees of 3, 7 and 11 lines.
	w, err := OpenWitness(filepath.Join(t.TempDir(), "w.jsonl"), key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	if err := w.write(ctx, cp(a, 3), nil); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name string
		r    *Record
		ext  *crange
		want string
	}{
		{"no proof", cp(a, 7), nil, "without proof"},
		{"another log's lines", cp(b, 7), rng(b, 3, 7), "does not extend"},
		{"the right lines for another log's root", cp(b, 7), rng(a, 3, 7), "does not extend"},
		{"a range from another size", cp(a, 7), rng(a, 4, 7), "without proof"},
		{"a range with a line changed", cp(a, 7), rng(append(append([][]byte{}, a[:5]...), append([][]byte{b[5]}, a[6:]...)...), 3, 7), "does not extend"},
	} {
		if err := w.write(ctx, bad.r, bad.ext); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: got %v, want %q", bad.name, err, bad.want)
		}
	}
	if err := w.write(ctx, cp(a, 7), rng(a, 3, 7)); err != nil {
		t.Fatalf("the log's own range: %v", err)
	}
	if err := w.write(ctx, cp(a, 11), rng(a, 7, 11)); err != nil {
		t.Fatalf("the log's own range: %v", err)
	}
}
