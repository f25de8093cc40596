package audit

import (
	"bytes"
	"os"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// recordSchema compiles record.schema.json, asserting formats.
func recordSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		f, err := os.Open("record.schema.json")
		if err != nil {
			schemaErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if schemaErr = c.AddResource("record.schema.json", doc); schemaErr != nil {
			return
		}
		schema, schemaErr = c.Compile("record.schema.json")
	})
	require.NoError(t, schemaErr)
	return schema
}

// validateLine checks one line against record.schema.json.
func validateLine(t testing.TB, line []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	require.NoError(t, err, "line: %s", line)
	require.NoError(t, recordSchema(t).Validate(inst), "line: %s", line)
}

// validateLog checks every line of a log against record.schema.json.
func validateLog(t testing.TB, data []byte) {
	t.Helper()
	for line := range bytes.Lines(data) {
		validateLine(t, bytes.TrimSuffix(line, []byte("\n")))
	}
}
