// Package audit records what the guard decided about each tool call, in a
// log that shows whether anyone changed it afterwards.
//
// # Records
//
// The guard writes one decision [Record] before a tool runs — who called
// which tool with which arguments, whether it was allowed, by which rule,
// scope and grant, and why — and, if the tool ran, one outcome record after
// it, with the same ID: duration, error class, result size and digest. If
// the decision record cannot be written the call is denied: a [Sink]
// returns an error rather than drop a record. [Record.Correlation] ties a
// call to the caller's trace, conversation, turn and model message.
//
// Each record is one line of JSON. [Record.AppendJSON] writes it with the
// members in a fixed order, so a record has exactly one encoding. The format
// is versioned by [FormatVersion] and described by record.schema.json (JSON
// Schema 2020-12) in this package's directory. Members added later to a
// version are optional, so older logs stay valid.
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
// Anyone can recompute a SHA-256 chain after editing it. With an HMAC key
// (LogOptions.HMACKey, FileOptions.HMACKey) each link is an HMAC-SHA256
// instead, and only holders of the key can forge one; Verify then needs the
// key too.
//
// # Checkpoints and the end of the log
//
// A chain protects each line by the ones after it, so on its own it cannot
// show that lines were cut from the end. Checkpoints close that gap. A Log
// with a SigningKey (ed25519), an HMACKey or CheckpointEvery > 0 adds
// [Checkpoint] records to the same chain: after every CheckpointEvery
// records, before a file is rotated, and when the Log is closed. A
// checkpoint states how many records precede it and the hash of the last
// one, and is signed over its whole line, so a valid signature vouches for
// everything before it. [Verify] checks every checkpoint and, given
// VerifyOptions.PublicKey, its signature.
//
// Truncation is detected like this: a Log that is closed ends with a close
// checkpoint, and VerifyOptions.RequireClosed rejects a log that does not,
// naming the last checkpoint after which records may have been cut. Since
// nobody without the signing key can make a valid close checkpoint,
// truncating a signed log after any checkpoint, or anywhere else, is
// caught. A log whose writer crashed also lacks it until the next start
// resumes and closes it; the crash is visible, not hidden. Without
// checkpoints, keep [Summary.LastHash] somewhere else (another system's
// log, a ticket) to detect a change of the log's end.
//
// # Files, durability and rotation
//
// [OpenFile] appends to a file and resumes its chain; a line torn by a crash
// in the middle of a write is cut off. [FileOptions.Sync] chooses what a nil
// error from Write promises: [SyncEachRecord], the zero value, returns only
// once the record is on stable storage, and lets concurrent writers share
// one fsync (group commit); [SyncInterval] and [SyncNone] trade the last
// moments before a machine crash for speed. [NewLog] and
// [NewLogWithOptions] write a chain to any io.Writer.
//
// With FileOptions.MaxBytes the file is rotated: it is closed with a
// checkpoint, renamed by [RotatedName] and the chain goes on in a new file
// at the same path. [LogFiles] lists the files in chain order; verify them
// as one stream, as the auditverify command in examples/ does.
//
// # Sinks
//
// [Log] is the Sink the guard needs. [Multi] writes to several and fails
// unless all accept; [NewSlogSink] feeds records to a slog.Handler, for an
// existing log pipeline next to the chained log. Package audittest is a
// conformance kit for other Sink implementations.
//
// # Redaction
//
// Arguments are recorded, but not their secrets. [SensitivePaths] finds the
// values a tool's JSON Schema marks "writeOnly": true or "x-sensitive": true,
// once, when the tool is registered; [Redactor.Redact] replaces them, on each
// call, with a keyed digest ("redacted:hmac-sha256:...") and reports which
// pointers it replaced (Record.Redacted). The caller may add JSON pointers
// from its policy. Built-in detectors also replace, in any string, the
// part that holds a recognisable secret — cloud access keys, private key
// blocks, bearer, GitHub and Slack tokens, JSON Web Tokens, passwords in
// URLs — whatever the schema says, and keep the rest of the string, so a
// recipient beside a token stays readable; [Redactor.Explain] says what it
// hid and why, for a person who must see what they approve.
// [Redactor.Detects] tells callers to call Redact for every tool. Equal secrets give equal digests under one key, so repeated use of
// a credential remains visible. Record.ArgsSHA256, the hash of the
// unredacted arguments, lets whoever holds them prove what was sent. The
// caller's arguments are never modified.
//
// # Concurrency
//
// Log, Redactor, Discard and the Sink implementations here are safe for
// concurrent use. A Record belongs to one goroutine at a time: Log.Write sets
// its Seq and Prev.
package audit
