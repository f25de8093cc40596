package safejson_test

import (
	"errors"
	"fmt"

	"github.com/agentguard/agentguard/internal/safejson"
)

func ExampleDecodeObject() {
	args, err := safejson.DecodeObject([]byte(`{"path":"/w/a.txt","mode":420,"ratio":1.50}`), safejson.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(args["path"], args["mode"], args["ratio"])
	// Output: /w/a.txt 420 1.50
}

func ExampleError() {
	_, err := safejson.Decode([]byte(`{"files":[{"path":"/w/a"},{"path":"/w/b","path":"/etc/passwd"}]}`), safejson.Limits{})
	fmt.Println(errors.Is(err, safejson.ErrDuplicateKey))
	var e *safejson.Error
	if errors.As(err, &e) {
		fmt.Println(e.Pointer)
		fmt.Println(e.Detail)
	}
	// Output:
	// true
	// /files/1
	// key "path" appears twice
}

func ExampleLimits() {
	_, err := safejson.Decode([]byte(`[[["too deep"]]]`), safejson.Limits{MaxDepth: 2})
	fmt.Println(err)
	// Output: safejson: nesting too deep at /0/0 (offset 2): more than 2 nested arrays and objects
}

func ExampleDecodeArguments() {
	for _, args := range []string{
		`{"path":"/w/a.txt","amount":0.1}`,
		`{"path":"/w/a.txt","PATH":"/etc/passwd"}`,
		`{"amount":100.0000000000000001}`,
	} {
		_, err := safejson.DecodeArguments([]byte(args), safejson.Limits{})
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// safejson: keys differ only in case at /PATH (offset 19): key "PATH" is key "path" in other letter case; decoders that ignore case would read one for the other
	// safejson: number not exact as float64 at /amount (offset 10): number 100.0000000000000001 has no exact 64-bit floating-point value: readers that use one (most JSON parsers, and the policy) would see 100, readers of the exact decimal 100.0000000000000001; send it as a string if every digit matters
}
