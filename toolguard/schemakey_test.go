package toolguard

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchemaKey: schemas that differ only in well-formed annotations of
// their schemas share a key; any difference in what they accept, in data
// (enum, const, default), in a property that happens to be named like an
// annotation, or in a malformed annotation, gives another key; schemas
// with references are keyed by their bytes.
func TestSchemaKey(t *testing.T) {
	base := `{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`
	same := []string{
		`{"type":"object","description":"reads a file","title":"Read","properties":{"path":{"type":"string"}},"required":["path"]}`,
		`{"type":"object","properties":{"path":{"type":"string","description":"where","examples":["/a"],"$comment":"x"}},"required":["path"]}`,
		`{ "required": ["path"], "properties": {"path": {"type": "string"}}, "type": "object" }`,
	}
	for _, s := range same {
		assert.Equal(t, schemaKey(json.RawMessage(base)), schemaKey(json.RawMessage(s)), s)
	}
	other := []string{
		`{"type":"object","properties":{"path":{"type":"string","minLength":1}},"required":["path"]}`,
		`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"description":7}`,
		`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"examples":"x"}`,
		`{"type":"object","properties":{"path":{"type":"string"},"description":{"type":"integer"}},"required":["path"]}`,
		`{"type":"object","properties":{"path":{"enum":[{"description":"a"}]}},"required":["path"]}`,
		`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"$defs":{"a":{"type":"string"}},"allOf":[{"$ref":"#/$defs/a"}]}`,
	}
	keys := map[string]string{schemaKey(json.RawMessage(base)): base}
	for _, s := range other {
		k := schemaKey(json.RawMessage(s))
		_, dup := keys[k]
		assert.False(t, dup, "%s shares a key with %s", s, keys[k])
		keys[k] = s
	}
	ref := `{"type":"object","$defs":{"a":{"type":"string","description":"x"}},"properties":{"path":{"$ref":"#/$defs/a"}}}`
	assert.Equal(t, ref, schemaKey(json.RawMessage(ref)), "a schema with references is keyed by its bytes")
	assert.Equal(t, "not json", schemaKey(json.RawMessage("not json")))
}

// TestSchemaCacheAnnotationsCannotSmuggle: a tool whose schema differs
// from a cached one only by a description that is not a string is still
// checked against the meta-schema, and refused; a property named
// "description" is a property, not an annotation.
func TestSchemaCacheAnnotationsCannotSmuggle(t *testing.T) {
	var c schemaCache
	_, err := c.compile("a", json.RawMessage(`{"type":"object","description":"ok","properties":{"description":{"type":"string"}}}`))
	require.NoError(t, err)
	_, err = c.compile("b", json.RawMessage(`{"type":"object","description":{"evil":true},"properties":{"description":{"type":"string"}}}`))
	require.ErrorContains(t, err, `tool "b"`, "a malformed annotation is checked, not shared away")
	cs, err := c.compile("c", json.RawMessage(`{"type":"object","properties":{"description":{"type":"integer"}}}`))
	require.NoError(t, err)
	full, err := cs.full.get()
	require.NoError(t, err)
	require.Error(t, full.Validate(map[string]any{"description": "text"}), "c's description property is an integer")
	require.NoError(t, full.Validate(map[string]any{"description": json.Number("3")}))
}
