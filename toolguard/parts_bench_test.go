package toolguard_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
)

func BenchmarkPartDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = safejson.DecodeObject(benchArgs, safejson.Limits{})
	}
}

func BenchmarkPartCanon(b *testing.B) {
	obj, _ := safejson.DecodeObject(benchArgs, safejson.Limits{})
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = canonjson.Append(buf[:0], obj)
	}
}

func BenchmarkPartSchema(b *testing.B) {
	doc, _ := sjs.UnmarshalJSON(bytes.NewReader([]byte(`{"type":"object","properties":{"path":{"type":"string","minLength":1},"content":{"type":"string","maxLength":65536},"mode":{"type":"integer","minimum":0}},"required":["path","content"],"additionalProperties":false}`)))
	c := sjs.NewCompiler()
	_ = c.AddResource("mem:///s.json", doc)
	s, _ := c.Compile("mem:///s.json")
	obj, _ := safejson.DecodeObject(benchArgs, safejson.Limits{})
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Validate(any(obj)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPartDecide(b *testing.B) {
	p, _ := scope.Parse([]byte(benchPolicy))
	obj, _ := safejson.DecodeObject(benchArgs, safejson.Limits{})
	in := scope.Input{Principal: scope.Principal{ID: "bench-agent", Scopes: []string{"fs.write"}, Attrs: map[string]any{"workspace": "/w"}},
		Tool: scope.Tool{Name: "write_file"}, Args: obj, Call: scope.Call{ID: "x", Time: time.Now()}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(ctx, in); d.Effect != scope.Allow {
			b.Fatal(d.Reason)
		}
	}
}

func BenchmarkPartRecord(b *testing.B) {
	l := audit.NewLog(io.Discard)
	r := audit.Record{Version: 1, ID: "0123456789abcdef0123456789abcdef", Kind: audit.KindDecision, Time: time.Now(), Principal: "bench-agent",
		Tool: "write_file", Args: []byte(`{"content":"hello, world","mode":420,"path":"/w/out/report.txt"}`), ArgsSHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Effect: "allow", Stage: "limit", Scope: "fs.write", Grant: "fs.write#0", Reason: "allowed by scope", Policy: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", LatencyNS: 1234,
		Limits: []audit.LimitState{{Name: "writes", Key: "bench-agent", Allowed: true}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Write(ctx, &r)
	}
}
