package audit

import (
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestExtendEveryRange: for every pair of tree sizes m <= n up to 70, the
// compact range a Log tracks from m, appended to the edge of m leaves,
// gives exactly the edge of n leaves; a range with a changed hash, one
// hash more or one less gives another tree or an error.
func TestExtendEveryRange(t *testing.T) {
	const max = 70
	line := func(i uint64) []byte { return []byte(fmt.Sprintf(`{"line":%d}`, i)) }
	for m := uint64(0); m <= max; m++ {
		em := &edge{}
		for i := range m {
			em.add(line(i))
		}
		full := &edge{n: em.n, hashes: append([]tlog.Hash(nil), em.hashes...), ext: &crange{begin: m, end: m}}
		for n := m; n <= max; n++ {
			if n > m {
				full.add(line(n - 1))
			}
			got, err := extend(em, n, full.ext.hashes)
			if err != nil {
				t.Fatalf("%d to %d: %v", m, n, err)
			}
			if got.root() != full.root() || len(got.hashes) != len(full.hashes) {
				t.Fatalf("%d to %d: extended root differs", m, n)
			}
			if len(full.ext.hashes) == 0 {
				continue
			}
			bad := append([]tlog.Hash(nil), full.ext.hashes...)
			bad[len(bad)/2][0] ^= 1
			if e, err := extend(em, n, bad); err == nil && e.root() == full.root() {
				t.Fatalf("%d to %d: a changed hash still extends", m, n)
			}
			if _, err := extend(em, n, append(bad, bad[0])); err == nil {
				t.Fatalf("%d to %d: a hash too many accepted", m, n)
			}
			if _, err := extend(em, n, full.ext.hashes[1:]); err == nil {
				t.Fatalf("%d to %d: a hash too few accepted", m, n)
			}
		}
	}
}
