package audit_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
)

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

func schemaOf(t testing.TB, s string) map[string]any {
	t.Helper()
	return decodeJSON(t, s).(map[string]any)
}

func TestSensitivePaths(t *testing.T) {
	tests := []struct {
		name, schema string
		want         []string
	}{
		{"none", `{"type":"object","properties":{"a":{"type":"string"}}}`, nil},
		{"writeOnly false", `{"properties":{"a":{"writeOnly":false},"b":{"x-sensitive":"yes"}}}`, nil},
		{"flat", `{"properties":{"user":{"type":"string"},"password":{"type":"string","writeOnly":true},"token":{"x-sensitive":true}}}`,
			[]string{"/password", "/token"}},
		{"nested", `{"properties":{"auth":{"properties":{"basic":{"properties":{"pass":{"writeOnly":true}}}}}}}`,
			[]string{"/auth/basic/pass"}},
		{"whole object marked", `{"properties":{"creds":{"x-sensitive":true,"properties":{"key":{"writeOnly":true}}}}}`,
			[]string{"/creds"}},
		{"array items", `{"properties":{"headers":{"type":"array","items":{"properties":{"value":{"writeOnly":true}}}}}}`,
			[]string{"/headers/*/value"}},
		{"prefixItems", `{"prefixItems":[{"type":"string"},{"writeOnly":true}]}`, []string{"/*"}},
		{"old tuple items", `{"items":[{"type":"string"},{"properties":{"k":{"writeOnly":true}}}]}`, []string{"/*/k"}},
		{"contains", `{"contains":{"properties":{"k":{"writeOnly":true}}}}`, []string{"/*/k"}},
		{"additionalProperties", `{"properties":{"env":{"additionalProperties":{"writeOnly":true}}}}`, []string{"/env/*"}},
		{"patternProperties", `{"patternProperties":{"^secret_":{"x-sensitive":true}}}`, []string{"/*"}},
		{"escaped keys", `{"properties":{"a/b":{"properties":{"c~d":{"writeOnly":true}}}}}`, []string{"/a~1b/c~0d"}},
		{"$defs ref", `{"properties":{"login":{"$ref":"#/$defs/login"}},"$defs":{"login":{"properties":{"secret":{"writeOnly":true}}}}}`,
			[]string{"/login/secret"}},
		{"definitions ref", `{"properties":{"a":{"$ref":"#/definitions/s"},"b":{"items":{"$ref":"#/definitions/s"}}},"definitions":{"s":{"writeOnly":true}}}`,
			[]string{"/a", "/b/*"}},
		{"percent-encoded ref", `{"properties":{"a":{"$ref":"#/$defs/my%20secret"}},"$defs":{"my secret":{"writeOnly":true}}}`, []string{"/a"}},
		{"anchor ref", `{"properties":{"a":{"$ref":"#tok"}},"$defs":{"t":{"$anchor":"tok","writeOnly":true}}}`, []string{"/a"}},
		{"ref with siblings", `{"properties":{"a":{"$ref":"#/$defs/x","properties":{"b":{"writeOnly":true}}}},"$defs":{"x":{"properties":{"c":{"writeOnly":true}}}}}`,
			[]string{"/a/b", "/a/c"}},
		{"combinators", `{"allOf":[{"properties":{"a":{"writeOnly":true}}}],"anyOf":[{"properties":{"b":{"writeOnly":true}}}],"oneOf":[{"properties":{"c":{"writeOnly":true}}}],
			"if":{"properties":{"d":{"writeOnly":true}}},"then":{"properties":{"e":{"writeOnly":true}}},"else":{"properties":{"f":{"writeOnly":true}}},
			"dependentSchemas":{"x":{"properties":{"g":{"writeOnly":true}}}},"not":{"properties":{"h":{"writeOnly":true}}}}`,
			[]string{"/a", "/b", "/c", "/d", "/e", "/f", "/g"}},
		{"recursive tree", `{"properties":{"secret":{"writeOnly":true},"children":{"items":{"$ref":"#"}}}}`,
			[]string{"/children/*/children/*", "/children/*/secret", "/secret"}},
		{"recursive tree in $defs", `{"$ref":"#/$defs/node","$defs":{"node":{"properties":{"secret":{"writeOnly":true},"children":{"items":{"$ref":"#/$defs/node"}}}}}}`,
			[]string{"/children/*", "/secret"}},
		{"recursive root", `{"properties":{"key":{"writeOnly":true},"next":{"$ref":"#"}}}`,
			[]string{"/key", "/next/key", "/next/next"}},
		{"recursion without secrets", `{"properties":{"name":{"type":"string"},"next":{"$ref":"#"}}}`, nil},
		{"mutual recursion", `{"$ref":"#/$defs/a","$defs":{"a":{"properties":{"b":{"$ref":"#/$defs/b"}}},"b":{"properties":{"a":{"$ref":"#/$defs/a"},"k":{"writeOnly":true}}}}}`,
			[]string{"/b/a", "/b/k"}},
		{"self reference", `{"$defs":{"x":{"$ref":"#/$defs/x"}},"properties":{"a":{"$ref":"#/$defs/x"}}}`, nil},
		{"missing ref", `{"properties":{"a":{"$ref":"#/$defs/nope"},"b":{"$ref":"#/properties/a/items/3"}}}`, nil},
		{"remote ref", `{"properties":{"a":{"$ref":"https://example.com/s.json"}}}`, nil},
		{"boolean schemas", `{"properties":{"a":true,"b":false},"items":true}`, nil},
		{"junk values", `{"properties":[1,2],"items":"x","allOf":{"writeOnly":true}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, audit.SensitivePaths(schemaOf(t, tt.schema)))
		})
	}
	assert.Nil(t, audit.SensitivePaths(nil))
}

// TestSensitivePathsBounded: a schema whose expansion would be exponential
// finishes quickly and fails safe.
func TestSensitivePathsBounded(t *testing.T) {
	defs := map[string]any{"d0": map[string]any{"writeOnly": true}}
	for i := 1; i <= 40; i++ {
		prev := map[string]any{"$ref": fmt.Sprintf("#/$defs/d%d", i-1)}
		defs[fmt.Sprintf("d%d", i)] = map[string]any{"properties": map[string]any{"x": prev, "y": prev}}
	}
	schema := map[string]any{"$ref": "#/$defs/d40", "$defs": defs}
	assert.Equal(t, []string{""}, audit.SensitivePaths(schema))
}

func TestRedact(t *testing.T) {
	red := audit.NewRedactor([]byte("test key"))
	d := func(v string) string { // digest of the JSON value v
		out, _ := red.Redact(decodeJSON(t, `{"x":`+v+`}`), []string{"/x"})
		return out.(map[string]any)["x"].(string)
	}
	tests := []struct {
		name, args string
		paths      []string
		want       string
		pointers   []string
	}{
		{"top level", `{"user":"bob","password":"hunter2"}`, []string{"/password"},
			`{"user":"bob","password":"` + d(`"hunter2"`) + `"}`, []string{"/password"}},
		{"nested", `{"auth":{"basic":{"user":"bob","pass":"p"}},"n":1}`, []string{"/auth/basic/pass"},
			`{"auth":{"basic":{"user":"bob","pass":"` + d(`"p"`) + `"}},"n":1}`, []string{"/auth/basic/pass"}},
		{"object value", `{"creds":{"k":1}}`, []string{"/creds"},
			`{"creds":"` + d(`{"k":1}`) + `"}`, []string{"/creds"}},
		{"array wildcard", `{"h":[{"name":"a","value":"1"},{"name":"b"},{"name":"c","value":"3"}]}`, []string{"/h/*/value"},
			`{"h":[{"name":"a","value":"` + d(`"1"`) + `"},{"name":"b"},{"name":"c","value":"` + d(`"3"`) + `"}]}`, []string{"/h/0/value", "/h/2/value"}},
		{"array index", `{"a":["x","y","z"]}`, []string{"/a/1", "/a/01", "/a/9"},
			`{"a":["x","` + d(`"y"`) + `","z"]}`, []string{"/a/1"}},
		{"member wildcard", `{"env":{"HOME":"/h","TOKEN":"t"}}`, []string{"/env/*"},
			`{"env":{"HOME":"` + d(`"/h"`) + `","TOKEN":"` + d(`"t"`) + `"}}`, []string{"/env/HOME", "/env/TOKEN"}},
		{"shared prefix", `{"a":{"x":"1","y":"2","z":"3"}}`, []string{"/a/x", "/a/y"},
			`{"a":{"x":"` + d(`"1"`) + `","y":"` + d(`"2"`) + `","z":"3"}}`, []string{"/a/x", "/a/y"}},
		{"star and literal", `{"a":{"x":{"s":"1"},"y":{"s":"2"}}}`, []string{"/a/*/s", "/a/x"},
			`{"a":{"x":"` + d(`{"s":"1"}`) + `","y":{"s":"` + d(`"2"`) + `"}}}`, []string{"/a/x", "/a/y/s"}},
		{"outer and inner", `{"a":{"b":"1"}}`, []string{"/a/b", "/a"},
			`{"a":"` + d(`{"b":"1"}`) + `"}`, []string{"/a"}},
		{"escaped key", `{"a/b":{"c~d":"s"}}`, []string{"/a~1b/c~0d"},
			`{"a/b":{"c~d":"` + d(`"s"`) + `"}}`, []string{"/a~1b/c~0d"}},
		{"null and numbers", `{"a":null,"b":12.50}`, []string{"/a", "/b"},
			`{"a":"` + d(`null`) + `","b":"` + d(`12.5`) + `"}`, []string{"/a", "/b"}},
		{"missing paths", `{"a":1,"b":[1]}`, []string{"/x", "/a/b", "/b/x", "/b/*/y"}, `{"a":1,"b":[1]}`, nil},
		{"root", `{"a":1}`, []string{""}, `"` + d(`{"a":1}`) + `"`, []string{""}},
		{"invalid pointer redacts all", `{"a":1}`, []string{"a"}, `"` + d(`{"a":1}`) + `"`, []string{""}},
		{"invalid escape redacts all", `{"a":1}`, []string{"/a~2"}, `"` + d(`{"a":1}`) + `"`, []string{""}},
		{"no paths", `{"a":1}`, nil, `{"a":1}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := decodeJSON(t, tt.args)
			got, pointers := red.Redact(args, tt.paths)
			assert.Equal(t, tt.pointers, pointers)
			wantV := decodeJSON(t, tt.want)
			assert.Equal(t, canonical(t, wantV), canonical(t, got))
			assert.Equal(t, canonical(t, decodeJSON(t, tt.args)), canonical(t, args), "args unchanged")
		})
	}
}

