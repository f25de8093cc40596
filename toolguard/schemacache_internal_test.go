package toolguard

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSchemaCacheSharesOnlyEqualSchemas: tools with byte-identical
// schemas, or schemas that differ only in spacing, share one compiled
// schema; a schema that differs in what it accepts is compiled on its own;
// a schema that does not compile is refused every time, not remembered.
func TestSchemaCacheSharesOnlyEqualSchemas(t *testing.T) {
	var c schemaCache
	a := json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`)
	a1, err := c.compile("a", a)
	require.NoError(t, err)
	a2, err := c.compile("b", append(json.RawMessage(nil), a...))
	require.NoError(t, err)
	require.Same(t, a1, a2)
	a3, err := c.compile("c", json.RawMessage(`{"type":"object", "properties":{"path":{"type":"string"}}}`))
	require.NoError(t, err)
	require.Same(t, a1, a3)
	b, err := c.compile("c", json.RawMessage(`{"type":"object","properties":{"path":{"type":"string","minLength":1}}}`))
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
		_, err := c.compile("t", json.RawMessage(fmt.Sprintf(`{"type":"object","maxProperties":%d}`, i)))
		require.NoError(t, err)
	}
	require.Len(t, c.m, maxCachedSchemas)
}
