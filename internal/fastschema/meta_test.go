package fastschema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"
)

// metaKeywords are the keywords set, at every schema of the corpus, to
// each of metaValues.
var metaKeywords = []string{"type", "properties", "required", "additionalProperties", "items", "enum", "const",
	"pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	"minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "title", "description",
	"$comment", "readOnly", "writeOnly", "deprecated", "examples", "default", "$schema", "$id",
	"$defs", "definitions", "x-extra"}

// metaValues are values of every JSON type, and values that are just
// inside or just outside what some keyword allows.
var metaValues = []string{`-1`, `0`, `-0`, `1`, `1.0`, `1.5`, `1e2`, `1e16`, `18446744073709551616`, `1e200000`,
	`""`, `"x"`, `"("`, `"^a+$"`, `"(?=a)"`, `"string"`, `"integer"`, `"int"`,
	`"https://json-schema.org/draft/2020-12/schema"`, `"https://json-schema.org/draft/2020-12/schema#"`,
	`"http://json-schema.org/draft-07/schema#"`, `"%zz"`, `"a b"`, `"#frag"`, `"https://example.com/a#"`, `"urn:x"`,
	`[]`, `[1]`, `["a"]`, `["a","a"]`, `["string"]`, `["string","null"]`, `["string","string"]`, `[{"type":"string"}]`,
	`{}`, `{"a":true}`, `{"a":1}`, `{"a":{"type":"string"}}`, `{"a":{"minLength":-1}}`, `{"type":"string"}`,
	`true`, `false`, `null`}

// TestMetaValidImpliesCompiles sets each keyword of the subset, at the
// root and the deepest schema of each corpus document, to each of many
// values: whenever
// Compile accepts the result and MetaValid reports true, jsonschema/v6
// must compile it, as a guard that puts that compile off relies on.
func TestMetaValidImpliesCompiles(t *testing.T) {
	values := make([]any, len(metaValues))
	for i, v := range metaValues {
		values[i] = parseDoc(t, v)
	}
	var tried, deferred, refusedByV6 int
	for _, e := range corpus(t) {
		doc := parseDoc(t, string(e.schema))
		// The meta-schema holds a keyword to the same rules at any depth
		// but the root's: the root and the deepest schema stand for all.
		pos := schemaPositions(doc, nil)
		slices.SortStableFunc(pos, func(a, b []string) int { return len(a) - len(b) })
		if len(pos) > 2 {
			pos = []([]string){pos[0], pos[len(pos)-1]}
		}
		for _, at := range pos {
			for _, k := range metaKeywords {
				for i, v := range values {
					m := withKeyword(doc, at, k, v)
					tried++
					fast, ok := Compile(m)
					if !ok {
						continue
					}
					_, err := compileFull(m)
					if !fast.MetaValid() {
						if err != nil {
							refusedByV6++
						}
						continue
					}
					deferred++
					if err != nil {
						b, _ := json.Marshal(m)
						t.Fatalf("%s: %s at %q set to %s: MetaValid, yet jsonschema/v6 refuses %s: %v", e.name, k, strings.Join(at, "/"), metaValues[i], b, err)
					}
				}
			}
		}
	}
	t.Logf("%d schemas: %d MetaValid, all compiled; %d accepted by Compile with $id and refused by jsonschema/v6", tried, deferred, refusedByV6)
	require.Positive(t, deferred)
	// $id is why MetaValid is not simply Compile's ok.
	assert.Positive(t, refusedByV6, "no schema with $id that Compile accepts and jsonschema/v6 refuses")
}

// FuzzMetaValid compiles arbitrary schema documents: whenever Compile
// accepts one and MetaValid reports true, jsonschema/v6 must compile it.
func FuzzMetaValid(f *testing.F) {
	for _, e := range corpus(f) {
		f.Add(e.schema)
	}
	for _, k := range metaKeywords {
		for _, v := range metaValues {
			f.Add([]byte(fmt.Sprintf(`{"type":"object","properties":{"a":{%q:%s}}}`, k, v)))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := sjs.UnmarshalJSON(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		if fast, ok := Compile(doc); ok && fast.MetaValid() {
			if _, err := compileFull(doc); err != nil {
				t.Fatalf("MetaValid, yet jsonschema/v6 refuses %s: %v", data, err)
			}
		}
	})
}

// schemaPositions returns the paths, from doc, of the schema objects
// inside it that the subset reaches: doc itself and what properties,
// items, additionalProperties, $defs and definitions hold.
func schemaPositions(doc any, at []string) [][]string {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	out := [][]string{at}
	for _, k := range []string{"items", "additionalProperties"} {
		out = append(out, schemaPositions(m[k], append(at[:len(at):len(at)], k))...)
	}
	for _, k := range []string{"properties", "$defs", "definitions"} {
		sub, _ := m[k].(map[string]any)
		for name, s := range sub {
			out = append(out, schemaPositions(s, append(at[:len(at):len(at)], k, name))...)
		}
	}
	return out
}

// withKeyword returns a copy of doc whose schema at the path has k set to v.
func withKeyword(doc any, at []string, k string, v any) any {
	m := cloneMap(doc.(map[string]any))
	if len(at) == 0 {
		m[k] = v
		return m
	}
	m[at[0]] = withKeyword(m[at[0]], at[1:], k, v)
	return m
}
