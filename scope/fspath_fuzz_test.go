package scope_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// fuzzPlaces and fuzzTargets are what FuzzResolvesUnder builds its trees
// from: a file, directory or link at a place, a link pointing at a target
// ("@" stands for the temporary directory).
var (
	fuzzPlaces  = []string{"ws/a", "ws/b", "ws/a/c", "ws/b/d", "ws/l", "ws/a/l", "out/o", "out/deep/p", "ws/a/c/e"}
	fuzzTargets = []string{"..", "../..", "../out", "../../out", "a", "b", "a/c", ".", "@/out", "@/ws", "@/ws/a",
		"x/..", "../ws/a", "l", "../out/secret", "nonexist", "../../out/nonexist", "@/out/deep", "c/..", "../../ws", "@"}
)

// FuzzResolvesUnder builds a small random tree of directories, files and
// links around a workspace, and asks whether a path below the workspace
// resolves under it. The oracle is the kernel: the path is opened (or, if
// it does not exist, created) and the file the descriptor refers to
// (/proc/self/fd) must be under the workspace exactly when the check said
// so. A check that says "under" for a file the kernel finds outside fails.
func FuzzResolvesUnder(f *testing.F) {
	if _, err := os.Readlink("/proc/self/fd/0"); err != nil {
		f.Skip("needs /proc/self/fd to see where the kernel opened a file")
	}
	f.Add([]byte{8, 1}, "a/c/../../out")
	f.Add([]byte{8, 8, 1, 2}, "a/secret")
	f.Add([]byte{16, 17}, "l/../out/secret")
	f.Add([]byte{1, 2, 16, 0}, "l/c/x")
	f.Add([]byte{20, 14, 4, 5}, "a/l")
	f.Fuzz(func(t *testing.T, spec []byte, rel string) {
		if len(spec) > 64 || len(rel) > 256 || strings.ContainsAny(rel, "\x00\\") {
			return
		}
		dir, err := filepath.EvalSymlinks(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		buildFuzzTree(dir, spec)
		base := dir + "/ws"
		if len(spec) > 0 && spec[0]&1 == 1 {
			base = dir + "/wslink"
		}
		p := base + "/" + rel
		got, err := scope.ResolvesUnder(p, base)
		if err != nil {
			return // an error denies: never unsafe
		}
		landed, ok := kernelOpen(p)
		if !ok {
			return
		}
		want := landed == dir+"/ws" || strings.HasPrefix(landed, dir+"/ws/")
		if got && !want {
			t.Fatalf("ResolvesUnder(%q) = true, but the kernel opened %q\ntree: %s", p, landed, describeTree(dir))
		}
		if !got && want {
			t.Fatalf("ResolvesUnder(%q) = false, but the kernel opened %q\ntree: %s", p, landed, describeTree(dir))
		}
	})
}

func buildFuzzTree(dir string, spec []byte) {
	_ = os.MkdirAll(dir+"/ws", 0o755)
	_ = os.MkdirAll(dir+"/out/deep", 0o755)
	_ = os.WriteFile(dir+"/out/secret", nil, 0o644)
	_ = os.Symlink(dir+"/ws", dir+"/wslink")
	for i := 0; i+1 < len(spec); i += 2 {
		place := filepath.Join(dir, fuzzPlaces[int(spec[i]>>2)%len(fuzzPlaces)])
		_ = os.MkdirAll(filepath.Dir(place), 0o755)
		switch spec[i] & 3 {
		case 0:
			_ = os.Mkdir(place, 0o755)
		case 1:
			_ = os.WriteFile(place, nil, 0o644)
		default:
			target := fuzzTargets[int(spec[i+1])%len(fuzzTargets)]
			_ = os.Symlink(strings.ReplaceAll(target, "@", dir), place)
		}
	}
}

// kernelOpen opens p, or creates it if it does not exist, and returns the
// path of the file the kernel reached.
func kernelOpen(p string) (string, bool) {
	fd, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		fd, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if err != nil {
		return "", false
	}
	defer fd.Close()
	landed, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd.Fd()))
	return landed, err == nil
}

func describeTree(dir string) string {
	var b strings.Builder
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, "\n  %s -> %s", rel, strings.ReplaceAll(target, dir, "@"))
		} else {
			fmt.Fprintf(&b, "\n  %s", rel)
		}
		return nil
	})
	return b.String()
}
