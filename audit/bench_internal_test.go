package audit

import (
	"crypto/ed25519"
	"io"
	"testing"
	"time"
)

// benchLine is a typical decision line, about 500 bytes.
var benchLine = func() []byte {
	r := &Record{Version: 1, ID: "01JQ3B7W9V6ZC1Y8K5T2M4N0PX", Kind: KindDecision, Time: time.Unix(1700000000, 0),
		Principal: "support-bot", Session: "sess-42", Tool: "write_file",
		Args:       []byte(`{"content":"redacted:hmac-sha256:00112233445566778899aabbccddeeff","mode":420,"path":"/w/out/report.txt","tags":["x","y"]}`),
		ArgsSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Redacted: []string{"/content"},
		Effect: "allow", Stage: "policy", Scope: "fs.write", Grant: "fs.write#0", Reason: `allowed by scope "fs.write"`,
		Limits: []LimitState{{Name: "writes", Key: "support-bot", Allowed: true}},
		Policy: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", LatencyNS: 1200}
	return r.AppendJSON(nil)
}()

// BenchmarkChainLink is the hashing cost per record: the chain link of
// one line, plain SHA-256 and keyed HMAC-SHA256.
func BenchmarkChainLink(b *testing.B) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"sha256", nil}, {"hmac-sha256", []byte("chain key")}} {
		b.Run(tc.name, func(b *testing.B) {
			c := newChainHash(tc.key)
			b.ReportAllocs()
			b.SetBytes(int64(len(benchLine)))
			for b.Loop() {
				if len(c.link(benchLine)) != 64 {
					b.Fatal("bad link")
				}
			}
		})
	}
}

// BenchmarkCheckpoint is the cost of one signed checkpoint line; divide
// by CheckpointEvery for the cost per record.
func BenchmarkCheckpoint(b *testing.B) {
	l, err := NewLogWithOptions(io.Discard, LogOptions{SigningKey: ed25519Key()})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	l.now = func() time.Time { return now }
	for range 1000 {
		l.tree.add(benchLine)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _, _ = l.appendCheckpoint(buf[:0], 1000, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", CheckpointInterval)
	}
}

// BenchmarkSeal is the cost per record of authenticating it on its own:
// an HMAC-SHA256 under an HMAC key (the chain link, reused as its MAC), or
// an ed25519 signature under a signing key alone.
func BenchmarkSeal(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts LogOptions
	}{{"hmac-sha256", LogOptions{HMACKey: []byte("chain key")}}, {"ed25519", LogOptions{SigningKey: ed25519Key()}}} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := NewLogWithOptions(io.Discard, tc.opts)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 2048)
			b.ReportAllocs()
			b.SetBytes(int64(len(benchLine)))
			for b.Loop() {
				buf = append(buf[:0], benchLine...)
				buf, _, _ = l.seal(buf, 0, l.hash.link(buf))
			}
		})
	}
}

func ed25519Key() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
}
