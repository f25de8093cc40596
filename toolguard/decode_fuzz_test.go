package toolguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// The Go types a handler decodes arguments into in FuzzHandlerSeesValidated.
type (
	fuzzFile struct {
		Path string `json:"path"`
		Mode int    `json:"mode,omitempty"`
	}
	fuzzOpts struct {
		Kind string `json:"kind"`
		Deep struct {
			Name string
		} `json:"deep"`
	}
	fuzzShape struct {
		Path   string            `json:"path"`
		Secret string            // no tag: the key is "Secret"
		Count  int               `json:"count,omitempty"`
		Ratio  float64           `json:"ratio,omitempty"`
		Opts   *fuzzOpts         `json:"opts,omitempty"`
		Files  []fuzzFile        `json:"files,omitempty"`
		Env    map[string]string `json:"env,omitempty"`
		Any    any               `json:"any,omitempty"`
	}
)

// openSchemas removes additionalProperties and required everywhere in a
// schema, as in the schemas mcp-go's tool builders write by hand.
func openSchemas(v any) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "additionalProperties")
		delete(x, "required")
		for _, sub := range x {
			openSchemas(sub)
		}
	case []any:
		for _, sub := range x {
			openSchemas(sub)
		}
	}
}

var allowAll = []byte("version: 1\nscopes:\n  all:\n    grants:\n      - tools: [\"*\"]\n")

// readsEveryField is a rule that never matches but reads, by name, every
// member fuzzShape's handler reads: with it, the guard knows those names
// even for a tool whose schema declares none.
const readsEveryField = `rules:
  - name: reads-every-field
    effect: deny
    tools: ["*"]
    when: >
      false && has(args.path) && has(args.Secret) && has(args.count) && has(args.ratio) &&
      has(args.opts.kind) && has(args.opts.deep.Name) && has(args.env) && has(args.any) &&
      args.files.exists(f, has(f.path) && has(f.mode))
`

// FuzzHandlerSeesValidated checks the promise that the handler sees
// exactly what was validated, against encoding/json itself: whenever the
// guard lets a call through, encoding/json.Unmarshal of the arguments into
// a Go struct (what Register's handlers, mcp-go's BindArguments and typed
// handlers do) gives exactly the values found at the exact keys the guard
// validated, with the schema derived from the struct (as Register does) and
// with the same schema opened up (no additionalProperties: false, nothing
// required), as hand-written MCP tool schemas are, with the shape
// written with $ref, allOf and anyOf, and with a free-form schema where only
// the policy names the members.
func FuzzHandlerSeesValidated(f *testing.F) {
	for _, s := range []string{
		`{"path":"/w/a","Secret":"s"}`,
		`{"path":"/w/a","PATH":"/etc/passwd"}`,
		`{"PATH":"/etc/passwd"}`,
		`{"path":"/w/a","secret":"s"}`,
		`{"path":"/w/a","\u017fecret":"s"}`,
		`{"opts":{"kind":"a","\u212aind":"b","deep":{"Name":"x","NAME":"y"}}}`,
		`{"files":[{"path":"a","mode":1},{"PATH":"b","Mode":2}]}`,
		`{"env":{"PATH":"/bin","Path":"/sbin"},"any":{"a":[1,{"b":2}]}}`,
		`{"count":1e2,"ratio":0.1}`,
		`{"ratio":100.0000000000000001}`,
		`{"path":"a","Path":"b","pAth":"c"}`,
	} {
		f.Add([]byte(s))
	}
	p, err := scope.Parse(allowAll)
	if err != nil {
		f.Fatal(err)
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	if err != nil {
		f.Fatal(err)
	}
	s, err := jsonschema.For[fuzzShape](nil)
	if err != nil {
		f.Fatal(err)
	}
	closed, err := json.Marshal(s)
	if err != nil {
		f.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(closed, &doc); err != nil {
		f.Fatal(err)
	}
	openSchemas(doc)
	open, err := json.Marshal(doc)
	if err != nil {
		f.Fatal(err)
	}
	var seen json.RawMessage
	h := func(_ context.Context, args json.RawMessage) (any, error) {
		seen = bytes.Clone(args)
		return nil, nil
	}
	// The same shape written with $defs, $ref and allOf.
	composed := []byte(`{"type":"object","$defs":{
		"file":{"type":"object","properties":{"path":{"type":"string"},"mode":{"type":"integer"}}},
		"deep":{"properties":{"Name":{"type":"string"}}}},
		"allOf":[{"properties":{"path":{"type":"string"},"Secret":{"type":"string"}}},
			{"properties":{"count":{"type":"integer"},"ratio":{"type":"number"}}}],
		"properties":{
			"opts":{"anyOf":[{"type":"null"},{"type":"object","properties":{"kind":{"type":"string"},"deep":{"$ref":"#/$defs/deep"}}}]},
			"files":{"type":"array","items":{"$ref":"#/$defs/file"}},
			"env":{"type":"object","additionalProperties":{"type":"string"}},
			"any":true}}`)
	for name, schema := range map[string][]byte{"closed": closed, "open": open, "composed": composed} {
		if err := g.Register(toolguard.Tool{Name: name, InputSchema: schema, Handler: h}); err != nil {
			f.Fatal(err)
		}
	}
	// A free-form schema declares nothing; the members the handler reads
	// are known to the guard only because the policy reads them by name.
	pf, err := scope.Parse(append(slices.Clone(allowAll), []byte(readsEveryField)...))
	if err != nil {
		f.Fatal(err)
	}
	gf, err := toolguard.New(pf, toolguard.WithSink(audit.Discard))
	if err != nil {
		f.Fatal(err)
	}
	if err := gf.Register(toolguard.Tool{Name: "free", Handler: h}); err != nil {
		f.Fatal(err)
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "fuzz", Scopes: []string{"all"}})
	f.Fuzz(func(t *testing.T, args []byte) {
		for _, tool := range []string{"closed", "open", "composed", "free"} {
			seen = nil
			g := g
			if tool == "free" {
				g = gf
			}
			if _, err := g.Call(ctx, tool, args); err != nil {
				if !errors.Is(err, toolguard.ErrDenied) {
					t.Fatalf("%s: %v", tool, err)
				}
				continue
			}
			// What the guard validated: the arguments with their exact keys.
			var validated map[string]any
			dec := json.NewDecoder(bytes.NewReader(seen))
			dec.UseNumber()
			if err := dec.Decode(&validated); err != nil {
				t.Fatalf("%s: the handler got %q, not an object: %v", tool, seen, err)
			}
			var got, want fuzzShape
			gotErr := json.Unmarshal(seen, &got)
			exact, err := json.Marshal(exactKeys(validated, reflect.TypeFor[fuzzShape]()))
			if err != nil {
				t.Fatal(err)
			}
			wantErr := json.Unmarshal(exact, &want)
			if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s accepted %s\nencoding/json reads  %+v (%v)\nthe exact keys give %+v (%v)", tool, args, got, gotErr, want, wantErr)
			}
		}
	})
}

