package glob

import (
	"errors"
	"math"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// Match reports whether name matches pattern. '*' matches any run of characters except '/',
// '**' matches any run including '/', and a "**/" path element also matches zero elements
// ("**/.env*" matches ".env", "a/.env.local" and "/w/x/.env"); '?' matches one character
// (rune) except '/'; '\' escapes the next character. Any other character matches itself.
// Match runs in O(len(pattern) × len(name)) time at worst, never exponential.
//
// "**/" is a path element when it starts the pattern or follows a '/'; three
// or more stars act as two. A malformed pattern (see Validate) matches
// nothing. Bytes that are not valid UTF-8 count as one character each.
// Match does not allocate for patterns of fewer than 64 characters.
func Match(pattern, name string) bool {
	if !literalsPresent(pattern, name) {
		return false
	}
	ok, _ := match(pattern, name)
	return ok
}

// literalsPresent is a cheap necessary condition for a match: every run of
// two or more literal characters in the pattern (between wildcards) occurs in
// name. Most non-matching names fail it without running the matcher. Runs
// containing an escape are skipped, and a '/' right after "**" is dropped
// from its run (a "**/" element may match nothing), so it never rejects a
// match.
func literalsPresent(pattern, name string) bool {
	start := 0
	for i := 0; i <= len(pattern); i++ {
		if i < len(pattern) {
			switch pattern[i] {
			case '*', '?':
			case '\\':
				// An escaped character: give up on this run.
				i++
				start = i + 1
				continue
			default:
				continue
			}
		}
		run := pattern[start:i]
		if start >= 2 && pattern[start-1] == '*' && pattern[start-2] == '*' {
			run = strings.TrimPrefix(run, "/")
		}
		if len(run) >= 2 && !strings.Contains(name, run) {
			return false
		}
		start = i + 1
	}
	return true
}

// Validate reports a malformed pattern (a trailing lone '\').
func Validate(pattern string) error {
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == '\\' {
			if i+1 == len(pattern) {
				return errTrailingBackslash
			}
			i++
		}
	}
	return nil
}

var errTrailingBackslash = errors.New(`glob: malformed pattern: trailing '\'`)

// Literal reports whether pattern has no wildcard (so it can be matched by equality/map lookup).
//
// A pattern with a '\' is not literal even if it escapes no wildcard,
// because it does not equal the names it matches.
func Literal(pattern string) bool {
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c == '*' || c == '?' || c == '\\' {
			return false
		}
	}
	return true
}

// Pattern tokens. A pattern compiles to a sequence of tokens, each a state
// of a nondeterministic automaton that Match runs over the name.
const (
	tokLit       uint8 = iota // one character, matched byte for byte
	tokAny                    // '?': one character except '/'
	tokStar                   // '*': zero or more characters except '/'
	tokStarStar               // '**': zero or more characters
	tokElem                   // start of a "**/" element: reads nothing, leads into the element or past it
	tokElemSlash              // the '/' ending a "**/" element
)

// compile appends the kind of each token of pattern to kinds and, for
// literal tokens, the offset of the character in pattern to offs. It
// reports false for a malformed pattern.
func compile(kinds []uint8, offs []int32, pattern string) ([]uint8, []int32, bool) {
	if len(pattern) > math.MaxInt32 {
		return kinds, offs, false
	}
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; c {
		case '*':
			j := i
			for j < len(pattern) && pattern[j] == '*' {
				j++
			}
			switch {
			case j-i == 1:
				kinds = append(kinds, tokStar)
				offs = append(offs, 0)
			case (i == 0 || pattern[i-1] == '/') && j < len(pattern) && pattern[j] == '/':
				// "**/" is either zero elements or "**" then "/".
				kinds = append(kinds, tokElem, tokStarStar, tokElemSlash)
				offs = append(offs, 0, 0, int32(j))
				j++
			default:
				kinds = append(kinds, tokStarStar)
				offs = append(offs, 0)
			}
			i = j
		case '?':
			kinds = append(kinds, tokAny)
			offs = append(offs, 0)
			i++
		case '\\':
			if i+1 == len(pattern) {
				return kinds, offs, false
			}
			kinds = append(kinds, tokLit)
			offs = append(offs, int32(i+1))
			i += 1 + charLen(pattern, i+1)
		default:
			kinds = append(kinds, tokLit)
			offs = append(offs, int32(i))
			if c < utf8.RuneSelf {
				i++
			} else {
				i += charLen(pattern, i)
			}
		}
	}
	return kinds, offs, true
}

