package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"
)

// VerifyOptions configures [Verify]. The zero value is ready to use: it
// checks a plain SHA-256 chain, does not check signatures and accepts a log
// that ends anywhere.
type VerifyOptions struct {
	// MaxLineBytes bounds the length of one line, without its newline; a
	// longer line is reported as bad. Zero means 16 MiB.
	MaxLineBytes int
	// PublicKey, when set, is the key the log was signed with: every
	// checkpoint must carry a valid signature by it (and, from format
	// version 2, a signed note), and, when HMACKey is not set, every
	// version 2 record must carry its own valid signature (Record.Sig).
	PublicKey ed25519.PublicKey
	// HMACKey is the key the log was written with (LogOptions.HMACKey), if
	// any. A keyed log does not verify without it, nor an unkeyed one with
	// it; every version 2 line must carry a MAC under it (Record.MAC).
	HMACKey []byte
	// RequireClosed demands that the log end with a close checkpoint and
	// hold no recover checkpoint (see AcceptRecovered). It is how an
	// auditor detects that records were cut from the end after the last
	// checkpoint (or that the writer never closed the log), also when the
	// writer restarted on the cut file.
	// Without PublicKey or HMACKey a forger could append a close
	// checkpoint of their own, so use it with one of them.
	RequireClosed bool
	// AcceptRecovered lets RequireClosed accept a log that holds recover
	// checkpoints (Summary.Recovered): [OpenFile] writes one when it
	// resumes a file that did not end with a close checkpoint. Without
	// it, RequireClosed rejects such a log, since records cut off before
	// a restart look just like a crash; set it where crashes are expected
	// and each recovery is looked into.
	AcceptRecovered bool
	// Witness, when set, is read first: the checkpoints a witness received
	// (what a [WitnessFile] holds: one checkpoint record a line, as the Log
	// delivered them). Each must carry a note signed by PublicKey, which
	// is then required. The log must then hold, for every witnessed tree
	// size, exactly the tree the witness saw: a log cut back to an earlier
	// checkpoint, or rewritten at or before a witnessed checkpoint, fails.
	// A witness that does not verify is an error, not a VerifyError.
	Witness io.Reader
	// AcceptVersion1End accepts, when PublicKey or HMACKey is set, a log
	// whose last line is in format version 1 and is not a checkpoint
	// signed by PublicKey. Such a line is not authenticated by anything:
	// anyone could have edited it, or written a whole log in version 1
	// with no checkpoint. Without this option Verify with a key demands
	// that the last line authenticate on its own, which every log written
	// by this version does; set it only for logs known to be written
	// before version 2.
	AcceptVersion1End bool
}

// VerifyError describes the first line that failed verification.
type VerifyError struct {
	// Line is the 1-based line number.
	Line int
	// Seq is the record's seq if the line could be decoded, else the seq
	// the line should have had.
	Seq uint64
	// Reason says what is wrong.
	Reason string
}

// Error returns, for example,
// "audit: line 7 (seq 6): prev hash does not match line 6".
func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit: line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

// Summary describes a verified log, or the verified part before the first
// bad line.
type Summary struct {
	// Records counts all records; Decisions and Outcomes count them by kind,
	// Allowed and Denied count the decisions by effect.
	Records, Decisions, Outcomes, Allowed, Denied int
	// First and Last are the times of the first and last record.
	First, Last time.Time
	// LastSeq is the seq of the last record.
	LastSeq uint64
	// LastHash is the chain hash of the last line: the Prev the next
	// record will carry.
	LastHash string
	// Root is the hex Merkle tree hash of all the lines verified (see
	// [Tree]): what a checkpoint of Records records would state.
	Root string
	// ByRule counts denials by rule name, or by stage when no rule decided
	// (key "" when neither is set).
	ByRule map[string]int
	// Principals counts decisions by principal (key "" for none).
	Principals map[string]int
	// Checkpoints counts checkpoint records (included in Records), and
	// Signed those whose signature was checked against
	// VerifyOptions.PublicKey.
	Checkpoints, Signed int
	// Sealed counts the records whose own MAC or signature was checked
	// (format version 2): each of them is authenticated on its own, the
	// last one included.
	Sealed int
	// Witnessed is the largest tree size a witness checkpoint vouched for
	// and the log matched (VerifyOptions.Witness); 0 without a witness.
	Witnessed uint64
	// Closed reports whether the last record is a close checkpoint.
	Closed bool
	// Recovered holds the seq of each recover checkpoint: where a Log
	// resumed a file that did not end with a close checkpoint. Records
	// may be missing before each — a crash and a cut look the same.
	Recovered []uint64
}