func canonical(t testing.TB, v any) string {
	t.Helper()
	b, err := canonjson.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestRedactCopiesOnlyChangedPaths(t *testing.T) {
	args := decodeJSON(t, `{"keep":{"x":1},"change":{"secret":"s","other":[1,2]}}`).(map[string]any)
	got, _ := audit.NewRedactor([]byte("k")).Redact(args, []string{"/change/secret"})
	m := got.(map[string]any)
	assert.Equal(t, "s", args["change"].(map[string]any)["secret"], "input not modified")
	assert.Equal(t, fmt.Sprintf("%p", args["keep"]), fmt.Sprintf("%p", m["keep"]), "untouched subtree shared")
	assert.NotEqual(t, fmt.Sprintf("%p", args["change"]), fmt.Sprintf("%p", m["change"]), "changed subtree copied")
	assert.Equal(t, fmt.Sprintf("%p", args["change"].(map[string]any)["other"]), fmt.Sprintf("%p", m["change"].(map[string]any)["other"]))

	same, ptrs := audit.NewRedactor([]byte("k")).Redact(args, []string{"/nothing"})
	assert.Nil(t, ptrs)
	assert.Equal(t, fmt.Sprintf("%p", args), fmt.Sprintf("%p", same), "nothing to do: args returned as is")
}

func TestRedactTypedContainers(t *testing.T) {
	red := audit.NewRedactor([]byte("k"))
	args := map[string]any{"env": map[string]string{"TOKEN": "t", "HOME": "/h"}, "argv": []string{"--pass", "p"}}
	got, ptrs := red.Redact(args, []string{"/env/TOKEN", "/argv/1"})
	assert.Equal(t, []string{"/argv/1", "/env/TOKEN"}, ptrs)
	m := got.(map[string]any)
	assert.Equal(t, "/h", m["env"].(map[string]string)["HOME"])
	assert.True(t, strings.HasPrefix(m["env"].(map[string]string)["TOKEN"], "redacted:hmac-sha256:"))
	assert.Equal(t, "--pass", m["argv"].([]string)[0])
	assert.True(t, strings.HasPrefix(m["argv"].([]string)[1], "redacted:hmac-sha256:"))
	assert.Equal(t, "t", args["env"].(map[string]string)["TOKEN"], "input not modified")

	// A value Redact cannot look into is hidden whole; one with no
	// canonical form becomes "redacted".
	type opaque struct{ Secret string }
	got, ptrs = red.Redact(map[string]any{"o": opaque{"s"}, "bad": "\xff"}, []string{"/o/Secret", "/bad"})
	assert.Equal(t, []string{"/bad", "/o"}, ptrs)
	assert.Equal(t, map[string]any{"o": "redacted", "bad": "redacted"}, got)
}

func TestRedactDigest(t *testing.T) {
	key := []byte("k1")
	args := map[string]any{"a": "secret", "b": "secret", "c": "other"}
	paths := []string{"/a", "/b", "/c"}
	r1, _ := audit.NewRedactor(key).Redact(args, paths)
	r2, _ := audit.NewRedactor([]byte("k1")).Redact(args, paths)
	r3, _ := audit.NewRedactor([]byte("k2")).Redact(args, paths)
	m1, m2, m3 := r1.(map[string]any), r2.(map[string]any), r3.(map[string]any)

	assert.Regexp(t, `^redacted:hmac-sha256:[0-9a-f]{32}$`, m1["a"])
	assert.Equal(t, m1, m2, "stable per key")
	assert.Equal(t, m1["a"], m1["b"], "equal values, equal digests")
	assert.NotEqual(t, m1["a"], m1["c"])
	assert.NotEqual(t, m1["a"], m3["a"], "different per key")

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(`"secret"`))
	assert.Equal(t, "redacted:hmac-sha256:"+hex.EncodeToString(mac.Sum(nil)[:16]), m1["a"])

	// Equal values in different spellings digest alike (canonical JSON).
	x, _ := audit.NewRedactor(key).Redact(decodeJSON(t, `{"a":{"y":1.0,"x":"é"}}`), []string{"/a"})
	y, _ := audit.NewRedactor(key).Redact(decodeJSON(t, `{"a":{"x":"\u00e9","y":1}}`), []string{"/a"})
	assert.Equal(t, x, y)

	// The key is copied.
	k := []byte("mutable")
	red := audit.NewRedactor(k)
	before, _ := red.Redact(args, paths)
	k[0] = 'X'
	after, _ := red.Redact(args, paths)
	assert.Equal(t, before, after)
}

