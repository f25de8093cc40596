package toolguard

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

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

// stripAnnotations returns the schema s without annotations, descending
// only where the value is a schema: s itself when it has none, else a copy.
func stripAnnotations(s any, depth int) any {
	out, _ := strip(s, depth)
	return out
}

// strip is stripAnnotations, also reporting whether it removed anything
// (and so returned a copy).
func strip(s any, depth int) (any, bool) {
	m, ok := s.(map[string]any)
	if !ok || depth > maxKeyDepth {
		return s, false
	}
	var changed map[string]any // members whose value changed
	var removed []string
	for k, v := range m {
		switch {
		case isAnnotation(k, v):
			removed = append(removed, k)
		case subschema[k] && isObject(v):
			if c, ok := strip(v, depth+1); ok {
				changed = with(changed, k, c)
			}
		case schemaLists[k] && isList(v):
			l := v.([]any)
			var c []any
			for i, e := range l {
				if se, ok := strip(e, depth+1); ok {
					if c == nil {
						c = slices.Clone(l)
					}
					c[i] = se
				}
			}
			if c != nil {
				changed = with(changed, k, c)
			}
		case schemaMaps[k] && isObject(v):
			sm := v.(map[string]any)
			var c map[string]any
			for name, e := range sm {
				if se, ok := strip(e, depth+1); ok {
					if c == nil {
						c = maps.Clone(sm)
					}
					c[name] = se
				}
			}
			if c != nil {
				changed = with(changed, k, c)
			}
		}
	}
	if changed == nil && removed == nil {
		return m, false
	}
	out := maps.Clone(m)
	for _, k := range removed {
		delete(out, k)
	}
	maps.Copy(out, changed)
	return out, true
}

func with(m map[string]any, k string, v any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	m[k] = v
	return m
}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

func isList(v any) bool { _, ok := v.([]any); return ok }
