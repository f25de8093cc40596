package fastschema

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCompileRefuses lists schemas outside the subset: each must be refused.
func TestCompileRefuses(t *testing.T) {
	refused := []string{
		// Applicators and references.
		`{"allOf":[{"type":"string"}]}`,
		`{"anyOf":[{"type":"string"}]}`,
		`{"oneOf":[{"type":"string"}]}`,
		`{"not":{"type":"string"}}`,
		`{"if":{"type":"string"},"then":{"minLength":1}}`,
		`{"if":true}`,
		`{"then":true}`,
		`{"else":true}`,
		`{"$ref":"#/$defs/a","$defs":{"a":true}}`,
		`{"properties":{"a":{"$ref":"#"}}}`,
		`{"$dynamicRef":"#a"}`,
		`{"$dynamicAnchor":"a"}`,
		`{"$anchor":"a"}`,
		`{"$recursiveRef":"#"}`,
		`{"$vocabulary":{}}`,
		`{"prefixItems":[true]}`,
		`{"contains":{"type":"string"}}`,
		`{"minContains":1}`,
		`{"maxContains":1}`,
		`{"patternProperties":{"^a":true}}`,
		`{"propertyNames":{"maxLength":3}}`,
		`{"dependentRequired":{"a":["b"]}}`,
		`{"dependentSchemas":{"a":true}}`,
		`{"dependencies":{"a":["b"]}}`,
		`{"unevaluatedProperties":false}`,
		`{"unevaluatedItems":false}`,
		`{"additionalItems":false}`,
		`{"multipleOf":2}`,
		`{"format":"email"}`,
		`{"contentEncoding":"base64"}`,
		`{"contentMediaType":"application/json"}`,
		`{"contentSchema":true}`,
		`{"nullable":true}`,
		`{"discriminator":{"propertyName":"kind"}}`,
		`{"unknownKeyword":1}`,
		`{"X-upper":1}`,
		// Nested anywhere.
		`{"properties":{"a":{"format":"uri"}}}`,
		`{"items":{"anyOf":[true]}}`,
		`{"additionalProperties":{"not":{}}}`,
		`{"$defs":{"a":{"format":"date"}}}`,
		`{"definitions":{"a":{"$ref":"#"}}}`,
		// Dialects and identifiers.
		`{"$schema":"http://json-schema.org/draft-07/schema#"}`,
		`{"$schema":"https://json-schema.org/draft/2019-09/schema"}`,
		`{"$schema":"http://json-schema.org/draft-04/schema#"}`,
		`{"$schema":"https://json-schema.org/draft/2020-12/schema#"}`,
		`{"$schema":1}`,
		`{"properties":{"a":{"$schema":"https://json-schema.org/draft/2020-12/schema"}}}`,
		`{"properties":{"a":{"$id":"https://example.com/a"}}}`,
		`{"$id":1}`,
		`{"$id":"https://example.com/a#frag"}`,
		// Wrong JSON types and out-of-range values.
		`{"type":"int"}`,
		`{"type":[]}`,
		`{"type":["string","string"]}`,
		`{"type":["string",1]}`,
		`{"type":1}`,
		`{"properties":[]}`,
		`{"properties":{"a":1}}`,
		`{"properties":{"a":"string"}}`,
		`{"properties":{"a":null}}`,
		`{"required":"a"}`,
		`{"required":["a","a"]}`,
		`{"required":[1]}`,
		`{"additionalProperties":"no"}`,
		`{"items":[{"type":"string"}]}`,
		`{"items":1}`,
		`{"enum":"a"}`,
		`{"enum":{}}`,
		`{"minLength":"3"}`,
		`{"minLength":-1}`,
		`{"minLength":1.5}`,
		`{"maxLength":true}`,
		`{"maxLength":1e16}`,
		`{"maxLength":18446744073709551616}`,
		`{"minItems":-1}`,
		`{"maxItems":null}`,
		`{"minProperties":0.5}`,
		`{"maxProperties":"1"}`,
		`{"pattern":1}`,
		`{"pattern":"("}`,
		`{"pattern":"(?=a)"}`,
		`{"minimum":"0"}`,
		`{"maximum":null}`,
		`{"exclusiveMinimum":true}`,
		`{"exclusiveMaximum":false}`,
		`{"minimum":1e200000}`,
		`{"maximum":1e-200000}`,
		`{"const":1e200000}`,
		`{"enum":[1e200000]}`,
		`{"uniqueItems":"true"}`,
		`{"title":1}`,
		`{"description":null}`,
		`{"$comment":[]}`,
		`{"readOnly":"yes"}`,
		`{"writeOnly":1}`,
		`{"deprecated":null}`,
		`{"examples":{}}`,
		`{"$defs":[]}`,
		`{"$defs":{"a":1}}`,
		// Not schemas at all.
		`null`,
		`1`,
		`"string"`,
		`[]`,
		`[{"type":"string"}]`,
	}
	for _, src := range refused {
		t.Run(src, func(t *testing.T) {
			v, ok := Compile(parseDoc(t, src))
			assert.False(t, ok)
			assert.Nil(t, v)
		})
	}
}

