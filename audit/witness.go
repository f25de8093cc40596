package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// witnessed is one checkpoint a witness vouches for.
type witnessed struct {
	size uint64
	root tlog.Hash
}

// WitnessFile is a [Sink] that keeps the checkpoints of a log apart from
// it, the way CloudTrail delivers digest files apart from the logs they
// cover: give it to [FileOptions.Witness] (or [LogOptions.Witness]), keep
// its file where whoever can rewrite the log cannot (another volume, host
// or account), and verify the log with [VerifyOptions.Witness] reading the
// file. It stores each checkpoint record as one line, fsynced before Write
// returns, and accepts only what a witness should: a checkpoint record
// whose signed note verifies with the log's public key, for a tree no
// smaller than the last one it holds (the tree size is the monotonic
// counter), and for the same size the same root. A log rolled back or
// forked after a checkpoint was witnessed is so refused at its next
// checkpoint, and fails Verify against the file.
//
// OpenWitness opens one; a WitnessFile is safe for concurrent use. Close
// releases it.
type WitnessFile struct {
	mu   sync.Mutex
	f    *os.File
	pub  ed25519.PublicKey
	last witnessed
	any  bool
}

// OpenWitness opens, or creates, the witness file at path for the log
// signed with the private key of pub. An existing file must verify: every
// line a checkpoint with a note signed by pub, sizes never decreasing.
func OpenWitness(path string, pub ed25519.PublicKey) (*WitnessFile, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: witness %s: public key is %d bytes, not %d", path, len(pub), ed25519.PublicKeySize)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: witness: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: witness %s: %w", path, err)
	}
	ws, err := readWitness(f, pub)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: witness %s: %w", path, err)
	}
	w := &WitnessFile{f: f, pub: pub}
	if len(ws) > 0 {
		w.last, w.any = ws[len(ws)-1], true
	}
	return w, nil
}

// Write stores the checkpoint record r if it is one the witness can vouch
// for, and returns once it is on stable storage.
func (w *WitnessFile) Write(ctx context.Context, r *Record) error {
	if r == nil || r.Kind != KindCheckpoint || r.Checkpoint == nil || r.Checkpoint.Note == "" {
		return errors.New("audit: witness: not a signed checkpoint record")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	size, root, err := openNote(r.Checkpoint.Note, w.pub)
	if err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	line := r.AppendJSON(nil)
	if got, reason := parseLine(line); reason != "" || got.Checkpoint.Records != size || got.Checkpoint.Root != hexHash(root) {
		return errors.New("audit: witness: the checkpoint record does not match its note")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return ErrClosed
	}
	if err := w.accepts(witnessed{size, root}); err != nil {
		return err
	}
	if _, err := w.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	w.last, w.any = witnessed{size, root}, true
	return nil
}

// accepts reports why the witness refuses a checkpoint after its last one.
func (w *WitnessFile) accepts(c witnessed) error {
	switch {
	case !w.any:
		return nil
	case c.size < w.last.size:
		return fmt.Errorf("audit: witness: checkpoint of %d records after one of %d: the log was rolled back", c.size, w.last.size)
	case c.size == w.last.size && c.root != w.last.root:
		return fmt.Errorf("audit: witness: a second, different checkpoint of %d records: the log was forked", c.size)
	}
	return nil
}

// witnessState is what OpenFile can ask a witness it knows.
type witnessState interface {
	// witnessedSize returns the tree size of the last checkpoint held.
	witnessedSize() (size uint64, any bool)
}

func (w *WitnessFile) witnessedSize() (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last.size, w.any
}

// Close closes the file. Write after Close returns [ErrClosed].
func (w *WitnessFile) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return ErrClosed
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// readWitness reads witness lines: checkpoint records with notes signed by
// pub, sizes not decreasing, one root per size. It returns the distinct
// checkpoints in ascending size.
func readWitness(r io.Reader, pub ed25519.PublicKey) ([]witnessed, error) {
	br := bufio.NewReaderSize(r, 16<<10)
	var acc []byte
	var out []witnessed
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, maxCheckpointRead, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("audit: witness line %d: %w", lineNo, err)
		}
		if !complete {
			if len(line) > 0 {
				return nil, fmt.Errorf("audit: witness line %d: incomplete", lineNo)
			}
			return out, nil
		}
		rec, reason := parseLine(line)
		if reason == "" && (rec.Kind != KindCheckpoint || rec.Checkpoint.Note == "") {
			reason = "not a signed checkpoint"
		}
		if reason != "" {
			return nil, fmt.Errorf("audit: witness line %d: %s", lineNo, reason)
		}
		size, root, err := openNote(rec.Checkpoint.Note, pub)
		if err == nil && (size != rec.Checkpoint.Records || hexHash(root) != rec.Checkpoint.Root) {
			err = errors.New("the record does not match its note")
		}
		if err != nil {
			return nil, fmt.Errorf("audit: witness line %d: %w", lineNo, err)
		}
		c := witnessed{size, root}
		if n := len(out); n > 0 {
			switch last := out[n-1]; {
			case size < last.size:
				return nil, fmt.Errorf("audit: witness line %d: tree size %d after %d: the witness itself was rewritten", lineNo, size, last.size)
			case size == last.size && root != last.root:
				return nil, fmt.Errorf("audit: witness line %d: two different trees of %d records: the log was forked", lineNo, size)
			case size == last.size:
				continue
			}
		}
		out = append(out, c)
	}
}

// maxCheckpointRead bounds a witness line.
const maxCheckpointRead = 64 << 10
