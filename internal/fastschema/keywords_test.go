package fastschema

import (
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keywordCases are the supported keywords with instances each must accept
// and reject. Every expectation is also checked against jsonschema/v6, so
// the table is a statement of its semantics too.
var keywordCases = []struct {
	name    string
	schema  string
	valid   []string
	invalid []string
}{
	{"true", `true`, []string{`null`, `1`, `"x"`, `{}`, `[]`}, nil},
	{"false", `false`, nil, []string{`null`, `1`, `"x"`, `{}`, `[]`}},
	{"empty", `{}`, []string{`null`, `true`, `1.5`, `"x"`, `{"a":[]}`, `[1]`}, nil},
	{"type null", `{"type":"null"}`, []string{`null`}, []string{`false`, `0`, `""`, `[]`, `{}`}},
	{"type boolean", `{"type":"boolean"}`, []string{`true`, `false`}, []string{`null`, `0`, `"true"`}},
	{"type string", `{"type":"string"}`, []string{`""`, `"x"`}, []string{`null`, `1`, `[]`}},
	{"type number", `{"type":"number"}`, []string{`0`, `-1.5`, `1e400`, `12345678901234567890123`}, []string{`"1"`, `null`, `true`}},
	{
		"type integer", `{"type":"integer"}`,
		[]string{`0`, `-0`, `1`, `1.0`, `1e2`, `1E2`, `1.5e1`, `1.23e2`, `-7.000`, `12345678901234567890123`, `1.2345678901234567890123e22`, `1e400`, `0.0e-5`},
		[]string{`1.5`, `1e-2`, `1.234e2`, `12345678901234567890.5`, `"1"`, `true`},
	},
	{"type array", `{"type":"array"}`, []string{`[]`, `[1,"x"]`}, []string{`{}`, `"[]"`}},
	{"type object", `{"type":"object"}`, []string{`{}`, `{"a":1}`}, []string{`[]`, `null`}},
	{"type list", `{"type":["string","null"]}`, []string{`"x"`, `null`}, []string{`1`, `false`}},
	{"type integer or string", `{"type":["integer","string"]}`, []string{`1`, `2.0`, `"x"`}, []string{`2.5`, `null`}},
	{"type integer and number", `{"type":["integer","number"]}`, []string{`1`, `2.5`}, []string{`"1"`}},
	{
		"properties", `{"properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`,
		[]string{`{}`, `{"a":"x"}`, `{"a":"x","b":2,"c":null}`, `[]`, `"not an object"`},
		[]string{`{"a":1}`, `{"b":"x"}`, `{"a":"x","b":1.5}`},
	},
	{
		"required", `{"required":["a","b"]}`,
		[]string{`{"a":null,"b":0}`, `{"a":1,"b":2,"c":3}`, `[]`, `1`},
		[]string{`{}`, `{"a":1}`, `{"b":1,"c":1}`},
	},
	{
		"required with properties", `{"properties":{"a":{"type":"string"},"b":true,"c":true,"d":true,"e":true,"f":true},"required":["a","z"]}`,
		[]string{`{"a":"x","z":1}`, `{"a":"","z":null,"b":1}`},
		[]string{`{"a":"x"}`, `{"z":1}`, `{"a":1,"z":1}`, `{}`},
	},
	{
		"property names that look like keywords", `{"properties":{"$ref":{"type":"string"},"format":{"type":"integer"},"x-y":{"const":1},"allOf":false},"required":["$ref"]}`,
		[]string{`{"$ref":"#","format":1,"x-y":1.0}`},
		[]string{`{}`, `{"$ref":1}`, `{"$ref":"#","format":"1"}`, `{"$ref":"#","x-y":2}`, `{"$ref":"#","allOf":[]}`},
	},
	{
		"additionalProperties false", `{"properties":{"a":true},"additionalProperties":false}`,
		[]string{`{}`, `{"a":[1]}`},
		[]string{`{"b":1}`, `{"a":1,"b":1}`},
	},
	{
		"additionalProperties schema", `{"properties":{"a":true},"additionalProperties":{"type":"integer"}}`,
		[]string{`{"a":"x","b":1,"c":2.0}`, `{}`},
		[]string{`{"b":"x"}`, `{"a":1,"b":1.5}`},
	},
	{
		"additionalProperties true", `{"properties":{"a":{"type":"string"}},"additionalProperties":true}`,
		[]string{`{"a":"x","b":1}`},
		[]string{`{"a":1,"b":1}`},
	},
	{
		"items", `{"items":{"type":"string","maxLength":1}}`,
		[]string{`[]`, `["a","b"]`, `{}`},
		[]string{`[1]`, `["a","bc"]`},
	},
	{"items false", `{"items":false}`, []string{`[]`, `"x"`}, []string{`[1]`, `[null]`}},
	{
		"enum", `{"enum":["a",1,null,{"k":[1,2]},[true]]}`,
		[]string{`"a"`, `1`, `1.0`, `10e-1`, `null`, `{"k":[1,2.0]}`, `[true]`},
		[]string{`"b"`, `2`, `false`, `{"k":[2,1]}`, `{"k":[1,2],"l":1}`, `[true,true]`, `"1"`, `[]`},
	},
	{
		"long string enum", `{"enum":["a","b","c","d","e","f","g","h","i",1]}`,
		[]string{`"a"`, `"i"`, `1`},
		[]string{`"j"`, `"A"`, `2`},
	},
	{"empty enum", `{"enum":[]}`, nil, []string{`null`, `"a"`}},
	{
		"const number", `{"const":100}`,
		[]string{`100`, `100.0`, `1e2`, `1.00E+2`, `10000e-2`},
		[]string{`100.0000000000000000001`, `99`, `"100"`},
	},
	{"const zero", `{"const":0}`, []string{`0`, `-0`, `0.0`, `0e10`}, []string{`1e-400`, `false`, `null`}},
	{
		"const object", `{"const":{"a":1,"b":[true,null,"x"]}}`,
		[]string{`{"b":[true,null,"x"],"a":1.0}`},
		[]string{`{"a":1}`, `{"a":1,"b":[true,null]}`, `{"a":1,"b":[null,true,"x"]}`, `{"a":1,"b":[true,null,"x"],"c":0}`},
	},
	{"const null", `{"const":null}`, []string{`null`}, []string{`0`, `false`, `""`, `{}`}},
	{"const huge", `{"const":12345678901234567890123}`, []string{`12345678901234567890123`, `1.2345678901234567890123e22`}, []string{`12345678901234567890124`, `1.2345678901234567e22`}},
	{
		"minLength", `{"minLength":2}`,
		[]string{`"ab"`, `"é😀"`, `"日本"`, `1`},
		[]string{`""`, `"a"`, `"😀"`, `"é"`},
	},
	{
		"maxLength", `{"maxLength":2}`,
		[]string{`""`, `"😀😀"`, `"日本"`, `"ab"`, `123`},
		[]string{`"abc"`, `"😀😀😀"`, `"日本語"`, `"a😀b"`},
	},
	{"maxLength zero", `{"maxLength":0}`, []string{`""`}, []string{`"a"`, `"\u0000"`}},
	{"minLength as 1.0", `{"minLength":1.0}`, []string{`"a"`}, []string{`""`}},
	{
		"pattern unanchored", `{"pattern":"b+"}`,
		[]string{`"abbc"`, `"b"`, `1`},
		[]string{`""`, `"ac"`, `"B"`},
	},
	{
		"pattern anchored", `{"pattern":"^[a-z]+$"}`,
		[]string{`"abc"`},
		[]string{`"abc\n"`, `"Abc"`, `""`},
	},
	{"pattern unicode class", `{"pattern":"^\\p{L}{2}$"}`, []string{`"日本"`, `"éa"`}, []string{`"日"`, `"a1"`}},
	{
		"minimum", `{"minimum":0.1}`,
		[]string{`0.1`, `0.10000000000000000001`, `1`, `1e400`, `"x"`},
		[]string{`0.09999999999999999999`, `0`, `-1e400`, `1e-400`},
	},
	{
		"maximum exact decimal", `{"maximum":0.3}`,
		[]string{`0.3`, `0.29999999999999999999`, `-5`},
		[]string{`0.30000000000000001`, `0.31`, `1`},
	},
	{
		"exclusiveMaximum beyond float64 precision", `{"exclusiveMaximum":9007199254740993}`,
		[]string{`9007199254740992`, `9007199254740992.999`},
		[]string{`9007199254740993`, `9007199254740993.0`, `9.007199254740993e15`, `9007199254740994`},
	},
	{
		// A float64 reader sees 100 in 100.0000000000000001; the bound
		// sees the exact decimal, as a tool using math/big does.
		"maximum above float64 precision", `{"maximum":100}`,
		[]string{`100`, `100.0`, `1e2`, `99.99999999999999999`},
		[]string{`100.0000000000000001`, `100.00000000000000000000001`, `1.000000000000000001e2`},
	},
	{
		"exclusiveMinimum", `{"exclusiveMinimum":-1e2}`,
		[]string{`-99.99999`, `0`, `1e400`},
		[]string{`-100`, `-100.0`, `-1e2`, `-101`},
	},
	{
		"integer bounds", `{"type":"integer","minimum":-128,"maximum":127}`,
		[]string{`-128`, `127`, `0`, `-0`, `1.27e2`},
		[]string{`-129`, `128`, `1.5`, `12345678901234567890123`},
	},
	{
		"huge bounds", `{"minimum":-12345678901234567890123,"maximum":12345678901234567890123}`,
		[]string{`12345678901234567890123`, `-12345678901234567890123`, `9223372036854775808`, `0`},
		[]string{`12345678901234567890124`, `-12345678901234567890124`, `1e23`},
	},
	{"minItems", `{"minItems":2}`, []string{`[1,2]`, `[1,2,3]`, `"ab"`}, []string{`[]`, `[1]`}},
	{"maxItems", `{"maxItems":1}`, []string{`[]`, `[[1,2]]`, `{"a":1,"b":2}`}, []string{`[1,2]`}},
	{"minProperties", `{"minProperties":1}`, []string{`{"a":null}`, `[]`}, []string{`{}`}},
	{"maxProperties", `{"maxProperties":1}`, []string{`{}`, `{"a":1}`, `[1,2]`}, []string{`{"a":1,"b":2}`}},
	{
		"uniqueItems", `{"uniqueItems":true}`,
		[]string{`[]`, `[1]`, `[1,2]`, `[1,"1"]`, `[[1],[2]]`, `[{"a":1},{"a":2}]`, `[0,false]`, `[null,0,"",false,[],{}]`},
		[]string{`[1,1]`, `[1,1.0]`, `[0,-0]`, `[1e2,100]`, `["a","a"]`, `[[1],[1.0]]`, `[{"a":1,"b":2},{"b":2,"a":1}]`, `[null,null]`, `[1,2,3,1]`},
	},
	{"uniqueItems false", `{"uniqueItems":false}`, []string{`[1,1]`}, nil},
	{
		"annotations", `{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"https://example.com/s.json","title":"t","description":"d","default":{"x":1},"examples":[1],"$comment":"c","deprecated":true,"x-sensitive":{"anything":["goes"]},"properties":{"p":{"readOnly":true,"writeOnly":false,"type":"string","x-note":1}},"$defs":{"d":{"type":"string"}},"definitions":{"e":false}}`,
		[]string{`{}`, `{"p":"x"}`, `[]`},
		[]string{`{"p":1}`},
	},
}

func TestKeywords(t *testing.T) {
	for _, tc := range keywordCases {
		t.Run(tc.name, func(t *testing.T) {
			doc := parseDoc(t, tc.schema)
			fast, ok := Compile(doc)
			require.True(t, ok, "Compile refused %s", tc.schema)
			full, err := compileFull(doc)
			require.NoError(t, err)
			for _, src := range tc.valid {
				v, err := decodeNumbers(src)
				require.NoError(t, err)
				assert.True(t, fast.Valid(v), "fastschema rejects %s", src)
				assert.NoError(t, full.Validate(v), "jsonschema/v6 disagrees that %s is valid", src)
			}
			for _, src := range tc.invalid {
				v, err := decodeNumbers(src)
				require.NoError(t, err)
				assert.False(t, fast.Valid(v), "fastschema accepts %s", src)
				assert.Error(t, full.Validate(v), "jsonschema/v6 disagrees that %s is invalid", src)
			}
		})
	}
}

// decodeNumbers decodes JSON with json.Number, also numbers that safejson
// refuses because they overflow float64.
func decodeNumbers(src string) (any, error) {
	d := json.NewDecoder(strings.NewReader(src))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// TestGoValues checks values that are not what a JSON decoder produces:
// Valid must never accept what jsonschema/v6 rejects, and reads Go numbers
// as it does.
func TestGoValues(t *testing.T) {
	schema := `{"type":"object","properties":{"s":{"type":"string","maxLength":2},"n":{"type":"integer","maximum":255},"x":{},"f":{"type":"number","exclusiveMaximum":0.3},"e":{"enum":[1,0.1]},"t":true},"additionalProperties":false}`
	doc := parseDoc(t, schema)
	fast, ok := Compile(doc)
	require.True(t, ok)
	full, err := compileFull(doc)
	require.NoError(t, err)

	cases := []struct {
		name  string
		v     any
		valid bool
	}{
		{"int", map[string]any{"n": 255}, true},
		{"int too big", map[string]any{"n": 256}, false},
		{"int8", map[string]any{"n": int8(-5)}, true},
		{"int16", map[string]any{"n": int16(255)}, true},
		{"int32", map[string]any{"n": int32(256)}, false},
		{"int64", map[string]any{"n": int64(math.MinInt64)}, true},
		{"uint", map[string]any{"n": uint(7)}, true},
		{"uint8", map[string]any{"n": uint8(255)}, true},
		{"uint16", map[string]any{"n": uint16(256)}, false},
		{"uint32", map[string]any{"n": uint32(1)}, true},
		{"uint64 max", map[string]any{"n": uint64(math.MaxUint64)}, false},
		{"float64 integral", map[string]any{"n": 255.0}, true},
		{"float64 fraction", map[string]any{"n": 2.5}, false},
		{"float64 1e21", map[string]any{"x": 1e21, "n": 1e2}, true},
		{"float32", map[string]any{"n": float32(3)}, true},
		{"float64 0.1 below 0.3", map[string]any{"f": 0.1}, true},
		{"float64 0.3 not below 0.3", map[string]any{"f": 0.3}, false},
		{"float32 0.3", map[string]any{"f": float32(0.3)}, false},
		{"float64 0.1 in enum", map[string]any{"e": 0.1}, true},
		{"int in enum", map[string]any{"e": 1}, true},
		{"NaN", map[string]any{"x": math.NaN()}, false},
		{"NaN in number", map[string]any{"f": math.NaN()}, false},
		{"Inf", map[string]any{"x": math.Inf(1)}, false},
		{"float32 Inf", map[string]any{"x": float32(math.Inf(-1))}, false},
		{"[]string under {}", map[string]any{"x": []string{"a"}}, false},
		{"map[string]string under {}", map[string]any{"x": map[string]string{}}, false},
		{"struct under true", map[string]any{"t": struct{}{}}, true},
		{"[]string as a string", map[string]any{"s": []string{"a"}}, false},
		{"json.RawMessage", map[string]any{"x": json.RawMessage(`1`)}, false},
		{"invalid UTF-8 counts bytes as code points", map[string]any{"s": "\xff\xfe"}, true},
		{"invalid UTF-8 too long", map[string]any{"s": "\xff\xfe\xfd"}, false},
		{"json.Number not a JSON literal", map[string]any{"n": json.Number("0x10")}, false},
		{"json.Number with a plus", map[string]any{"n": json.Number("+1")}, false},
		{"root not JSON", map[string]string{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fast.Valid(tc.v)
			assert.Equal(t, tc.valid, got)
			if got {
				assert.NoError(t, full.Validate(tc.v), "jsonschema/v6 rejects an instance fastschema accepts")
			}
		})
	}
}

func TestUniqueItemsLongArrays(t *testing.T) {
	fast, ok := Compile(parseDoc(t, `{"uniqueItems":true}`))
	require.True(t, ok)
	arr := make([]any, maxUniqueItems)
	for i := range arr {
		arr[i] = json.Number(strings.Repeat("1", i+1))
	}
	assert.True(t, fast.Valid(arr))
	arr[len(arr)-1] = arr[0]
	assert.False(t, fast.Valid(arr))

	// Longer arrays are left to the full validator.
	long := make([]any, maxUniqueItems+1)
	for i := range long {
		long[i] = json.Number(strings.Repeat("1", i+1))
	}
	assert.False(t, fast.Valid(long))

	// Items that are not plain JSON are left to the full validator too.
	assert.False(t, fast.Valid([]any{"a", []string{"b"}}))
	assert.False(t, fast.Valid([]any{"a", json.Number("1e200000")}))
}

func TestNumbersOutOfRange(t *testing.T) {
	// Exponents beyond ±100000 are not reasoned about where the schema
	// looks at the number; elsewhere they pass.
	cases := []struct {
		schema string
		valid  bool
	}{
		{`{"type":"number"}`, true},
		{`{"type":"integer"}`, false},
		{`{"minimum":0}`, false},
		{`{"enum":[1]}`, false},
		{`{"const":1}`, false},
	}
	for _, tc := range cases {
		fast, ok := Compile(parseDoc(t, tc.schema))
		require.True(t, ok)
		assert.Equal(t, tc.valid, fast.Valid(json.Number("1e100001")), tc.schema)
	}
}

func TestZeroValidator(t *testing.T) {
	var zero Validator
	assert.False(t, zero.Valid(map[string]any{}))
	var nilV *Validator
	assert.False(t, nilV.Valid(nil))
}

func TestConcurrentValid(t *testing.T) {
	fast, ok := Compile(parseDoc(t, typicalSchema))
	require.True(t, ok)
	good := decodeInstance(t, typicalInstance)
	bad := decodeInstance(t, `{"path":"","content":"x"}`)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if !fast.Valid(good) || fast.Valid(bad) {
					errs <- "wrong answer under concurrency"
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestCyclicValues feeds values no decoder produces: an array that
// contains itself. Valid must return (false) rather than recurse forever.
func TestCyclicValues(t *testing.T) {
	cyclic := make([]any, 2)
	cyclic[0] = "x"
	cyclic[1] = cyclic
	for _, schema := range []string{`{"uniqueItems":true}`, `{"const":["x",["x",[]]]}`, `{"enum":[1,["x",["x",[]]]]}`} {
		fast, ok := Compile(parseDoc(t, schema))
		require.True(t, ok)
		assert.False(t, fast.Valid(cyclic), schema)
	}
}
