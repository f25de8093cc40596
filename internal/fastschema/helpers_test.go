package fastschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gjs "github.com/google/jsonschema-go/jsonschema"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/safejson"
)

// parseDoc decodes a schema document the way callers do, with json.Number.
func parseDoc(tb testing.TB, src string) any {
	tb.Helper()
	doc, err := sjs.UnmarshalJSON(strings.NewReader(src))
	require.NoError(tb, err, "schema %s", src)
	return doc
}

// decodeInstance decodes an instance with safejson.
func decodeInstance(tb testing.TB, src string) any {
	tb.Helper()
	v, err := safejson.Decode([]byte(src), safejson.Limits{})
	require.NoError(tb, err, "instance %s", src)
	return v
}

// compileFull compiles doc with jsonschema/v6 as the guard does: draft
// 2020-12 by default, format assertions on, nothing loaded from outside.
func compileFull(doc any) (*sjs.Schema, error) {
	c := sjs.NewCompiler()
	c.UseLoader(noLoader{})
	c.AssertFormat()
	const loc = "mem:///tools/test.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("fastschema test: no loading of %q", u)
}

// corpusEntry is one schema of the differential corpus with seed instances.
type corpusEntry struct {
	name      string
	schema    []byte
	instances [][]byte
	fast      *Validator
	full      *sjs.Schema
}

// Go types whose schemas github.com/google/jsonschema-go derives.
type (
	genWriteArgs struct {
		Path    string `json:"path" jsonschema:"file to write"`
		Content string `json:"content"`
		Mode    *int   `json:"mode,omitempty"`
	}
	genSearchOptions struct {
		CaseSensitive bool      `json:"case_sensitive"`
		MaxDepth      uint8     `json:"max_depth"`
		Weights       []float64 `json:"weights,omitempty"`
	}
	genSearchArgs struct {
		Query   string            `json:"query"`
		Limit   int               `json:"limit,omitempty"`
		Filters map[string]string `json:"filters,omitempty"`
		Tags    []string          `json:"tags"`
		Options *genSearchOptions `json:"options,omitempty"`
	}
	genAddress struct {
		Street string `json:"street"`
		City   string `json:"city"`
		Zip    string `json:"zip,omitempty"`
	}
	genLineItem struct {
		SKU   string           `json:"sku"`
		Qty   uint16           `json:"qty"`
		Price float64          `json:"price"`
		Attrs map[string]int32 `json:"attrs,omitempty"`
	}
	genOrder struct {
		ID    int64         `json:"id"`
		Items []genLineItem `json:"items"`
		Ship  genAddress    `json:"ship"`
		Bill  *genAddress   `json:"bill,omitempty"`
		Notes *string       `json:"notes"`
		Level int8          `json:"level"`
		Ratio float32       `json:"ratio,omitempty"`
		When  time.Time     `json:"when"`
		Extra any           `json:"extra,omitempty"`
		Fixed [3]int        `json:"fixed"`
		Small uint32        `json:"small,omitempty"`
		Delta int16         `json:"delta,omitempty"`
	}
)

func generated[T any](tb testing.TB, name string, instances ...string) corpusEntry {
	tb.Helper()
	s, err := gjs.For[T](nil)
	require.NoError(tb, err)
	b, err := json.Marshal(s)
	require.NoError(tb, err)
	e := corpusEntry{name: name, schema: b}
	for _, in := range instances {
		e.instances = append(e.instances, []byte(in))
	}
	return e
}

var (
	corpusOnce sync.Once
	corpusList []corpusEntry
	corpusErr  error
)

// corpus returns the differential corpus, in a fixed order: the files of
// testdata/corpus by name, then the schemas derived from Go types.
func corpus(tb testing.TB) []corpusEntry {
	tb.Helper()
	corpusOnce.Do(func() { corpusList, corpusErr = loadCorpus(tb) })
	require.NoError(tb, corpusErr)
	return corpusList
}

