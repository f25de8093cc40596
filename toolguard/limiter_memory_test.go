//go:build !race

package toolguard_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// maxBytesPerKey is the documented memory bound of a MemoryLimiter bucket
// (see MemoryLimiter's doc comment), checked here with a million keys.
const maxBytesPerKey = 400

// TestLimiterMemoryMillionKeys tracks one million distinct keys and checks
// the heap they take. (Skipped under the race detector, whose shadow memory
// would distort the measurement; .ci/run runs it without.)
func TestLimiterMemoryMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 300 MB")
	}
	const n = 1_000_000
	m := &toolguard.MemoryLimiter{MaxKeys: n}
	lim := scope.Limit{Name: "per-user", Kind: scope.LimitRate, Count: 10, Per: time.Minute, Burst: 5}
	now := time.Unix(1_800_000_000, 0)
	uses := []scope.LimitUse{{Limit: lim, Cost: 1}}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		uses[0].Key = "user-" + strconv.Itoa(i)
		res, _, err := m.Take(context.Background(), now, uses, false)
		if err != nil || !res[0].Allowed {
			t.Fatalf("key %d: %v %+v", i, err, res)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	require.Equal(t, n, m.Len())
	perKey := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%d keys: %.0f bytes per key (%.0f MB)", n, perKey, float64(after.HeapAlloc-before.HeapAlloc)/1e6)
	assert.Less(t, perKey, float64(maxBytesPerKey))
	runtime.KeepAlive(m)
}
