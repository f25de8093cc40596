package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/agentguard/agentguard/audit"
)

func ExampleNewLogWithOptions() {
	// In production the key comes from a secret store; the auditor gets
	// only the public half.
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)

	var buf bytes.Buffer
	log, err := audit.NewLogWithOptions(&buf, audit.LogOptions{CheckpointEvery: 2, SigningKey: priv})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 3 {
		err := log.Write(context.Background(), &audit.Record{ID: fmt.Sprint("call-", i), Kind: audit.KindDecision,
			Time: now, Principal: "support-bot", Tool: "read_file", Effect: "deny", Stage: "policy"})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := log.Close(); err != nil { // writes the close checkpoint
		fmt.Println(err)
		return
	}
	data := buf.Bytes()

	strict := audit.VerifyOptions{PublicKey: pub, RequireClosed: true}
	sum, err := audit.Verify(bytes.NewReader(data), strict)
	fmt.Printf("%d records, %d signed checkpoints, closed: %v, error: %v\n", sum.Records, sum.Signed, sum.Closed, err)

	// Someone cuts the last decision and the close checkpoint.
	cut := data[:bytes.Index(data, []byte(`"id":"call-2"`))]
	cut = cut[:bytes.LastIndexByte(cut, '\n')+1]
	_, err = audit.Verify(bytes.NewReader(cut), strict)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		fmt.Println("line", ve.Line, "-", ve.Reason)
	}
	// Output:
	// 5 records, 2 signed checkpoints, closed: true, error: <nil>
	// line 4 - the log does not end with a close checkpoint: records after line 3 (the last checkpoint) may have been cut off, or the log was not closed
}

func ExampleMulti() {
	var buf bytes.Buffer
	log := audit.NewLog(&buf)
	console := audit.NewSlogSink(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the example's output stable
			}
			return a
		},
	}))
	// The call is allowed only if both sinks took the record.
	sink := audit.Multi(log, console)
	err := sink.Write(context.Background(), &audit.Record{ID: "call-1", Kind: audit.KindDecision,
		Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Principal: "support-bot", Tool: "read_file",
		Effect: "deny", Stage: "policy", Rule: "no-dotenv", Reason: "secret files are off limits"})
	fmt.Println("error:", err, "- log lines:", bytes.Count(buf.Bytes(), []byte("\n")))
	// Output:
	// level=WARN msg="audit decision" v=2 seq=0 id=call-1 kind=decision principal=support-bot tool=read_file effect=deny stage=policy rule=no-dotenv reason="secret files are off limits" prev=""
	// error: <nil> - log lines: 1
}

func ExampleRedactor_Redact_detectors() {
	red := audit.NewRedactor([]byte("example key"))
	args := map[string]any{
		"url":     "postgres://app:s3cret@db.internal/prod",
		"query":   "select 1",
		"headers": map[string]any{"Authorization": "Bearer abcdefgh12345678"},
	}
	// No schema paths: the detectors find the secrets by their shape.
	out, pointers := red.Redact(args, nil)
	fmt.Println(pointers)
	fmt.Println(out.(map[string]any)["query"], args["url"])

	clean := map[string]any{"path": "/w/out/report.txt", "content": "hello, world"}
	_, pointers = red.Redact(clean, nil)
	fmt.Println(pointers == nil)
	// Output:
	// [/headers/Authorization /url]
	// select 1 postgres://app:s3cret@db.internal/prod
	// true
}

func ExampleLogFiles() {
	dir, err := os.MkdirTemp("", "audit-rotate")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := dir + "/decisions.jsonl"
	log, err := audit.OpenFile(path, audit.FileOptions{Sync: audit.SyncNone, MaxBytes: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := range 10 {
		r := &audit.Record{ID: fmt.Sprint("call-", i), Kind: audit.KindDecision, Time: time.Now(),
			Tool: "read_file", Effect: "deny", Stage: "policy", Reason: "no scope grants read_file"}
		if err := log.Write(context.Background(), r); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := log.Close(); err != nil {
		fmt.Println(err)
		return
	}
	files, err := audit.LogFiles(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	var chain bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Println(err)
			return
		}
		chain.Write(b)
	}
	sum, err := audit.Verify(&chain, audit.VerifyOptions{})
	fmt.Println(len(files) > 1, sum.Records, err)
	// Output:
	// true 10 <nil>
}

// A witness keeps the log's checkpoints apart from the log. Cutting the
// log back to the first run's close checkpoint leaves a log that verifies
// with the key alone, but not against its witness.
func ExampleOpenWitness() {
	dir, _ := os.MkdirTemp("", "audit")
	defer os.RemoveAll(dir)
	pub, key, _ := ed25519.GenerateKey(nil)
	path := filepath.Join(dir, "decisions.jsonl")
	witnessPath := filepath.Join(dir, "checkpoints.jsonl") // elsewhere, in real use

	w, _ := audit.OpenWitness(witnessPath, pub)
	defer w.Close()
	var first []byte
	for run := range 2 {
		log, _ := audit.OpenFile(path, audit.FileOptions{SigningKey: key, Witness: w})
		_ = log.Write(context.Background(), &audit.Record{ID: fmt.Sprint("call-", run), Kind: audit.KindDecision,
			Time: time.Now(), Tool: "read_file", Effect: "deny"})
		_ = log.Close()
		if run == 0 {
			first, _ = os.ReadFile(path)
		}
	}

	witness, _ := os.ReadFile(witnessPath)
	_, err := audit.Verify(bytes.NewReader(first), audit.VerifyOptions{PublicKey: pub, RequireClosed: true})
	fmt.Println("rolled back, key only:", err)
	_, err = audit.Verify(bytes.NewReader(first), audit.VerifyOptions{PublicKey: pub, Witness: bytes.NewReader(witness)})
	fmt.Println("rolled back, with the witness:", err)
	// Output:
	// rolled back, key only: <nil>
	// rolled back, with the witness: audit: line 3 (seq 2): the log ends after 2 records, but its witness holds a checkpoint of 3: records were cut off, or the log was rolled back to an earlier state
}

// An auditor holding one signed checkpoint checks one record of the log
// with an inclusion proof, without the rest of the log.
func ExampleTree_InclusionProof() {
	var buf bytes.Buffer
	pub, key, _ := ed25519.GenerateKey(nil)
	log, _ := audit.NewLogWithOptions(&buf, audit.LogOptions{SigningKey: key})
	for i := range 5 {
		_ = log.Write(context.Background(), &audit.Record{ID: fmt.Sprint("call-", i), Kind: audit.KindDecision,
			Time: time.Now(), Tool: "read_file", Effect: "deny"})
	}
	_ = log.Close()
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))

	// The close checkpoint states the tree of the 5 records before it.
	var cp audit.Record
	_ = json.Unmarshal(lines[5], &cp)
	root, _ := audit.ParseRoot(cp.Checkpoint.Root)
	_, err := audit.Verify(bytes.NewReader(buf.Bytes()), audit.VerifyOptions{PublicKey: pub})
	fmt.Println("log verifies:", err == nil)

	tree, _ := audit.ReadTree(bytes.NewReader(buf.Bytes()))
	proof, _ := tree.InclusionProof(3, cp.Checkpoint.Records)
	fmt.Println("record 3:", audit.CheckInclusion(proof, cp.Checkpoint.Records, root, 3, lines[3]))
	fmt.Println("record 2 at 3:", audit.CheckInclusion(proof, cp.Checkpoint.Records, root, 3, lines[2]) != nil)
	// Output:
	// log verifies: true
	// record 3: <nil>
	// record 2 at 3: true
}
