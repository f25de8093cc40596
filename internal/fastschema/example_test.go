package fastschema_test

import (
	"fmt"
	"strings"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentguard/agentguard/internal/fastschema"
	"github.com/agentguard/agentguard/internal/safejson"
)

func Example() {
	doc, err := sjs.UnmarshalJSON(strings.NewReader(`{
		"type": "object",
		"properties": {
			"path": {"type": "string", "minLength": 1},
			"mode": {"type": "integer", "minimum": 0}
		},
		"required": ["path"],
		"additionalProperties": false
	}`))
	if err != nil {
		panic(err)
	}
	v, ok := fastschema.Compile(doc)
	fmt.Println("compiled:", ok)

	for _, args := range []string{
		`{"path":"/w/a.txt","mode":420}`,
		`{"path":"/w/a.txt","mode":4.2e2}`,
		`{"path":"/w/a.txt","mode":-1}`,
		`{"path":"/w/a.txt","owner":"root"}`,
	} {
		inst, err := safejson.Decode([]byte(args), safejson.Limits{})
		if err != nil {
			panic(err)
		}
		fmt.Println(args, v.Valid(inst))
	}
	// Output:
	// compiled: true
	// {"path":"/w/a.txt","mode":420} true
	// {"path":"/w/a.txt","mode":4.2e2} true
	// {"path":"/w/a.txt","mode":-1} false
	// {"path":"/w/a.txt","owner":"root"} false
}

// ExampleCompile shows a schema outside the subset: the caller keeps using
// the full validator for it.
func ExampleCompile() {
	doc, err := sjs.UnmarshalJSON(strings.NewReader(`{
		"type": "object",
		"properties": {"to": {"type": "string", "format": "email"}}
	}`))
	if err != nil {
		panic(err)
	}
	_, ok := fastschema.Compile(doc)
	fmt.Println("compiled:", ok)
	// Output:
	// compiled: false
}

func ExampleCompileKeys() {
	// A schema as mcp-go's mcp.NewTool(..., mcp.WithString("path")) writes
	// it: other members are allowed.
	doc, err := sjs.UnmarshalJSON(strings.NewReader(`{"type":"object","properties":{"path":{"type":"string"}}}`))
	if err != nil {
		panic(err)
	}
	keys := fastschema.CompileKeys(doc)
	for _, args := range []string{`{"path":"/w/a.txt","note":"x"}`, `{"PATH":"/etc/passwd"}`} {
		v, err := safejson.DecodeObject([]byte(args), safejson.Limits{})
		if err != nil {
			panic(err)
		}
		if c := keys.Check(v); c != nil {
			fmt.Printf("%s: key %q folds like property %q\n", c.Pointer, c.Key, c.Property)
		} else {
			fmt.Println("ok")
		}
	}
	// Output:
	// ok
	// /PATH: key "PATH" folds like property "path"
}
