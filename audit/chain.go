package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"slices"
	"strconv"
)

// keyIDLen is the length of a key id: 8 bytes of SHA-256, in hex.
const keyIDLen = 16

// KeyID returns the id that checkpoints signed with the private key of pub
// carry in [Checkpoint.KeyID]: the first 8 bytes of the SHA-256 of the public
// key, in hex. It lets a verifier tell which key signed a log.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:keyIDLen/2])
}

// chainHash computes the links of a chain: hex SHA-256 of a line, or hex
// HMAC-SHA256 under a key. It is not safe for concurrent use.
type chainHash struct {
	mac  hash.Hash // nil: plain SHA-256
	sum  [sha256.Size]byte
	strs slab // the links' strings
}

func newChainHash(key []byte) *chainHash {
	if len(key) == 0 {
		return &chainHash{}
	}
	return &chainHash{mac: hmac.New(sha256.New, bytes.Clone(key))}
}

// link returns the hex hash of line (without its newline and, from format
// version 2, without its mac and sig members: see [authBytes]).
func (c *chainHash) link(line []byte) string {
	var sum []byte
	if c.mac == nil {
		c.sum = sha256.Sum256(line)
		sum = c.sum[:]
	} else {
		c.mac.Reset()
		c.mac.Write(line)
		sum = c.mac.Sum(c.sum[:0])
	}
	var hx [2 * sha256.Size]byte
	hex.Encode(hx[:], sum)
	return c.strs.string(hx[:])
}

// authBytes returns the bytes of line that its mac and sig members
// authenticate and its chain link hashes: line without those members.
// line must be the canonical encoding of r. The result is line itself or
// is built in *scratch.
func authBytes(line []byte, r *Record, scratch *[]byte) []byte {
	n := authLen(r)
	if n == 0 {
		return line
	}
	*scratch = append(append((*scratch)[:0], line[:len(line)-1-n]...), '}')
	return *scratch
}

// seal adds the members that authenticate the record line in buf[start:]
// (which ends with its closing brace and whose chain link is link): the
// mac under an HMAC key, else the signature under a signing key. It
// returns the extended buffer and the members' values.
func (l *Log) seal(buf []byte, start int, link string) (_ []byte, mac, sig string) {
	switch {
	case l.macs:
		return appendAuth(buf, link, ""), link, ""
	case l.signKey != nil:
		var hx [2 * ed25519.SignatureSize]byte
		hex.Encode(hx[:], ed25519.Sign(l.signKey, buf[start:]))
		sig = string(hx[:])
		return appendAuth(buf, "", sig), "", sig
	}
	return buf, "", ""
}

// appendCheckpoint appends the line (without newline) of a checkpoint
// record at seq whose previous line links to prev. l.tree must hold the
// seq lines before it. It returns the extended buffer, the checkpoint
// line's chain link and the record.
func (l *Log) appendCheckpoint(dst []byte, seq uint64, prev, reason string) ([]byte, string, *Record) {
	cp := &Checkpoint{Hash: prev, Records: seq, Reason: reason}
	if seq > 0 {
		cp.Seq = seq - 1
	}
	root := l.tree.root()
	cp.Root = hexHash(root)
	cp.Edge = l.tree.hex()
	r := &Record{
		Version:    FormatVersion,
		Seq:        seq,
		ID:         "checkpoint-" + strconv.FormatUint(seq, 10),
		Kind:       KindCheckpoint,
		Time:       l.now(),
		Checkpoint: cp,
		Prev:       prev,
	}
	l.cpExt = nil
	if x := l.tree.ext; x != nil && x.end == seq {
		l.cpExt = &crange{begin: x.begin, end: x.end, hashes: slices.Clone(x.hashes)}
	}
	start := len(dst)
	if l.signKey != nil {
		cp.Note = signNote(l.signer, seq, root)
		cp.KeyID = l.keyID
		dst = r.AppendJSON(dst)
		cp.Sig = hex.EncodeToString(ed25519.Sign(l.signKey, dst[start:]))
		dst = dst[:start]
	}
	dst = r.AppendJSON(dst)
	link := l.hash.link(dst[start:])
	if l.macs {
		r.MAC = link
		dst = appendAuth(dst, link, "")
	}
	return dst, link, r
}

// signedBytes returns the bytes a checkpoint's signature covers: the
// record's encoding with Sig, MAC and the record's own sig empty.
func signedBytes(dst []byte, r *Record) []byte {
	cp := *r.Checkpoint
	cp.Sig = ""
	unsigned := *r
	unsigned.Checkpoint = &cp
	unsigned.MAC, unsigned.Sig = "", ""
	return unsigned.AppendJSON(dst)
}
