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
// SHA-256 of the line before it (Record.Prev, which from format version 2
// leaves out that line's own mac and sig members). Editing a line changes its
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
// # Each record authenticated on its own
//
// A chain protects a line only by the line after it, so on its own it
// leaves the last line — after a crash, the last decision — open to an
// edit. From format version 2 every line a keyed Log writes carries its own
// authenticator, over the whole line but that member:
//
//   - With an HMAC key, "mac": the line's HMAC-SHA256, which is also the
//     next line's prev, so it costs nothing more than the chain (one HMAC
//     of a line of about 500 bytes, 1-2 µs, per record).
//   - With a signing key and no HMAC key, "sig": an ed25519 signature of
//     the record. It is the only choice that lets someone without a secret
//     (an auditor with the public key) check the last record, and it costs
//     one signature a record, made under the Log's lock: tens of
//     microseconds (BenchmarkSeal: 55-100 µs on the shared 2-core test
//     machine, against about 1 µs for the HMAC), so one Log signs at most
//     some ten thousand records a second; with SyncEachRecord the fsync
//     costs more. Cheaper schemes were rejected: a per-run MAC key disclosed
//     later (TESLA-style) leaves the records after a crash unverifiable,
//     and signing only checkpoints leaves them open. Where the cost
//     matters, add an HMAC key.
//   - With both keys, "mac" only: the HMAC covers every line for whoever
//     holds the key, and the checkpoints are signed for everyone else.
//
// [Verify] checks the MAC with VerifyOptions.HMACKey, or the signature
// with VerifyOptions.PublicKey, on every version 2 line, and with a key
// demands that the last line authenticate on its own (a version 1 end can
// be accepted with VerifyOptions.AcceptVersion1End). [OpenFile] checks the
// last line before it extends the chain and refuses a file whose last line
// does not authenticate: see [OpenFile].
//
// # Checkpoints and the end of the log
//
// Per-record authentication cannot show that lines were cut from the end.
// Checkpoints close that gap. A Log with a SigningKey (ed25519), an
// HMACKey or CheckpointEvery > 0 adds [Checkpoint] records to the same
// chain: after every CheckpointEvery records, before a file is rotated, and
// when the Log is closed. A checkpoint states how many records precede it,
// the hash of the last one and, from version 2, the RFC 6962 Merkle tree
// hash of the lines before it (see [Tree]); it is signed over its whole
// line, and its tree is also given as a C2SP tlog-checkpoint signed note
// ([Checkpoint.Note], [Origin]) that standard transparency-log tools read.
// [Verify] recomputes the tree and checks every checkpoint and, given
// VerifyOptions.PublicKey, its signature and note.
//
// Truncation is detected like this: a Log that is closed ends with a close
// checkpoint, and VerifyOptions.RequireClosed rejects a log that does not,
// naming the last checkpoint after which records may have been cut. Since
// nobody without the signing or HMAC key can make a valid close checkpoint,
// cutting a closed log anywhere but just after an earlier close checkpoint
// is caught. A log whose writer crashed also lacks it; the next start that
// resumes it writes a recover checkpoint first, so that the crash — or a
// cut, which looks the same — stays visible after that start closes the
// log: RequireClosed rejects a log holding one unless AcceptRecovered is
// set, and Summary.Recovered lists them (TestCutThenRestart).
//
// # Witness: rollback
//
// Every clean restart leaves a valid close checkpoint in the middle of the
// file, so cutting the file back to one of them — a rollback — leaves a log
// that verifies with every key. Only something kept apart from the log can
// tell: a witness. [WitnessFile] (or any [Sink] given as
// [FileOptions.Witness]) receives each checkpoint as the Log writes it,
// after the log file is fsynced, and refuses a tree smaller than one it
// already holds, or another tree of the same size; the tree size is the
// monotonic counter. A WitnessFile given to the Log directly also refuses
// a larger tree unless it extends the one it holds: with each checkpoint
// the Log hands it the hashes of the complete subtrees covering the lines
// since the witnessed tree (a compact range, at most 128 hashes, which the
// Log keeps up to date as it writes), and the witness checks that they,
// appended to the tree it holds, give the new checkpoint's root. So a log
// rolled back and then grown past the witnessed size is refused at its
// next checkpoint, not only by Verify. [OpenFile] with a WitnessFile
// refuses, before changing the file, a log no longer than the witness's
// last checkpoint, or one whose tree does not extend the witnessed tree
// (TestWitnessRefusesRollbackThenGrow). Another Sink as witness receives
// the checkpoints only and checks none of this. Verify with
// VerifyOptions.Witness then requires the log to hold every tree the
// witness saw, so a log cut back or rewritten before a witnessed checkpoint
// fails, even when re-signed by whoever holds the key. The witness is only
// as good as its file: whoever can cut the witness back along with the log
// defeats it (TestWitnessOutsideThreatModel), and an empty witness checks
// nothing, which Summary.Witnessed shows. [Tree] gives inclusion proofs (one record against a signed
// checkpoint, without the rest of the log) and consistency proofs (an
// older checkpoint's tree is a prefix of a newer one's).
//
// # What each key configuration detects
//
// Verified with everything the configuration gives: the HMAC key or public
// key with RequireClosed, or the public key with the witness
// (TestTamperMatrix performs each attack on a real file):
//
//	attack on the log file                    no key  HMAC  signing  signing+witness
//	edit a record (not re-chained)            yes     yes   yes      yes
//	edit, delete, insert, reorder, re-chained no      yes   yes      yes
//	edit the last record (also after a crash) no      yes   yes      yes
//	truncate the tail of a closed log         no      yes*  yes*     yes
//	  (also when the writer restarts on it)
//	roll back to an earlier close checkpoint  no      no    no       yes
//	forge a whole new log                     no      yes   yes      yes
//
// (* with RequireClosed.) Records written after the last checkpoint a
// witness received and cut off after a crash, before the next start, are
// not detected by any configuration: nothing outside the file knew them.
//
// # Files, durability and rotation
//
// [OpenFile] appends to a file and resumes its chain; a line torn by a crash
// in the middle of a write is cut off. [FileOptions.Sync] chooses what a nil
// error from Write promises: [SyncEachRecord], the zero value, returns only
// once the record is on stable storage, and lets concurrent writers share
// one fsync (group commit); [SyncInterval] and [SyncNone] trade the last
// moments before a machine crash for speed. [FileOptions.DeferOutcomes]
// keeps one fsync on a guarded call's path instead of two: a decision
// still waits for its fsync, an outcome is written at once, in chain
// order, and made durable by the next fsync (the next record's group
// commit, a background fsync at most FileOptions.Interval later, or
// Close). A machine crash can then lose the tail written since the last
// fsync — outcomes, and decisions whose Write had not returned, so whose
// tool never ran — and nothing else; a crash of the process alone loses no
// record Write accepted, in any mode (TestDeferOutcomesMachineCrash,
// TestCrashRecovery). The zero value waits for every record. [NewLog] and
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
