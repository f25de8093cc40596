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
