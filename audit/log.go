package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// ErrClosed is returned by [Log.Write] and [Log.Close] after the Log was closed.
var ErrClosed = errors.New("audit: log closed")

// Log is the hash-chained JSON Lines log. Each record gets the next Seq and
// Prev = hex(SHA-256 of the previous line's bytes), is encoded with
// [Record.AppendJSON] and written as one line with a single Write call to the
// underlying writer, so editing, deleting, inserting or reordering lines is
// detected by [Verify].
//
// A Log is safe for concurrent use; records are written in Seq order. After a
// write error on a writer it does not own the Log is broken and every later
// Write fails, since the chain can't be trusted to continue. A Log from
// [OpenFile] instead cuts the file back to its last good record and stays
// usable when it can.
//
// Use [NewLog] or [OpenFile]; the zero Log refuses every record.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	seq    uint64 // Seq of the next record
	prev   string // hex SHA-256 of the last line; "" before the first
	err    error  // set once the chain cannot continue
	closed bool

	// Set for logs from OpenFile.
	f     *os.File
	path  string
	size  int64 // offset just past the last good record
	mode  SyncMode
	sync  *syncer
	stop  chan struct{} // closed by Close to stop the SyncInterval loop
	ended chan struct{} // closed when the loop has returned
}

// NewLog returns a Log that writes a new chain, starting at Seq 0, to w.
//
// Each record is written with one w.Write call; whether it is durable when
// Write returns is up to w. Close calls w's Flush method if it has one
// (a *bufio.Writer, say) and never closes w. To append to a file with resume
// and fsync, use [OpenFile].
func NewLog(w io.Writer) *Log {
	return &Log{w: w}
}

// Write assigns r the next Seq and the previous line's hash as Prev, writes it
// as one line and returns once it is stored as the Log promises: handed to the
// writer for [NewLog], and per [FileOptions.Sync] for [OpenFile]. It sets
// r.Version to [FormatVersion] when it is zero, and r.Seq and r.Prev when the
// record is written.
//
// Write returns an error, and writes nothing, if ctx is already done, if the
// Log is closed ([ErrClosed]) or broken, or if r is not a valid record: no
// ID, a zero Time or one outside the years 0000-9999, an unknown Kind, a
// decision whose Effect is not "allow" or "deny", an outcome with an Effect,
// a hash field that is not lowercase hex SHA-256. (Whether an outcome follows
// its decision is left to [Verify].) With [SyncEachRecord], Write may return
// ctx's error after the record was written but before it was confirmed
// durable.
func (l *Log) Write(ctx context.Context, r *Record) error {
	if l == nil || l.w == nil {
		return errors.New("audit: Log not created by NewLog or OpenFile")
	}
	if r == nil {
		return errors.New("audit: nil record")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: record not written: %w", err)
	}
	if r.Version == 0 {
		r.Version = FormatVersion
	}
	if reason := r.check(); reason != "" {
		return fmt.Errorf("audit: invalid record: %s", reason)
	}

	// Encode everything but the head and tail outside the lock: only Seq
	// and Prev depend on the records before this one.
	bp := bufPool.Get().(*[]byte)
	buf := append((*bp)[:0], make([]byte, maxHead)...)
	buf = r.appendBody(buf)
	seq, err := l.writeLine(ctx, r, buf, bp)
	if cap(*bp) <= maxPooledBuf {
		bufPool.Put(bp)
	}
	if err != nil {
		return err
	}
	if l.mode == SyncEachRecord && l.sync != nil {
		return l.sync.wait(ctx, seq+1)
	}
	return nil
}

// writeLine adds the head and tail to the encoded body in buf[maxHead:],
// writes the line and advances the chain. It stores the final buffer in *bp
// for reuse.
func (l *Log) writeLine(ctx context.Context, r *Record, buf []byte, bp *[]byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer func() { *bp = buf[:0] }()
	switch {
	case l.closed:
		return 0, ErrClosed
	case l.err != nil:
		return 0, fmt.Errorf("audit: log unusable after an earlier failure: %w", l.err)
	}
	if l.sync != nil {
		if err := l.sync.failure(); err != nil {
			return 0, fmt.Errorf("audit: log unusable after an earlier failure: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("audit: record not written: %w", err)
	}

	var head [maxHead]byte
	h := appendHead(head[:0], r.Version, l.seq)
	start := maxHead - len(h)
	copy(buf[start:], h)
	buf = appendTail(buf, l.prev)
	buf = append(buf, '\n')
	line := buf[start:]

	n, err := l.w.Write(line)
	if err == nil && n != len(line) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return 0, l.writeFailed(err)
	}

	sum := sha256.Sum256(line[:len(line)-1])
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum[:])
	r.Seq, r.Prev = l.seq, l.prev
	seq := l.seq
	l.seq++
	l.prev = string(hx[:])
	l.size += int64(len(line))
	if l.sync != nil {
		l.sync.written.Store(l.seq)
	}
	return seq, nil
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

// Close makes everything written durable and releases the Log: for a file
// from [OpenFile] it fsyncs (in every [SyncMode]) and closes the file; for a
// writer given to [NewLog] it calls Flush if the writer has one. It returns
// the first sync or close error, including a failed background sync of
// [SyncInterval]. Write after Close, and a second Close, return [ErrClosed].
// Close waits for writes in progress.
func (l *Log) Close() error {
	if l == nil || l.w == nil {
		return errors.New("audit: Log not created by NewLog or OpenFile")
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()

	if l.f == nil {
		if fl, ok := l.w.(interface{ Flush() error }); ok {
			if err := fl.Flush(); err != nil {
				return fmt.Errorf("audit: flush: %w", err)
			}
		}
		return nil
	}
	if l.stop != nil {
		close(l.stop)
		<-l.ended
	}
	serr := l.sync.close()
	if err := l.f.Close(); err != nil && serr == nil {
		return fmt.Errorf("audit: close %s: %w", l.path, err)
	}
	return serr
}

// bufPool holds line buffers; buffers grown past maxPooledBuf by a large
// record are left to the garbage collector.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledBuf = 64 << 10
