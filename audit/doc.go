// Package audit records what the guard decided about each tool call, in a
// log that shows whether anyone changed it afterwards.
//
// # Records
//
// The guard writes one decision [Record] before a tool runs — who called
// which tool with which arguments, whether it was allowed, by which rule,
// scope and grant, and why — and, if the tool ran, one outcome record after
// it, with the same ID. If the decision record cannot be written the call is
// denied: a [Sink] returns an error rather than drop a record.
//
// Each record is one line of JSON. [Record.AppendJSON] writes it with the
// members in a fixed order, so a record has exactly one encoding. The format
// is versioned by [FormatVersion] and described by record.schema.json (JSON
// Schema 2020-12) in this package's directory.
//
// # The hash-chained log
//
// A [Log] numbers records 0, 1, 2, ... (Record.Seq) and stores in each the
// SHA-256 of the line before it (Record.Prev). Editing a line changes its
// hash and breaks the link from the next one; deleting, inserting, repeating
// or swapping lines breaks the sequence. [Verify] reads a log and reports the
// first line where the chain breaks:
//
//	log, err := audit.OpenFile("decisions.jsonl", audit.FileOptions{})
//	...
//	err = log.Write(ctx, &audit.Record{ID: id, Kind: audit.KindDecision, Time: now,
//		Tool: "read_file", Effect: "allow", Scope: "fs.read"})
//	...
//	sum, err := audit.Verify(f, audit.VerifyOptions{})
//	var ve *audit.VerifyError
//	if errors.As(err, &ve) { /* ve.Line, ve.Reason */ }
//
// The last record is protected by no later line: keep [Summary.LastHash]
// somewhere else (another system's log, a ticket) to detect a change of the
// log's end.
//
// # Files and durability
//
// [OpenFile] appends to a file and resumes its chain; a line torn by a crash
// in the middle of a write is cut off. [FileOptions.Sync] chooses what a nil
// error from Write promises: [SyncEachRecord], the zero value, returns only
// once the record is on stable storage, and lets concurrent writers share
// one fsync (group commit); [SyncInterval] and [SyncNone] trade the last
// moments before a machine crash for speed. [NewLog] writes a chain to any
// io.Writer.
//
// # Redaction
//
// Arguments are recorded, but not their secrets. [SensitivePaths] finds the
// values a tool's JSON Schema marks "writeOnly": true or "x-sensitive": true,
// once, when the tool is registered; [Redactor.Redact] replaces them, on each
// call, with a keyed digest ("redacted:hmac-sha256:...") and reports which
// pointers it replaced (Record.Redacted). Equal secrets give equal digests
// under one key, so repeated use of a credential remains visible.
// Record.ArgsSHA256, the hash of the unredacted arguments, lets whoever holds
// them prove what was sent.
//
// # Concurrency
//
// Log, Redactor, Discard and the Sink implementations here are safe for
// concurrent use. A Record belongs to one goroutine at a time: Log.Write sets
// its Seq and Prev.
package audit