// Verify reads a log and checks every line: it is a valid JSON record of
// format version 1 or 2 (never lower than the line before), its seq
// follows the previous one (starting at 0), its prev is the chain hash of
// the previous line ("" for the first), the line is exactly the
// [Record.AppendJSON] encoding of the record it decodes to (so edits that
// keep valid JSON are caught), and decisions and outcomes pair up: an
// outcome must follow an allowed decision with its id that has no outcome
// yet. A checkpoint must cover exactly the records before it, from
// version 2 state the Merkle tree of the lines before it (root and edge),
// and, with [VerifyOptions.PublicKey], carry a valid signature (and signed
// note) by that key. With HMACKey each version 2 line must carry its MAC;
// with PublicKey and no HMACKey each version 2 record must carry its
// signature. The last line must end with a newline; with RequireClosed the
// last record must be a close checkpoint; with Witness the log must match
// every witnessed checkpoint. A log rotated into several files is one
// chain: verify the files of [LogFiles] in order, concatenated.
//
// It returns a Summary of the records verified and, for the first bad line, a
// *VerifyError (the Summary then covers the lines before it). Errors reading
// r or the witness are returned as they are, wrapped.
//
// Changing a record that is followed by others is reported at the next line,
// whose prev no longer matches. Changing the last record is detected when
// it carries a MAC or signature checked with a key (format version 2 with
// a key); without a key, only against a Summary.LastHash kept elsewhere.
// Verify holds one line at a time, the tree's right edge, the witnessed
// checkpoints, the ids of allowed decisions still awaiting their outcome
// and the distinct principal and rule names.
func Verify(r io.Reader, opts VerifyOptions) (Summary, error) {
	v, err := newVerifier(opts)
	if err != nil {
		return Summary{}, err
	}
	err = v.run(r)
	if v.sum.Records > 0 {
		v.sum.Root = hexHash(v.tree.root())
	}
	return v.sum, err
}

// run verifies the lines of r.
func (v *verifier) run(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var acc []byte
	for lineNo := 1; ; lineNo++ {
		want := uint64(v.sum.Records)
		if err := v.checkWitness(lineNo, want); err != nil {
			return err
		}
		line, complete, err := readLine(br, v.maxLine, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return &VerifyError{Line: lineNo, Seq: want, Reason: fmt.Sprintf("line is longer than %d bytes", v.maxLine)}
			}
			return fmt.Errorf("audit: read log: %w", err)
		}
		if !complete {
			if len(line) > 0 {
				return &VerifyError{Line: lineNo, Seq: want, Reason: "incomplete last line (no newline): a write was cut short"}
			}
			return v.end(lineNo, want)
		}
		if err := v.line(lineNo, line); err != nil {
			return err
		}
	}
}

// verifier is the state of one Verify.
type verifier struct {
	opts           VerifyOptions
	maxLine        int
	keyID          string
	chain          *chainHash
	tree           edge
	sum            Summary
	pending        map[string]struct{} // allowed decisions awaiting their outcome
	prev           string
	version        int
	lastCheckpoint int  // line number of the last checkpoint
	lastSealed     bool // the last line authenticates on its own
	scratch, auth  []byte
	witness        []witnessed // ascending sizes
	// witnessedNext is set when the lines so far are a tree the witness
	// holds a checkpoint of: the next line must be that checkpoint.
	witnessedNext bool
}

