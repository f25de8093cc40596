package scope_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// attackTree is a workspace w and a directory out beside it, with links
// spelt every way an attacker might use:
//
//	w/f, w/sub/, out/secret
//	w/dirout     -> ../out           w/slash   -> /
//	w/subup      -> sub/..           w/self    -> ../w
//	w/sub/o      -> ../../out        w/flink   -> f
//	w/outparent  -> dirout/..        w/chain   -> ../w/dirout
//	w/dangle     -> ../out/new       w/devfd   -> /dev/fd/0
//	w/stdin      -> /dev/stdin       w/procroot -> /proc/self/root
//	wl           -> w                wslash    -> w/ (a base spelt with a slash in its link)
func attackTree(t *testing.T) (dir, w string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	w = filepath.Join(dir, "w")
	require.NoError(t, os.MkdirAll(filepath.Join(w, "sub"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "out"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w, "f"), []byte("in"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "out", "secret"), []byte("out"), 0o644))
	for name, target := range map[string]string{
		"w/dirout": "../out", "w/slash": "/", "w/subup": "sub/..", "w/self": "../w",
		"w/sub/o": "../../out", "w/flink": "f", "w/outparent": "dirout/..", "w/chain": "../w/dirout",
		"w/dangle": "../out/new", "w/devfd": "/dev/fd/0", "w/stdin": "/dev/stdin",
		"w/procroot": "/proc/self/root", "wl": "w", "wslash": "w/",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(dir, name)))
	}
	return dir, w
}

