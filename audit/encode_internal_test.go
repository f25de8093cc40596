package audit

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func plain8Naive(v uint64) bool {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

func TestPlain8(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	special := []byte{0, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xff}
	for range 200_000 {
		var b [8]byte
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = special[rng.IntN(len(special))]
			} else {
				b[i] = byte(0x20 + rng.IntN(0x60))
			}
		}
		v := binary.LittleEndian.Uint64(b[:])
		require.Equal(t, plain8Naive(v), plain8(v), "%q", b)
	}
}

// appendStringNaive is the byte-at-a-time reference for appendString.
func appendStringNaive(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, "\uFFFD"...)
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r == '\b':
			dst = append(dst, `\b`...)
		case r == '\f':
			dst = append(dst, `\f`...)
		case r < 0x20:
			dst = append(dst, `\u00`...)
			dst = append(dst, hexDigits[r>>4], hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func TestAppendStringMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "Z", " ", "\"", "\\", "\n", "\x00", "\x1f", "\x7f", "é", "🔒", "\xff", "\xc3", "\xed\xa0\x80", "\uFFFD", "\u2028"}
	for range 20_000 {
		var s []byte
		for range rng.IntN(40) {
			s = append(s, alphabet[rng.IntN(len(alphabet))]...)
		}
		require.Equal(t, string(appendStringNaive(nil, string(s))), string(appendString(nil, string(s))), "%q", s)
	}
}

func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 10_000 {
		tm := time.Unix(rng.Int64N(253402300800+62135596800)-62135596800, rng.Int64N(1e9)) // years 0001-9999
		assert.Equal(t, strconv.Quote(tm.UTC().Format(timeLayout)), string(appendTime(nil, tm)))
	}
}
