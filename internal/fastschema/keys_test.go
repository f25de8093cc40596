package fastschema

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	tree := `{"$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},
		"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}},"$ref":"#/$defs/node"}`
	tests := []struct {
		name, schema, instance string
		ptr, prop              string // "" when nothing is found
	}{
		{"open top level", `{"type":"object","properties":{"path":{"type":"string"}}}`, `{"PATH":"/etc/passwd"}`, "/PATH", "path"},
		{"long s", `{"properties":{"secret":{}}}`, `{"ſecret":"x"}`, "/ſecret", "secret"},
		{"kelvin", `{"properties":{"kind":{}}}`, `{"\u212aIND":"x"}`, "/\u212aIND", "kind"},
		{"declared exactly", `{"properties":{"path":{}}}`, `{"path":"/w/a","other":1}`, "", ""},
		{"nested", `{"properties":{"opts":{"type":"object","properties":{"secret":{}}}}}`, `{"opts":{"Secret":1}}`, "/opts/Secret", "secret"},
		{"in array", `{"properties":{"files":{"type":"array","items":{"properties":{"path":{}}}}}}`,
			`{"files":[{"path":"a"},{"Path":"b"}]}`, "/files/1/Path", "path"},
		{"tuple", `{"properties":{"p":{"prefixItems":[{},{"properties":{"a":{}}}]}}}`, `{"p":[{"a":1},{"A":1}]}`, "/p/1/A", "a"},
		{"free-form map elsewhere", `{"properties":{"path":{},"env":{"type":"object","additionalProperties":{"type":"string"}}}}`,
			`{"path":"/w","env":{"PATH":"/usr/bin"}}`, "", ""},
		{"name of another level", `{"properties":{"a":{"properties":{"path":{}}}}}`, `{"PATH":1,"a":{"path":1}}`, "", ""},
		{"ref", `{"$defs":{"f":{"properties":{"path":{}}}},"properties":{"file":{"$ref":"#/$defs/f"}}}`,
			`{"file":{"PATH":1}}`, "/file/PATH", "path"},
		{"anchor", `{"$defs":{"f":{"$anchor":"file","properties":{"path":{}}}},"properties":{"file":{"$ref":"#file"}}}`,
			`{"file":{"PATH":1}}`, "/file/PATH", "path"},
		{"recursive", tree, `{"name":"a","children":[{"name":"b","children":[{"NAME":"c"}]}]}`, "/children/0/children/0/NAME", "name"},
		{"allOf", `{"allOf":[{"properties":{"a":{}}},{"properties":{"b":{}}}]}`, `{"a":1,"B":2}`, "/B", "b"},
		{"anyOf closed branch", `{"anyOf":[{"properties":{"a":{}},"additionalProperties":false},{"properties":{"b":{}}}]}`, `{"A":1}`, "/A", "a"},
		{"if then", `{"if":{"properties":{"k":{"const":1}}},"then":{"properties":{"x":{}}}}`, `{"X":1}`, "/X", "x"},
		{"patternProperties", `{"patternProperties":{"^x":{"properties":{"id":{}}}}}`, `{"xa":{"ID":1}}`, "/xa/ID", "id"},
		{"additionalProperties", `{"additionalProperties":{"properties":{"id":{}}}}`, `{"any":{"Id":1}}`, "/any/Id", "id"},
		{"closed outside, open inside", `{"additionalProperties":false,"properties":{"o":{"properties":{"k":{}}}}}`,
			`{"o":{"K":1}}`, "/o/K", "k"},
		{"unresolvable reference: every name everywhere", `{"properties":{"path":{},"x":{"$ref":"other.json"},"env":{"additionalProperties":{}}}}`,
			`{"env":{"PATH":1}}`, "/env/PATH", "path"},
		{"reference inside a nested $id", `{"$defs":{"f":{"properties":{"x":{}}}},"properties":{"file":{"$id":"https://schemas.test/inner",
			"$defs":{"f":{"properties":{"path":{}}}},"$ref":"#/$defs/f"}}}`, `{"file":{"PATH":1}}`, "/file/PATH", "path"},
		{"anchor defined twice", `{"$defs":{"a":{"$id":"https://schemas.test/a","$anchor":"f","properties":{"x":{}}},
			"b":{"$anchor":"f","properties":{"path":{}}}},"properties":{"file":{"$ref":"#f"}}}`, `{"file":{"PATH":1}}`, "/file/PATH", "path"},
		{"pointer escaping", `{"properties":{"a/b":{"properties":{"c~d":{}}}}}`, `{"a/b":{"C~D":1}}`, "/a~1b/C~0D", "c~d"},
		{"not an object", `{"properties":{"a":{}}}`, `[{"A":1}]`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := CompileKeys(parseDoc(t, tc.schema))
			require.NotNil(t, k)
			c := k.Check(decodeInstance(t, tc.instance))
			if tc.ptr == "" {
				require.Nil(t, c)
				return
			}
			require.NotNil(t, c)
			require.Equal(t, tc.ptr, c.Pointer)
			require.Equal(t, tc.prop, c.Property)
			require.Equal(t, tc.ptr[strings.LastIndexByte(tc.ptr, '/')+1:], strings.NewReplacer("~", "~0", "/", "~1").Replace(c.Key))
		})
	}
}

