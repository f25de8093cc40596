package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// VerifyOptions configures [Verify]. The zero value is ready to use: it
// checks a plain SHA-256 chain, does not check checkpoint signatures and
// accepts a log that ends anywhere.
type VerifyOptions struct {
	// MaxLineBytes bounds the length of one line, without its newline; a
	// longer line is reported as bad. Zero means 16 MiB.
	MaxLineBytes int
	// PublicKey, when set, is the key every checkpoint must be signed
	// with: an unsigned checkpoint, one with another key id, or a bad
	// signature fails verification.
	PublicKey ed25519.PublicKey
	// HMACKey is the key the log was written with (LogOptions.HMACKey), if
	// any. A keyed log does not verify without it, nor an unkeyed one with
	// it.
	HMACKey []byte
	// RequireClosed demands that the log end with a close checkpoint. It
	// is how an auditor detects that records were cut from the end after
	// the last checkpoint (or that the writer never closed the log).
	// Without PublicKey or HMACKey a forger could append a close
	// checkpoint of their own, so use it with one of them.
	RequireClosed bool
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
	// LastHash is the hex SHA-256 of the last line: the Prev the next record
	// will carry. Keep it somewhere else (a ticket, another system's log)
	// to detect later edits of the log's last records, which no later line
	// protects.
	LastHash string
	// ByRule counts denials by rule name, or by stage when no rule decided
	// (key "" when neither is set).
	ByRule map[string]int
	// Principals counts decisions by principal (key "" for none).
	Principals map[string]int
	// Checkpoints counts checkpoint records (included in Records), and
	// Signed those whose signature was checked against
	// VerifyOptions.PublicKey.
	Checkpoints, Signed int
	// Closed reports whether the last record is a close checkpoint.
	Closed bool
}

