package glob_test

import (
	"fmt"

	"github.com/agentguard/agentguard/internal/glob"
)

func ExampleMatch() {
	for _, name := range []string{".env", "a/.env.local", "/w/x/.env", "/w/x/env"} {
		fmt.Println(name, glob.Match("**/.env*", name))
	}
	fmt.Println(glob.Match("read_*", "read_file"), glob.Match("read_*", "read_/etc"))
	// Output:
	// .env true
	// a/.env.local true
	// /w/x/.env true
	// /w/x/env false
	// true false
}

func ExampleLiteral() {
	tools := map[string]bool{"read_file": true}
	for _, p := range []string{"read_file", "read_*"} {
		if glob.Literal(p) {
			fmt.Println(p, "by lookup:", tools[p])
		} else {
			fmt.Println(p, "by matching:", glob.Match(p, "read_file"))
		}
	}
	// Output:
	// read_file by lookup: true
	// read_* by matching: true
}

func ExampleValidate() {
	fmt.Println(glob.Validate(`secrets/\*`))
	fmt.Println(glob.Validate(`secrets\`))
	// Output:
	// <nil>
	// glob: malformed pattern: trailing '\'
}
