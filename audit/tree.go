package audit

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxNote bounds the length of a checkpoint's signed note.
const maxNote = 1024

// Origin returns the origin line of the checkpoints signed with the private
// key of pub: "agentguard.audit/" followed by [KeyID]. It is the first line
// of each checkpoint's signed note ([Checkpoint.Note]) and the name of the
// key in its signature line, as C2SP tlog-checkpoint asks: a witness or
// auditor that knows pub knows which log a checkpoint claims to be from.
func Origin(pub ed25519.PublicKey) string {
	return "agentguard.audit/" + KeyID(pub)
}

// edge is the right edge of an RFC 6962 Merkle tree (a compact range):
// the hashes of its complete subtrees, largest first, one for each bit set
// in n. Adding a leaf costs one SHA-256 of the line and, on average, one
// of 65 bytes. It is not safe for concurrent use.
type edge struct {
	n      uint64
	hashes []tlog.Hash
	ext    *crange // when set, also the leaves from ext.begin on
}

// add appends a leaf holding line.
func (e *edge) add(line []byte) {
	h := tlog.RecordHash(line)
	if e.ext != nil {
		e.ext.appendNode(0, h)
	}
	for i := e.n; i&1 == 1; i >>= 1 {
		last := len(e.hashes) - 1
		h = tlog.NodeHash(e.hashes[last], h)
		e.hashes = e.hashes[:last]
	}
	e.hashes = append(e.hashes, h)
	e.n++
}

// root returns the tree hash of the n leaves added so far.
func (e *edge) root() tlog.Hash {
	if len(e.hashes) == 0 {
		h, _ := tlog.TreeHash(0, nil) // the hash of the empty tree
		return h
	}
	h := e.hashes[len(e.hashes)-1]
	for i := len(e.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(e.hashes[i], h)
	}
	return h
}

// hex returns the edge's hashes in hex, for Checkpoint.Edge.
func (e *edge) hex() []string {
	if len(e.hashes) == 0 {
		return nil
	}
	out := make([]string, len(e.hashes))
	for i, h := range e.hashes {
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

// edgeFrom rebuilds an edge of n leaves from hex hashes. It fails unless
// there is one hash for each bit set in n.
func edgeFrom(n uint64, hx []string) (*edge, error) {
	e := &edge{n: n}
	for _, s := range hx {
		var h tlog.Hash
		if len(s) != 2*len(h) {
			return nil, errors.New("edge hash is not 64 hex digits")
		}
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return nil, errors.New("edge hash is not hex")
		}
		e.hashes = append(e.hashes, h)
	}
	if onesCount(n) != len(e.hashes) {
		return nil, fmt.Errorf("an edge of %d leaves has %d hashes, not %d", n, len(e.hashes), onesCount(n))
	}
	return e, nil
}

func onesCount(n uint64) int {
	c := 0
	for ; n != 0; n &= n - 1 {
		c++
	}
	return c
}

// noteSigner signs checkpoint notes with a Log's ed25519 key, under the
// name [Origin] gives.
type noteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func newNoteSigner(key ed25519.PrivateKey) *noteSigner {
	pub := key.Public().(ed25519.PublicKey)
	name := Origin(pub)
	return &noteSigner{name: name, hash: noteKeyHash(name, pub), key: key}
}

// noteKeyHash is the key hash of note's ed25519 verifier keys: the first 4
// bytes of SHA-256(name, "\n", 0x01, pub).
func noteKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// checkpointText is the body of a C2SP tlog-checkpoint: origin, tree size
// and base64 root hash, one a line.
func checkpointText(origin string, size uint64, root tlog.Hash) string {
	return origin + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
}

// signNote returns the signed note of a checkpoint of size records with
// the given root.
func signNote(s *noteSigner, size uint64, root tlog.Hash) string {
	msg, err := note.Sign(&note.Note{Text: checkpointText(s.name, size, root)}, s)
	if err != nil {
		panic("audit: signing a well-formed note failed: " + err.Error()) // the text is ours and always well formed
	}
	return string(msg)
}

// openNote verifies a checkpoint note with pub and returns its size and
// root. It fails if the signature is not pub's, or the origin is not
// Origin(pub).
func openNote(msg string, pub ed25519.PublicKey) (uint64, tlog.Hash, error) {
	name := Origin(pub)
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return 0, tlog.Hash{}, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return 0, tlog.Hash{}, err
	}
	n, err := note.Open([]byte(msg), note.VerifierList(v))
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("note signature: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) != 4 || lines[3] != "" || lines[0] != name {
		return 0, tlog.Hash{}, fmt.Errorf("note is not a checkpoint of origin %s", name)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return 0, tlog.Hash{}, errors.New("note has a malformed tree size")
	}
	var root tlog.Hash
	b, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(b) != len(root) {
		return 0, tlog.Hash{}, errors.New("note has a malformed root hash")
	}
	copy(root[:], b)
	return size, root, nil
}

