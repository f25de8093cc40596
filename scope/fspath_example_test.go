package scope_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/agentguard/agentguard/scope"
)

// A link inside the workspace that leads out of it is under the workspace
// as written, and outside it once followed.
func ExampleResolvesUnder() {
	dir, _ := os.MkdirTemp("", "resolves-under-")
	defer os.RemoveAll(dir)
	ws := filepath.Join(dir, "ws")
	_ = os.MkdirAll(ws, 0o755)
	_ = os.Symlink("/etc", filepath.Join(ws, "etc"))

	p := ws + "/etc/passwd"
	lexical, _ := scope.IsUnder(p, ws)
	resolved, _ := scope.ResolvesUnder(p, ws)
	fmt.Println("isUnder:", lexical)
	fmt.Println("resolvesUnder:", resolved)
	_, err := scope.ResolvesUnder("notes.txt", ws)
	fmt.Println(err)
	// Output:
	// isUnder: true
	// resolvesUnder: false
	// resolvesUnder: path "notes.txt" is not absolute
}
