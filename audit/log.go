package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by [Log.Write] and [Log.Close] after the Log was closed.
var ErrClosed = errors.New("audit: log closed")

// Log is the hash-chained JSON Lines log. Each record gets the next Seq and
// Prev = hex(SHA-256 of the previous line's bytes, without its mac and sig)
// — or HMAC-SHA256 under [LogOptions.HMACKey] — is encoded with
// [Record.AppendJSON] and written as one line with a single Write call to
// the underlying writer, so editing, deleting, inserting or reordering lines
// is detected by [Verify]. With a key each line also authenticates itself
// (Record.MAC under the HMAC key, else Record.Sig under the signing key),
// the last one included. With checkpoints configured the Log also writes
// signed [Checkpoint] records, stating the Merkle tree of the lines before
// them, into the same chain, and delivers them to its witness if it has
// one.
//
// A Log is safe for concurrent use; records are written in Seq order. After a
// write error on a writer it does not own the Log is broken and every later
// Write fails, since the chain can't be trusted to continue. A Log from
// [OpenFile] instead cuts the file back to its last good record and stays
// usable when it can.
//
// Use [NewLog], [NewLogWithOptions] or [OpenFile]; the zero Log refuses every
// record.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	seq    uint64 // Seq of the next record
	prev   string // chain hash of the last line; "" before the first
	err    error  // set once the chain cannot continue
	closed bool

	hash        *chainHash
	macs        bool // seal each line with its HMAC (format 2 "mac")
	checkpoints bool // write rotate and close checkpoints
	every       int  // records between interval checkpoints; 0: none
	since       int  // records since the last checkpoint
	lastCP      bool // the last line is a checkpoint
	unclean     bool // the chain resumed did not end with a close checkpoint
	signKey     ed25519.PrivateKey
	keyID       string
	signer      *noteSigner
	tree        *edge   // the Merkle tree's right edge; nil without checkpoints
	cpExt       *crange // the last checkpoint's proof for a WitnessFile
	treeBak     edge    // tree before the line being written
	witness     Sink
	now         func() time.Time
	scratch     []byte // checkpoint lines

	// Set for logs from OpenFile.
	f        *os.File
	fmu      sync.Mutex // held while f is synced or replaced by rotation
	path     string
	perm     os.FileMode
	maxBytes int64
	size     int64 // offset just past the last good record
	mode     SyncMode
	sync     *syncer

	deferOutcomes bool          // FileOptions.DeferOutcomes with SyncEachRecord
	interval      time.Duration // longest wait of a deferred outcome
	flushArmed    atomic.Bool   // a deferred fsync is scheduled
	flushTimer    *time.Timer   // runs deferredFlush; stopped by Close
	stop          chan struct{} // closed by Close to stop the SyncInterval loop
	ended         chan struct{} // closed when the loop has returned
}

// LogOptions configures [NewLogWithOptions]. The zero value gives a plain
// SHA-256 chain without checkpoints, as [NewLog] writes.
type LogOptions struct {
	// CheckpointEvery is the number of records after which the Log writes
	// an interval checkpoint; zero means none. See [Checkpoint].
	CheckpointEvery int
	// SigningKey signs every checkpoint with ed25519 (see [KeyID]). Nil
	// leaves checkpoints unsigned.
	SigningKey ed25519.PrivateKey
	// HMACKey, when set, makes each Prev an HMAC-SHA256 under this key
	// instead of a SHA-256, so that only holders of the key can extend or
	// re-link the chain, and gives every record a MAC of its own. Verify
	// needs the same key.
	HMACKey []byte
	// Witness, when set, receives every checkpoint record the Log writes
	// (with its signed note, [Checkpoint.Note]), apart from the log: a
	// [WitnessFile] elsewhere, or any Sink that stores them where whoever
	// can rewrite the log cannot. [VerifyOptions.Witness] then detects a
	// log cut back or rolled back to an earlier checkpoint. It needs a
	// SigningKey. A checkpoint is delivered after it is written (and, for
	// [OpenFile], fsynced); if the witness refuses it, the Write or Close
	// that wrote it returns the error and the Log refuses every later
	// record: fail closed.
	Witness Sink
}

// NewLog returns a Log that writes a new chain, starting at Seq 0, to w, with
// no HMAC key and no checkpoints; NewLog(w) is NewLogWithOptions(w,
// LogOptions{}).
//
// Each record is written with one w.Write call; whether it is durable when
// Write returns is up to w. Close calls w's Flush method if it has one
// (a *bufio.Writer, say) and never closes w. To append to a file with resume
// and fsync, use [OpenFile].
func NewLog(w io.Writer) *Log {
	l, err := NewLogWithOptions(w, LogOptions{})
	if err != nil {
		return &Log{} // a nil w: refuses every record
	}
	return l
}