// TestResolvesUnderAttacks: other spellings of a path, links that cross
// the base and come back, links to "/", a base that is a link or ends in a
// slash, and magic links through /proc and /dev/fd. Every path the kernel
// would take outside w is reported outside (or is an error); every path
// that stays inside is reported inside.
func TestResolvesUnderAttacks(t *testing.T) {
	dir, w := attackTree(t)
	tests := []struct {
		p, base string
		want    bool
		err     string
	}{
		{w + "//f", w, true, ""},
		{w + "/./f", w, true, ""},
		{w + "/", w, true, ""},
		{w, w + "/", true, ""},                             // a path equal to the base
		{w, w + "//", true, ""},                            // a base with repeated slashes
		{w + "/...", w, true, ""},                          // "..." is a name
		{w + "/..", w, false, ""},                          // the parent
		{w + "/dirout/../f", w, false, ""},                 // ".." after a link is the target's parent: out/../f
		{w + "/dirout/secret", w, false, ""},               // through a link to a directory outside
		{w + "/slash" + dir + "/out/secret", w, false, ""}, // through a link to /
		{w + "/slash" + w + "/f", w, true, ""},             // ... which can come back in
		{w + "/subup/f", w, true, ""},                      // sub/.. is w
		{w + "/self/self/self/f", w, true, ""},             // a link that leaves and re-enters
		{w + "/sub/o/secret", w, false, ""},                // a relative link two levels up
		{w + "/outparent/out/secret", w, false, ""},        // dirout/.. is dir, so out/secret
		{w + "/outparent/w/f", w, true, ""},                // ... and dir/w/f is inside
		{w + "/chain/secret", w, false, ""},                // a chain of links that crosses the base
		{w + "/flink/..", w, true, ""},                     // a file used as a directory: the open fails, the path stays inside
		{w + "/f/../../out/secret", w, false, ""},          // ... or leaves
		{w + "/dangle", w, false, ""},                      // a dangling link whose target is outside
		{w + "/dangle/x", w, false, ""},                    // ... and a path below it
		{w + "/nope/../../out/secret", w, false, ""},       // ".." back over directories a write would create
		{w + "/nope/../f", w, true, ""},
		{dir + "/wl/f", w, true, ""},      // the base reached through a link
		{w + "/f", dir + "/wl", true, ""}, // a base that is a link
		{dir + "/wl/dirout/secret", dir + "/wl/", false, ""},
		{dir + "/wslash/f", dir + "/wslash/", true, ""},
		{dir + "/W/f", w, false, ""},       // another case is another name on Linux
		{dir + "/w\u200b/f", w, false, ""}, // a zero-width space is a character of the name
		{"/", w, false, ""},
		{w + "/f", "/", true, ""},            // everything is under /
		{w + "/devfd", w, false, "in /proc"}, // /dev/fd/0 is /proc/self/fd/0: an open file, not a path
		{w + "/stdin", w, false, "in /proc"},
		{"/dev/fd/0", w, false, "in /proc"},
		{w + "/procroot" + w + "/f", w, false, "in /proc"},
		{"/proc/self/root" + w + "/f", w, false, "in /proc"},
		{"/proc/self/cwd/f", w, false, "in /proc"},
		{"/proc/thread-self/root" + w, w, false, "in /proc"},
		{"/proc/1/root" + w, w, false, "in /proc"},
		{"/proc/self/root" + w, "/proc/self/root" + w, false, "in /proc"}, // a base through /proc
		{w + `/f\..\..\out`, w, false, "backslash"},
		{w + "/\x00/../../out", w, false, "NUL"},
		{"f", w, false, "not absolute"},
		{w + "/f", "w", false, "not absolute"},
		{"", w, false, "empty"},
		{w, "", false, "empty"},
		{w + "/" + strings.Repeat("a", 300), w, false, "name too long"},
		{w + strings.Repeat("/a", 5000), w, false, "more than 4096 components"},
	}
	for _, tt := range tests {
		name := strings.ReplaceAll(tt.p, dir, "D") + " under " + strings.ReplaceAll(tt.base, dir, "D")
		if len(name) > 120 {
			name = name[:120]
		}
		t.Run(name, func(t *testing.T) {
			got, err := scope.ResolvesUnder(tt.p, tt.base)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.False(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestResolvesUnderAgreesWithKernel: for every path that ResolvesUnder
// calls outside, opening it really reaches the file outside, and for the
// inside ones it reaches the file inside — the check describes what the
// kernel does, not a guess.
func TestResolvesUnderAgreesWithKernel(t *testing.T) {
	dir, w := attackTree(t)
	for _, p := range []string{
		w + "/dirout/secret", w + "/sub/o/secret", w + "/outparent/out/secret", w + "/chain/secret",
		w + "/slash" + dir + "/out/secret", w + "/dirout/../out/secret",
	} {
		b, err := os.ReadFile(p)
		require.NoError(t, err, p)
		require.Equal(t, "out", string(b), "%s reaches the file outside", p)
		ok, err := scope.ResolvesUnder(p, w)
		require.NoError(t, err)
		assert.False(t, ok, "%s is reported under the workspace", p)
	}
	for _, p := range []string{w + "/subup/f", w + "/self/self/f", w + "/outparent/w/f", dir + "/wl/f", w + "/slash" + w + "/f"} {
		b, err := os.ReadFile(p)
		require.NoError(t, err, p)
		require.Equal(t, "in", string(b), p)
		ok, err := scope.ResolvesUnder(p, w)
		require.NoError(t, err)
		assert.True(t, ok, p)
	}
}

// TestResolvesUnderHostileSize: a path of ten million slashes or three
// million "/." components is answered in bounded time (linear, no
// allocation per component beyond the path itself).
func TestResolvesUnderHostileSize(t *testing.T) {
	_, w := attackTree(t)
	for _, p := range []string{
		w + strings.Repeat("/", 10_000_000) + "f",
		w + strings.Repeat("/.", 3_000_000) + "/f",
	} {
		start := time.Now()
		ok, err := scope.ResolvesUnder(p, w)
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Less(t, time.Since(start), 10*time.Second)
	}
	// Links that each repeat a long rest: 40 links at most.
	_, err := scope.ResolvesUnder(w+"/self"+strings.Repeat("/self", 100)+"/f", w)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "too many levels of symbolic links")
}

// TestResolvesUnderHardLink documents a limit: a hard link inside the
// workspace to a file outside is the same file under a name inside, and no
// path check can tell. The file's own identity is the only witness; keep
// hard links to foreign files out of a workspace (or give the workspace its
// own filesystem, across which hard links cannot be made).
func TestResolvesUnderHardLink(t *testing.T) {
	dir, w := attackTree(t)
	if err := os.Link(filepath.Join(dir, "out", "secret"), filepath.Join(w, "hard")); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	ok, err := scope.ResolvesUnder(filepath.Join(w, "hard"), w)
	require.NoError(t, err)
	assert.True(t, ok, "a hard link is a name inside the workspace")
	b, err := os.ReadFile(filepath.Join(w, "hard"))
	require.NoError(t, err)
	assert.Equal(t, "out", string(b), "and it is the file outside")
}

// TestResolvesUnderCheckThenSwap documents why a check is not enough: a
// path the check found inside is swapped for a link to the outside before
// the handler opens it, and a plain open follows the new link. The
// handler-side answer is toolguard/fsroot (see its TestAttackSwap).
func TestResolvesUnderCheckThenSwap(t *testing.T) {
	dir, w := attackTree(t)
	require.NoError(t, os.Mkdir(filepath.Join(w, "d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(w, "d", "secret"), []byte("in"), 0o644))
	p := filepath.Join(w, "d", "secret")
	ok, err := scope.ResolvesUnder(p, w)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, os.RemoveAll(filepath.Join(w, "d")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "out"), filepath.Join(w, "d")))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "out", string(b), "the open after the check escapes")
	ok, err = scope.ResolvesUnder(p, w)
	require.NoError(t, err)
	assert.False(t, ok, "checked again, the path is outside")
}

// TestResolvesUnderPolicyAttacks: the same attacks through a policy, as a
// model would send them.
func TestResolvesUnderPolicyAttacks(t *testing.T) {
	dir, w := attackTree(t)
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  fs:
    grants:
      - tools: [write_file]
        when: 'args.path.resolvesUnder(principal.attrs.workspace)'
`))
	require.NoError(t, err)
	decide := func(path, ws string) scope.Decision {
		return p.Decide(t.Context(), scope.Input{
			Principal: scope.Principal{ID: "u", Scopes: []string{"fs"}, Attrs: map[string]any{"workspace": ws}},
			Tool:      scope.Tool{Name: "write_file"},
			Args:      map[string]any{"path": path},
		})
	}
	for _, path := range []string{
		w + "/dangle", w + "/dirout/../x", w + "/slash/etc/passwd", w + "/devfd", "/proc/self/cwd/x",
		w + "/chain/new", w + `/x\..\..\out`, "x", w + "/nope/../../out/x",
	} {
		d := decide(path, w)
		assert.NotEqual(t, scope.Allow, d.Effect, "%s: %s", path, d.Reason)
		assert.NotContains(t, d.Reason, "scope.", path)
	}
	for _, path := range []string{w + "/new.txt", w + "/./sub//new", w + "/subup/new"} {
		d := decide(path, dir+"/wl/")
		assert.Equal(t, scope.Allow, d.Effect, "%s: %s", path, d.Reason)
	}
}