func newVerifier(opts VerifyOptions) (*verifier, error) {
	v := &verifier{opts: opts, maxLine: opts.MaxLineBytes, chain: newChainHash(opts.HMACKey),
		sum: Summary{ByRule: map[string]int{}, Principals: map[string]int{}}, pending: map[string]struct{}{}}
	if v.maxLine <= 0 {
		v.maxLine = maxResumeLine
	}
	if opts.PublicKey != nil {
		if len(opts.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("audit: PublicKey is %d bytes, not an ed25519 public key (%d bytes)", len(opts.PublicKey), ed25519.PublicKeySize)
		}
		v.keyID = KeyID(opts.PublicKey)
	}
	if opts.Witness != nil {
		if opts.PublicKey == nil {
			return nil, errors.New("audit: a Witness needs the PublicKey its checkpoints are signed with")
		}
		w, _, err := readWitness(opts.Witness, opts.PublicKey)
		if err != nil {
			return nil, err
		}
		v.witness = w
	}
	return v, nil
}

// end checks what only the end of the log can tell.
func (v *verifier) end(lineNo int, want uint64) error {
	if v.witnessedNext {
		return &VerifyError{Line: lineNo, Seq: want, Reason: fmt.Sprintf("the log ends after %d lines, but its witness holds the checkpoint that followed them: the checkpoint was cut off", want)}
	}
	if n := len(v.witness); n > 0 {
		w := v.witness[n-1]
		return &VerifyError{Line: lineNo, Seq: want, Reason: fmt.Sprintf("the log ends after %d records, but its witness holds a checkpoint of %d: records were cut off, or the log was rolled back to an earlier state", want, w.size)}
	}
	keyed := v.keyID != "" || len(v.opts.HMACKey) > 0
	if keyed && want > 0 && !v.lastSealed && !v.opts.AcceptVersion1End {
		return &VerifyError{Line: lineNo, Seq: want, Reason: "the last record is in format version 1 and not a signed checkpoint: nothing authenticates it, and anyone could have written it (set AcceptVersion1End for a log known to be written before format version 2)"}
	}
	if v.opts.RequireClosed && len(v.sum.Recovered) > 0 && !v.opts.AcceptRecovered {
		return &VerifyError{Line: lineNo, Seq: want, Reason: fmt.Sprintf("the log was resumed at seq %d after it ended without a close checkpoint: the writer crashed, or records were cut off before it restarted (set AcceptRecovered to accept logs that recovered from a crash, and check Summary.Recovered)", v.sum.Recovered[0])}
	}
	if v.opts.RequireClosed && !v.sum.Closed {
		reason := "the log has no checkpoints and does not end with a close checkpoint: it may have been cut short, or was not closed"
		if v.lastCheckpoint > 0 {
			reason = fmt.Sprintf("the log does not end with a close checkpoint: records after line %d (the last checkpoint) may have been cut off, or the log was not closed", v.lastCheckpoint)
		}
		return &VerifyError{Line: lineNo, Seq: want, Reason: reason}
	}
	return nil
}

// checkWitness compares the tree of the lines so far with the witnessed
// checkpoints of that size, if any.
func (v *verifier) checkWitness(lineNo int, n uint64) error {
	for len(v.witness) > 0 && v.witness[0].size == n {
		if v.tree.root() != v.witness[0].root {
			return &VerifyError{Line: lineNo, Seq: n, Reason: fmt.Sprintf("the first %d lines are not the log its witness saw at that size: lines were changed, removed or reordered", n)}
		}
		v.sum.Witnessed = n
		v.witness = v.witness[1:]
		v.witnessedNext = true
	}
	return nil
}