// NewLogWithOptions is [NewLog] with checkpoints and an HMAC key. A Log with
// a SigningKey, an HMACKey or CheckpointEvery > 0 writes a checkpoint after
// every CheckpointEvery records (when positive) and one when it is closed.
// It returns an error if w is nil, CheckpointEvery is negative or SigningKey
// is not an ed25519 private key.
func NewLogWithOptions(w io.Writer, opts LogOptions) (*Log, error) {
	if w == nil {
		return nil, errors.New("audit: nil writer")
	}
	l := &Log{w: w}
	if err := l.configure(opts); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return l, nil
}

// configure validates and applies the chain options. Its errors are not
// prefixed: callers add context.
func (l *Log) configure(opts LogOptions) error {
	every, key := opts.CheckpointEvery, opts.SigningKey
	if every < 0 {
		return fmt.Errorf("negative CheckpointEvery %d", every)
	}
	if key != nil && len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("SigningKey is %d bytes, not an ed25519 private key (%d bytes)", len(key), ed25519.PrivateKeySize)
	}
	if opts.Witness != nil && key == nil {
		return errors.New("a Witness needs a SigningKey: unsigned checkpoints prove nothing to it")
	}
	l.hash = newChainHash(opts.HMACKey)
	l.macs = len(opts.HMACKey) > 0
	l.every = every
	l.checkpoints = every > 0 || key != nil || l.macs
	if l.checkpoints {
		l.tree = &edge{}
	}
	if key != nil {
		l.signKey = bytes.Clone(key)
		l.keyID = KeyID(l.signKey.Public().(ed25519.PublicKey))
		l.signer = newNoteSigner(l.signKey)
	}
	l.witness = opts.Witness
	l.now = time.Now
	return nil
}

// Write assigns r the next Seq and the previous line's hash as Prev, writes it
// as one line and returns once it is stored as the Log promises: handed to the
// writer for [NewLog], and per [FileOptions.Sync] for [OpenFile]. It sets
// r.Version to [FormatVersion] when it is zero or 1 (a record made for
// format version 1 is written in the current format, which only adds
// members), and r.Seq, r.Prev and r.MAC or r.Sig when the record is
// written. When an interval checkpoint is due it is written together with
// r, in the same write.
//
// With an HMAC key every line carries its own MAC; with a signing key and
// no HMAC key every record carries its own ed25519 signature, made while
// the Log's lock is held (tens of microseconds a record, BenchmarkSeal; so
// one Log signs at most some ten thousand records a second): see the
// package documentation for why.
//
// Write returns an error, and writes nothing, if ctx is already done, if the
// Log is closed ([ErrClosed]) or broken, or if r is not a valid record: no
// ID, a zero Time or one outside the years 0000-9999, an unknown Kind or
// [KindCheckpoint], a decision whose Effect is not "allow" or "deny", an
// outcome with an Effect, a hash field that is not lowercase hex SHA-256,
// or a record whose line would be longer than the 16 MiB that [OpenFile]
// resumes from and [Verify] reads by default. (Whether an outcome follows
// its decision is left to [Verify].) With
// [SyncEachRecord], Write may return ctx's error after the record was
// written but before it was confirmed durable; with
// [FileOptions.DeferOutcomes] it returns for an outcome record once the
// record is written, before its fsync.
func (l *Log) Write(ctx context.Context, r *Record) error {
	if l == nil || l.hash == nil { // hash is set once, by the constructors
		return errors.New("audit: Log not created by NewLog or OpenFile")
	}
	if r == nil {
		return errors.New("audit: nil record")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: record not written: %w", err)
	}
	if r.Version == 0 || r.Version == 1 {
		r.Version = FormatVersion
	}
	if r.Version != FormatVersion {
		return fmt.Errorf("audit: invalid record: format version %d, want %d", r.Version, FormatVersion)
	}
	if r.Kind == KindCheckpoint {
		return errors.New("audit: invalid record: checkpoints are written by the Log itself")
	}
	if reason := r.check(); reason != "" {
		return fmt.Errorf("audit: invalid record: %s", reason)
	}

	// Encode everything but the head and tail outside the lock: only Seq
	// and Prev depend on the records before this one.
	bp := bufPool.Get().(*[]byte)
	buf := append((*bp)[:0], make([]byte, maxHead)...)
	buf = r.appendBody(buf)
	if n := len(buf) - maxHead + maxHead + maxTail; n > maxResumeLine {
		*bp = buf[:0]
		if cap(*bp) <= maxPooledBuf {
			bufPool.Put(bp)
		}
		return fmt.Errorf("audit: invalid record: it encodes to %d bytes, over the %d that OpenFile and Verify read back as one line", n, maxResumeLine)
	}
	seq, err := l.writeLine(ctx, r, buf, bp)
	if cap(*bp) <= maxPooledBuf {
		bufPool.Put(bp)
	}
	if err != nil {
		return err
	}
	if l.mode == SyncEachRecord && l.sync != nil {
		if l.deferOutcomes && r.Kind == KindOutcome {
			l.deferSync()
			return nil
		}
		return l.sync.wait(ctx, seq+1)
	}
	return nil
}

