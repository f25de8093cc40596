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
	"slices"
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
// whose signed note verifies with the log's public key and whose tree
// edge gives the note's root, for a tree no smaller than the last one it
// holds (the tree size is the monotonic counter), for the same size the
// same root, and for a larger size only with the proof, which the Log
// delivering to it gives, that the new tree extends the one it holds. A
// log rolled back or forked after a checkpoint was witnessed, even one
// grown again past the witnessed size, is so refused at its next
// checkpoint, and fails Verify against the file.
//
// OpenWitness opens one; a WitnessFile is safe for concurrent use. Close
// releases it.
type WitnessFile struct {
	mu   sync.Mutex
	f    *os.File
	pub  ed25519.PublicKey
	last witnessed
	edge *edge // the right edge of the last tree
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
	ws, last, err := readWitness(f, pub)
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: witness %s: %w", path, err)
	}
	w := &WitnessFile{f: f, pub: pub}
	if len(ws) > 0 {
		w.last, w.edge, w.any = ws[len(ws)-1], last, true
	}
	return w, nil
}

// Write stores the checkpoint record r if it is one the witness can vouch
// for, and returns once it is on stable storage. Once the witness holds a
// checkpoint, Write accepts a larger tree only with the proof that it
// extends the one held, which a [Log] gives when it delivers to its
// WitnessFile directly (FileOptions.Witness or LogOptions.Witness): a
// checkpoint passed to Write in any other way is refused unless it is the
// one already held.
func (w *WitnessFile) Write(ctx context.Context, r *Record) error {
	return w.write(ctx, r, nil)
}

// write is Write with the compact range of the lines between the held
// tree and r's, if known.
func (w *WitnessFile) write(ctx context.Context, r *Record, ext *crange) error {
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
	got, reason := parseLine(line)
	if reason != "" || got.Checkpoint.Records != size || got.Checkpoint.Root != hexHash(root) {
		return errors.New("audit: witness: the checkpoint record does not match its note")
	}
	e, err := edgeFrom(size, got.Checkpoint.Edge)
	if err != nil || e.root() != root {
		return errors.New("audit: witness: the checkpoint's tree edge does not give its root")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return ErrClosed
	}
	if err := w.accepts(witnessed{size, root}); err != nil {
		return err
	}
	if err := w.extends(ext, size, root); err != nil {
		return err
	}
	if _, err := w.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("audit: witness: %w", err)
	}
	w.last, w.edge, w.any = witnessed{size, root}, e, true
	return nil
}

