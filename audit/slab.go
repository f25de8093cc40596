package audit

import "strings"

// slabSize is the bytes of one slab: 64 chain links of 64 hex digits.
const slabSize = 64 * 2 * 32

// slab makes short strings out of one larger allocation: each string is
// written once to the end of a strings.Builder that never grows (a new one
// replaces it when full), and is a slice of the builder's string, so the
// bytes behind a returned string are never written again. A chain link is
// a string per record; from a slab, 64 links take one allocation.
// It is not safe for concurrent use.
type slab struct {
	b strings.Builder
}

// string returns p as a string.
func (s *slab) string(p []byte) string {
	if len(p) > slabSize/8 {
		return string(p)
	}
	if s.b.Cap()-s.b.Len() < len(p) {
		s.b = strings.Builder{}
		s.b.Grow(slabSize)
	}
	start := s.b.Len()
	s.b.Write(p)
	return s.b.String()[start:]
}
