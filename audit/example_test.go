package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentguard/agentguard/audit"
)

func ExampleNewLog() {
	var buf bytes.Buffer
	log := audit.NewLog(&buf)
	ctx := context.Background()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	// Before the tool runs: the decision.
	err := log.Write(ctx, &audit.Record{
		ID: "call-1", Kind: audit.KindDecision, Time: now,
		Principal: "support-bot", Tool: "read_file", Args: json.RawMessage(`{"path":"/w/a.txt"}`),
		Effect: "allow", Stage: "policy", Scope: "fs.read", Grant: "fs.read#0",
	})
	if err != nil {
		fmt.Println("deny the call:", err)
		return
	}
	// After it ran: the outcome, with the same ID.
	err = log.Write(ctx, &audit.Record{
		ID: "call-1", Kind: audit.KindOutcome, Time: now.Add(3 * time.Millisecond),
		Principal: "support-bot", Tool: "read_file", DurationNS: 2_500_000, ResultBytes: 12,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(buf.String())
	// Output:
	// {"v":2,"seq":0,"id":"call-1","kind":"decision","time":"2025-01-02T03:04:05.000000000Z","principal":"support-bot","tool":"read_file","args":{"path":"/w/a.txt"},"effect":"allow","stage":"policy","scope":"fs.read","grant":"fs.read#0","prev":""}
	// {"v":2,"seq":1,"id":"call-1","kind":"outcome","time":"2025-01-02T03:04:05.003000000Z","principal":"support-bot","tool":"read_file","duration_ns":2500000,"result_bytes":12,"prev":"8bebfbdb5bc31918cacf93238658fe8d7ec6c5a303326f413e02a80dd9bc2f8e"}
}

func ExampleOpenFile() {
	dir, err := os.MkdirTemp("", "audit-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "decisions.jsonl")
	ctx := context.Background()

	// Two runs of a program appending to the same log. The zero
	// FileOptions fsyncs every record before Write returns.
	for run, tool := range []string{"read_file", "write_file"} {
		log, err := audit.OpenFile(path, audit.FileOptions{})
		if err != nil {
			fmt.Println(err)
			return
		}
		r := &audit.Record{ID: fmt.Sprint("call-", run), Kind: audit.KindDecision, Time: time.Now(),
			Principal: "support-bot", Tool: tool, Effect: "deny", Stage: "policy", Reason: "no scope grants " + tool}
		if err := log.Write(ctx, r); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("run %d wrote seq %d\n", run, r.Seq)
		if err := log.Close(); err != nil {
			fmt.Println(err)
			return
		}
	}

	f, err := os.Open(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	sum, err := audit.Verify(f, audit.VerifyOptions{})
	fmt.Println(sum.Records, "records, denied:", sum.Denied, "error:", err)
	// Output:
	// run 0 wrote seq 0
	// run 1 wrote seq 1
	// 2 records, denied: 2 error: <nil>
}

func ExampleVerify() {
	// testdata/decisions.jsonl holds three calls: two allowed, one denied.
	data, err := os.ReadFile("testdata/decisions.jsonl")
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := audit.Verify(bytes.NewReader(data), audit.VerifyOptions{})
	fmt.Printf("%d records: %d allowed, %d denied %v; error: %v\n", sum.Records, sum.Allowed, sum.Denied, sum.ByRule, err)

	// Someone turns the denial into an approval.
	forged := strings.Replace(string(data), `"effect":"deny"`, `"effect":"allow"`, 1)
	_, err = audit.Verify(strings.NewReader(forged), audit.VerifyOptions{})
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		fmt.Println("tampered at line", ve.Line)
	}
	fmt.Println(err)
	// Output:
	// 5 records: 2 allowed, 1 denied map[no-dotenv:1]; error: <nil>
	// tampered at line 4
	// audit: line 4 (seq 3): prev hash does not match line 3
}

func ExampleSensitivePaths() {
	var schema map[string]any
	_ = json.Unmarshal([]byte(`{
		"type": "object",
		"properties": {
			"url":     {"type": "string"},
			"token":   {"type": "string", "writeOnly": true},
			"headers": {"type": "array", "items": {"$ref": "#/$defs/header"}}
		},
		"$defs": {
			"header": {"properties": {"name": {"type": "string"}, "value": {"type": "string", "x-sensitive": true}}}
		}
	}`), &schema)
	fmt.Println(audit.SensitivePaths(schema))
	// Output:
	// [/headers/*/value /token]
}

func ExampleRedactor_Redact() {
	// Keep the key in a secret store; with NewRedactor(nil) digests only
	// correlate within one process.
	red := audit.NewRedactor([]byte("example key"))
	args := map[string]any{
		"url":     "https://api.example.com",
		"token":   "s3cr3t",
		"headers": []any{map[string]any{"name": "Authorization", "value": "Bearer s3cr3t"}},
	}
	out, pointers := red.Redact(args, []string{"/headers/*/value", "/token"})
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Println(string(b))
	fmt.Println(pointers)
	fmt.Println("input unchanged:", args["token"])
	// Output:
	// {
	//   "headers": [
	//     {
	//       "name": "Authorization",
	//       "value": "redacted:hmac-sha256:9da233d7b77fb3106eecf79fdd47bc6a"
	//     }
	//   ],
	//   "token": "redacted:hmac-sha256:4b6919f4398d09c24336118176a39039",
	//   "url": "https://api.example.com"
	// }
	// [/headers/0/value /token]
	// input unchanged: s3cr3t
}
