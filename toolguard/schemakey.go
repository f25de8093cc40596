package toolguard

import (
	"bytes"
	"encoding/json"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"
)

// isAnnotation reports whether the member k: v of a schema only describes
// — never changes which instances the schema accepts — and is well formed,
// so that the meta-schema accepts it whatever it says.
func isAnnotation(k string, v any) bool {
	switch k {
	case "title", "description", "$comment":
		_, ok := v.(string)
		return ok
	case "examples":
		return isList(v)
	}
	return false
}

// refKeywords are the keywords that refer to a location in the document:
// a schema that uses one is keyed by its bytes, since stripping
// annotations could change what a reference points to.
var refKeywords = map[string]bool{"$ref": true, "$dynamicRef": true, "$recursiveRef": true,
	"$id": true, "$anchor": true, "$dynamicAnchor": true, "id": true}

// Keywords whose value is a schema, a map of names to schemas, or a list
// of schemas (drafts 4 to 2020-12).
var (
	subschema = map[string]bool{"items": true, "additionalItems": true, "contains": true,
		"additionalProperties": true, "propertyNames": true, "not": true, "if": true, "then": true,
		"else": true, "unevaluatedItems": true, "unevaluatedProperties": true, "contentSchema": true}
	schemaMaps  = map[string]bool{"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true, "dependencies": true}
	schemaLists = map[string]bool{"allOf": true, "anyOf": true, "oneOf": true, "prefixItems": true, "items": true}
)

// schemaKey returns the key under which a schema's compiled form is
// shared: its bytes without the annotations (title, description, examples,
// $comment) of any of its schemas, so that tools whose schemas differ only
// in what they say about their arguments share one compile. A schema that
// is not JSON, or that uses references or identifiers, is keyed by its
// bytes.
func schemaKey(raw json.RawMessage) string {
	// Decoded as schemaCache.compile decodes it, so that equal keys
	// compile alike.
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return string(raw)
	}
	return docKey(raw, doc)
}

// docKey is schemaKey of raw, given raw decoded.
func docKey(raw json.RawMessage, doc any) string {
	if hasRefs(doc, 0) {
		return string(raw)
	}
	b, err := json.Marshal(stripAnnotations(doc, 0))
	if err != nil {
		return string(raw)
	}
	return "\x00" + string(b) // never equal to a schema's own bytes
}

// maxKeyDepth bounds the walks; a deeper schema is keyed by its bytes.
const maxKeyDepth = 64

// hasRefs reports whether v uses a reference or identifier keyword
// anywhere (in data too: it errs on the side of the bytes), or is too deep.
func hasRefs(v any, depth int) bool {
	if depth > maxKeyDepth {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if refKeywords[k] || hasRefs(e, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasRefs(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// stripAnnotations returns a copy of the schema s without annotations,
// descending only where the value is a schema.
func stripAnnotations(s any, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > maxKeyDepth {
		return s
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch {
		case isAnnotation(k, v):
		case subschema[k] && isObject(v):
			out[k] = stripAnnotations(v, depth+1)
		case schemaLists[k] && isList(v):
			l := v.([]any)
			c := make([]any, len(l))
			for i, e := range l {
				c[i] = stripAnnotations(e, depth+1)
			}
			out[k] = c
		case schemaMaps[k] && isObject(v):
			sm := v.(map[string]any)
			c := make(map[string]any, len(sm))
			for name, e := range sm {
				c[name] = stripAnnotations(e, depth+1)
			}
			out[k] = c
		default:
			out[k] = v
		}
	}
	return out
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

func isList(v any) bool { _, ok := v.([]any); return ok }
