package canonjson_test

import (
	"encoding/json"
	"testing"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
)

func smallArgs(b *testing.B) map[string]any {
	m, err := safejson.DecodeObject([]byte(`{"path":"/w/a.txt","content":"hello","mode":420,"tags":["x","y"]}`), safejson.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkMarshalSmall(b *testing.B) {
	args := smallArgs(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := canonjson.Marshal(args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendSmall(b *testing.B) {
	args := smallArgs(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = canonjson.Append(buf[:0], args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendSmallParallel(b *testing.B) {
	args := smallArgs(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 256)
		for pb.Next() {
			var err error
			if buf, err = canonjson.Append(buf[:0], args); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAppendNumbers(b *testing.B) {
	var nums any = []any{json.Number("1.50"), json.Number("12345678901234567890123"), json.Number("1e-7"), 0.1, 1e21, 420, float32(2.5)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = canonjson.Append(buf[:0], nums); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRawMessage(b *testing.B) {
	raw := json.RawMessage(`{"path":"/w/a.txt","content":"hello","mode":420,"tags":["x","y"]}`)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = canonjson.Append(buf[:0], raw); err != nil {
			b.Fatal(err)
		}
	}
}
