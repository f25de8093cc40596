package scope_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// fsTree builds, in a temporary directory, a workspace ws with links that
// lead out of it to out, and returns the directory.
//
//	ws/notes.txt, ws/sub/, ws/sub/inner.txt
//	ws/outdir   -> <dir>/out          (a directory outside)
//	ws/outfile  -> ../out/secret      (a file outside, relative)
//	ws/deep     -> <dir>/out/deep     (so deep/../secret is out/secret)
//	ws/sublink  -> sub                (inside; sublink/../notes.txt is ws/notes.txt)
//	ws/dangling -> <dir>/out/new.txt  (does not exist yet)
//	ws/dangin   -> sub/new.txt        (does not exist yet, inside)
//	ws/loop     -> loop, ws/a -> b, ws/b -> a
//	wslink      -> ws                 (the workspace reached through a link)
func fsTree(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	ws, out := filepath.Join(dir, "ws"), filepath.Join(dir, "out")
	for _, d := range []string{filepath.Join(ws, "sub"), filepath.Join(out, "deep")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	for _, f := range []string{filepath.Join(ws, "notes.txt"), filepath.Join(ws, "sub", "inner.txt"), filepath.Join(out, "secret")} {
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o644))
	}
	for name, target := range map[string]string{
		"ws/outdir":   out,
		"ws/outfile":  "../out/secret",
		"ws/deep":     filepath.Join(out, "deep"),
		"ws/sublink":  "sub",
		"ws/dangling": filepath.Join(out, "new.txt"),
		"ws/dangin":   "sub/new.txt",
		"ws/loop":     "loop",
		"ws/a":        "b",
		"ws/b":        "a",
		"wslink":      ws,
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	return dir
}

func TestResolvesUnder(t *testing.T) {
	dir := fsTree(t)
	ws := dir + "/ws"
	tests := []struct {
		path, base string
		want       bool
	}{
		{ws + "/notes.txt", ws, true},
		{ws, ws, true},
		{ws + "/sub/inner.txt", ws, true},
		{ws + "/./sub//inner.txt", ws, true},
		{ws + "/new/dirs/file.txt", ws, true},      // does not exist yet
		{ws + "/new/../notes.txt", ws, true},       // .. back up a missing directory
		{ws + "/sublink/../notes.txt", ws, true},   // link first, then ..
		{ws + "/sublink/inner.txt", ws, true},      // link inside
		{ws + "/dangin", ws, true},                 // dangling, lands inside
		{dir + "/wslink/notes.txt", ws, true},      // path through a linked workspace
		{ws + "/notes.txt", dir + "/wslink", true}, // base through a link
		{dir + "/wslink/sub", dir + "/wslink/sublink", true},

		{ws + "/outdir/secret", ws, false},
		{ws + "/outdir", ws, false},
		{ws + "/outdir/not-yet", ws, false},
		{ws + "/outfile", ws, false},
		{ws + "/deep/../secret", ws, false}, // lexically ws/secret
		{ws + "/dangling", ws, false},       // a write would create out/new.txt
		{ws + "/sublink/../../out/secret", ws, false},
		{ws + "/new/../../out/secret", ws, false},
		{ws + "/../out/secret", ws, false},
		{dir + "/out/secret", ws, false},
		{ws + "2/x", ws, false},
		{"/", ws, false},
		{ws + "/x", "/", true},
	}
	for _, tt := range tests {
		got, err := scope.ResolvesUnder(tt.path, tt.base)
		require.NoError(t, err, "%s under %s", tt.path, tt.base)
		assert.Equal(t, tt.want, got, "%s under %s", tt.path, tt.base)
	}
}

