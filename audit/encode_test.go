package audit_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// encodeCases are records whose encodings are kept in testdata/golden: a
// change there is a change of the record format.
func encodeCases() map[string]*audit.Record {
	odd := decision("call-odd", "deny")
	odd.Tool = "rm\xff\xfe -rf \u2028<script>&"
	odd.Reason = "quote \" backslash \\ nul \x00 bell \x07 del \x7f tab \t nl \n cr \r bs \b ff \f é 🔒"
	odd.Args = []byte("{\"a\": [1, 2.5e3, true, null],\n  \"b\": \"x\\u0041\"}")
	invalidArgs := decision("call-inv", "deny")
	invalidArgs.Args = []byte(`{"a":1`)
	invalidArgs.Stage, invalidArgs.Rule = "arguments", ""
	invalidArgs.Violations = []audit.Violation{{Pointer: "", Message: "arguments are not valid JSON"}}
	out := outcome("call-1")
	out.Error, out.ErrorClass, out.ResultSHA256 = "permission denied", "tool_error", sha("result")
	return map[string]*audit.Record{
		"minimal":      {Version: 1, ID: "c", Kind: audit.KindOutcome, Time: time.Unix(0, 0)},
		"decision":     decision("call-1", "allow"),
		"full":         fullRecord(),
		"outcome":      out,
		"odd_strings":  odd,
		"invalid_args": invalidArgs,
		"correlated":   correlated(),
		"checkpoint": {Version: 1, Seq: 3, ID: "checkpoint-3", Kind: audit.KindCheckpoint, Time: t0,
			Checkpoint: &audit.Checkpoint{Seq: 2, Hash: sha("line 2"), Records: 3, Reason: audit.CheckpointInterval,
				KeyID: "0011223344556677", Sig: strings.Repeat("ab", 64)}, Prev: sha("line 2")},
		"checkpoint_v2": {Version: 2, Seq: 3, ID: "checkpoint-3", Kind: audit.KindCheckpoint, Time: t0,
			Checkpoint: &audit.Checkpoint{Seq: 2, Hash: sha("line 2"), Records: 3, Reason: audit.CheckpointClose,
				Root: sha("root"), Edge: []string{sha("left"), sha("right")},
				Note:  "agentguard.audit/0011223344556677\n3\nAAAA\n\n\u2014 agentguard.audit/0011223344556677 AAAA\n",
				KeyID: "0011223344556677", Sig: strings.Repeat("ab", 64)}, Prev: sha("line 2"), MAC: sha("mac")},
		"sealed_mac": {Version: 2, ID: "call-1", Kind: audit.KindOutcome, Time: t0, Tool: "read_file", Prev: sha("prev"), MAC: sha("mac")},
		"sealed_sig": {Version: 2, ID: "call-1", Kind: audit.KindOutcome, Time: t0, Tool: "read_file", Prev: sha("prev"), Sig: strings.Repeat("cd", 64)},
	}
}

func TestAppendJSONGolden(t *testing.T) {
	for name, r := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			got := append(r.AppendJSON(nil), '\n')
			path := filepath.Join("testdata", "golden", name+".jsonl")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			assert.Equal(t, string(want), string(got))
			validateLine(t, got[:len(got)-1])
		})
	}
}

// TestAppendJSONRoundTrip decodes the encoding with encoding/json and
// encodes the result again: the bytes must not change.
func TestAppendJSONRoundTrip(t *testing.T) {
	for name, r := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			line := r.AppendJSON(nil)
			require.True(t, json.Valid(line), "%s", line)
			require.True(t, utf8.Valid(line))
			assert.NotContains(t, string(line), "\n")

			var back audit.Record
			require.NoError(t, json.Unmarshal(line, &back))
			assert.Equal(t, string(line), string(back.AppendJSON(nil)))
			assert.True(t, r.Time.Equal(back.Time))
			assert.Equal(t, r.Seq, back.Seq)
			assert.Equal(t, r.Kind, back.Kind)
			assert.Equal(t, r.Violations, back.Violations)
			assert.Equal(t, r.Limits, back.Limits)
			assert.Equal(t, r.Approval, back.Approval)
			assert.Equal(t, r.Shadow, back.Shadow)
			assert.Equal(t, r.Correlation, back.Correlation)
			assert.Equal(t, r.Checkpoint, back.Checkpoint)
			assert.Equal(t, r.Prev, back.Prev)
		})
	}
}

func TestAppendJSONFullRecordDecodesToItself(t *testing.T) {
	r := fullRecord()
	var back audit.Record
	require.NoError(t, json.Unmarshal(r.AppendJSON(nil), &back))
	assert.Equal(t, *r, back)
}

