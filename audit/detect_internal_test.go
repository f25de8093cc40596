package audit

import (
	"strings"
	"testing"
	"time"
)

// FuzzSecretSpans: the spans secretSpans returns are in order, apart, and
// cover every secret any detector finds at any position — also one that
// starts inside another — counted afresh at each position without the run
// cache; and a string has spans exactly when containsSecret says it holds
// a secret.
func FuzzSecretSpans(f *testing.F) {
	for _, s := range []string{
		"mallory@evil.test Bearer abcdefghijkl",
		"Bearer -----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY----- ok",
		"https://AKIAIOSFODNN7EXAMPLE:pw@h.test/x",
		"postgres://app:s3cret@db.internal:5432/prod AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
		"x eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl y",
		strings.Repeat("-----BEGIN EC PRIVATE KEY----- ", 4),
		"xoxb-123456789012-abc ghp_" + strings.Repeat("a1B2", 9),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spans, kinds := secretSpans(s, nil)
		if (len(spans) > 0) != containsSecret(s) {
			t.Fatalf("spans %v, containsSecret %v", spans, containsSecret(s))
		}
		if (kinds != 0) != (len(spans) > 0) {
			t.Fatalf("kinds %b with spans %v", kinds, spans)
		}
		for i, sp := range spans {
			if sp.start < 0 || sp.end > len(s) || sp.start >= sp.end {
				t.Fatalf("span %v out of %d bytes", sp, len(s))
			}
			if i > 0 && sp.start <= spans[i-1].end {
				t.Fatalf("spans not apart: %v", spans)
			}
		}
		pem := -2
		for i := 0; i < len(s); i++ {
			a, b, _ := secretAt(s, i, nil) // no run cache: an independent count
			if s[i] == '-' {
				a, b, _ = pemAt(s, i, &pem)
			}
			if b == 0 {
				continue
			}
			covered := false
			for _, sp := range spans {
				if sp.start <= a && b <= sp.end {
					covered = true
				}
			}
			if !covered {
				t.Fatalf("secret %q at [%d,%d) not covered by %v", s[a:b], a, b, spans)
			}
		}
	})
}

// Scanning is linear in the length of the string, also for strings that
// put a detector's prefix at every position of one long run: 1 MiB of any
// of them takes well under a second (a quadratic scan takes minutes; the
// bound leaves room for the race detector on a busy machine).
func TestSecretScanIsLinear(t *testing.T) {
	const n = 1 << 20
	inputs := map[string]string{
		"jwt headers, no dots":  strings.Repeat("eyJ", n/3),
		"google key prefixes":   strings.Repeat("AIza", n/4),
		"github pat prefixes":   strings.Repeat("github_pat_", n/11),
		"slack prefixes":        strings.Repeat("xoxb-", n/5),
		"pem headers":           strings.Repeat("-----BEGIN RSA PRIVATE KEY-----", n/31),
		"pem headers, end last": strings.Repeat("-----BEGIN RSA PRIVATE KEY----- ", n/32) + "-----END RSA PRIVATE KEY-----",
		"url anchors":           strings.Repeat("a://u:p@", n/8),
		"key ids as url users":  strings.Repeat("a://AKIAIOSFODNN7EXAMPLE:p@h ", n/28),
		"bearer":                strings.Repeat("Bearer ", n/7),
		"aws run":               "AKIA" + strings.Repeat("A", n),
	}
	for name, s := range inputs {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			spans, _ := secretSpans(s, nil)
			containsSecret(s)
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("%d bytes took %s (%d spans)", len(s), d, len(spans))
			}
		})
	}
}