// Inputs the check cannot judge are errors, so that in a policy they deny.
func TestResolvesUnderErrors(t *testing.T) {
	dir := fsTree(t)
	ws := dir + "/ws"
	var chain string
	for i := range 41 {
		chain = filepath.Join(dir, "c"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
		next := ws
		if i > 0 {
			next = filepath.Join(dir, "c"+string(rune('a'+(i-1)%26))+strings.Repeat("x", (i-1)/26))
		}
		require.NoError(t, os.Symlink(next, chain))
	}
	_, err := scope.ResolvesUnder(chain+"/notes.txt", ws)
	require.Error(t, err, "41 links in a row")
	_, err = scope.ResolvesUnder(filepath.Join(dir, "cnx")+"/notes.txt", ws)
	require.NoError(t, err, "40 links in a row are followed")

	for _, tt := range []struct{ path, base, msg string }{
		{ws + "/loop", ws, "too many levels of symbolic links"},
		{ws + "/a/x", ws, "too many levels of symbolic links"},
		{ws + "/notes.txt/x", ws, "not a directory"},
		{"", ws, "empty path"},
		{ws, "", "empty path"},
		{"notes.txt", ws, "not absolute"},
		{ws + "/notes.txt", "ws", "not absolute"},
		{ws + "/a\x00", ws, "NUL"},
		{ws + `\..\..\etc`, ws, "backslash"},
		{ws + strings.Repeat("/d", 4097), ws, "more than 4096 components"},
	} {
		ok, err := scope.ResolvesUnder(tt.path, tt.base)
		require.Error(t, err, "%.80q under %q", tt.path, tt.base)
		assert.False(t, ok)
		assert.Contains(t, err.Error(), tt.msg)
	}
}

// A directory the process may not search is an error, not "outside" or
// "under".
func TestResolvesUnderPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can search any directory")
	}
	dir := fsTree(t)
	locked := filepath.Join(dir, "ws", "locked")
	require.NoError(t, os.Mkdir(locked, 0o755))
	require.NoError(t, os.Chmod(locked, 0))
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	_, err := scope.ResolvesUnder(locked+"/x", dir+"/ws")
	require.ErrorIs(t, err, os.ErrPermission)
}

// In a policy, the lexical grant lets every link escape through; the
// filesystem-true grant does not, and its errors deny.
func TestResolvesUnderPolicy(t *testing.T) {
	dir := fsTree(t)
	p := compile(t, `
version: 1
scopes:
  lexical:
    grants:
      - tools: [read]
        when: args.path.isUnder(principal.attrs.workspace)
  resolved:
    grants:
      - tools: [read]
        when: args.path.resolvesUnder(principal.attrs.workspace)
rules:
  - name: no-out
    effect: deny
    tools: [read]
    when: args.path.resolvesUnder(principal.attrs.out)
`)
	input := func(scopes []string, path string) scope.Input {
		i := in("u", scopes, "read", map[string]any{"path": path})
		i.Principal.Attrs = map[string]any{"workspace": dir + "/wslink", "out": dir + "/out"}
		return i
	}
	ws := dir + "/wslink"
	for _, path := range []string{ws + "/outdir/secret", ws + "/outfile", ws + "/deep/../secret", ws + "/dangling"} {
		d := p.Decide(t.Context(), input([]string{"lexical"}, path))
		assert.Equal(t, scope.Deny, d.Effect, "%s: the rule that resolves the path denies even the lexical grant", path)
		assert.Contains(t, d.Reason, "no-out")
	}
	for _, tt := range []struct {
		path string
		want scope.Effect
	}{
		{ws + "/notes.txt", scope.Allow},
		{ws + "/sublink/../notes.txt", scope.Allow},
		{ws + "/new.txt", scope.Allow},
		{ws + "/outdir/../ws/notes.txt", scope.Allow}, // out/../ws is ws
		{ws + "/loop", scope.Deny},
		{ws + "/notes.txt/x", scope.Deny},
	} {
		d := p.Decide(t.Context(), input([]string{"resolved"}, tt.path))
		assert.Equal(t, tt.want, d.Effect, "%s: %s", tt.path, d.Reason)
	}

	// Without the rule, the lexical grant allows the escape (what today's
	// isUnder does) and the resolving grant does not.
	q := compile(t, `
version: 1
scopes:
  lexical:  {grants: [{tools: [read], when: args.path.isUnder(principal.attrs.workspace)}]}
  resolved: {grants: [{tools: [read], when: args.path.resolvesUnder(principal.attrs.workspace)}]}
`)
	for _, path := range []string{ws + "/outdir/secret", ws + "/outfile", ws + "/deep/../secret", ws + "/dangling"} {
		assert.Equal(t, scope.Allow, q.Decide(t.Context(), input([]string{"lexical"}, path)).Effect, path)
		assert.Equal(t, scope.Deny, q.Decide(t.Context(), input([]string{"resolved"}, path)).Effect, path)
	}
}