func loadCorpus(tb testing.TB) ([]corpusEntry, error) {
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []corpusEntry
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var file struct {
			Schema    json.RawMessage   `json:"schema"`
			Instances []json.RawMessage `json:"instances"`
		}
		if err := json.Unmarshal(data, &file); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		e := corpusEntry{name: strings.TrimSuffix(filepath.Base(f), ".json"), schema: file.Schema}
		for _, in := range file.Instances {
			e.instances = append(e.instances, []byte(in))
		}
		out = append(out, e)
	}
	out = append(out,
		generated[genWriteArgs](tb, "go-write-args",
			`{"path":"/w/a","content":"x"}`, `{"path":"/w/a","content":"x","mode":null}`,
			`{"path":"/w/a","content":"x","mode":420}`, `{"path":"/w/a"}`, `{"path":"/w/a","content":"x","mode":4.5}`),
		generated[genSearchArgs](tb, "go-search-args",
			`{"query":"q","tags":null}`, `{"query":"q","tags":["a"],"limit":10,"filters":{"lang":"go"}}`,
			`{"query":"q","tags":[],"options":{"case_sensitive":true,"max_depth":255,"weights":[0.5,1e2]}}`,
			`{"query":"q","tags":[],"options":{"case_sensitive":true,"max_depth":256}}`,
			`{"query":"q","tags":[],"options":null}`, `{"query":"q","tags":[1],"filters":{"a":1}}`),
		generated[genOrder](tb, "go-order",
			`{"id":1,"items":[{"sku":"A1","qty":65535,"price":9.99,"attrs":{"w":-2147483648}}],"ship":{"street":"Main 1","city":"X"},"notes":null,"level":-128,"when":"2025-01-01T00:00:00Z","fixed":[1,2,3]}`,
			`{"id":12345678901234567890123,"items":null,"ship":{"street":"s","city":"c","zip":"123"},"bill":{"street":"s","city":"c"},"notes":"n","level":127,"ratio":0.5,"when":"x","extra":{"any":[1]},"fixed":[1,2,3],"small":4294967295,"delta":-32768}`,
			`{"id":1,"items":[{"sku":"A1","qty":65536,"price":1}],"ship":{"street":"s","city":"c"},"notes":null,"level":128,"when":"x","fixed":[1,2]}`,
			`{"id":1.5,"items":[],"ship":{"street":"s"},"notes":null,"level":0,"when":"x","fixed":[1,2,3,4],"small":-1}`),
	)
	for i := range out {
		e := &out[i]
		doc, err := sjs.UnmarshalJSON(bytes.NewReader(e.schema))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		var ok bool
		if e.fast, ok = Compile(doc); !ok {
			return nil, fmt.Errorf("%s: fastschema refuses the schema %s", e.name, e.schema)
		}
		if e.full, err = compileFull(doc); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return out, nil
}

// mutator derives instances from a seed instance: every value in it
// replaced by interesting values, object members removed and added.
type mutator struct {
	replacements []any
	names        []string // property names used anywhere in the schema
}

// baseReplacements are raw JSON texts tried at every position.
var baseReplacements = []string{
	`null`, `true`, `false`, `0`, `-0`, `0.0`, `-0.0`, `1`, `-1`, `1.0`, `1e2`, `1E2`, `1.5e1`, `15e-1`,
	`1.5`, `0.5`, `2`, `3`, `5`, `100`, `101`, `1000`, `1e-7`, `9.99e-8`,
	`12345678901234567890123`, `12345678901234567890124`, `-12345678901234567890123`, `1.2345678901234567890123e22`,
	`127`, `128`, `-128`, `-129`, `255`, `256`, `65535`, `65536`, `-32768`, `-32769`,
	`2147483647`, `-2147483648`, `-2147483649`, `4294967295`, `4294967296`,
	`9223372036854775807`, `9223372036854775808`, `-9223372036854775808`, `-9223372036854775809`,
	`1e308`, `-1e308`, `5e-324`, `1e-400`,
	`""`, `"a"`, `"ab"`, `"abcde"`, `"abcdef"`, `"é"`, `"日本"`, `"日本語x"`, `"😀"`, `"😀😀"`, `"😀😀😀"`,
	`"a😀b"`, `"https://x"`, `"http:/x"`, `"GET"`, `"get"`, `"r"`, `"name"`, `"size"`, `"123"`, `"ab12"`,
	`"1"`, `"null"`, `"\u0000"`, `"a\nb"`,
	`[]`, `[1]`, `["x"]`, `["x","x"]`, `["x","y"]`, `[1,1.0]`, `[0,-0]`, `[[1,2]]`, `[[1,2,3]]`, `[null]`,
	`{}`, `{"k":[1,2]}`, `{"k":[1,2.0]}`, `{"a":1,"b":[true,null]}`, `{"a":1.0,"b":[true,null]}`, `[1,"x"]`, `[1.0,"x"]`,
	`{"a":null}`, `{"app":"x"}`,
}

