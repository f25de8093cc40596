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
		{reflect.TypeFor[audit.Candidate](), []string{"$defs", "candidate", "properties"}},
		{reflect.TypeFor[audit.Correlation](), []string{"$defs", "correlation", "properties"}},
		{reflect.TypeFor[audit.Checkpoint](), []string{"$defs", "checkpoint", "properties"}},
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
	assert.Contains(t, top["title"], "format versions 1 and 2")
	assert.Equal(t, []any{float64(1), float64(audit.FormatVersion)}, top["properties"].(map[string]any)["v"].(map[string]any)["enum"])
}

// TestRecordSchemaAccepts validates records of every shape the package
// writes; logs written by the other tests are validated by checkLog.
func TestRecordSchemaAccepts(t *testing.T) {
	full := fullRecord()
	out := outcome("c1")
	out.Error, out.ErrorClass, out.ResultSHA256 = "boom", "tool_error", sha("result")
	odd := decision("c2", "deny")
	odd.Tool, odd.Reason, odd.Args = "bad\xffname\x00", "line1\nline2\t\"q\"", []byte("not json")
	for _, r := range []*audit.Record{full, decision("c0", "allow"), out, odd, correlated(), checkpointRecord(t)} {
		validateLine(t, r.AppendJSON(nil))
	}
}

// correlated is a decision with every correlation id.
func correlated() *audit.Record {
	r := decision("call-corr", "allow")
	r.Session = "sess-9"
	r.Correlation = &audit.Correlation{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7",
		Conversation: "conv-1", Turn: "7", Message: "msg_01"}
	return r
}

// checkpointRecord is the signed close checkpoint of a one-record log.
func checkpointRecord(t testing.TB) *audit.Record {
	ls := signedLog(t, audit.LogOptions{SigningKey: testKey}, decision("c0", "deny"))
	r := decodeRecord(t, ls[1])
	return &r
}

// TestRecordSchemaNewMembers: correlation and checkpoint members are checked.
// withCandidate is a decision with a candidate policy's decision and an
// approval bound to its call.
func withCandidate() *audit.Record {
	r := fullRecord()
	r.Approval.Binding = sha("binding")
	r.Candidate = &audit.Candidate{Policy: sha("candidate"), Effect: "ask", Rule: "mail-asks", Grant: "mail#0", Reason: "would ask", Agrees: false}
	return r
}

func TestCandidateRoundTrip(t *testing.T) {
	want := withCandidate()
	line := want.AppendJSON(nil)
	assert.Contains(t, string(line), `"candidate":{"policy":"`+sha("candidate")+`","effect":"ask","rule":"mail-asks","grant":"mail#0","reason":"would ask","agrees":false}`)
	assert.Contains(t, string(line), `"binding":"`+sha("binding")+`"`)
	var got audit.Record
	require.NoError(t, json.Unmarshal(line, &got))
	assert.Equal(t, want.Candidate, got.Candidate)
	assert.Equal(t, want.Approval, got.Approval)
	assert.Equal(t, string(line), string(got.AppendJSON(nil)), "canonical: re-encoding gives the same bytes")
}

func TestRecordSchemaNewMembers(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		valid bool
	}{
		{"correlated", string(correlated().AppendJSON(nil)), true},
		{"checkpoint", string(checkpointRecord(t).AppendJSON(nil)), true},
		{"candidate and binding", string(withCandidate().AppendJSON(nil)), true},
		{"candidate with a bad effect", strings.Replace(string(withCandidate().AppendJSON(nil)), `"effect":"ask"`, `"effect":"maybe"`, 1), false},
		{"empty correlation", strings.Replace(string(correlated().AppendJSON(nil)), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","conversation":"conv-1","turn":"7","message":"msg_01"`, ``, 1), false},
		{"unknown correlation member", strings.Replace(string(correlated().AppendJSON(nil)), `"turn":`, `"x":"1","turn":`, 1), false},
		{"checkpoint kind without checkpoint", `{"v":1,"seq":0,"id":"c","kind":"checkpoint","time":"2025-01-01T00:00:00.000000000Z","tool":"","prev":""}`, false},
		{"decision with checkpoint", strings.Replace(string(decision("c", "deny").AppendJSON(nil)), `"prev":`, `"checkpoint":{"seq":0,"hash":"","records":0,"reason":"close"},"prev":`, 1), false},
		{"unknown reason", strings.Replace(string(checkpointRecord(t).AppendJSON(nil)), `"reason":"close"`, `"reason":"bored"`, 1), false},
		{"sig without key id", strings.Replace(string(checkpointRecord(t).AppendJSON(nil)), `"key_id":"`+audit.KeyID(testPub)+`",`, ``, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.line))
			require.NoError(t, err, tt.line)
			err = recordSchema(t).Validate(inst)
			if tt.valid {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err, tt.line)
			}
		})
	}
}

// TestRecordSchemaRejects shows the schema is not vacuous.
func TestRecordSchemaRejects(t *testing.T) {
	valid := string(chain(decision("c1", "allow"))[:len(chain(decision("c1", "allow")))-1])
	tests := []struct {
		name, old, new string
		old2, new2     string // a second replacement, if any
	}{
		{"wrong version", `"v":2`, `"v":3`, "", ""},
		{"negative seq", `"seq":0`, `"seq":-1`, "", ""},
		{"unknown kind", `"kind":"decision"`, `"kind":"verdict"`, "", ""},
		{"decision without effect", `"effect":"allow",`, ``, "", ""},
		{"outcome with effect", `"kind":"decision"`, `"kind":"outcome"`, "", ""},
		{"non-canonical time", `.535897932Z`, `.5Z`, "", ""},
		{"time with offset", `15:09:26.535897932Z`, `15:09:26.535897932+01:00`, "", ""},
		{"bad prev", `"prev":""`, `"prev":"abc"`, "", ""},
		{"missing prev", `,"prev":""`, ``, "", ""},
		{"unknown member", `"tool":`, `"extra":1,"tool":`, "", ""},
		{"empty id", `"id":"c1"`, `"id":""`, "", ""},
		{"version 1 with a mac", `"v":2,`, `"v":1,`, `"prev":""}`, `"prev":"","mac":"` + sha("m") + `"}`},
		{"version 1 with a sig", `"v":2,`, `"v":1,`, `"prev":""}`, `"prev":"","sig":"` + strings.Repeat("ab", 64) + `"}`},
		{"short mac", `"prev":""}`, `"prev":"","mac":"abc"}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Contains(t, valid, tt.old)
			line := strings.Replace(valid, tt.old, tt.new, 1)
			if tt.old2 != "" {
				require.Contains(t, line, tt.old2)
				line = strings.Replace(line, tt.old2, tt.new2, 1)
			}
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
			require.NoError(t, err)
			assert.Error(t, recordSchema(t).Validate(inst), "line: %s", line)
		})
	}

	// A checkpoint is signed in checkpoint.sig, never in the record's sig.
	cp, err := os.ReadFile("testdata/golden/checkpoint_v2.jsonl")
	require.NoError(t, err)
	validateLine(t, bytes.TrimSuffix(cp, []byte("\n")))
	line := bytes.Replace(cp, []byte(`"}`+"\n"), []byte(`","sig":"`+strings.Repeat("ab", 64)+`"}`), 1)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	require.NoError(t, err)
	assert.Error(t, recordSchema(t).Validate(inst), "line: %s", line)
}