func TestRedactorProcessKey(t *testing.T) {
	args := map[string]any{"a": "secret"}
	var zero audit.Redactor
	var nilRed *audit.Redactor
	a, _ := audit.NewRedactor(nil).Redact(args, []string{"/a"})
	b, _ := audit.NewRedactor([]byte{}).Redact(args, []string{"/a"})
	c, _ := zero.Redact(args, []string{"/a"})
	d, _ := nilRed.Redact(args, []string{"/a"})
	e, _ := audit.NewRedactor([]byte("k")).Redact(args, []string{"/a"})
	assert.Equal(t, a, b)
	assert.Equal(t, a, c)
	assert.Equal(t, a, d)
	assert.NotEqual(t, a, e)
	assert.Regexp(t, `^redacted:hmac-sha256:`, a.(map[string]any)["a"])
}

func TestRedactConcurrent(t *testing.T) {
	red := audit.NewRedactor([]byte("k"))
	args := decodeJSON(t, `{"h":[{"v":"1"},{"v":"2"}],"p":"x"}`)
	want, wantPtrs := red.Redact(args, []string{"/h/*/v", "/p"})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				got, ptrs := red.Redact(args, []string{"/h/*/v", "/p"})
				assert.Equal(t, want, got)
				assert.Equal(t, wantPtrs, ptrs)
			}
		})
	}
	wg.Wait()
}