// line checks one complete line and adds it to the summary.
func (v *verifier) line(lineNo int, line []byte) error {
	want := uint64(v.sum.Records)
	rec, reason := parseLine(line)
	if reason != "" {
		return &VerifyError{Line: lineNo, Seq: want, Reason: reason}
	}
	fail := func(format string, args ...any) error {
		return &VerifyError{Line: lineNo, Seq: rec.Seq, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case rec.Seq != want:
		return fail("seq %d where %d was expected: a record is missing, duplicated or out of order", rec.Seq, want)
	case rec.Version < v.version:
		return fail("format version %d after a line of version %d", rec.Version, v.version)
	case rec.Prev != v.prev && lineNo == 1:
		return fail("the first record's prev is not empty: the log does not start at the beginning of a chain")
	case rec.Prev != v.prev:
		return fail("prev hash does not match line %d", lineNo-1)
	}
	_, open := v.pending[rec.ID]
	switch {
	case rec.Kind == KindDecision && open:
		return fail("second decision for id %q, whose allowed decision has no outcome yet", rec.ID)
	case rec.Kind == KindOutcome && !open:
		return fail("outcome for id %q has no earlier allowed decision awaiting it", rec.ID)
	}
	m := authBytes(line, &rec, &v.auth)
	link := v.chain.link(m)
	if reason := v.sealed(&rec, m, link); reason != "" {
		return fail("%s", reason)
	}
	if rec.Kind == KindCheckpoint {
		if reason := v.checkpoint(&rec); reason != "" {
			return fail("%s", reason)
		}
	}
	if v.witnessedNext && rec.Kind != KindCheckpoint {
		return fail("its witness holds a checkpoint of the %d lines before this one, but this line is not a checkpoint: the checkpoint was removed", want)
	}
	v.witnessedNext = false
	if rec.Kind == KindCheckpoint && rec.Checkpoint.Reason == CheckpointRecover {
		v.sum.Recovered = append(v.sum.Recovered, rec.Seq)
	}
	v.lastSealed = rec.MAC != "" || v.keyID != "" && (rec.Sig != "" || rec.Kind == KindCheckpoint)
	v.tree.add(line)
	v.prev = link
	v.version = rec.Version
	v.count(lineNo, &rec)
	return nil
}

// sealed checks a line's own MAC or signature, and reports why it fails.
func (v *verifier) sealed(rec *Record, m []byte, link string) string {
	hmacKey := len(v.opts.HMACKey) > 0
	switch {
	case rec.MAC != "" && !hmacKey:
		return "the record carries an HMAC tag: verify the log with its HMAC key"
	case rec.MAC != "" && !hmac.Equal([]byte(rec.MAC), []byte(link)):
		return "mac does not match: the record was changed after it was written, or the HMAC key is wrong"
	case rec.MAC == "" && hmacKey && rec.Version >= 2:
		return "the record has no mac, but the log is verified with an HMAC key: the record was changed or inserted"
	case rec.MAC != "":
		v.sum.Sealed++
	}
	if v.keyID == "" || rec.Kind == KindCheckpoint || rec.Version < 2 {
		return ""
	}
	if rec.Sig == "" {
		if hmacKey {
			return "" // the MAC vouches for it
		}
		return "the record is not signed, but the log is verified with a public key: the record was changed or inserted"
	}
	sig, _ := hex.DecodeString(rec.Sig) // checked by parseLine
	if !ed25519.Verify(v.opts.PublicKey, m, sig) {
		return "bad record signature: the record was changed after it was written, or not signed by the given key"
	}
	if rec.MAC == "" {
		v.sum.Sealed++
	}
	return ""
}

// checkpoint checks a checkpoint record against the chain and tree before
// it, and reports why it fails.
func (v *verifier) checkpoint(rec *Record) string {
	cp := rec.Checkpoint
	switch {
	case cp.Records != rec.Seq || cp.Hash != rec.Prev:
		return fmt.Sprintf("checkpoint claims %d records ending with hash %q, but %d records precede it", cp.Records, cp.Hash, rec.Seq)
	case v.keyID != "" && cp.Sig == "":
		return "checkpoint is not signed"
	case v.keyID != "" && cp.KeyID != v.keyID:
		return fmt.Sprintf("checkpoint signed by key %s, not by the given key %s", cp.KeyID, v.keyID)
	}
	root := v.tree.root()
	if rec.Version >= 2 {
		switch {
		case cp.Root != hexHash(root):
			return "checkpoint root is not the Merkle tree hash of the lines before it"
		case !slices.Equal(cp.Edge, v.tree.hex()):
			return "checkpoint edge is not the right edge of the tree of the lines before it"
		case cp.Sig != "" && cp.Note == "":
			return "signed checkpoint has no note"
		}
	}
	if v.keyID == "" {
		return ""
	}
	sig, _ := hex.DecodeString(cp.Sig) // checked by parseLine
	v.scratch = signedBytes(v.scratch[:0], rec)
	if !ed25519.Verify(v.opts.PublicKey, v.scratch, sig) {
		return "bad checkpoint signature: the checkpoint was altered or not signed by the given key"
	}
	if rec.Version >= 2 {
		size, nroot, err := openNote(cp.Note, v.opts.PublicKey)
		if err != nil {
			return "bad checkpoint note: " + err.Error()
		}
		if size != cp.Records || nroot != root {
			return "checkpoint note states another tree than the checkpoint"
		}
	}
	v.sum.Signed++
	return ""
}

// count adds a verified record to the summary.
func (v *verifier) count(lineNo int, rec *Record) {
	sum := &v.sum
	sum.Records++
	if sum.Records == 1 {
		sum.First = rec.Time
	}
	sum.Last, sum.LastSeq, sum.LastHash = rec.Time, rec.Seq, v.prev
	sum.Closed = false
	switch rec.Kind {
	case KindCheckpoint:
		sum.Checkpoints++
		sum.Closed = rec.Checkpoint.Reason == CheckpointClose
		v.lastCheckpoint = lineNo
		return
	case KindOutcome:
		sum.Outcomes++
		delete(v.pending, rec.ID)
		return
	}
	sum.Decisions++
	sum.Principals[rec.Principal]++
	if rec.Effect == "allow" {
		sum.Allowed++
		v.pending[rec.ID] = struct{}{}
		return
	}
	sum.Denied++
	key := rec.Rule
	if key == "" {
		key = rec.Stage
	}
	sum.ByRule[key]++
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its '\n'. complete is false at the
// end of input (line then holds any bytes after the last newline). The line
// is valid until the next call; *acc is reused for lines longer than br's
// buffer.
func readLine(br *bufio.Reader, maxLine int, acc *[]byte) (line []byte, complete bool, err error) {
	frag, err := br.ReadSlice('\n')
	if err == nil {
		if len(frag)-1 > maxLine {
			return nil, false, errLineTooLong
		}
		return frag[:len(frag)-1], true, nil
	}
	*acc = append((*acc)[:0], frag...)
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(*acc) > maxLine+1 {
			return nil, false, errLineTooLong
		}
		frag, err = br.ReadSlice('\n')
		*acc = append(*acc, frag...)
	}
	if err != nil {
		return *acc, false, err
	}
	b := *acc
	if len(b)-1 > maxLine {
		return nil, false, errLineTooLong
	}
	return b[:len(b)-1], true, nil
}

// parseLine decodes one line and checks that it is a valid record in
// canonical form. It returns the reason when it is not.
func parseLine(line []byte) (Record, string) {
	var rec Record
	if len(line) == 0 {
		return rec, "empty line"
	}
	if !utf8.Valid(line) {
		return rec, "line is not valid UTF-8"
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, "not a valid record: " + err.Error()
	}
	if reason := rec.check(); reason != "" {
		return rec, reason
	}
	if !isHash(rec.Prev) {
		return rec, "prev is not a lowercase hex SHA-256"
	}
	bp := bufPool.Get().(*[]byte)
	enc := rec.AppendJSON((*bp)[:0])
	canonical := bytes.Equal(enc, line)
	*bp = enc[:0]
	if cap(enc) <= maxPooledBuf {
		bufPool.Put(bp)
	}
	if !canonical {
		return rec, "line is not the canonical encoding of its record: edited, or not written by a Log"
	}
	return rec, ""
}