func newMutator(tb testing.TB, schema []byte) *mutator {
	tb.Helper()
	m := &mutator{}
	doc := decodeInstance(tb, string(schema))
	seen := map[string]bool{}
	add := func(raw string) {
		if seen[raw] {
			return
		}
		seen[raw] = true
		m.replacements = append(m.replacements, decodeInstance(tb, raw))
	}
	for _, r := range baseReplacements {
		add(r)
	}
	names := map[string]bool{}
	walkSchema(doc, func(key string, val any) {
		switch key {
		case "properties":
			if props, ok := val.(map[string]any); ok {
				for name := range props {
					names[name] = true
				}
			}
		case "required":
			if arr, ok := val.([]any); ok {
				for _, r := range arr {
					if s, ok := r.(string); ok {
						names[s] = true
					}
				}
			}
		case "minLength", "maxLength":
			n, ok := toInt(val)
			if !ok || n > 300 {
				return
			}
			for _, l := range []int{n - 1, n, n + 1} {
				if l < 0 {
					continue
				}
				for _, r := range []string{"a", "é", "日", "😀"} {
					b, _ := json.Marshal(strings.Repeat(r, l))
					add(string(b))
				}
				if l > 0 {
					b, _ := json.Marshal("é" + strings.Repeat("a", l-1))
					add(string(b))
				}
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
			n, ok := val.(json.Number)
			if !ok {
				return
			}
			s := string(n)
			add(s)
			if !strings.ContainsAny(s, ".eE") {
				add(s + ".0")
				add(s + "e0")
				if strings.TrimPrefix(s, "-") != "0" {
					add(s + "0e-1")
				}
			}
			r, ok := new(big.Rat).SetString(s)
			if !ok {
				return
			}
			for _, d := range []string{"1", "-1", "1/1000000000", "-1/1000000000"} {
				dr, _ := new(big.Rat).SetString(d)
				v := new(big.Rat).Add(r, dr)
				if v.IsInt() {
					add(v.Num().String())
				} else {
					add(strings.TrimRight(v.FloatString(12), "0"))
				}
			}
		case "enum":
			if arr, ok := val.([]any); ok {
				for _, e := range arr {
					b, err := json.Marshal(e)
					if err == nil {
						add(string(b))
					}
				}
			}
		case "const":
			if b, err := json.Marshal(val); err == nil {
				add(string(b))
			}
		}
	})
	for name := range names {
		m.names = append(m.names, name)
	}
	slices.Sort(m.names)
	m.names = append(m.names, "zz_extra")
	return m
}

// walkSchema calls fn for every keyword of every object in doc.
func walkSchema(doc any, fn func(key string, val any)) {
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			fn(k, v)
			walkSchema(v, fn)
		}
	case []any:
		for _, v := range d {
			walkSchema(v, fn)
		}
	}
}

// mutations returns seed itself and its variants, each exactly once.
func (m *mutator) mutations(seed any) []any {
	var out []any
	m.mutate(seed, func(v any) { out = append(out, v) })
	return out
}

// mutate calls emit with seed and with every single-point variant of it.
func (m *mutator) mutate(v any, emit func(any)) {
	emit(v)
	for _, r := range m.replacements {
		emit(r)
	}
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			// Without k.
			c := cloneMap(v)
			delete(c, k)
			emit(c)
			// With k's value mutated.
			first := true
			m.mutate(v[k], func(x any) {
				if first { // v[k] itself
					first = false
					return
				}
				c := cloneMap(v)
				c[k] = x
				emit(c)
			})
		}
		for _, name := range m.names {
			if _, ok := v[name]; ok {
				continue
			}
			for _, r := range m.replacements {
				c := cloneMap(v)
				c[name] = r
				emit(c)
			}
		}
	case []any:
		for i := range v {
			c := slices.Clone(v)
			c = slices.Delete(c, i, i+1)
			emit(c)
			emit(append(slices.Clone(v), v[i]))
			first := true
			m.mutate(v[i], func(x any) {
				if first { // v[i] itself
					first = false
					return
				}
				c := slices.Clone(v)
				c[i] = x
				emit(c)
			})
		}
		for _, r := range m.replacements {
			emit(append(slices.Clone(v), r))
		}
	}
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}
