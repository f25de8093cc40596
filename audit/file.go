package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SyncMode says when a file [Log] fsyncs, and so what a nil error from
// [Log.Write] promises. In every mode a record is written to the file
// (write(2)) before Write returns, so a record Write accepted survives a crash
// of the process; the modes differ in what survives a crash of the machine.
//
// The zero value is SyncEachRecord, the safest mode: a zero [FileOptions]
// gives durable records.
type SyncMode int

const (
	// SyncEachRecord makes Write return only after the record is on stable
	// storage (fsync). Concurrent writers share fsyncs: one of them syncs
	// for all records written so far while the others wait, so throughput
	// grows with the number of writers. Nothing Write accepted is lost, even
	// on power failure (as far as the storage honours fsync).
	SyncEachRecord SyncMode = iota
	// SyncInterval fsyncs in the background every [FileOptions.Interval]
	// when records were written since the last sync, and on Close. A machine
	// crash loses at most the records of the last interval; what remains is
	// the start of the chain (OpenFile cuts a torn last line). A failed
	// background fsync makes every later Write and Close return an error.
	SyncInterval
	// SyncNone leaves flushing to the operating system and fsyncs only on
	// Close. A machine crash may lose any records not yet flushed.
	SyncNone
)

// String returns "each-record", "interval" or "none".
func (m SyncMode) String() string {
	switch m {
	case SyncEachRecord:
		return "each-record"
	case SyncInterval:
		return "interval"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// MarshalText returns the name returned by [SyncMode.String], so modes read
// well in configuration files.
func (m SyncMode) MarshalText() ([]byte, error) {
	switch m {
	case SyncEachRecord, SyncInterval, SyncNone:
		return []byte(m.String()), nil
	}
	return nil, fmt.Errorf("audit: unknown sync mode %d", int(m))
}

// UnmarshalText parses "each-record", "interval" or "none".
func (m *SyncMode) UnmarshalText(text []byte) error {
	for _, c := range [...]SyncMode{SyncEachRecord, SyncInterval, SyncNone} {
		if string(text) == c.String() {
			*m = c
			return nil
		}
	}
	return fmt.Errorf("audit: unknown sync mode %q (want each-record, interval or none)", text)
}

// FileOptions configures [OpenFile]. The zero value is the safe default:
// fsync every record, file mode 0600, one file, a SHA-256 chain without
// checkpoints.
type FileOptions struct {
	// Sync is when to fsync; the zero value is SyncEachRecord.
	Sync SyncMode
	// Interval is the fsync period for SyncInterval, and the longest an
	// outcome record waits for its fsync with DeferOutcomes; zero means 1s.
	Interval time.Duration
	// DeferOutcomes, with SyncEachRecord, lets Write return for an outcome
	// record (KindOutcome) once it is written to the file, without waiting
	// for its fsync: the outcome becomes durable with the next fsync — the
	// group commit of the next record that waits, a background fsync at
	// most Interval after it, or Close. Decision records still wait for
	// their fsync. The records stay in chain order, so what a machine crash
	// can lose is the tail written after the last fsync: outcomes, and
	// decisions whose Write had not yet returned (whose tool did not run).
	// A crash of the process alone loses nothing Write accepted. The zero
	// value, false, makes every record wait; with SyncInterval and
	// SyncNone the option changes nothing.
	DeferOutcomes bool
	// Perm is the permission of a newly created file (before umask); zero
	// means 0o600. An existing file keeps its permissions.
	Perm os.FileMode

	// CheckpointEvery, SigningKey, HMACKey and Witness are as in
	// [LogOptions]: a Log with any of the first three writes checkpoints
	// on Close and on rotation, and every CheckpointEvery records when
	// that is positive.
	CheckpointEvery int
	SigningKey      ed25519.PrivateKey
	HMACKey         []byte
	Witness         Sink

	// MaxBytes, when positive, rotates the file: before a record that
	// would take the file past MaxBytes (counting the checkpoints that may
	// follow it), the Log writes a rotate checkpoint (if it writes
	// checkpoints and the file does not already end with one), fsyncs the
	// file, renames it to the name [RotatedName]
	// gives and continues the same chain in a new file at the original
	// path. A record too large for an empty file still gets a file of its
	// own. Zero means never rotate. [LogFiles] lists a rotated log's files
	// in chain order. Rotation happens inside Write: that Write fails if
	// it does, and the record is not stored.
	MaxBytes int64
}

// maxResumeLine bounds the last line OpenFile reads to resume a chain; it is
// the default of VerifyOptions.MaxLineBytes.
const maxResumeLine = 16 << 20

// OpenFile opens the log file at path for appending, creating it if needed,
// and returns a Log that continues its chain.
//
// If the file already has records, the chain resumes from its last line: the
// next Seq and Prev = hash of that line. The last line must be a valid record
// (OpenFile does not check the rest of the file: use [Verify]) and, when the
// Log has a key, must authenticate under it: its MAC under the HMAC key, or
// its signature (a record's, or a checkpoint's) under the signing key. A
// last line that does not — edited after a crash, say, or written in
// format version 1, which has no per-record MAC — makes OpenFile refuse the
// file and leave it as it is: continuing the chain would vouch for a line
// nobody can vouch for, so the guard's calls are denied until someone
// checks the file with Verify and moves it aside.
//
// With checkpoints, OpenFile also rebuilds the Merkle tree of the log: from
// the last line when it is a checkpoint (a clean Close), else by reading
// the current file from its last checkpoint (or, if it has none, the
// rotated files from the newest one that ends with a checkpoint). A torn
// last line — bytes after the final newline, left by a crash in the middle
// of a write — is cut off before appending, provided it looks like the
// start of a record; any other trailing bytes are an error and the file is
// left alone.
//
// With a [WitnessFile] as FileOptions.Witness, OpenFile also refuses,
// before cutting a torn line, a file shorter than the last checkpoint the
// witness holds (the checkpoint line included), and a log whose tree does
// not extend the witnessed tree (it reads the lines after the witnessed
// checkpoint for that): a log cut back, or rolled back and grown again,
// is refused at the start, not only at its next checkpoint.
//
// On Linux and the BSDs the file is locked (flock) while the Log is open, so a
// second Log on the same file, in this process or another, fails to open
// instead of interleaving two chains.
//
// See [SyncMode] for what Write promises in each mode. On a write error the
// file is truncated back to the end of the last good record if possible, so
// the chain stays verifiable, and Write returns the error.
func OpenFile(path string, opts FileOptions) (*Log, error) {
	if opts.Sync != SyncEachRecord && opts.Sync != SyncInterval && opts.Sync != SyncNone {
		return nil, fmt.Errorf("audit: open %s: unknown sync mode %d", path, int(opts.Sync))
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("audit: open %s: negative sync interval %v", path, opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	if opts.Perm == 0 {
		opts.Perm = 0o600
	}
	if opts.MaxBytes < 0 {
		return nil, fmt.Errorf("audit: open %s: negative MaxBytes %d", path, opts.MaxBytes)
	}
	l := &Log{path: path, perm: opts.Perm, maxBytes: opts.MaxBytes}
	if err := l.configure(LogOptions{CheckpointEvery: opts.CheckpointEvery, SigningKey: opts.SigningKey, HMACKey: opts.HMACKey, Witness: opts.Witness}); err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, opts.Perm)
	if err != nil {
		return nil, fmt.Errorf("audit: open log: %w", err)
	}
	if err := l.resume(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := l.trackExtension(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	if err := l.recover(); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	l.mode = opts.Sync
	l.deferOutcomes = opts.DeferOutcomes && opts.Sync == SyncEachRecord
	l.interval = opts.Interval
	if l.deferOutcomes {
		l.flushTimer = time.AfterFunc(time.Hour, l.deferredFlush)
		l.flushTimer.Stop()
	}
	l.sync = &syncer{sync: func() error {
		// Rotation replaces l.f under fmu.
		l.fmu.Lock()
		defer l.fmu.Unlock()
		return l.f.Sync()
	}}
	l.sync.written.Store(l.seq)
	l.sync.synced = l.seq
	if opts.Sync == SyncInterval {
		l.stop = make(chan struct{})
		l.ended = make(chan struct{})
		go l.syncLoop(opts.Interval)
	}
	return l, nil
}

// recover writes a recover checkpoint, durably, when the Log writes
// checkpoints and the file it resumes did not end cleanly, so that a
// crash — or a cut it cannot be told from — stays visible after the next
// close ([VerifyOptions.RequireClosed]).
func (l *Log) recover() error {
	if !l.checkpoints || !l.unclean {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.writeCheckpoint(context.Background(), CheckpointRecover); err != nil {
		return fmt.Errorf("recover checkpoint: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("recover checkpoint: %w", err)
	}
	return nil
}

// resume locks f, reads the end of the file and positions l after its last
// record. An empty file continues the chain of the newest rotated file
// beside it, if there is one.
func (l *Log) resume(f *os.File) error {
	path := l.path
	if err := lockFile(f); err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: open %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("audit: open %s: not a regular file", path)
	}
	l.w, l.f = f, f
	size := st.Size()
	if size == 0 {
		// A new file: make its directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			return fmt.Errorf("audit: open %s: sync directory: %w", path, err)
		}
	}
	good, treeSet, err := l.resumeFile(f, size)
	if err != nil {
		return err
	}
	if l.tree != nil && !treeSet {
		if err := l.rebuildTree(f, good); err != nil {
			return fmt.Errorf("audit: open %s: rebuild the Merkle tree: %w", path, err)
		}
	}
	return nil
}

// resumeFile positions l after the last record of f, whose size is size,
// or of the newest rotated file when f holds none, and cuts a torn last
// line. It returns the length of f's good part and whether it set l.tree.
func (l *Log) resumeFile(f *os.File, size int64) (int64, bool, error) {
	path := l.path
	if size == 0 {
		treeSet, err := l.resumeRotated()
		if err == nil {
			err = l.checkWitnessedSize()
		}
		return 0, treeSet, err
	}
	last, lineStart, lineEnd, err := lastLine(f, size)
	if err != nil {
		return 0, false, fmt.Errorf("audit: open %s: %w", path, err)
	}
	good := int64(0)
	if lineEnd >= 0 {
		good = lineEnd + 1
	}
	if good < size {
		// A torn tail. Cut it only if it looks like the beginning of a
		// record: never truncate a file that is not a log.
		tail := make([]byte, min(size-good, int64(len(recordStart))))
		if _, err := f.ReadAt(tail, good); err != nil {
			return 0, false, fmt.Errorf("audit: open %s: %w", path, err)
		}
		if !bytes.HasPrefix([]byte(recordStart), tail) {
			return 0, false, fmt.Errorf("audit: open %s: the file does not end with a complete record (%d bytes after the last newline); not a log, or damaged: check it with Verify", path, size-good)
		}
	}
	treeSet := false
	if lineEnd >= 0 {
		if treeSet, err = l.resumeAfter(last); err != nil {
			return 0, false, fmt.Errorf("audit: open %s: last record (offset %d) %w", path, lineStart, err)
		}
	}
	if lineEnd < 0 {
		// Only a torn line: like an empty file.
		if treeSet, err = l.resumeRotated(); err != nil {
			return 0, false, err
		}
	}
	// Refuse before cutting anything: a refused file is left as it is.
	if err := l.checkWitnessedSize(); err != nil {
		return 0, false, err
	}
	if good < size {
		if err := f.Truncate(good); err != nil {
			return 0, false, fmt.Errorf("audit: open %s: cut torn last line: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return 0, false, fmt.Errorf("audit: open %s: %w", path, err)
		}
	}
	l.size = good
	return good, treeSet, nil
}

// errUnauthenticated is why OpenFile refuses a last line it cannot vouch for.
var errUnauthenticated = errors.New("does not authenticate under the Log's key: it was changed after it was written, was written with another key, or is in format version 1, which does not authenticate single records; OpenFile will not extend a chain it cannot vouch for: check the file with Verify and move it aside")

// resumeAfter sets the chain to continue after the record line last, which
// must authenticate under the Log's keys. When last is a checkpoint with
// the tree's edge it also sets l.tree (if the Log keeps one) and reports so.
func (l *Log) resumeAfter(last []byte) (bool, error) {
	rec, reason := parseLine(last)
	if reason != "" {
		return false, fmt.Errorf("is invalid: %s; check the file with Verify", reason)
	}
	if rec.Seq == math.MaxUint64 {
		return false, errors.New("ends the chain: the chain has no sequence numbers left")
	}
	var scratch []byte
	m := authBytes(last, &rec, &scratch)
	link := l.hash.link(m)
	if err := l.authenticate(&rec, m, link); err != nil {
		return false, err
	}
	l.seq = rec.Seq + 1
	l.prev = link
	l.lastCP = rec.Kind == KindCheckpoint
	// Only a close checkpoint ends a file cleanly: a file emptied after
	// a rotate checkpoint looks just like a crash right after rotation.
	l.unclean = rec.Kind != KindCheckpoint || rec.Checkpoint.Reason != CheckpointClose
	if l.tree == nil || rec.Kind != KindCheckpoint || rec.Version < 2 {
		return false, nil
	}
	e, err := edgeFrom(rec.Checkpoint.Records, rec.Checkpoint.Edge)
	if err != nil || hexHash(e.root()) != rec.Checkpoint.Root {
		return false, errors.New("is a checkpoint whose tree edge does not give its root; check the file with Verify")
	}
	e.add(last)
	l.tree = e
	return true, nil
}

// authenticate checks the last record of a file before the Log extends
// its chain: under an HMAC key its MAC, else under a signing key its
// signature. m is the line without its mac and sig, link its chain link.
func (l *Log) authenticate(rec *Record, m []byte, link string) error {
	switch {
	case rec.MAC != "" && !l.macs:
		return errors.New("carries an HMAC tag, but the Log has no HMAC key: open the file with the key it was written with")
	case l.macs && rec.MAC != "":
		if !hmac.Equal([]byte(rec.MAC), []byte(link)) {
			return errUnauthenticated
		}
		return nil
	case l.signKey == nil && !l.macs:
		return nil // no key: nothing to check with
	case l.signKey == nil:
		return errUnauthenticated // no MAC under an HMAC key
	case rec.Kind == KindCheckpoint:
		cp := rec.Checkpoint
		sig, err := hex.DecodeString(cp.Sig)
		if err != nil || cp.KeyID != l.keyID || !ed25519.Verify(l.signKey.Public().(ed25519.PublicKey), signedBytes(nil, rec), sig) {
			return errUnauthenticated
		}
		return nil
	case l.macs:
		return errUnauthenticated // a record without MAC under an HMAC key
	}
	sig, err := hex.DecodeString(rec.Sig)
	if err != nil || rec.Sig == "" || !ed25519.Verify(l.signKey.Public().(ed25519.PublicKey), m, sig) {
		return errUnauthenticated
	}
	return nil
}

// rebuildTree rebuilds the Merkle tree of the log from its files: from
// the last checkpoint in the first size bytes of f that carries the tree's
// edge (an earlier run's close checkpoint, or an interval one) or, if f
// has none, from the newest rotated file that ends with one, through the
// later rotated files and f.
func (l *Log) rebuildTree(f *os.File, size int64) error {
	e := &edge{}
	anchored, err := addLines(e, io.NewSectionReader(f, 0, size))
	if err != nil {
		return err
	}
	if !anchored {
		if e, err = l.rotatedTree(); err != nil {
			return err
		}
		if _, err := addLines(e, io.NewSectionReader(f, 0, size)); err != nil {
			return err
		}
	}
	if e.n != l.seq {
		return fmt.Errorf("the log's files hold %d lines, but its last record says %d: lines are missing (a rotated file moved away?) or extra; check it with Verify", e.n, l.seq)
	}
	l.tree = e
	return nil
}

// rotatedTree returns the tree after the rotated files of the log.
func (l *Log) rotatedTree() (*edge, error) {
	files, err := rotatedFiles(l.path)
	if err != nil {
		return nil, err
	}
	e, from := &edge{}, 0
	for i := len(files) - 1; i >= 0; i-- {
		if ce, ok := checkpointEdge(files[i]); ok {
			e, from = ce, i+1
			break
		}
	}
	for _, name := range files[from:] {
		rf, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		_, err = addLines(e, rf)
		rf.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return e, nil
}

// checkpointEdge returns the tree after the last line of the file name,
// if that line is a checkpoint carrying the tree's edge.
func checkpointEdge(name string) (*edge, bool) {
	f, err := os.Open(name)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false
	}
	last, _, lineEnd, err := lastLine(f, st.Size())
	if err != nil || lineEnd != st.Size()-1 {
		return nil, false
	}
	return lineEdge(last)
}

// lineEdge returns the tree after line, if line is a checkpoint carrying
// the edge of the tree before it.
func lineEdge(line []byte) (*edge, bool) {
	rec, reason := parseLine(line)
	if reason != "" || rec.Kind != KindCheckpoint || rec.Version < 2 {
		return nil, false
	}
	e, err := edgeFrom(rec.Checkpoint.Records, rec.Checkpoint.Edge)
	if err != nil || hexHash(e.root()) != rec.Checkpoint.Root {
		return nil, false
	}
	e.add(line)
	return e, true
}

// checkpointKind marks the lines worth parsing for an edge.
var checkpointKind = []byte(`"kind":"checkpoint"`)

// addLines adds every line of r to e as a leaf; from a checkpoint that
// carries the tree's edge on, e is that tree (and anchored is true).
func addLines(e *edge, r io.Reader) (anchored bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var acc []byte
	for {
		line, complete, err := readLine(br, maxResumeLine, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			return anchored, err
		}
		if !complete {
			if len(line) > 0 {
				return anchored, errors.New("a line has no newline")
			}
			return anchored, nil
		}
		if bytes.Contains(line, checkpointKind) {
			if ce, ok := lineEdge(line); ok {
				*e, anchored = *ce, true
				continue
			}
		}
		e.add(line)
	}
}

// resumeRotated continues the chain of the newest rotated file, if any,
// and reports whether it set l.tree.
func (l *Log) resumeRotated() (bool, error) {
	files, err := rotatedFiles(l.path)
	if err != nil {
		return false, fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	if len(files) == 0 {
		return false, nil
	}
	name := files[len(files)-1]
	rf, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("audit: open %s: resume from %s: %w", l.path, name, err)
	}
	defer rf.Close()
	st, err := rf.Stat()
	if err != nil {
		return false, fmt.Errorf("audit: open %s: resume from %s: %w", l.path, name, err)
	}
	last, _, lineEnd, err := lastLine(rf, st.Size())
	if err == nil && lineEnd != st.Size()-1 {
		err = errors.New("it does not end with a complete record")
	}
	treeSet := false
	if err == nil {
		treeSet, err = l.resumeAfter(last)
	}
	if err != nil {
		return false, fmt.Errorf("audit: open %s: resume from rotated file %s: its last record %w", l.path, name, err)
	}
	return treeSet, nil
}

// rotate moves the current file aside and continues the chain in a new
// file at l.path. l.mu must be held.
func (l *Log) rotate(ctx context.Context) error {
	// A file that already ends with a checkpoint (an interval one, or the
	// close checkpoint of an earlier run) needs no other.
	if l.checkpoints && !l.lastCP {
		if err := l.writeCheckpoint(ctx, CheckpointRotate); err != nil {
			return err
		}
	}
	l.fmu.Lock()
	defer l.fmu.Unlock()
	if err := l.f.Sync(); err != nil {
		l.err = err
		return fmt.Errorf("audit: rotate %s: fsync: %w (log unusable from now on)", l.path, err)
	}
	name := RotatedName(l.path, l.seq-1)
	if _, err := os.Lstat(name); err == nil {
		return fmt.Errorf("audit: rotate %s: %s already exists (record not stored)", l.path, name)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: rotate %s: %w (record not stored)", l.path, err)
	}
	if err := os.Rename(l.path, name); err != nil {
		return fmt.Errorf("audit: rotate %s: %w (record not stored)", l.path, err)
	}
	nf, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, l.perm)
	if err == nil {
		if err = lockFile(nf); err != nil {
			nf.Close()
			os.Remove(l.path)
		}
	}
	if err != nil {
		if rerr := os.Rename(name, l.path); rerr != nil {
			l.err = err
			return fmt.Errorf("audit: rotate %s: new file: %w; moving the old one back failed: %w (log unusable from now on)", l.path, err, rerr)
		}
		return fmt.Errorf("audit: rotate %s: new file: %w (record not stored)", l.path, err)
	}
	if err := syncDir(filepath.Dir(l.path)); err != nil {
		nf.Close()
		l.err = err
		return fmt.Errorf("audit: rotate %s: sync directory: %w (log unusable from now on)", l.path, err)
	}
	old := l.f
	l.f, l.w, l.size = nf, nf, 0
	old.Close() // synced above; nothing left to report
	l.sync.markSynced(l.sync.written.Load())
	return nil
}

// RotatedName returns the name a log file at path gets when [OpenFile]
// rotates it after the record lastSeq: the seq, in 20 digits, is added
// before the extension, so "decisions.jsonl" becomes
// "decisions-00000000000000001234.jsonl" and names sort in chain order.
func RotatedName(path string, lastSeq uint64) string {
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%020d%s", strings.TrimSuffix(path, ext), lastSeq, ext)
}

// LogFiles returns the files of the log at path in chain order: its
// rotated files (see [FileOptions.MaxBytes]) oldest first, then path itself
// if it exists. Verify them as one chain by reading them in this order, for
// example with io.MultiReader.
func LogFiles(path string) ([]string, error) {
	files, err := rotatedFiles(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return files, nil
}

// rotatedFiles lists the rotated files of path, oldest first.
func rotatedFiles(path string) ([]string, error) {
	dir := filepath.Dir(path)
	ext := filepath.Ext(path)
	prefix := strings.TrimSuffix(filepath.Base(path), ext) + "-"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		mid, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		mid, ok = strings.CutSuffix(mid, ext)
		if !ok || len(mid) != 20 || strings.Trim(mid, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		files = append(files, filepath.Join(dir, name))
	}
	slices.Sort(files)
	return files, nil
}

// recordStart is how every line written by this version begins.
const recordStart = `{"v":`

// lastLine finds the last newline-terminated line of f, whose size is size.
// lineEnd is the offset of its '\n' (-1 if f has no newline at all) and
// lineStart the offset of its first byte. It reads a window from the end,
// doubling it until the window holds the whole line, up to a bound.
func lastLine(f *os.File, size int64) (line []byte, lineStart, lineEnd int64, err error) {
	const maxWindow = 2 * maxResumeLine
	for window := int64(64 << 10); ; window *= 2 {
		n := min(window, size)
		base := size - n
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, base); err != nil {
			return nil, 0, 0, err
		}
		if end := bytes.LastIndexByte(buf, '\n'); end >= 0 {
			start := bytes.LastIndexByte(buf[:end], '\n') + 1
			if start > 0 || base == 0 {
				return buf[start:end], base + int64(start), base + int64(end), nil
			}
		} else if base == 0 {
			return nil, 0, -1, nil
		}
		if n >= maxWindow {
			return nil, 0, 0, fmt.Errorf("no complete record in the last %d bytes", n)
		}
	}
}

// syncLoop is the SyncInterval background flusher.
func (l *Log) syncLoop(d time.Duration) {
	defer close(l.ended)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			// An error is kept by the syncer and fails later writes.
			_ = l.sync.wait(context.Background(), l.sync.written.Load())
		}
	}
}

// syncer makes records durable with group commit: a writer that needs a
// sync and finds none running becomes the leader and fsyncs everything
// written so far; writers arriving meanwhile wait for that round and, if
// their record came too late for it, the next leader covers them all.
type syncer struct {
	sync    func() error  // fsync; replaced in tests
	written atomic.Uint64 // records written to the file; set under Log.mu

	mu      sync.Mutex
	synced  uint64        // records known durable
	running bool          // a leader is in sync
	round   chan struct{} // closed when the running round ends
	rounds  uint64        // fsyncs done, for tests
	err     error         // first sync error; sticky
	closed  bool
	failed  atomic.Bool
}

// wait returns once the first n records are durable, or with an error if a
// sync failed or ctx is done first.
func (s *syncer) wait(ctx context.Context, n uint64) error {
	for {
		s.mu.Lock()
		switch {
		case s.synced >= n:
			s.mu.Unlock()
			return nil
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return fmt.Errorf("audit: record %d not confirmed durable: fsync failed: %w", n-1, err)
		case s.running:
			ch := s.round
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return fmt.Errorf("audit: record %d written but not confirmed durable: %w", n-1, ctx.Err())
			}
			continue
		case s.closed:
			s.mu.Unlock()
			return ErrClosed
		}
		s.running = true
		s.round = make(chan struct{})
		target := s.written.Load()
		s.mu.Unlock()

		err := s.sync()

		s.mu.Lock()
		s.running = false
		s.rounds++
		if err != nil {
			if s.err == nil {
				s.err = err
				s.failed.Store(true)
			}
		} else if target > s.synced {
			s.synced = target
		}
		close(s.round)
		s.mu.Unlock()
	}
}

// markSynced records that the first n records are durable.
func (s *syncer) markSynced(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n > s.synced {
		s.synced = n
	}
}

// failure returns the sticky sync error, if any.
func (s *syncer) failure() error {
	if !s.failed.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// close syncs everything written and stops further rounds. No writes may
// happen after it is called.
func (s *syncer) close() error {
	err := s.wait(context.Background(), s.written.Load())
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return err
}