// charLen is the length of the character at s[i]; a byte that does not
// start valid UTF-8 is a character of its own.
func charLen(s string, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	_, w := utf8.DecodeRuneInString(s[i:])
	return w
}

// maxStates is the number of automaton states one machine word holds.
const maxStates = 64

// match reports whether name matches pattern, and the number of automaton
// steps it took, which is at most (tokens+1) × (characters of name).
//
// The automaton's states are the token positions 0..len(tokens), kept as a
// bit set. Every transition moves forward or stays, and no input is ever
// re-read, so the time is bounded by states × characters whatever the
// pattern.
func match(pattern, name string) (bool, int) {
	if Literal(pattern) {
		return pattern == name, 0
	}
	var kindBuf [maxStates - 1]uint8
	var offBuf [maxStates - 1]int32
	kinds, offs, ok := compile(kindBuf[:0], offBuf[:0], pattern)
	if !ok {
		return false, 0
	}

	// Literal tokens at either end need no automaton. A name's characters
	// are decoded from its start; a suffix is only cut where that decoding
	// has a boundary, which a continuation byte (0x80–0xBF) need not be.
	for len(kinds) > 0 && kinds[0] == tokLit {
		lit := pattern[offs[0] : int(offs[0])+charLen(pattern, int(offs[0]))]
		if !strings.HasPrefix(name, lit) || charLen(name, 0) != len(lit) {
			return false, 0
		}
		name = name[len(lit):]
		kinds, offs = kinds[1:], offs[1:]
	}
	for n := len(kinds); n > 0 && kinds[n-1] == tokLit; n-- {
		lit := pattern[offs[n-1] : int(offs[n-1])+charLen(pattern, int(offs[n-1]))]
		if lit[0] >= 0x80 && lit[0] < 0xC0 {
			break
		}
		if !strings.HasSuffix(name, lit) {
			return false, 0
		}
		name = name[:len(name)-len(lit)]
		kinds, offs = kinds[:n-1], offs[:n-1]
	}
	switch {
	case len(kinds) == 0:
		return name == "", 0
	case len(kinds) == 1 && kinds[0] == tokStarStar:
		return true, 0
	case len(kinds) == 1 && kinds[0] == tokStar:
		return !strings.Contains(name, "/"), 0
	case len(kinds) < maxStates:
		return run(pattern, kinds, offs, name)
	}
	return runLarge(pattern, kinds, offs, name)
}

// litMatches reports whether the literal token at pattern[off] is the
// character name[i:i+w].
func litMatches(pattern string, off int32, name string, i, w int) bool {
	if c := pattern[off]; c < utf8.RuneSelf {
		return w == 1 && name[i] == c
	}
	pw := charLen(pattern, int(off))
	return pw == w && pattern[off:int(off)+pw] == name[i:i+w]
}

