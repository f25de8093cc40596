// Package substr finds which strings of a fixed set occur in a text, in one
// pass over the text whatever the size of the set (the Aho–Corasick
// automaton).
package substr

import (
	"sort"
	"sync"
)

// Matcher finds the patterns it was built with in a text. It is safe for
// concurrent use.
type Matcher struct {
	root  [256]int32 // the transitions of the root, every byte
	first []int32    // per state, its first edge in edges
	edges []edge     // per state, its edges sorted by byte
	fail  []int32    // per state, the longest proper suffix that is a state
	own   [][]int32  // per state, the patterns that end exactly there
	dict  []int32    // per state, the next state on its failure chain with patterns; 0 for none
	term  []int32    // per state with patterns, its number among them
	seen  sync.Pool  // *[]uint64, a bit per state with patterns
}

type edge struct {
	b  byte
	to int32
}

// New builds a matcher of patterns; pattern i is reported as i. Empty
// patterns are never reported.
func New(patterns []string) *Matcher {
	// The trie, with transitions in maps while it is built.
	next := []map[byte]int32{{}}
	out := [][]int32{nil}
	for i, p := range patterns {
		if p == "" {
			continue
		}
		s := int32(0)
		for j := 0; j < len(p); j++ {
			t, ok := next[s][p[j]]
			if !ok {
				t = int32(len(next))
				next = append(next, map[byte]int32{})
				out = append(out, nil)
				next[s][p[j]] = t
			}
			s = t
		}
		out[s] = append(out[s], int32(i))
	}
	m := &Matcher{fail: make([]int32, len(next)), first: make([]int32, len(next)+1),
		own: out, dict: make([]int32, len(next)), term: make([]int32, len(next))}
	m.link(next)
	m.flatten(next)
	n := 0
	for s := range out {
		if len(out[s]) > 0 {
			m.term[s] = int32(n)
			n++
		}
	}
	words := (n + 63) / 64
	m.seen.New = func() any { b := make([]uint64, words); return &b }
	return m
}

// link computes the failure and dictionary links breadth first.
func (m *Matcher) link(next []map[byte]int32) {
	queue := make([]int32, 0, len(next))
	for _, t := range next[0] {
		queue = append(queue, t)
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for b, t := range next[s] {
			f := m.fail[s]
			for {
				if u, ok := next[f][b]; ok {
					m.fail[t] = u
					break
				}
				if f == 0 {
					break
				}
				f = m.fail[f]
			}
			if f := m.fail[t]; len(m.own[f]) > 0 {
				m.dict[t] = f
			} else {
				m.dict[t] = m.dict[f]
			}
			queue = append(queue, t)
		}
	}
}

// flatten stores the transitions in sorted edge lists, and the root's in a
// table.
func (m *Matcher) flatten(next []map[byte]int32) {
	for s, tr := range next {
		m.first[s] = int32(len(m.edges))
		start := len(m.edges)
		for b, t := range tr {
			m.edges = append(m.edges, edge{b, t})
		}
		es := m.edges[start:]
		sort.Slice(es, func(i, j int) bool { return es[i].b < es[j].b })
	}
	m.first[len(next)] = int32(len(m.edges))
	for b, t := range next[0] {
		m.root[b] = t
	}
}

// step returns the state after reading b in state s.
func (m *Matcher) step(s int32, b byte) int32 {
	for s != 0 {
		for _, e := range m.edges[m.first[s]:m.first[s+1]] {
			if e.b == b {
				return e.to
			}
			if e.b > b {
				break
			}
		}
		s = m.fail[s]
	}
	return m.root[b]
}

// AppendMatches appends to dst the index of every pattern that occurs in
// text, each once, in no particular order, and returns the extended slice.
// Its time is linear in the length of text plus the number of patterns.
func (m *Matcher) AppendMatches(dst []int32, text string) []int32 {
	seenp := m.seen.Get().(*[]uint64)
	seen := *seenp
	s := int32(0)
	for i := 0; i < len(text); i++ {
		s = m.step(s, text[i])
		t := s
		if len(m.own[t]) == 0 {
			t = m.dict[t]
		}
		// A state met before had its whole chain reported then.
		for t != 0 {
			k := m.term[t]
			if seen[k/64]&(1<<(k%64)) != 0 {
				break
			}
			seen[k/64] |= 1 << (k % 64)
			dst = append(dst, m.own[t]...)
			t = m.dict[t]
		}
	}
	clear(seen)
	m.seen.Put(seenp)
	return dst
}
