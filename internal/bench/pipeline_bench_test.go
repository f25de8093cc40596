package bench_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/time/rate"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/bench"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/fastschema"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// readSchema is read_file's input schema in the pipeline benchmarks.
const readSchema = `{"type":"object","properties":{"path":{"type":"string","minLength":1,"maxLength":4096}},"required":["path"],"additionalProperties":false}`

var pipelineArgs = json.RawMessage(`{"path":"/workspace/docs/guide.md"}`)

// newGuard returns a guard on the shared policy that records to sink, with
// read_file registered and a context carrying the support bot.
func newGuard(b *testing.B, sink audit.Sink) (*toolguard.Guard, context.Context) {
	b.Helper()
	p, err := scope.Parse([]byte(bench.AgentguardPolicy))
	if err != nil {
		b.Fatal(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	if err != nil {
		b.Fatal(err)
	}
	err = g.Register(toolguard.Tool{
		Name:        "read_file",
		InputSchema: json.RawMessage(readSchema),
		Handler:     func(context.Context, json.RawMessage) (any, error) { return nil, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	pr := bench.SupportBot
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{
		ID: pr.ID, Scopes: pr.Scopes, Attrs: map[string]any{"max_results": pr.MaxResults},
	})
	return g, ctx
}

func runCalls(b *testing.B, g *toolguard.Guard, ctx context.Context, parallel bool) {
	b.ReportAllocs()
	if !parallel {
		for b.Loop() {
			if _, err := g.Call(ctx, "read_file", pipelineArgs); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.Call(ctx, "read_file", pipelineArgs); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPipeline times toolguard.Guard.Call on an allowed read: strict
// decoding, the schema, the policy, the rate limit, the decision record, a
// no-op tool and the outcome record, to a hash-chained log on io.Discard or
// in a file with each sync mode.
func BenchmarkPipeline(b *testing.B) {
	for _, mode := range []string{"seq", "par"} {
		par := mode == "par"
		b.Run("sink=discard/run="+mode, func(b *testing.B) {
			g, ctx := newGuard(b, audit.NewLog(io.Discard))
			runCalls(b, g, ctx, par)
		})
		for _, sm := range []audit.SyncMode{audit.SyncNone, audit.SyncInterval, audit.SyncEachRecord} {
			b.Run("sink=file-"+sm.String()+"/run="+mode, func(b *testing.B) {
				l, err := audit.OpenFile(filepath.Join(b.TempDir(), "decisions.jsonl"), audit.FileOptions{Sync: sm})
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					if err := l.Close(); err != nil {
						b.Error(err)
					}
				}()
				g, ctx := newGuard(b, l)
				runCalls(b, g, ctx, par)
			})
		}
	}
}

// BenchmarkPipelineVariants times Guard.Check on the allowed read (decide,
// record nothing, run nothing) and Guard.Call on a read denied by the
// no-dotenv rule, with its record, to a log on io.Discard.
func BenchmarkPipelineVariants(b *testing.B) {
	b.Run("case=check", func(b *testing.B) {
		g, ctx := newGuard(b, audit.NewLog(io.Discard))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Check(ctx, "read_file", pipelineArgs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("case=denied-by-rule", func(b *testing.B) {
		g, ctx := newGuard(b, audit.NewLog(io.Discard))
		args := json.RawMessage(`{"path":"/workspace/app/.env"}`)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Call(ctx, "read_file", args); err == nil {
				b.Fatal("want a denial")
			}
		}
	})
}

// The parts of the pipeline on the same call, alone. "lib" parts are the
// libraries used directly, as an application without agentguard would;
// "own" parts are agentguard's components, whose sum the pipeline is
// compared with to measure the guard's glue.

func BenchmarkPart(b *testing.B) {
	obj, err := safejson.DecodeObject(pipelineArgs, safejson.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	var schemaDoc any
	if err := json.Unmarshal([]byte(readSchema), &schemaDoc); err != nil {
		b.Fatal(err)
	}
	pr := bench.SupportBot
	principal := scope.Principal{ID: pr.ID, Scopes: pr.Scopes, Attrs: map[string]any{"max_results": pr.MaxResults}}
	ctx := context.Background()

	b.Run("part=lib-json-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := json.NewDecoder(bytes.NewReader(pipelineArgs))
			d.UseNumber()
			var m map[string]any
			if err := d.Decode(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("part=lib-jsonschema-validate", func(b *testing.B) {
		doc, err := sjs.UnmarshalJSON(bytes.NewReader([]byte(readSchema)))
		if err != nil {
			b.Fatal(err)
		}
		c := sjs.NewCompiler()
		if err := c.AddResource("mem:///s.json", doc); err != nil {
			b.Fatal(err)
		}
		s, err := c.Compile("mem:///s.json")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Validate(any(obj)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("part=lib-cel-eval", func(b *testing.B) {
		env, err := cel.NewEnv(
			cel.Variable("args", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("principal", cel.MapType(cel.StringType, cel.DynType)),
		)
		if err != nil {
			b.Fatal(err)
		}
		// The four expressions agentguard evaluates on this call: two deny
		// rules, the grant's condition and the limit's key.
		var prgs []cel.Program
		for _, src := range []string{
			`has(args.path) && args.path.contains("/.env")`,
			`has(args.path) && (args.path.contains("/../") || args.path.endsWith("/.."))`,
			`args.path == "/workspace" || args.path.startsWith("/workspace/")`,
			`principal.id`,
		} {
			ast, iss := env.Compile(src)
			if iss.Err() != nil {
				b.Fatal(iss.Err())
			}
			prg, err := env.Program(ast)
			if err != nil {
				b.Fatal(err)
			}
			prgs = append(prgs, prg)
		}
		act, err := cel.NewActivation(map[string]any{
			"args":      obj,
			"principal": map[string]any{"id": pr.ID, "scopes": pr.Scopes, "attrs": principal.Attrs},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			for _, prg := range prgs {
				if _, _, err := prg.Eval(act); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("part=lib-rate-allow", func(b *testing.B) {
		l := rate.NewLimiter(1e9, 1e9)
		b.ReportAllocs()
		for b.Loop() {
			if !l.Allow() {
				b.Fatal("rate limited")
			}
		}
	})
	rec := sampleRecord()
	b.Run("part=lib-record-marshal", func(b *testing.B) {
		// encoding/json and a SHA-256 link: what a hand-rolled hash chain
		// would do per record.
		b.ReportAllocs()
		for b.Loop() {
			buf, err := json.Marshal(&rec)
			if err != nil {
				b.Fatal(err)
			}
			_ = sha256.Sum256(buf)
		}
	})

	b.Run("part=own-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := safejson.DecodeObject(pipelineArgs, safejson.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("part=own-canon-digest", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf, err = canonjson.Append(buf[:0], obj)
			if err != nil {
				b.Fatal(err)
			}
			_ = sha256.Sum256(buf)
		}
	})
	b.Run("part=own-schema", func(b *testing.B) {
		v, ok := fastschema.Compile(schemaDoc)
		if !ok {
			b.Fatal("schema outside fastschema's subset")
		}
		b.ReportAllocs()
		for b.Loop() {
			if !v.Valid(obj) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("part=own-decide", func(b *testing.B) {
		p, err := scope.Parse([]byte(bench.AgentguardPolicy))
		if err != nil {
			b.Fatal(err)
		}
		in := scope.Input{Principal: principal, Tool: scope.Tool{Name: "read_file"}, Args: obj, Call: scope.Call{ID: "x", Time: time.Now()}}
		b.ReportAllocs()
		for b.Loop() {
			if d := p.Decide(ctx, in); d.Effect != scope.Allow {
				b.Fatal(d.Reason)
			}
		}
	})
	b.Run("part=own-limiter", func(b *testing.B) {
		p, err := scope.Parse([]byte(bench.AgentguardPolicy))
		if err != nil {
			b.Fatal(err)
		}
		d := p.Decide(ctx, scope.Input{Principal: principal, Tool: scope.Tool{Name: "read_file"}, Args: obj})
		if len(d.Limits) != 1 {
			b.Fatalf("want one limit, got %d", len(d.Limits))
		}
		var m toolguard.MemoryLimiter
		var lim toolguard.Limiter = &m
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			res, release, err := lim.Take(ctx, now, d.Limits, false)
			if err != nil || !res[0].Allowed {
				b.Fatal(res, err)
			}
			if release != nil {
				release()
			}
		}
	})
	b.Run("part=own-record", func(b *testing.B) {
		l := audit.NewLog(io.Discard)
		b.ReportAllocs()
		for b.Loop() {
			if err := l.Write(ctx, &rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// sampleRecord is a decision record like the pipeline's for the allowed
// read.
func sampleRecord() audit.Record {
	return audit.Record{
		Version: audit.FormatVersion, ID: "0123456789abcdef0123456789abcdef", Kind: audit.KindDecision, Time: time.Now(),
		Principal: "support-bot", Tool: "read_file", Args: []byte(`{"path":"/workspace/docs/guide.md"}`),
		ArgsSHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Effect:     "allow", Stage: "limit", Scope: "fs.read", Grant: "fs.read#0", Reason: "allowed by scope \"fs.read\"",
		Policy:    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		LatencyNS: 1234,
		Limits:    []audit.LimitState{{Name: "reads", Key: "support-bot", Allowed: true}},
	}
}
