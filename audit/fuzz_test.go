package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
)

// seedLines adds the lines of testdata/decisions.jsonl and the golden
// records as seeds.
func seedLines(f *testing.F) [][]byte {
	var lines [][]byte
	for _, path := range []string{"testdata/decisions.jsonl", "testdata/golden/full.jsonl", "testdata/golden/odd_strings.jsonl", "testdata/golden/correlated.jsonl", "testdata/golden/checkpoint.jsonl"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		lines = append(lines, bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))...)
	}
	return lines
}

// FuzzAppendJSON: whatever bytes a record holds, its line is one line of
// valid JSON in UTF-8 that decodes to a record encoding to the same bytes.
func FuzzAppendJSON(f *testing.F) {
	for _, line := range seedLines(f) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			f.Fatal(err)
		}
		f.Add(r.Tool, r.Reason, []byte(r.Args), r.Seq, r.Time.UnixNano(), r.LatencyNS)
	}
	f.Add("\xff\x00\"\\", "\u2028\xed\xa0\x80", []byte("{\"a\":\n1}"), uint64(1<<63), int64(-1), int64(-5))
	f.Fuzz(func(t *testing.T, tool, reason string, args []byte, seq uint64, nanos, latency int64) {
		r := &audit.Record{
			Version: audit.FormatVersion, Seq: seq, ID: reason, Kind: audit.Kind(tool), Time: time.Unix(0, nanos),
			Tool: tool, Args: args, Reason: reason, Errors: []string{tool}, LatencyNS: latency, Prev: reason,
			Violations: []audit.Violation{{Pointer: tool, Message: reason}},
		}
		line := r.AppendJSON(nil)
		if !json.Valid(line) || !utf8.Valid(line) || bytes.ContainsAny(line, "\n\r") {
			t.Fatalf("bad line %q", line)
		}
		var back audit.Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		if again := back.AppendJSON(nil); !bytes.Equal(line, again) {
			t.Fatalf("not stable:\n%s\n%s", line, again)
		}
		if utf8.ValidString(tool) && back.Tool != tool {
			t.Fatalf("tool %q came back as %q", tool, back.Tool)
		}
		if json.Valid(args) && utf8.Valid(args) && len(args) > 0 {
			var a, b any
			if json.Unmarshal(args, &a) == nil && json.Unmarshal(back.Args, &b) == nil {
				ca, _ := json.Marshal(a)
				cb, _ := json.Marshal(b)
				if !bytes.Equal(ca, cb) {
					t.Fatalf("args changed: %s -> %s", args, back.Args)
				}
			}
		}
	})
}

// fuzzKey is the HMAC key of FuzzVerify's keyed seed.
var fuzzKey = []byte("fuzz key")