// Tree holds the Merkle tree of a log read by [ReadTree], for proofs. The
// leaves are the log's lines without their newlines, in order (checkpoint
// lines included), hashed as RFC 6962 says; [Checkpoint.Root] is the hash
// of the tree of the lines before the checkpoint. A Tree holds about 64
// bytes a line. It is safe for concurrent use once returned.
type Tree struct {
	hashes []tlog.Hash // tlog's stored hashes of every record
	n      int64
}

// ReadTree reads a log (the files of [LogFiles] in order, for a rotated
// one) and returns its tree. It does not verify the log: use [Verify] for
// that; a proof from a Tree of a log that fails Verify proves nothing.
// Lines are bounded by 16 MiB. A last line without a newline is an error.
func ReadTree(r io.Reader) (*Tree, error) {
	const maxLine = maxResumeLine
	t := &Tree{}
	br := bufio.NewReaderSize(r, 64<<10)
	var acc []byte
	for {
		line, complete, err := readLine(br, maxLine, &acc)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("audit: read tree: line %d: %w", t.n+1, err)
		}
		if !complete {
			if len(line) > 0 {
				return nil, fmt.Errorf("audit: read tree: line %d has no newline", t.n+1)
			}
			return t, nil
		}
		hs, err := tlog.StoredHashes(t.n, line, t)
		if err != nil {
			return nil, fmt.Errorf("audit: read tree: %w", err)
		}
		t.hashes = append(t.hashes, hs...)
		t.n++
	}
}

// ReadHashes implements tlog.HashReader over the tree's stored hashes.
func (t *Tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("audit: tree has no hash %d", x)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// Size returns the number of lines in the tree.
func (t *Tree) Size() uint64 { return uint64(t.n) }

// Root returns the hash of the tree of the first size lines: the
// [Checkpoint.Root] of a checkpoint with Records == size.
func (t *Tree) Root(size uint64) (tlog.Hash, error) {
	if size > uint64(t.n) {
		return tlog.Hash{}, fmt.Errorf("audit: tree has %d lines, not %d", t.n, size)
	}
	h, err := tlog.TreeHash(int64(size), t)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("audit: %w", err)
	}
	return h, nil
}

// InclusionProof returns the proof that the line with the given seq is in
// the tree of the first size lines; check it with [CheckInclusion]
// against the root of a checkpoint of that size.
func (t *Tree) InclusionProof(seq, size uint64) (tlog.RecordProof, error) {
	if seq >= size || size > uint64(t.n) {
		return nil, fmt.Errorf("audit: no line %d in a tree of %d lines (of %d)", seq, size, t.n)
	}
	p, err := tlog.ProveRecord(int64(size), int64(seq), t)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return p, nil
}

// ConsistencyProof returns the proof that the tree of the first oldSize
// lines is a prefix of the tree of the first newSize lines; check it with
// [CheckConsistency]. It is what shows a witness that a log only grew.
func (t *Tree) ConsistencyProof(oldSize, newSize uint64) (tlog.TreeProof, error) {
	if oldSize > newSize || newSize > uint64(t.n) {
		return nil, fmt.Errorf("audit: no consistency proof from %d to %d lines in a tree of %d", oldSize, newSize, t.n)
	}
	p, err := tlog.ProveTree(int64(newSize), int64(oldSize), t)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return p, nil
}

// CheckInclusion checks that line (without its newline) is the line with
// the given seq of a log whose tree of size lines has the given root, as a
// verified checkpoint states it. It needs neither the log nor a key: the
// root's signature is checked where the root comes from.
func CheckInclusion(proof tlog.RecordProof, size uint64, root tlog.Hash, seq uint64, line []byte) error {
	if seq >= size || size > 1<<62 {
		return fmt.Errorf("audit: no line %d in a tree of %d lines", seq, size)
	}
	if err := tlog.CheckRecord(proof, int64(size), root, int64(seq), tlog.RecordHash(line)); err != nil {
		return fmt.Errorf("audit: line %d is not in the tree of %d lines: %w", seq, size, err)
	}
	return nil
}