func TestAppendJSONDeterministic(t *testing.T) {
	r := fullRecord()
	a := string(r.AppendJSON(nil))
	assert.Equal(t, a, string(r.AppendJSON(nil)))
	assert.Equal(t, a, string(r.AppendJSON([]byte("prefix")))[len("prefix"):])

	// The same instant in another zone, with a monotonic reading.
	loc := time.FixedZone("X", 5*3600+1800)
	r.Time = t0.In(loc)
	assert.Equal(t, a, string(r.AppendJSON(nil)))
	r.Time = time.Now()
	line := string(r.AppendJSON(nil))
	assert.NotContains(t, line, "m=")
	assert.Regexp(t, `"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"`, line)
}

func TestAppendJSONStrings(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain", `"plain"`},
		{"", `""`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f <>&", "\"\x7f <>&\""},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"é🔒", `"é🔒"`},
		{"\xff", "\"\uFFFD\""},
		{"a\xc3", "\"a\uFFFD\""},                   // truncated sequence
		{"\xed\xa0\x80", "\"\uFFFD\uFFFD\uFFFD\""}, // surrogate half
		{"\uFFFD", "\"\uFFFD\""},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			r := audit.Record{Tool: tt.in}
			line := string(r.AppendJSON(nil))
			assert.Contains(t, line, `"tool":`+tt.want+`,`)
			require.True(t, json.Valid([]byte(line)))
			require.True(t, utf8.ValidString(line))
			var back audit.Record
			require.NoError(t, json.Unmarshal([]byte(line), &back))
			var want string
			require.NoError(t, json.Unmarshal([]byte(tt.want), &want))
			assert.Equal(t, want, back.Tool)
			if utf8.ValidString(tt.in) {
				assert.Equal(t, tt.in, back.Tool)
			}
			assert.Equal(t, line, string(back.AppendJSON(nil)))
		})
	}
}

func TestAppendJSONArgs(t *testing.T) {
	deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	tooDeep := "[" + deep + "]"
	tests := []struct {
		name, args, want string
	}{
		{"compact object", `{"a":1,"b":[true,false,null]}`, `{"a":1,"b":[true,false,null]}`},
		{"whitespace removed", " {\n\t\"a\" : [ 1 , -0.5e+10 ] ,\r\n \"b\":{ } } \n", `{"a":[1,-0.5e+10],"b":{}}`},
		{"escapes kept", `"x\u0041\n\/"`, `"x\u0041\n\/"`},
		{"scalar", `42`, `42`},
		{"null", `null`, `null`},
		{"empty array", `[ ]`, `[]`},
		{"deep nesting", deep, deep},
		{"too deep", tooDeep, `"` + tooDeep + `"`},
		{"not json", `hello`, `"hello"`},
		{"truncated", `{"a":1`, `"{\"a\":1"`},
		{"trailing data", `{} {}`, `"{} {}"`},
		{"trailing comma", `[1,]`, `"[1,]"`},
		{"leading zero", `01`, `"01"`},
		{"bare minus", `-`, `"-"`},
		{"bad exponent", `1e`, `"1e"`},
		{"bad escape", `"\x"`, `"\"\\x\""`},
		{"short unicode escape", `"\u12"`, `"\"\\u12\""`},
		{"raw control char", "\"a\tb\"", `"\"a\tb\""`},
		{"invalid utf8 in string", "\"\xff\"", "\"\\\"\uFFFD\\\"\""},
		{"single quotes", `{'a':1}`, `"{'a':1}"`},
		{"missing colon", `{"a" 1}`, `"{\"a\" 1}"`},
		{"non-string key", `{1:1}`, `"{1:1}"`},
		{"mismatched close", `[}`, `"[}"`},
		{"unclosed deep", "[[[", `"[[["`},
		{"only whitespace", "  ", `"  "`},
		{"NaN", `NaN`, `"NaN"`},
		{"tru", `tru`, `"tru"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := audit.Record{Args: []byte(tt.args)}
			line := r.AppendJSON(nil)
			require.True(t, json.Valid(line), "%s", line)
			require.True(t, utf8.Valid(line))
			var back audit.Record
			require.NoError(t, json.Unmarshal(line, &back))
			assert.Equal(t, tt.want, string(back.Args))
			assert.Equal(t, string(line), string(back.AppendJSON(nil)))
		})
	}
}

func TestAppendJSONOmitsEmpty(t *testing.T) {
	r := audit.Record{Version: 1, ID: "x", Kind: audit.KindOutcome, Time: t0, Redacted: []string{}, Errors: []string{}}
	assert.Equal(t, `{"v":1,"seq":0,"id":"x","kind":"outcome","time":"2025-03-14T15:09:26.535897932Z","tool":"","prev":""}`, string(r.AppendJSON(nil)))
	r.Approval = &audit.Approval{}
	assert.Contains(t, string(r.AppendJSON(nil)), `"approval":{"approved":false},`)
}