func TestKeysNothingToCheck(t *testing.T) {
	for _, s := range []string{
		`{"type":"object"}`,
		`{"type":"object","properties":{"path":{"type":"string"}},"additionalProperties":false}`,
		`{"properties":{"o":{"properties":{"k":{}},"additionalProperties":false}},"additionalProperties":false}`,
		`true`,
	} {
		require.Nil(t, CompileKeys(parseDoc(t, s)), s)
	}
	var k *Keys
	require.Nil(t, k.Check(map[string]any{"A": 1}))
}

// TestKeysManyLocations: a schema with more locations than CompileKeys
// builds is checked with every name everywhere.
func TestKeysManyLocations(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"properties":{"free":{"additionalProperties":{}},`)
	for i := range maxKeyLocations + 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"p` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `_` + strings.Repeat("y", i/26) + `":{"properties":{"q":{}}}`)
	}
	b.WriteString(`}}`)
	k := CompileKeys(parseDoc(t, b.String()))
	require.NotNil(t, k)
	c := k.Check(decodeInstance(t, `{"free":{"Q":1}}`))
	require.NotNil(t, c)
	require.Equal(t, "/free/Q", c.Pointer)
}

func TestKeysCheckAllocatesNothing(t *testing.T) {
	k := CompileKeys(parseDoc(t, `{"properties":{"path":{},"opts":{"properties":{"mode":{}}},"files":{"items":{"properties":{"name":{}}}}}}`))
	inst := decodeInstance(t, `{"path":"/w/a","opts":{"mode":1,"extra":2},"files":[{"name":"a"},{"other":"b"}]}`)
	require.Nil(t, k.Check(inst))
	require.Zero(t, testing.AllocsPerRun(100, func() { k.Check(inst) }))
}

// TestKeysReading: names something else reads count as declared where
// they are read, whatever the schema declares there; where the schema
// refuses undeclared members itself, nothing more is checked.
func TestKeysReading(t *testing.T) {
	tests := []struct {
		name, schema, instance string
		exact                  [][]string
		anywhere               []string
		ptr                    string // "" when nothing is found
	}{
		{"free-form top", `{"type":"object"}`, `{"PATH":"x"}`, [][]string{{"path"}}, nil, "/PATH"},
		{"free-form nested", `{"type":"object","properties":{"opts":{"type":"object"}}}`, `{"opts":{"Path":"x"}}`, [][]string{{"opts", "path"}}, nil, "/opts/Path"},
		{"parent in other case", `{}`, `{"OPTS":{"path":"x"}}`, [][]string{{"opts", "path"}}, nil, "/OPTS"},
		{"exact key", `{}`, `{"path":"x","Other":1}`, [][]string{{"path"}}, nil, ""},
		{"anywhere, deep", `{}`, `{"a":[{"b":{"PATH":"x"}}]}`, nil, []string{"path"}, "/a/0/b/PATH"},
		{"anywhere, exact", `{}`, `{"a":[{"path":"x"}]}`, nil, []string{"path"}, ""},
		{"closed schema", `{"type":"object","properties":{"p":{}},"additionalProperties":false}`, `{"PATH":"x"}`, [][]string{{"path"}}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := CompileKeysReading(parseDoc(t, tc.schema), tc.exact, tc.anywhere)
			c := k.Check(decodeInstance(t, tc.instance))
			if tc.ptr == "" {
				require.Nil(t, c)
				return
			}
			require.NotNil(t, c)
			require.Equal(t, tc.ptr, c.Pointer)
		})
	}
	closed := `{"type":"object","properties":{"path":{}},"additionalProperties":false}`
	require.Nil(t, CompileKeysReading(parseDoc(t, closed), [][]string{{"path"}, {"content"}}, nil),
		"a closed schema needs no key check for what the policy reads")
}
