package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

var (
	key     = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	pub     = key.Public().(ed25519.PublicKey)
	pubHex  = hex.EncodeToString(pub)
	hmacKey = []byte("chain key")
)

// writeLog writes a rotated, signed log of n calls in dir, with its
// witness file in dir/witness.jsonl, and returns its files in chain order.
func writeLog(t *testing.T, dir string, n int) []string {
	t.Helper()
	path := filepath.Join(dir, "decisions.jsonl")
	w, err := audit.OpenWitness(filepath.Join(dir, "witness.jsonl"), pub)
	require.NoError(t, err)
	defer w.Close()
	l, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncNone, SigningKey: key, HMACKey: hmacKey, CheckpointEvery: 4, MaxBytes: 8192, Witness: w})
	require.NoError(t, err)
	t0 := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		r := &audit.Record{ID: fmt.Sprint("call-", i), Kind: audit.KindDecision, Time: t0.Add(time.Duration(i) * time.Second),
			Principal: []string{"support-bot", "ops-bot"}[i%2], Tool: "read_file", Effect: "allow", Stage: "policy", Scope: "fs.read"}
		if i%3 == 0 {
			r.Effect, r.Scope, r.Rule = "deny", "", "no-dotenv"
		}
		require.NoError(t, l.Write(context.Background(), r))
	}
	require.NoError(t, l.Close())
	files, err := audit.LogFiles(path)
	require.NoError(t, err)
	require.Greater(t, len(files), 2)
	return files
}

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	files := writeLog(t, dir, 30)
	keyFile := filepath.Join(dir, "key.hex")
	require.NoError(t, os.WriteFile(keyFile, []byte(pubHex+"\n"), 0o600))
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pemFile := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	hk := hex.EncodeToString(hmacKey)
	witness := filepath.Join(dir, "witness.jsonl")

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"intact, strict", append([]string{"-pubkey", pubHex, "-hmac-key", hk, "-closed"}, files...), 0,
			[]string{"OK: the chain is intact", "30 decisions: 20 allowed, 10 denied", "no-dotenv", "support-bot", "ops-bot",
				"2025-05-01T12:00:00Z .. ", "closed:      true", "checkpoints verified with key " + audit.KeyID(pub)}},
		{"key from a hex file", append([]string{"-pubkey", keyFile, "-hmac-key", hk}, files...), 0, []string{"OK"}},
		{"key from a PEM file", append([]string{"-pubkey", pemFile, "-hmac-key", hk}, files...), 0, []string{"OK"}},
		{"without the hmac key", files, 1, []string{"TAMPERED: " + files[0] + ":1 (seq 0): the record carries an HMAC tag"}},
		{"intact, with the witness", append([]string{"-pubkey", pubHex, "-hmac-key", hk, "-witness", witness}, files...), 0,
			[]string{"OK", "witnessed:   the first ", "sealed:      41 records"}},
		{"the last file lost: behind the witness", append([]string{"-pubkey", pubHex, "-hmac-key", hk, "-witness", witness}, files[:len(files)-1]...), 1,
			[]string{"but its witness holds a checkpoint of"}},
		{"a file left out", append([]string{"-hmac-key", hk}, files[0], files[2]), 1, []string{"TAMPERED: " + files[2] + ":1", "is missing"}},
		{"wrong key", append([]string{"-pubkey", hex.EncodeToString(make([]byte, 32)), "-hmac-key", hk}, files...), 1, []string{"not by the given key"}},
		{"the last file lost: not closed", append([]string{"-hmac-key", hk, "-closed"}, files[:len(files)-1]...), 1,
			[]string{"does not end with a close checkpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(tt.args...)
			assert.Equal(t, tt.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			for _, w := range tt.want {
				assert.Contains(t, out, w)
			}
		})
	}
}

func TestRunTamperNamesTheLine(t *testing.T) {
	dir := t.TempDir()
	files := writeLog(t, dir, 30)
	// Turn a denial in the second file into an approval.
	data, err := os.ReadFile(files[1])
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	target := -1
	for i, l := range lines {
		if strings.Contains(l, `"effect":"deny"`) && i+1 < len(lines)-1 {
			target = i
			break
		}
	}
	require.GreaterOrEqual(t, target, 0)
	lines[target] = strings.Replace(lines[target], `"effect":"deny"`, `"effect":"allow"`, 1)
	require.NoError(t, os.WriteFile(files[1], []byte(strings.Join(lines, "\n")), 0o600))

	code, out, _ := runCmd(append([]string{"-pubkey", pubHex, "-hmac-key", hex.EncodeToString(hmacKey)}, files...)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, fmt.Sprintf("TAMPERED: %s:%d", files[1], target+1), "the edited line itself: its mac no longer matches")
	assert.Contains(t, out, "mac does not match")
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no files", nil, "usage"},
		{"bad flag", []string{"-nope", "x"}, "flag provided but not defined"},
		{"missing file", []string{filepath.Join(t.TempDir(), "none.jsonl")}, "no such file"},
		{"bad key", []string{"-pubkey", "zz", "x"}, "-pubkey"},
		{"bad hmac key", []string{"-hmac-key", "zz", "x"}, "-hmac-key"},
		{"witness without key", []string{"-witness", "w.jsonl", "x"}, "-witness needs -pubkey"},
		{"missing witness", []string{"-pubkey", pubHex, "-witness", filepath.Join(t.TempDir(), "none.jsonl"), "x"}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(tt.args...)
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, tt.want)
		})
	}
}