// exactKeys keeps of decoded JSON v only the members whose key is exactly
// the JSON name of a field of t (recursively): what a decoder that matched
// keys exactly would read into a t.
func exactKeys(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := map[string]any{}
		for i := range t.NumField() {
			fl := t.Field(i)
			name, _, _ := strings.Cut(fl.Tag.Get("json"), ",")
			if name == "" {
				name = fl.Name
			}
			if val, ok := m[name]; ok {
				out[name] = exactKeys(val, fl.Type)
			}
		}
		return out
	case reflect.Slice:
		if arr, ok := v.([]any); ok {
			out := make([]any, len(arr))
			for i, e := range arr {
				out[i] = exactKeys(e, t.Elem())
			}
			return out
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			out := map[string]any{}
			for k, e := range m {
				out[k] = exactKeys(e, t.Elem())
			}
			return out
		}
	}
	return v
}

// FuzzKeyFoldingMatchesEncodingJSON compares the guard's key folding with
// encoding/json's own matching of keys to struct fields: for a field name
// and a key, the guard denies {key:...} against a schema declaring the
// field, and {field:...,key:...} against any schema, exactly when
// encoding/json would read the key into that field while it is spelt
// differently.
func FuzzKeyFoldingMatchesEncodingJSON(f *testing.F) {
	for _, s := range [][2]string{
		{"path", "PATH"}, {"path", "paths"}, {"secret", "\u017fecret"}, {"kind", "\u212aind"},
		{"ss", "\u00df"}, {"i", "\u0130"}, {"i", "\u0131"}, {"\u03c3", "\u03c2"}, {"\u03a3", "\u03c2"},
		{"x\u0345", "x\u03b9"}, {"a-b", "A_B"}, {"Path", "path"}, {"", "x"},
	} {
		f.Add(s[0], s[1])
	}
	p, err := scope.Parse(allowAll)
	if err != nil {
		f.Fatal(err)
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "fuzz", Scopes: []string{"all"}})
	f.Fuzz(func(t *testing.T, field, key string) {
		if !utf8.ValidString(field) || !utf8.ValidString(key) || field == key || len(field) > 64 || len(key) > 64 {
			return
		}
		typ := reflect.StructOf([]reflect.StructField{{
			Name: "F", Type: reflect.TypeFor[int](), Tag: reflect.StructTag(`json:"` + field + `"`),
		}})
		decode := func(args string) int64 {
			v := reflect.New(typ)
			if err := json.Unmarshal([]byte(args), v.Interface()); err != nil {
				t.Fatalf("%s: %v", args, err)
			}
			return v.Elem().Field(0).Int()
		}
		fieldJSON, keyJSON := strconv.Quote(field), strconv.Quote(key)
		if !json.Valid([]byte(fieldJSON)) || !json.Valid([]byte(keyJSON)) {
			return // strconv.Quote escapes that JSON does not have
		}
		if decode(`{`+fieldJSON+`:7}`) != 7 {
			return // not a tag name encoding/json uses
		}
		matches := decode(`{`+keyJSON+`:7}`) == 7

		g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
		if err != nil {
			t.Fatal(err)
		}
		schema, _ := json.Marshal(map[string]any{"type": "object", "properties": map[string]any{field: map[string]any{}}})
		if err := g.Register(toolguard.Tool{Name: "t", InputSchema: schema, Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }}); err != nil {
			t.Fatal(err)
		}
		for _, args := range []string{`{` + keyJSON + `:7}`, `{` + fieldJSON + `:1,` + keyJSON + `:7}`} {
			_, err := g.Call(ctx, "t", json.RawMessage(args))
			if matches != (err != nil) {
				t.Fatalf("field %q, arguments %s: encoding/json matches the key to the field: %v; the guard: %v", field, args, matches, err)
			}
			if err != nil && !errors.Is(err, toolguard.ErrInvalidArguments) {
				t.Fatalf("arguments %s: %v", args, err)
			}
		}
	})
}
