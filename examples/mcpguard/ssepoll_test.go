package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSSEFlags(t *testing.T) {
	base := []string{"-policy", "p.yaml", "-audit", "a.jsonl", "-listen", "127.0.0.1:0", "-upstream", "http://127.0.0.1:1/mcp"}
	c, err := parse(base, io.Discard, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, nonNegativeDuration(time.Second), c.sse.retry, "on by default")
	assert.Equal(t, nonNegativeDuration(3*time.Second), c.sse.pollAfter)

	c, err = parse(append(base, "-sse-retry", "250ms", "-sse-poll-after", "0"), io.Discard, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, nonNegativeDuration(250*time.Millisecond), c.sse.retry)
	assert.Zero(t, c.sse.pollAfter)

	for _, bad := range [][]string{{"-sse-retry", "-1s"}, {"-sse-poll-after", "-1s"}, {"-sse-retry", "soon"}} {
		_, err := parse(append(base, bad...), io.Discard, io.Discard)
		assert.Error(t, err, "%v", bad)
	}
}