// Verify reads a log and checks every line: it is a valid JSON record with
// v == FormatVersion, its seq follows the previous one (starting at 0), its
// prev is the hash of the previous line ("" for the first), the line is
// exactly the [Record.AppendJSON] encoding of the record it decodes to (so
// edits that keep valid JSON are caught), and decisions and outcomes pair up:
// an outcome must follow an allowed decision with its id that has no outcome
// yet. A checkpoint must cover exactly the records before it and, with
// [VerifyOptions.PublicKey], carry a valid signature by that key. The last
// line must end with a newline; with RequireClosed the last record must be a
// close checkpoint. A log rotated into several files is one chain: verify
// the files of [LogFiles] in order, concatenated.
//
// It returns a Summary of the records verified and, for the first bad line, a
// *VerifyError (the Summary then covers the lines before it). Errors reading
// r are returned as they are, wrapped.
//
// Changing a record that is followed by others is reported at the next line,
// whose prev no longer matches; changing the last record is detectable only
// if it is a signed checkpoint, or against a Summary.LastHash kept
// elsewhere. Verify holds one line at a time, plus the ids of allowed
// decisions still awaiting their outcome and the distinct principal and rule
// names.
func Verify(r io.Reader, opts VerifyOptions) (Summary, error) {
	maxLine := opts.MaxLineBytes
	if maxLine <= 0 {
		maxLine = maxResumeLine
	}
	var keyID string
	if opts.PublicKey != nil {
		if len(opts.PublicKey) != ed25519.PublicKeySize {
			return Summary{}, fmt.Errorf("audit: PublicKey is %d bytes, not an ed25519 public key (%d bytes)", len(opts.PublicKey), ed25519.PublicKeySize)
		}
		keyID = KeyID(opts.PublicKey)
	}
	chain := newChainHash(opts.HMACKey)
	sum := Summary{ByRule: map[string]int{}, Principals: map[string]int{}}
	pending := map[string]struct{}{} // allowed decisions awaiting their outcome
	br := bufio.NewReaderSize(r, 64<<10)
	var acc, scratch []byte
	prev := ""
	lastCheckpoint := 0 // line number of the last checkpoint
	for lineNo := 1; ; lineNo++ {
		want := uint64(sum.Records)
		line, complete, err := readLine(br, maxLine, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			if errors.Is(err, errLineTooLong) {
				return sum, &VerifyError{Line: lineNo, Seq: want, Reason: fmt.Sprintf("line is longer than %d bytes", maxLine)}
			}
			return sum, fmt.Errorf("audit: read log: %w", err)
		}
		if !complete {
			if len(line) > 0 {
				return sum, &VerifyError{Line: lineNo, Seq: want, Reason: "incomplete last line (no newline): a write was cut short"}
			}
			if opts.RequireClosed && !sum.Closed {
				reason := "the log has no checkpoints and does not end with a close checkpoint: it may have been cut short, or was not closed"
				if lastCheckpoint > 0 {
					reason = fmt.Sprintf("the log does not end with a close checkpoint: records after line %d (the last checkpoint) may have been cut off, or the log was not closed", lastCheckpoint)
				}
				return sum, &VerifyError{Line: lineNo, Seq: want, Reason: reason}
			}
			return sum, nil
		}

		rec, reason := parseLine(line)
		if reason != "" {
			return sum, &VerifyError{Line: lineNo, Seq: want, Reason: reason}
		}
		fail := func(format string, args ...any) error {
			return &VerifyError{Line: lineNo, Seq: rec.Seq, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case rec.Seq != want:
			return sum, fail("seq %d where %d was expected: a record is missing, duplicated or out of order", rec.Seq, want)
		case rec.Prev != prev && lineNo == 1:
			return sum, fail("the first record's prev is not empty: the log does not start at the beginning of a chain")
		case rec.Prev != prev:
			return sum, fail("prev hash does not match line %d", lineNo-1)
		}
		_, open := pending[rec.ID]
		switch {
		case rec.Kind == KindDecision && open:
			return sum, fail("second decision for id %q, whose allowed decision has no outcome yet", rec.ID)
		case rec.Kind == KindOutcome && !open:
			return sum, fail("outcome for id %q has no earlier allowed decision awaiting it", rec.ID)
		}
		if rec.Kind == KindCheckpoint {
			cp := rec.Checkpoint
			switch {
			case cp.Records != rec.Seq || cp.Hash != rec.Prev:
				return sum, fail("checkpoint claims %d records ending with hash %q, but %d records precede it", cp.Records, cp.Hash, rec.Seq)
			case keyID != "" && cp.Sig == "":
				return sum, fail("checkpoint is not signed")
			case keyID != "" && cp.KeyID != keyID:
				return sum, fail("checkpoint signed by key %s, not by the given key %s", cp.KeyID, keyID)
			}
			if keyID != "" {
				sig, _ := hex.DecodeString(cp.Sig) // checked by parseLine
				scratch = signedBytes(scratch[:0], &rec)
				if !ed25519.Verify(opts.PublicKey, scratch, sig) {
					return sum, fail("bad checkpoint signature: the checkpoint was altered or not signed by the given key")
				}
				sum.Signed++
			}
		}

		prev = chain.link(line)
		sum.Records++
		if sum.Records == 1 {
			sum.First = rec.Time
		}
		sum.Last, sum.LastSeq, sum.LastHash = rec.Time, rec.Seq, prev
		sum.Closed = false
		switch rec.Kind {
		case KindCheckpoint:
			sum.Checkpoints++
			sum.Closed = rec.Checkpoint.Reason == CheckpointClose
			lastCheckpoint = lineNo
			continue
		case KindOutcome:
			sum.Outcomes++
			delete(pending, rec.ID)
			continue
		}
		sum.Decisions++
		sum.Principals[rec.Principal]++
		if rec.Effect == "allow" {
			sum.Allowed++
			pending[rec.ID] = struct{}{}
			continue
		}
		sum.Denied++
		key := rec.Rule
		if key == "" {
			key = rec.Stage
		}
		sum.ByRule[key]++
	}
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
