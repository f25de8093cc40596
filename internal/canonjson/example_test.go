package canonjson_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/agentguard/agentguard/internal/canonjson"
)

func ExampleMarshal() {
	b, err := canonjson.Marshal(map[string]any{
		"path": "/w/a.txt",
		"mode": json.Number("420.0"),
		"tags": []any{"x", "y"},
		"big":  json.Number("12345678901234567890123"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output: {"big":12345678901234567890123,"mode":420,"path":"/w/a.txt","tags":["x","y"]}
}

func ExampleAppend() {
	// The same arguments, written differently, hash alike.
	a, _ := canonjson.Append(nil, json.RawMessage(`{ "b": 1.0, "a": "\u00e9" }`))
	b, _ := canonjson.Append(nil, map[string]any{"a": "é", "b": 1})
	fmt.Println(string(a))
	fmt.Println(sha256.Sum256(a) == sha256.Sum256(b))
	// Output:
	// {"a":"é","b":1}
	// true
}

func ExampleAppendString() {
	b := canonjson.AppendString([]byte("key="), "line\n<tab>\t")
	fmt.Println(string(b))
	// Output: key="line\n<tab>\t"
}