// run simulates the automaton of fewer than 64 tokens with one word per
// state set: bit j is the state before token j, bit len(kinds) accepts.
func run(pattern string, kinds []uint8, offs []int32, name string) (bool, int) {
	var lit, any, star, starStar, elem uint64
	for j, k := range kinds {
		bit := uint64(1) << j
		switch k {
		case tokLit, tokElemSlash:
			lit |= bit
		case tokAny:
			any |= bit
		case tokStar:
			star |= bit
		case tokStarStar:
			starStar |= bit
		case tokElem:
			elem |= bit
		}
	}
	final := uint64(1) << len(kinds)
	eps := star | starStar | elem
	// closure adds the states reachable without reading a character: past
	// a star, into a "**/" element, or past it (three tokens on).
	closure := func(s uint64) uint64 {
		for {
			n := s | (s&eps)<<1 | (s&elem)<<3
			if n == s {
				return s
			}
			s = n
		}
	}

	s := closure(1)
	steps := 0
	checked := uint64(0) // the set last checked for skipping (0: none)
	for i := 0; i < len(name); {
		if s != checked {
			checked = s
			if j := skip(pattern, offs, name, i, s, lit, any, star, starStar, closure); j > i {
				if j == len(name) {
					break
				}
				i = j
			}
		}
		c := name[i]
		w := 1
		if c >= utf8.RuneSelf {
			w = charLen(name, i)
		}
		steps += bits.OnesCount64(s &^ final)
		stay := s & starStar
		var advance uint64
		if c != '/' {
			stay |= s & star
			advance = s & any
		}
		for m := s & lit; m != 0; m &= m - 1 {
			j := bits.TrailingZeros64(m)
			if litMatches(pattern, offs[j], name, i, w) {
				advance |= 1 << j
			}
		}
		s = advance<<1 | stay
		if s == 0 {
			return false, steps
		}
		s = closure(s)
		i += w
	}
	return s&final != 0, steps
}

// skip returns the index of the first character at or after i that can
// change the state set s, or i if that cannot be told cheaply.
//
// When no '?' is active and the stars in s lead back to all of s, a
// character changes s only if it is '/' (ending a '*') or begins an active
// literal. Bytes of that kind below 0x80 or at 0xC0 and above only ever
// start a character, so the scan cannot land inside one.
func skip(pattern string, offs []int32, name string, i int, s, lit, any, star, starStar uint64, closure func(uint64) uint64) int {
	if s&any != 0 || closure(s&(star|starStar)) != s {
		return i
	}
	var want [4]byte
	n := 0
	if s&star != 0 {
		want[0] = '/'
		n = 1
	}
	for m := s & lit; m != 0; m &= m - 1 {
		c := pattern[offs[bits.TrailingZeros64(m)]]
		if c >= 0x80 && c < 0xC0 || n == len(want) {
			return i
		}
		want[n] = c
		n++
	}
	switch n {
	case 0:
		return len(name)
	case 1:
		if j := strings.IndexByte(name[i:], want[0]); j >= 0 {
			return i + j
		}
		return len(name)
	}
	for k := n; k < len(want); k++ {
		want[k] = want[0]
	}
	for j := i; j < len(name); j++ {
		if c := name[j]; c == want[0] || c == want[1] || c == want[2] || c == want[3] {
			return j
		}
	}
	return len(name)
}

// runLarge is run for patterns of 64 tokens or more, with multi-word state
// sets.
func runLarge(pattern string, kinds []uint8, offs []int32, name string) (bool, int) {
	words := (len(kinds) + 1 + 63) / 64
	cur, next := make([]uint64, words), make([]uint64, words)
	final := len(kinds)
	set := func(s []uint64, j int) { s[j/64] |= 1 << (j % 64) }
	closure := func(s []uint64) {
		// Transitions only go forward, so one ascending pass suffices.
		for j := 0; j < final; j++ {
			if s[j/64]&(1<<(j%64)) == 0 {
				continue
			}
			switch kinds[j] {
			case tokStar, tokStarStar:
				set(s, j+1)
			case tokElem:
				set(s, j+1)
				set(s, j+3)
			}
		}
	}

	set(cur, 0)
	closure(cur)
	steps := 0
	for i := 0; i < len(name); {
		c := name[i]
		w := charLen(name, i)
		clear(next)
		live := false
		for j := 0; j < final; j++ {
			if cur[j/64]&(1<<(j%64)) == 0 {
				continue
			}
			steps++
			to := -1
			switch kinds[j] {
			case tokLit, tokElemSlash:
				if litMatches(pattern, offs[j], name, i, w) {
					to = j + 1
				}
			case tokAny:
				if c != '/' {
					to = j + 1
				}
			case tokStar:
				if c != '/' {
					to = j
				}
			case tokStarStar:
				to = j
			}
			if to >= 0 {
				set(next, to)
				live = true
			}
		}
		if !live {
			return false, steps
		}
		closure(next)
		cur, next = next, cur
		i += w
	}
	return cur[final/64]&(1<<(final%64)) != 0, steps
}