// FuzzVerify: Verify never panics, whatever it accepts is a chain of
// canonical records, and with a key it accepts only a log whose last line
// carries its own MAC or signature.
func FuzzVerify(f *testing.F) {
	data, err := os.ReadFile("testdata/decisions.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(bytes.Replace(data, []byte("deny"), []byte("allow"), 1))
	f.Add([]byte("\n"))
	f.Add([]byte(`{"v":1,"seq":0,"id":"a","kind":"outcome","time":"2025-01-01T00:00:00.000000000Z","tool":"","prev":""}` + "\n"))
	for _, line := range seedLines(f) {
		f.Add(append(line, '\n'))
	}
	for _, path := range []string{"testdata/v1/plain.jsonl", "testdata/v1/signed.jsonl", "testdata/v1/hmac.jsonl"} {
		v1, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v1)
	}
	// A log keyed with fuzzKey and signed with testKey, whole and cut.
	keyed := join(signedLog(f, audit.LogOptions{HMACKey: fuzzKey, SigningKey: testKey, CheckpointEvery: 3}, sampleRecords(4)...))
	f.Add(keyed)
	f.Add(keyed[:bytes.LastIndexByte(keyed[:len(keyed)-1], '\n')+1])
	f.Add(join(signedLog(f, audit.LogOptions{SigningKey: testKey, CheckpointEvery: 3}, sampleRecords(4)...)))
	f.Fuzz(func(t *testing.T, data []byte) {
		// With a key, whatever Verify accepts ends with a line that
		// authenticates on its own: an edit of the last line is never
		// accepted.
		if sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{MaxLineBytes: 1 << 16, HMACKey: fuzzKey}); err == nil && sum.Records > 0 {
			last := data[bytes.LastIndexByte(data[:len(data)-1], '\n')+1:]
			if !bytes.Contains(last, []byte(`"mac":"`)) {
				t.Fatalf("accepted a keyed log whose last line has no mac: %q", last)
			}
		}
		if sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{MaxLineBytes: 1 << 16, PublicKey: testPub}); err == nil && sum.Records > 0 {
			last := data[bytes.LastIndexByte(data[:len(data)-1], '\n')+1:]
			if !bytes.Contains(last, []byte(`"sig":"`)) {
				t.Fatalf("accepted a signed log whose last line has no signature: %q", last)
			}
		}
		// The same bytes as a witness file: read, never trusted blindly.
		if _, err := audit.Verify(bytes.NewReader(nil), audit.VerifyOptions{PublicKey: testPub, Witness: bytes.NewReader(data)}); err == nil && bytes.Contains(data, []byte(`"note"`)) {
			t.Fatalf("an empty log matched a witness holding checkpoints: %q", data)
		}
		sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{MaxLineBytes: 1 << 16})
		if err != nil {
			return
		}
		lines := bytes.Count(data, []byte("\n"))
		if sum.Records != lines || (lines > 0 && !bytes.HasSuffix(data, []byte("\n"))) {
			t.Fatalf("accepted %d records of %d lines", sum.Records, lines)
		}
		if sum.Decisions+sum.Outcomes+sum.Checkpoints != sum.Records || sum.Allowed+sum.Denied != sum.Decisions || sum.Outcomes > sum.Allowed {
			t.Fatalf("inconsistent summary %+v", sum)
		}
		if len(data) == 0 {
			return
		}
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			var r audit.Record
			if err := json.Unmarshal(line, &r); err != nil || !bytes.Equal(r.AppendJSON(nil), line) {
				t.Fatalf("accepted a non-canonical line %q", line)
			}
		}
	})
}

// FuzzRedact: Redact never panics or changes its input, and what it
// reports redacted no longer holds the original value.
func FuzzRedact(f *testing.F) {
	f.Add(`{"a":{"b":[1,{"c":"s"}]},"d":"x"}`, "/a/b/*/c")
	f.Add(`{"a~b":{"c/d":"s"}}`, "/a~0b/c~1d")
	f.Add(`[[1,2],[3]]`, "/*/0")
	f.Add(`{"a":1}`, "a")
	f.Add(`"s"`, "")
	f.Fuzz(func(t *testing.T, doc, path string) {
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		var args any
		if dec.Decode(&args) != nil {
			return
		}
		before, err := canonjson.Marshal(args)
		if err != nil {
			return
		}
		out, pointers := audit.NewRedactor([]byte("k")).Redact(args, []string{path, path + "/*"})
		after, err := canonjson.Marshal(args)
		if err != nil || !bytes.Equal(before, after) {
			t.Fatalf("input changed: %s -> %s", before, after)
		}
		if _, err := canonjson.Marshal(out); err != nil {
			t.Fatalf("result not encodable: %v", err)
		}
		for i, p := range pointers {
			if i > 0 && pointers[i-1] >= p {
				t.Fatalf("pointers not sorted and unique: %q", pointers)
			}
		}
		if len(pointers) == 0 {
			if res, _ := canonjson.Marshal(out); !bytes.Equal(res, before) {
				t.Fatalf("nothing reported but result changed: %s -> %s", before, res)
			}
		}
	})
}

// FuzzSensitivePaths: any schema document finishes, without panicking, with
// pointers Redact accepts.
func FuzzSensitivePaths(f *testing.F) {
	f.Add(`{"properties":{"p":{"writeOnly":true},"n":{"$ref":"#"}}}`)
	f.Add(`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"items":{"$ref":"#/$defs/a"},"x-sensitive":false}},"allOf":[{"$ref":"#/$defs/a"}]}`)
	f.Add(`{"items":[{"$anchor":"x"},{"$ref":"#x","writeOnly":true}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var schema map[string]any
		if json.Unmarshal([]byte(doc), &schema) != nil {
			return
		}
		for _, p := range audit.SensitivePaths(schema) {
			if p != "" && p[0] != '/' {
				t.Fatalf("bad pointer %q", p)
			}
		}
	})
}
