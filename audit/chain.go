package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"time"
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
	mac hash.Hash // nil: plain SHA-256
	sum [sha256.Size]byte
}

func newChainHash(key []byte) *chainHash {
	if len(key) == 0 {
		return &chainHash{}
	}
	return &chainHash{mac: hmac.New(sha256.New, bytes.Clone(key))}
}

// link returns the hex hash of line (without its newline).
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
	return string(hx[:])
}

// appendCheckpoint appends the line (without newline) of a checkpoint record
// at seq whose previous line hashes to prev, signed with key when key is not
// nil.
func appendCheckpoint(dst []byte, seq uint64, prev, reason string, now time.Time, key ed25519.PrivateKey, keyID string) []byte {
	cp := Checkpoint{Hash: prev, Records: seq, Reason: reason}
	if seq > 0 {
		cp.Seq = seq - 1
	}
	r := Record{
		Version:    FormatVersion,
		Seq:        seq,
		ID:         "checkpoint-" + strconv.FormatUint(seq, 10),
		Kind:       KindCheckpoint,
		Time:       now,
		Checkpoint: &cp,
		Prev:       prev,
	}
	if key == nil {
		return r.AppendJSON(dst)
	}
	cp.KeyID = keyID
	start := len(dst)
	dst = r.AppendJSON(dst)
	sig := ed25519.Sign(key, dst[start:])
	cp.Sig = hex.EncodeToString(sig)
	return r.AppendJSON(dst[:start])
}

// signedBytes returns the bytes a checkpoint's signature covers: the
// record's encoding with Sig empty.
func signedBytes(dst []byte, r *Record) []byte {
	cp := *r.Checkpoint
	cp.Sig = ""
	unsigned := *r
	unsigned.Checkpoint = &cp
	return unsigned.AppendJSON(dst)
}
