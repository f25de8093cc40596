package fastschema

import (
	"testing"
)

const (
	typicalSchema   = `{"type":"object","properties":{"path":{"type":"string","minLength":1},"content":{"type":"string","maxLength":65536},"mode":{"type":"integer","minimum":0}},"required":["path","content"],"additionalProperties":false}`
	typicalInstance = `{"path":"/w/out/report.txt","content":"hello, world","mode":420}`
)

func BenchmarkValid(b *testing.B) {
	fast, ok := Compile(parseDoc(b, typicalSchema))
	if !ok {
		b.Fatal("typical schema refused")
	}
	inst := decodeInstance(b, typicalInstance)
	b.ReportAllocs()
	for b.Loop() {
		if !fast.Valid(inst) {
			b.Fatal("typical instance invalid")
		}
	}
}

func BenchmarkValidParallel(b *testing.B) {
	fast, ok := Compile(parseDoc(b, typicalSchema))
	if !ok {
		b.Fatal("typical schema refused")
	}
	inst := decodeInstance(b, typicalInstance)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !fast.Valid(inst) {
				b.Error("typical instance invalid")
				return
			}
		}
	})
}

// BenchmarkValidateJSONSchemaV6 is the full validator on the same schema
// and instance, for comparison.
func BenchmarkValidateJSONSchemaV6(b *testing.B) {
	full, err := compileFull(parseDoc(b, typicalSchema))
	if err != nil {
		b.Fatal(err)
	}
	inst := decodeInstance(b, typicalInstance)
	b.ReportAllocs()
	for b.Loop() {
		if err := full.Validate(inst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidInvalid measures an instance that fails (an extra
// property), the path that then falls back to the full validator.
func BenchmarkValidInvalid(b *testing.B) {
	fast, ok := Compile(parseDoc(b, typicalSchema))
	if !ok {
		b.Fatal("typical schema refused")
	}
	inst := decodeInstance(b, `{"path":"/w/out/report.txt","content":"hello, world","mode":420,"owner":"root"}`)
	b.ReportAllocs()
	for b.Loop() {
		if fast.Valid(inst) {
			b.Fatal("invalid instance accepted")
		}
	}
}

// BenchmarkValidOrder validates a nested instance against the schema
// github.com/google/jsonschema-go derives from a Go struct.
func BenchmarkValidOrder(b *testing.B) {
	var e corpusEntry
	for _, c := range corpus(b) {
		if c.name == "go-order" {
			e = c
		}
	}
	inst := decodeInstance(b, string(e.instances[0]))
	if !e.fast.Valid(inst) {
		b.Fatal("order instance invalid")
	}
	b.Run("fastschema", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e.fast.Valid(inst)
		}
	})
	b.Run("jsonschema-v6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = e.full.Validate(inst)
		}
	})
}

func BenchmarkCompile(b *testing.B) {
	doc := parseDoc(b, typicalSchema)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Compile(doc); !ok {
			b.Fatal("refused")
		}
	}
}

// BenchmarkKeysCheck measures the key folding check of the typical
// arguments against the typical schema opened up, as mcp-go's builders
// write it (a closed schema needs no check: CompileKeys returns nil).
func BenchmarkKeysCheck(b *testing.B) {
	k := CompileKeys(parseDoc(b, `{"type":"object","properties":{"path":{"type":"string","minLength":1},"content":{"type":"string","maxLength":65536},"mode":{"type":"integer","minimum":0}},"required":["path","content"]}`))
	if k == nil {
		b.Fatal("nothing to check")
	}
	inst := decodeInstance(b, typicalInstance)
	b.ReportAllocs()
	for b.Loop() {
		if k.Check(inst) != nil {
			b.Fatal("collision")
		}
	}
}
