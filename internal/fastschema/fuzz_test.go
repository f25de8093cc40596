package fastschema

import (
	"encoding/json"
	"testing"

	"github.com/agentguard/agentguard/internal/safejson"
)

// FuzzDifferential validates arbitrary instances against the corpus
// schemas: whenever fastschema says valid, jsonschema/v6 must agree.
func FuzzDifferential(f *testing.F) {
	entries := corpus(f)
	for i, e := range entries {
		for _, in := range e.instances {
			f.Add(uint(i), in)
		}
	}
	f.Fuzz(func(t *testing.T, index uint, data []byte) {
		e := entries[index%uint(len(entries))]
		if v, err := safejson.Decode(data, safejson.Limits{}); err == nil && e.fast.Valid(v) {
			if err := e.full.Validate(v); err != nil {
				t.Fatalf("%s: fastschema accepts %s, jsonschema/v6 rejects it: %v", e.name, data, err)
			}
		}
		// The same text with float64 numbers, as encoding/json decodes it.
		var f any
		if json.Unmarshal(data, &f) == nil && e.fast.Valid(f) {
			if err := e.full.Validate(f); err != nil {
				t.Fatalf("%s: fastschema accepts %s decoded with float64 numbers, jsonschema/v6 rejects it: %v", e.name, data, err)
			}
		}
	})
}