// CheckConsistency checks that the tree of oldSize lines with oldRoot is a
// prefix of the tree of newSize lines with newRoot: the log between two
// checkpoints only grew, with no line changed, removed or reordered.
func CheckConsistency(proof tlog.TreeProof, oldSize uint64, oldRoot tlog.Hash, newSize uint64, newRoot tlog.Hash) error {
	if oldSize > newSize || newSize > 1<<62 {
		return fmt.Errorf("audit: no consistency from %d to %d lines", oldSize, newSize)
	}
	if err := tlog.CheckTree(proof, int64(newSize), newRoot, int64(oldSize), oldRoot); err != nil {
		return fmt.Errorf("audit: the tree of %d lines does not extend the tree of %d: %w", newSize, oldSize, err)
	}
	return nil
}

// ParseRoot decodes a hex root hash, as in [Checkpoint.Root] and
// [Summary.Root].
func ParseRoot(s string) (tlog.Hash, error) {
	var h tlog.Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("audit: root %q is not 64 hex digits", s)
	}
	copy(h[:], b)
	return h, nil
}

// hexHash returns h in hex.
func hexHash(h tlog.Hash) string { return hex.EncodeToString(h[:]) }

// appendNode appends the hash h of a complete subtree of 2^level leaves
// starting at leaf e.n, which must be a multiple of 2^level.
func (e *edge) appendNode(level uint, h tlog.Hash) {
	for i := e.n >> level; i&1 == 1; i >>= 1 {
		last := len(e.hashes) - 1
		h = tlog.NodeHash(e.hashes[last], h)
		e.hashes = e.hashes[:last]
	}
	e.hashes = append(e.hashes, h)
	e.n += 1 << level
}

// crange is a compact range: the hashes of the largest complete subtrees
// that cover the leaves begin to end-1, left to right. Appended to an
// edge of begin leaves it gives the edge of end leaves, so it proves that
// the tree of end leaves extends the tree of begin leaves.
type crange struct {
	begin, end uint64
	hashes     []tlog.Hash
}

// appendNode appends the hash h of a complete subtree of 2^level leaves
// starting at leaf r.end.
func (r *crange) appendNode(level uint, h tlog.Hash) {
	i := r.end >> level
	r.end += 1 << level
	for ; i&1 == 1 && (i-1)<<level >= r.begin; i >>= 1 {
		last := len(r.hashes) - 1
		h = tlog.NodeHash(r.hashes[last], h)
		r.hashes = r.hashes[:last]
		level++
	}
	r.hashes = append(r.hashes, h)
}

// maxRange bounds the hashes of a compact range of a tree of at most 2^63
// leaves.
const maxRange = 2 * 64

// extend returns the edge of n leaves that the compact range hashes of the
// leaves e.n to n-1 give appended to e, or an error if they do not have
// the shape of that range.
func extend(e *edge, n uint64, hashes []tlog.Hash) (*edge, error) {
	if n < e.n || len(hashes) > maxRange {
		return nil, fmt.Errorf("no range from %d to %d leaves of %d hashes", e.n, n, len(hashes))
	}
	out := &edge{n: e.n, hashes: slices.Clone(e.hashes)}
	for _, h := range hashes {
		if out.n >= n {
			return nil, errors.New("the range has too many hashes")
		}
		level := uint(bits.Len64(n-out.n) - 1)
		if out.n != 0 {
			level = min(level, uint(bits.TrailingZeros64(out.n)))
		}
		out.appendNode(level, h)
	}
	if out.n != n {
		return nil, errors.New("the range has too few hashes")
	}
	return out, nil
}

// saveTo copies e, and the range it tracks, to dst, reusing dst's memory.
func (e *edge) saveTo(dst *edge) {
	dst.n, dst.hashes = e.n, append(dst.hashes[:0], e.hashes...)
	if e.ext == nil {
		dst.ext = nil
		return
	}
	if dst.ext == nil {
		dst.ext = &crange{}
	}
	dst.ext.begin, dst.ext.end, dst.ext.hashes = e.ext.begin, e.ext.end, append(dst.ext.hashes[:0], e.ext.hashes...)
}
