package toolguard

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSchemaCacheSharesOnlyIdenticalBytes: tools with byte-identical
// schemas share one compiled schema; a schema differing in any byte (even
// only in spacing) is compiled on its own; a schema that does not compile
// is refused every time, not remembered.
func TestSchemaCacheSharesOnlyIdenticalBytes(t *testing.T) {
	var c schemaCache
	a := json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`)
	a1, err := c.compile("a", a)
	require.NoError(t, err)
	a2, err := c.compile("b", append(json.RawMessage(nil), a...))
	require.NoError(t, err)
	require.Same(t, a1, a2)
	b, err := c.compile("c", json.RawMessage(`{"type":"object", "properties":{"path":{"type":"string"}}}`))
	require.NoError(t, err)
	require.NotSame(t, a1, b)
	bad := json.RawMessage(`{"type":"object","properties":{"path":{"type":7}}}`)
	for _, name := range []string{"d", "e"} {
		_, err = c.compile(name, bad)
		require.ErrorContains(t, err, fmt.Sprintf("tool %q", name))
	}
	require.Len(t, c.m, 2)
}

// TestSchemaCacheBounded: past maxCachedSchemas distinct schemas, tools
// still register (compiling their own), and the cache stops growing.
func TestSchemaCacheBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles many schemas")
	}
	var c schemaCache
	for i := range maxCachedSchemas + 10 {
		_, err := c.compile("t", json.RawMessage(fmt.Sprintf(`{"type":"object","description":"%d"}`, i)))
		require.NoError(t, err)
	}
	require.Len(t, c.m, maxCachedSchemas)
}
