package safejson_test

import (
	"testing"

	"github.com/agentguard/agentguard/internal/safejson"
)

var smallArgs = []byte(`{"path":"/w/a.txt","content":"hello","mode":420,"tags":["x","y"]}`)

func BenchmarkDecodeSmall(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(smallArgs)))
	for b.Loop() {
		if _, err := safejson.DecodeObject(smallArgs, safejson.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeArgumentsSmall is BenchmarkDecodeSmall with the rules for
// tool arguments: no keys folding alike, exact numbers.
func BenchmarkDecodeArgumentsSmall(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(smallArgs)))
	for b.Loop() {
		if _, err := safejson.DecodeArguments(smallArgs, safejson.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSmallParallel(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(smallArgs)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := safejson.DecodeObject(smallArgs, safejson.Limits{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkDecode100KB(b *testing.B) {
	doc := largeDocument(1250)
	if len(doc) < 95_000 || len(doc) > 110_000 {
		b.Fatalf("document is %d bytes", len(doc))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if _, err := safejson.Decode(doc, safejson.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRejectDuplicate measures how fast a hostile document with
// a duplicate key is turned away.
func BenchmarkDecodeRejectDuplicate(b *testing.B) {
	in := []byte(`{"path":"/w/a.txt","content":"hello","path":"/etc/passwd"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := safejson.Decode(in, safejson.Limits{}); err == nil {
			b.Fatal("accepted a duplicate key")
		}
	}
}