// deferSync makes sure an fsync happens at most l.interval from now, for
// an outcome record written without waiting for one. An earlier fsync (a
// decision's group commit) makes the scheduled one cheap: it finds
// everything synced and returns.
func (l *Log) deferSync() {
	if l.flushArmed.CompareAndSwap(false, true) {
		l.flushTimer.Reset(l.interval)
	}
}

// deferredFlush is the timer function of deferSync.
func (l *Log) deferredFlush() {
	l.flushArmed.Store(false)
	// An error is kept by the syncer and fails later writes; after Close
	// everything is synced and wait returns at once.
	_ = l.sync.wait(context.Background(), l.sync.written.Load())
}

// maxCheckpointLine bounds the length of a checkpoint line with its newline
// when its tree edge holds n hashes.
func maxCheckpointLine(n int) int64 { return 1536 + int64(n)*(2*sha256.Size+3) }

// maxTail is the longest appendTail and appendAuth output plus the newline.
const maxTail = len(`"prev":"","mac":"","sig":""}`) + 4*sha256.Size + 2*ed25519.SignatureSize + 1

// writeLine adds the head and tail to the encoded body in buf[maxHead:],
// writes the line (and a checkpoint if one is due) and advances the chain.
// It stores the final buffer in *bp for reuse.
func (l *Log) writeLine(ctx context.Context, r *Record, buf []byte, bp *[]byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() { *bp = buf[:0] }()
	if err := l.usable(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("audit: record not written: %w", err)
	}
	cpDue := l.every > 0 && l.since+1 >= l.every
	if l.maxBytes > 0 && l.size > 0 {
		// Room for the record, a due interval checkpoint and the rotate
		// checkpoint that will end the file.
		need := int64(len(buf) - maxHead + maxHead + maxTail)
		cpLine := maxCheckpointLine(bits.Len64(l.seq + 2))
		if cpDue {
			need += cpLine
		}
		if l.checkpoints {
			need += cpLine
		}
		if l.size+need > l.maxBytes {
			if err := l.rotate(ctx); err != nil {
				return 0, err
			}
		}
	}

	var head [maxHead]byte
	h := appendHead(head[:0], r.Version, l.seq)
	start := maxHead - len(h)
	copy(buf[start:], h)
	buf = appendTail(buf, l.prev)
	link := l.hash.link(buf[start:])
	buf, mac, sig := l.seal(buf, start, link)
	recEnd := len(buf)
	if l.tree != nil {
		l.treeSave()
		l.tree.add(buf[start:recEnd])
	}
	buf = append(buf, '\n')
	var cpLink string
	var cp *Record
	if cpDue {
		cpStart := len(buf)
		buf, cpLink, cp = l.appendCheckpoint(buf, l.seq+1, link, CheckpointInterval)
		l.tree.add(buf[cpStart:])
		buf = append(buf, '\n')
	}
	line := buf[start:]

	n, err := l.w.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if l.tree != nil {
			l.treeRestore()
		}
		return 0, l.writeFailed(err)
	}

	r.Seq, r.Prev, r.MAC, r.Sig = l.seq, l.prev, mac, sig
	seq := l.seq
	l.advance(link, recEnd+1-start)
	l.since++
	l.lastCP = cpDue
	if cpDue {
		l.advance(cpLink, len(buf)-recEnd-1)
		l.since = 0
		if err := l.witnessed(ctx, cp); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// usable reports why no record can be written now. l.mu must be held.
func (l *Log) usable() error {
	switch {
	case l.closed:
		return ErrClosed
	case l.err != nil:
		return fmt.Errorf("audit: log unusable after an earlier failure: %w", l.err)
	}
	if l.sync != nil {
		if err := l.sync.failure(); err != nil {
			return fmt.Errorf("audit: log unusable after an earlier failure: %w", err)
		}
	}
	return nil
}

// advance moves the chain past a written line of n bytes (newline
// included) whose hash is link. l.mu must be held.
func (l *Log) advance(link string, n int) {
	l.seq++
	l.prev = link
	l.size += int64(n)
	if l.sync != nil {
		l.sync.written.Store(l.seq)
	}
}

// writeCheckpoint writes a checkpoint record for reason on its own and
// delivers it to the witness. l.mu must be held.
func (l *Log) writeCheckpoint(ctx context.Context, reason string) error {
	buf, link, cp := l.appendCheckpoint(l.scratch[:0], l.seq, l.prev, reason)
	l.treeSave()
	l.tree.add(buf)
	buf = append(buf, '\n')
	l.scratch = buf[:0]
	n, err := l.w.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.treeRestore()
		return l.writeFailed(err)
	}
	l.advance(link, len(buf))
	l.since = 0
	l.lastCP = true
	return l.witnessed(ctx, cp)
}

