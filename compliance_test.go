package agentguard_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// testRef is a test function COMPLIANCE.md names, with the directory of
// its package.
type testRef struct {
	Dir, Name string
}

var (
	testName = "(?:Test|Fuzz|Example|Benchmark)[A-Za-z0-9_]*"
	// refRE matches "`TestA` in `dir`" and "`TestA`, `TestB` in `dir`".
	refRE = regexp.MustCompile("((?:`" + testName + "`(?:, | and )?)+) in `([^`]*)`")
	// nameRE matches any test name in backquotes, referenced or not.
	nameRE = regexp.MustCompile("`(" + testName + ")`")
)

// complianceRefs extracts the tests md names. A test name in backquotes that
// is not followed by " in `dir`" is a problem: it could not be checked.
func complianceRefs(md []byte) (refs []testRef, problems []string) {
	text := string(md)
	claimed := 0
	for _, m := range refRE.FindAllStringSubmatch(text, -1) {
		dir := m[2]
		if dir == "" || path.IsAbs(dir) || path.Clean(dir) != dir || strings.HasPrefix(dir, "..") {
			problems = append(problems, fmt.Sprintf("%q is not a package directory of this repository", dir))
			continue
		}
		for _, n := range nameRE.FindAllStringSubmatch(m[1], -1) {
			refs = append(refs, testRef{Dir: dir, Name: n[1]})
			claimed++
		}
	}
	all := nameRE.FindAllStringSubmatch(text, -1)
	if len(all) != claimed {
		referenced := map[string]int{}
		for _, r := range refs {
			referenced[r.Name]++
		}
		for _, n := range all {
			if referenced[n[1]] == 0 {
				problems = append(problems, fmt.Sprintf("%s is named without its package (write `%s` in `dir`)", n[1], n[1]))
			}
			referenced[n[1]]--
		}
	}
	return refs, problems
}

// testFuncs returns the names of the top-level functions in the _test.go
// files of dir, parsed with go/parser.
func testFuncs(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no _test.go files in %s", dir)
	}
	fset := token.NewFileSet()
	out := map[string]bool{}
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
				out[fd.Name.Name] = true
			}
		}
	}
	return out, nil
}

// missingTests returns the refs whose test function does not exist under
// root.
func missingTests(root string, refs []testRef) []string {
	var missing []string
	funcs := map[string]map[string]bool{}
	seen := map[testRef]bool{}
	for _, r := range refs {
		if seen[r] {
			continue
		}
		seen[r] = true
		fs, ok := funcs[r.Dir]
		if !ok {
			var err error
			if fs, err = testFuncs(filepath.Join(root, filepath.FromSlash(r.Dir))); err != nil {
				missing = append(missing, fmt.Sprintf("%s in %s: %v", r.Name, r.Dir, err))
			}
			funcs[r.Dir] = fs
		}
		if fs != nil && !fs[r.Name] {
			missing = append(missing, fmt.Sprintf("%s in %s: no such test function", r.Name, r.Dir))
		}
	}
	return missing
}

// TestComplianceNamesRealTests keeps COMPLIANCE.md true to the code: every
// test it names must exist, as a function in a _test.go file of the package
// directory it names.
func TestComplianceNamesRealTests(t *testing.T) {
	md, err := os.ReadFile("COMPLIANCE.md")
	if err != nil {
		t.Fatal(err)
	}
	refs, problems := complianceRefs(md)
	problems = append(problems, missingTests(".", refs)...)
	for _, p := range problems {
		t.Error("COMPLIANCE.md: " + p)
	}
	if len(refs) < 50 {
		t.Errorf("COMPLIANCE.md names %d tests; the parser is likely broken", len(refs))
	}
	byDir := map[string][]string{}
	for _, r := range refs {
		if !slices.Contains(byDir[r.Dir], r.Name) {
			byDir[r.Dir] = append(byDir[r.Dir], r.Name)
		}
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		slices.Sort(byDir[d])
		t.Logf("%s: %s", d, strings.Join(byDir[d], " "))
	}
}

// The check itself can fail: a name without a package, a test that does
// not exist, and a directory outside the repository are all reported.
func TestComplianceCheckCatchesBadNames(t *testing.T) {
	tests := []struct {
		name     string
		md       string
		refs     int
		problems []string
	}{
		{"grouped and single", "`TestComplianceNamesRealTests` and `TestComplianceCheckCatchesBadNames` in `.`; `TestMCPGuardBOM` in `mcp`", 3, nil},
		{"no package", "proved by `TestMCPGuardBOM`.", 0, []string{"TestMCPGuardBOM is named without its package"}},
		{"renamed", "`TestMCPGuardBOMRenamed` in `mcp`", 1, []string{"TestMCPGuardBOMRenamed in mcp: no such test function"}},
		{"wrong package", "`TestMCPGuardBOM` in `toolguard`", 1, []string{"TestMCPGuardBOM in toolguard: no such test function"}},
		{"no such directory", "`TestMCPGuardBOM` in `nowhere`", 1, []string{"TestMCPGuardBOM in nowhere: no _test.go files"}},
		{"outside the repository", "`TestMCPGuardBOM` in `../mcp`", 0, []string{`"../mcp" is not a package directory`, "named without its package"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refs, problems := complianceRefs([]byte(tt.md))
			problems = append(problems, missingTests(".", refs)...)
			if len(refs) != tt.refs {
				t.Errorf("%d refs, want %d: %v", len(refs), tt.refs, refs)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %q does not say %q", problems[i], want)
				}
			}
		})
	}
}