// extends reports why the tree of size lines with root is not shown by
// ext to extend the tree the witness holds. w.mu must be held.
func (w *WitnessFile) extends(ext *crange, size uint64, root tlog.Hash) error {
	if !w.any || size == w.last.size {
		return nil
	}
	if ext == nil || ext.begin != w.last.size || ext.end != size {
		return fmt.Errorf("audit: witness: checkpoint of %d records comes without proof that it extends the witnessed tree of %d records; a WitnessFile takes larger trees only from the Log that writes them", size, w.last.size)
	}
	e, err := extend(w.edge, size, ext.hashes)
	if err != nil || e.root() != root {
		return fmt.Errorf("audit: witness: the tree of %d records does not extend the witnessed tree of %d: the log was rolled back or rewritten", size, w.last.size)
	}
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

// deliver gives the checkpoint record cp, just written, to the Log's
// witness: to a WitnessFile with the proof that its tree extends the one
// the witness holds, which the Log then tracks from cp's tree on. l.mu
// must be held.
func (l *Log) deliver(ctx context.Context, cp *Record) error {
	ext := l.cpExt
	l.cpExt = nil
	wf, ok := l.witness.(*WitnessFile)
	if !ok {
		return l.witness.Write(ctx, cp)
	}
	if err := wf.write(ctx, cp, ext); err != nil {
		return err
	}
	// The next proof starts at the tree the witness now holds, whose next
	// leaf is cp's own line.
	l.tree.ext = nil
	if n := cp.Checkpoint.Records; l.tree.n == n+1 {
		l.tree.ext = &crange{begin: n, end: n}
		l.tree.ext.appendNode(0, tlog.RecordHash(cp.AppendJSON(nil)))
	}
	return nil
}

// trackExtension prepares a Log from OpenFile to prove to its
// WitnessFile that the trees it delivers extend the witnessed one: it
// reads the lines after the witnessed tree from the log's files, and
// fails unless the witnessed tree, extended by those lines, is the tree
// of the whole log. A log rolled back and grown again, or replaced by
// another log of the same key, is so refused at open.
func (l *Log) trackExtension() error {
	wf, ok := l.witness.(*WitnessFile)
	if !ok || l.tree == nil {
		return nil
	}
	wf.mu.Lock()
	m, we, seen := wf.last.size, wf.edge, wf.any
	wf.mu.Unlock()
	if !seen {
		return nil
	}
	ext, err := l.linesFrom(m)
	if err != nil {
		return fmt.Errorf("the lines after the witnessed checkpoint of %d records cannot be read: %w", m, err)
	}
	e, err := extend(we, l.tree.n, ext.hashes)
	if err != nil || !slices.Equal(e.hashes, l.tree.hashes) {
		return fmt.Errorf("the log does not extend the tree of %d records its witness holds: it was rolled back and grown again, or replaced; check it with Verify against the witness", m)
	}
	l.tree.ext = ext
	return nil
}

// linesFrom returns the compact range of the log's lines from seq m to
// the end, read from its files.
func (l *Log) linesFrom(m uint64) (*crange, error) {
	files, err := LogFiles(l.path)
	if err != nil {
		return nil, err
	}
	start := -1
	for i := len(files) - 1; i >= 0 && start < 0; i-- {
		if seq, ok := firstSeq(files[i]); ok && seq <= m {
			start = i
		}
	}
	if start < 0 {
		return nil, errors.New("no log file holds it")
	}
	ext := &crange{begin: m, end: m}
	pos, _ := firstSeq(files[start])
	for _, name := range files[start:] {
		if err := addRange(ext, name, &pos); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return ext, nil
}

// addRange adds the lines of the file name whose seq is at least
// ext.end to ext; *pos is the seq of its first line, and is advanced.
func addRange(ext *crange, name string, pos *uint64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var acc []byte
	for {
		line, complete, err := readLine(br, maxResumeLine, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if !complete {
			return nil // a torn tail was cut by resume, or is not the log's
		}
		if *pos == ext.end {
			ext.appendNode(0, tlog.RecordHash(line))
		}
		*pos++
	}
}

// firstSeq returns the seq of the first line of the file name.
func firstSeq(name string) (uint64, bool) {
	f, err := os.Open(name)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var acc []byte
	line, complete, err := readLine(bufio.NewReaderSize(f, 64<<10), maxResumeLine, &acc)
	if err != nil || !complete {
		return 0, false
	}
	rec, reason := parseLine(line)
	return rec.Seq, reason == ""
}

// checkWitnessedSize refuses a log, positioned by resume, that is not
// longer than the last checkpoint its witness holds.
func (l *Log) checkWitnessedSize() error {
	ws, ok := l.witness.(witnessState)
	if !ok {
		return nil
	}
	if n, seen := ws.witnessedSize(); seen && l.seq <= n {
		return fmt.Errorf("audit: open %s: the log holds %d records, but its witness has a checkpoint after %d: the file was cut back or rolled back; check it with Verify against the witness", l.path, l.seq, n)
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
func readWitness(r io.Reader, pub ed25519.PublicKey) ([]witnessed, *edge, error) {
	br := bufio.NewReaderSize(r, 16<<10)
	var acc []byte
	var out []witnessed
	var lastEdge *edge
	for lineNo := 1; ; lineNo++ {
		line, complete, err := readLine(br, maxCheckpointRead, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("audit: witness line %d: %w", lineNo, err)
		}
		if !complete {
			if len(line) > 0 {
				return nil, nil, fmt.Errorf("audit: witness line %d: incomplete", lineNo)
			}
			return out, lastEdge, nil
		}
		rec, reason := parseLine(line)
		if reason == "" && (rec.Kind != KindCheckpoint || rec.Checkpoint.Note == "") {
			reason = "not a signed checkpoint"
		}
		if reason != "" {
			return nil, nil, fmt.Errorf("audit: witness line %d: %s", lineNo, reason)
		}
		size, root, err := openNote(rec.Checkpoint.Note, pub)
		if err == nil && (size != rec.Checkpoint.Records || hexHash(root) != rec.Checkpoint.Root) {
			err = errors.New("the record does not match its note")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("audit: witness line %d: %w", lineNo, err)
		}
		e, err := edgeFrom(size, rec.Checkpoint.Edge)
		if err != nil || e.root() != root {
			return nil, nil, fmt.Errorf("audit: witness line %d: the tree edge does not give the root", lineNo)
		}
		lastEdge = e
		c := witnessed{size, root}
		if n := len(out); n > 0 {
			switch last := out[n-1]; {
			case size < last.size:
				return nil, nil, fmt.Errorf("audit: witness line %d: tree size %d after %d: the witness itself was rewritten", lineNo, size, last.size)
			case size == last.size && root != last.root:
				return nil, nil, fmt.Errorf("audit: witness line %d: two different trees of %d records: the log was forked", lineNo, size)
			case size == last.size:
				continue
			}
		}
		out = append(out, c)
	}
}

// maxCheckpointRead bounds a witness line.
const maxCheckpointRead = 64 << 10