// TestRedactIntoRecord is the guard's use: paths from the tool's schema
// once, redaction per call, the redacted arguments in the log.
func TestRedactIntoRecord(t *testing.T) {
	schema := schemaOf(t, `{"type":"object","properties":{"url":{"type":"string"},"token":{"type":"string","writeOnly":true},
		"headers":{"type":"array","items":{"$ref":"#/$defs/header"}}},
		"$defs":{"header":{"properties":{"name":{"type":"string"},"value":{"x-sensitive":true}}}}}`)
	paths := audit.SensitivePaths(schema)
	require.Equal(t, []string{"/headers/*/value", "/token"}, paths)

	raw := `{"url":"https://x","token":"t0k3n","headers":[{"name":"Authorization","value":"Bearer abc"}]}`
	args := decodeJSON(t, raw)
	full, err := canonjson.Marshal(args)
	require.NoError(t, err)
	red, pointers := audit.NewRedactor([]byte("k")).Redact(args, paths)
	redacted, err := canonjson.Marshal(red)
	require.NoError(t, err)
	sum := sha256.Sum256(full)

	var buf bytes.Buffer
	l := audit.NewLog(&buf)
	r := decision("c1", "allow")
	r.Args, r.ArgsSHA256, r.Redacted = redacted, hex.EncodeToString(sum[:]), pointers
	require.NoError(t, l.Write(context.Background(), r))
	checkLog(t, buf.Bytes())
	assert.NotContains(t, buf.String(), "t0k3n")
	assert.NotContains(t, buf.String(), "Bearer abc")
	assert.Contains(t, buf.String(), `"redacted":["/headers/0/value","/token"]`)
}
