package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentguard/agentguard/audit"
)

// typicalDecision is a decision record as the guard writes it for an
// allowed call.
func typicalDecision() *audit.Record {
	r := decision("01JQ3B7W9V6ZC1Y8K5T2M4N0PX", "allow")
	r.Session = "sess-42"
	r.Args = []byte(`{"content":"redacted:hmac-sha256:00112233445566778899aabbccddeeff","mode":420,"path":"/w/out/report.txt","tags":["x","y"]}`)
	r.ArgsSHA256 = sha("args")
	r.Redacted = []string{"/content"}
	r.Limits = []audit.LimitState{{Name: "writes", Key: "support-bot", Allowed: true}}
	r.Policy = sha("policy")
	r.Reason = `allowed by scope "fs.write"`
	return r
}

func BenchmarkAppendJSON(b *testing.B) {
	r := typicalDecision()
	r.Prev = sha("prev")
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(r.AppendJSON(nil))))
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}

func BenchmarkLogWrite(b *testing.B) {
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		l := audit.NewLog(io.Discard)
		r := typicalDecision()
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Write(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := audit.NewLog(io.Discard)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := typicalDecision()
			for pb.Next() {
				if err := l.Write(ctx, r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkOpenFile writes b.N records to a real file from 1, 8 or 64
// goroutines in each sync mode and reports records/s.
func BenchmarkOpenFile(b *testing.B) {
	for _, mode := range allModes {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "decisions.jsonl")
				l, err := audit.OpenFile(path, audit.FileOptions{Sync: mode})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ctx := context.Background()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range writers {
					wg.Go(func() {
						r := typicalDecision()
						r.Effect = "deny"
						for next.Add(1) <= int64(b.N) {
							if err := l.Write(ctx, r); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
				if mode == audit.SyncEachRecord {
					b.ReportMetric(float64(b.N)/float64(max(1, audit.SyncRounds(l))), "records/fsync")
				}
			})
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	red := audit.NewRedactor([]byte("bench key"))
	args := decodeJSON(b, `{"url":"https://api.example.com/v1/items","method":"POST","token":"s3cr3t-t0k3n",
		"headers":[{"name":"Authorization","value":"Bearer abc"},{"name":"Accept","value":"application/json"}],"body":{"q":"x"}}`)
	paths := []string{"/headers/*/value", "/token"}
	b.ReportAllocs()
	for b.Loop() {
		red.Redact(args, paths)
	}
}

func BenchmarkRedactParallel(b *testing.B) {
	red := audit.NewRedactor([]byte("bench key"))
	args := decodeJSON(b, `{"path":"/w/a.txt","password":"hunter2"}`)
	paths := []string{"/password"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			red.Redact(args, paths)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	const n = 1000
	for i := range n {
		r := typicalDecision()
		r.ID = fmt.Sprint("c", i)
		r.Effect = "deny"
		if err := l.Write(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	data := buf.Bytes()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRedactClean is the common case: detectors on, no schema paths,
// nothing to redact. Redact must return args itself without allocating.
func BenchmarkRedactClean(b *testing.B) {
	red := audit.NewRedactor([]byte("bench key"))
	args := decodeJSON(b, `{"path":"/w/out/report.txt","content":"hello, world","mode":420}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ptrs := red.Redact(args, nil); ptrs != nil {
			b.Fatal("redacted a clean object")
		}
	}
}

// BenchmarkRedactDetect finds one secret by its shape.
func BenchmarkRedactDetect(b *testing.B) {
	red := audit.NewRedactor([]byte("bench key"))
	args := decodeJSON(b, `{"url":"https://api.example.com/v1/items","method":"POST",
		"headers":[{"name":"Authorization","value":"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"},{"name":"Accept","value":"application/json"}],"body":{"q":"x"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ptrs := red.Redact(args, nil); len(ptrs) != 1 {
			b.Fatal(ptrs)
		}
	}
}

// BenchmarkLogWriteKeyed is BenchmarkLogWrite with an HMAC chain and a
// signed checkpoint every 100 records: the cost of tamper evidence.
func BenchmarkLogWriteKeyed(b *testing.B) {
	ctx := context.Background()
	newLog := func(b *testing.B) *audit.Log {
		l, err := audit.NewLogWithOptions(io.Discard, audit.LogOptions{CheckpointEvery: 100, SigningKey: testKey, HMACKey: []byte("bench key")})
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	b.Run("sequential", func(b *testing.B) {
		l := newLog(b)
		r := typicalDecision()
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Write(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		l := newLog(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			r := typicalDecision()
			for pb.Next() {
				if err := l.Write(ctx, r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkOpenFileSigned is BenchmarkOpenFile with an HMAC chain, a
// signed checkpoint every 100 records and rotation at 64 MiB.
func BenchmarkOpenFileSigned(b *testing.B) {
	for _, mode := range allModes {
		for _, writers := range []int{1, 8, 64} {
			b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
				path := filepath.Join(b.TempDir(), "decisions.jsonl")
				l, err := audit.OpenFile(path, audit.FileOptions{Sync: mode, CheckpointEvery: 100, SigningKey: testKey,
					HMACKey: []byte("bench key"), MaxBytes: 64 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				ctx := context.Background()
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range writers {
					wg.Go(func() {
						r := typicalDecision()
						r.Effect = "deny"
						for next.Add(1) <= int64(b.N) {
							if err := l.Write(ctx, r); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkResumeAfterCrash is OpenFile on a signed log of 20500 records
// whose writer crashed (no close checkpoint at the end): it rebuilds the
// Merkle tree by reading the file. After a clean Close it needs only the
// last line.
func BenchmarkResumeAfterCrash(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "crashed.jsonl")
	var buf bytes.Buffer
	l, err := audit.NewLogWithOptions(&buf, audit.LogOptions{SigningKey: testKey, HMACKey: []byte("k"), CheckpointEvery: 1000})
	if err != nil {
		b.Fatal(err)
	}
	r := typicalDecision()
	r.Effect = "deny"
	for range 20500 {
		if err := l.Write(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	data := buf.Bytes() // not closed: as a crash leaves it
	if err := os.WriteFile(src, data, 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("d%d.jsonl", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		l, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncNone, SigningKey: testKey, HMACKey: []byte("k"), CheckpointEvery: 1000})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.Close()
		os.Remove(path)
		b.StartTimer()
	}
}
