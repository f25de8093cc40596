package fsroot_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentguard/agentguard/toolguard/fsroot"
)

// A link inside the workspace that points out of it is refused when the
// file is opened, whatever the policy concluded before.
func Example() {
	dir, _ := os.MkdirTemp("", "fsroot-example-")
	defer os.RemoveAll(dir)
	dir, _ = filepath.EvalSymlinks(dir)
	ws := filepath.Join(dir, "ws")
	_ = os.MkdirAll(ws, 0o755)
	_ = os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("hello"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret"), 0o644)
	_ = os.Symlink(filepath.Join(dir, "secret"), filepath.Join(ws, "link"))

	root, err := fsroot.Open(ws)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer root.Close()
	b, err := root.ReadFile(ws + "/notes.txt")
	fmt.Printf("%s %v\n", b, err)
	_, err = root.ReadFile(ws + "/link")
	fmt.Println(err == nil, filepath.Base(err.Error()))
	// Output:
	// hello <nil>
	// false link: path is outside the allowed directory
}
