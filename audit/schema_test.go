package audit_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// jsonKeys returns the member names of the object at path in the schema
// file, in file order.
func jsonKeys(t *testing.T, data []byte, path ...string) []string {
	t.Helper()
	var obj map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &obj))
	for _, p := range path {
		require.Contains(t, obj, p)
		raw := obj[p]
		obj = nil
		require.NoError(t, json.Unmarshal(raw, &obj))
		data = raw
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var keys []string
	_, err := dec.Token() // {
	require.NoError(t, err)
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err)
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	return keys
}

// jsonTags returns the JSON member names of a struct type in field order.
func jsonTags(typ reflect.Type) []string {
	var names []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// TestRecordSchemaMatchesTypes keeps record.schema.json in step with the Go
// types: the same members in the same order, each with a description.
func TestRecordSchemaMatchesTypes(t *testing.T) {
	data, err := os.ReadFile("record.schema.json")
	require.NoError(t, err)
	tests := []struct {
		typ  reflect.Type
		path []string
	}{
		{reflect.TypeFor[audit.Record](), []string{"properties"}},
		{reflect.TypeFor[audit.Violation](), []string{"$defs", "violation", "properties"}},
		{reflect.TypeFor[audit.LimitState](), []string{"$defs", "limit", "properties"}},
		{reflect.TypeFor[audit.Approval](), []string{"$defs", "approval", "properties"}},
		{reflect.TypeFor[audit.Shadow](), []string{"$defs", "shadow", "properties"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ.Name(), func(t *testing.T) {
			assert.Equal(t, jsonTags(tt.typ), jsonKeys(t, data, tt.path...))
			var props map[string]map[string]any
			var obj map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(data, &obj))
			raw := data
			for _, p := range tt.path {
				require.NoError(t, json.Unmarshal(raw, &obj))
				raw = obj[p]
			}
			require.NoError(t, json.Unmarshal(raw, &props))
			for name, p := range props {
				assert.NotEmpty(t, p["description"], "property %s has no description", name)
			}
		})
	}
	var top map[string]any
	require.NoError(t, json.Unmarshal(data, &top))
	assert.Contains(t, top["title"], "format version 1")
	assert.Equal(t, map[string]any{"description": "Format version of the record. This schema describes version 1.", "const": float64(audit.FormatVersion)},
		top["properties"].(map[string]any)["v"])
}

// TestRecordSchemaAccepts validates records of every shape the package
// writes; logs written by the other tests are validated by checkLog.
func TestRecordSchemaAccepts(t *testing.T) {
	full := fullRecord()
	out := outcome("c1")
	out.Error, out.ErrorClass, out.ResultSHA256 = "boom", "tool_error", sha("result")
	odd := decision("c2", "deny")
	odd.Tool, odd.Reason, odd.Args = "bad\xffname\x00", "line1\nline2\t\"q\"", []byte("not json")
	for _, r := range []*audit.Record{full, decision("c0", "allow"), out, odd} {
		validateLine(t, r.AppendJSON(nil))
	}
}

// TestRecordSchemaRejects shows the schema is not vacuous.
func TestRecordSchemaRejects(t *testing.T) {
	valid := string(chain(decision("c1", "allow"))[:len(chain(decision("c1", "allow")))-1])
	tests := []struct {
		name, old, new string
	}{
		{"wrong version", `"v":1`, `"v":2`},
		{"negative seq", `"seq":0`, `"seq":-1`},
		{"unknown kind", `"kind":"decision"`, `"kind":"verdict"`},
		{"decision without effect", `"effect":"allow",`, ``},
		{"outcome with effect", `"kind":"decision"`, `"kind":"outcome"`},
		{"non-canonical time", `.535897932Z`, `.5Z`},
		{"time with offset", `15:09:26.535897932Z`, `15:09:26.535897932+01:00`},
		{"bad prev", `"prev":""`, `"prev":"abc"`},
		{"missing prev", `,"prev":""`, ``},
		{"unknown member", `"tool":`, `"extra":1,"tool":`},
		{"empty id", `"id":"c1"`, `"id":""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, valid, tt.old)
			line := strings.Replace(valid, tt.old, tt.new, 1)
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
			require.NoError(t, err)
			assert.Error(t, recordSchema(t).Validate(inst), "line: %s", line)
		})
	}
}