// treeSave keeps the tree as it is before a line is added, for
// treeRestore when the line cannot be written. l.mu must be held.
func (l *Log) treeSave() {
	l.tree.saveTo(&l.treeBak)
}

// treeRestore undoes the additions since treeSave. l.mu must be held.
func (l *Log) treeRestore() {
	l.treeBak.saveTo(l.tree)
}

// witnessed delivers a checkpoint just written to the witness, if there is
// one, after making it durable: a witness must never hold a checkpoint the
// log could lose in a crash. A failure breaks the Log (fail closed: without
// its witness, rollback would go unnoticed). l.mu must be held.
func (l *Log) witnessed(ctx context.Context, cp *Record) error {
	if l.witness == nil {
		return nil
	}
	if l.f != nil {
		if err := l.f.Sync(); err != nil {
			l.err = err
			return fmt.Errorf("audit: checkpoint %d: fsync before delivery to the witness: %w (log unusable from now on)", cp.Seq, err)
		}
	}
	// The checkpoint belongs to the log, not to the call whose record
	// happened to make it due: that call's cancellation must not break
	// the Log for everyone.
	if err := l.deliver(context.WithoutCancel(ctx), cp); err != nil {
		l.err = err
		return fmt.Errorf("audit: checkpoint %d not delivered to the witness: %w (log unusable from now on)", cp.Seq, err)
	}
	return nil
}

// writeFailed handles a failed or short write of record l.seq. It is called
// with l.mu held.
func (l *Log) writeFailed(err error) error {
	if l.f != nil {
		// Cut any partial line so the file still ends with a whole record
		// and the chain goes on from it.
		terr := l.f.Truncate(l.size)
		if terr == nil {
			return fmt.Errorf("audit: write record %d to %s: %w (record not stored)", l.seq, l.path, err)
		}
		l.err = err
		return fmt.Errorf("audit: write record %d to %s: %w; cutting the partial record failed, log unusable: %w", l.seq, l.path, err, terr)
	}
	l.err = err
	return fmt.Errorf("audit: write record %d: %w (log unusable from now on)", l.seq, err)
}

// Close makes everything written durable and releases the Log. A Log with
// checkpoints first writes a close checkpoint (unless an earlier failure
// broke it), so that [Verify] with RequireClosed can tell a complete log
// from one whose tail was cut off. For a file
// from [OpenFile] it fsyncs (in every [SyncMode]) and closes the file; for a
// writer given to [NewLog] it calls Flush if the writer has one. It returns
// the first sync or close error, including a failed background sync of
// [SyncInterval]. Write after Close, and a second Close, return [ErrClosed].
// Close waits for writes in progress.
func (l *Log) Close() error {
	if l == nil || l.hash == nil { // hash is set once, by the constructors
		return errors.New("audit: Log not created by NewLog or OpenFile")
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	var cerr error
	if l.checkpoints && l.usable() == nil {
		if err := l.writeCheckpoint(context.Background(), CheckpointClose); err != nil {
			cerr = fmt.Errorf("audit: close checkpoint: %w", err)
		}
	}
	l.closed = true
	l.mu.Unlock()

	if l.f == nil {
		if fl, ok := l.w.(interface{ Flush() error }); ok {
			if err := fl.Flush(); err != nil && cerr == nil {
				cerr = fmt.Errorf("audit: flush: %w", err)
			}
		}
		return cerr
	}
	if l.stop != nil {
		close(l.stop)
		<-l.ended
	}
	if l.flushTimer != nil {
		l.flushTimer.Stop()
	}
	serr := l.sync.close()
	if cerr == nil {
		cerr = serr
	}
	if err := l.f.Close(); err != nil && cerr == nil {
		return fmt.Errorf("audit: close %s: %w", l.path, err)
	}
	return cerr
}

// bufPool holds line buffers; buffers grown past maxPooledBuf by a large
// record are left to the garbage collector.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10