func TestCompileDepth(t *testing.T) {
	nest := func(n int) any {
		var doc any = map[string]any{"type": "string"}
		for range n {
			doc = map[string]any{"items": doc}
		}
		return doc
	}
	_, ok := Compile(nest(maxDepth))
	assert.True(t, ok)
	_, ok = Compile(nest(maxDepth + 1))
	assert.False(t, ok)
}

// TestCompileGoValues accepts schemas built in Go with float64 and int
// numbers, as encoding/json without UseNumber produces.
func TestCompileGoValues(t *testing.T) {
	var doc any
	require.NoError(t, json.Unmarshal([]byte(typicalSchema), &doc))
	fast, ok := Compile(doc)
	require.True(t, ok)
	assert.True(t, fast.Valid(decodeInstance(t, typicalInstance)))

	fast, ok = Compile(map[string]any{"type": "integer", "maximum": 10, "minimum": int64(-3), "enum": []any{1, 2.0, -3}})
	require.True(t, ok)
	assert.True(t, fast.Valid(json.Number("2")))
	assert.False(t, fast.Valid(json.Number("3")))

	_, ok = Compile(map[string]any{"minimum": "0"})
	assert.False(t, ok)
	_, ok = Compile(map[string]any{"minLength": 2.5})
	assert.False(t, ok)
	_, ok = Compile(map[string]any{"const": []string{"not", "decoded", "JSON"}})
	assert.False(t, ok)
}

// TestRefusalsAgreeWithMetaSchema checks that the wrong-type refusals are
// schemas jsonschema/v6 refuses too, or that refusing them is merely
// conservative: none of them is a valid schema that fastschema claims to
// handle differently.
func TestRefusalsAgreeWithMetaSchema(t *testing.T) {
	for _, src := range []string{
		`{"minLength":"3"}`, `{"minLength":-1}`, `{"type":"int"}`, `{"type":["string","string"]}`,
		`{"required":["a","a"]}`, `{"items":1}`, `{"title":1}`, `{"pattern":"("}`, `{"exclusiveMinimum":true}`,
	} {
		_, err := compileFull(parseDoc(t, src))
		assert.Error(t, err, "jsonschema/v6 compiles %s", src)
	}
	// Outside the subset but valid: refused only to stay simple.
	for _, src := range []string{`{"$schema":"http://json-schema.org/draft-07/schema#"}`, `{"format":"email"}`, `{"maxLength":1e16}`} {
		_, err := compileFull(parseDoc(t, src))
		assert.NoError(t, err, src)
		_, ok := Compile(parseDoc(t, src))
		assert.False(t, ok, src)
	}
	assert.True(t, strings.HasPrefix(dialect2020, "https://"))
}
