package redislimit

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// The script computes quota windows from a length and an offset; they must
// be the windows scope.Limit.Window gives.
func TestWindowMatchesScope(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	from := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	to := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	for _, per := range []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 12 * time.Hour} {
		l := scope.Limit{Kind: scope.LimitQuota, Per: per}
		length, offset := window(l)
		for i := 0; i < 20000; i++ {
			now := from + r.Int64N(to-from)
			if i < 3 { // window edges
				s, _ := l.Window(time.UnixMicro(now))
				now = s.UnixMicro() + int64(i) - 1
			}
			// The script's arithmetic, in float64 like Lua's numbers.
			f := float64(now)
			start := f - mathFmod(f-float64(offset), float64(length))
			wantStart, wantEnd := l.Window(time.UnixMicro(now))
			require.Equal(t, wantStart.UnixMicro(), int64(start), "per %v at %v", per, time.UnixMicro(now).UTC())
			require.Equal(t, wantEnd.UnixMicro(), int64(start)+length, "per %v at %v", per, time.UnixMicro(now).UTC())
		}
	}
}

func TestAppendKey(t *testing.T) {
	tests := []struct {
		name, key string
		want      string
	}{
		{"calls", "alice", "{agentguard}:r:5:calls:alice"},
		{"a:b", "c", "{agentguard}:r:3:a:b:c"},
		{"a", "b:c", "{agentguard}:r:1:a:b:c"},
		{"", "", "{agentguard}:r:0::"},
		{"x", string(bytes.Repeat([]byte("k"), 300)), "{agentguard}:r:h:"},
	}
	for _, tt := range tests {
		got := string(appendKey(nil, "{agentguard}:", 'r', tt.name, tt.key))
		if len(tt.name)+len(tt.key) > maxReadableKey {
			assert.Len(t, got, len(tt.want)+64)
			assert.Equal(t, tt.want, got[:len(tt.want)])
			continue
		}
		assert.Equal(t, tt.want, got)
	}
}

// Distinct (name, key) pairs never share a Redis key, and every key is in
// the prefix's hash slot (the first {...} is the prefix).
func FuzzAppendKey(f *testing.F) {
	f.Add("a:b", "c", "a", "b:c")
	f.Add("calls", "alice", "calls", "alice")
	f.Add("x", string(bytes.Repeat([]byte("k"), 300)), "x", string(bytes.Repeat([]byte("k"), 299)))
	f.Add("{t}", "}", "1", "{")
	f.Fuzz(func(t *testing.T, n1, k1, n2, k2 string) {
		a := appendKey(nil, "{p}:", 'q', n1, k1)
		b := appendKey(nil, "{p}:", 'q', n2, k2)
		if (n1 == n2 && k1 == k2) != bytes.Equal(a, b) {
			t.Fatalf("(%q, %q) -> %q, (%q, %q) -> %q", n1, k1, a, n2, k2, b)
		}
		if !bytes.HasPrefix(a, []byte("{p}:q:")) || len(a) > len("{p}:q:")+maxReadableKey+24 {
			t.Fatalf("key %q", a)
		}
	})
}

func mathFmod(x, y float64) float64 { return math.Mod(x, y) }
