package fsroot_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard/fsroot"
)

// tree is a workspace ws and a directory out beside it holding a secret.
type tree struct{ ws, out string }

func newTree(t *testing.T) tree {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	tr := tree{ws: filepath.Join(dir, "ws"), out: filepath.Join(dir, "out")}
	require.NoError(t, os.MkdirAll(filepath.Join(tr.ws, "sub"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(tr.out, "deep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tr.ws, "notes.txt"), []byte("inside"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(tr.out, "secret"), []byte("outside secret"), 0o644))
	return tr
}

func (tr tree) link(t *testing.T, target, name string) string {
	t.Helper()
	p := filepath.Join(tr.ws, name)
	require.NoError(t, os.Symlink(target, p))
	return p
}

func openRoot(t *testing.T, dir string) *fsroot.Root {
	t.Helper()
	r, err := fsroot.Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r
}

func requireOutside(t *testing.T, err error, name string) {
	t.Helper()
	require.ErrorIs(t, err, fsroot.ErrOutside)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, name, pe.Path, "the error names the path as the caller gave it")
	assert.NotContains(t, err.Error(), "fsroot")
}

// Each escape through a link is refused by the Root, while the lexical
// policy check allows the path and a plain os call escapes.
func TestLinkEscapes(t *testing.T) {
	tr := newTree(t)
	r := openRoot(t, tr.ws)
	cases := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"link to an outside directory", func(t *testing.T) string {
			return filepath.Join(tr.link(t, tr.out, "d"), "secret")
		}},
		{"link to an outside file", func(t *testing.T) string {
			return tr.link(t, filepath.Join(tr.out, "secret"), "f")
		}},
		{"relative link to an outside file", func(t *testing.T) string {
			return tr.link(t, "../out/secret", "rf")
		}},
		{"link/.. after a link to a directory outside", func(t *testing.T) string {
			// Lexically ws/dd/../secret is ws/secret; the kernel goes to
			// out/deep first, then up to out.
			return tr.link(t, filepath.Join(tr.out, "deep"), "dd") + "/../secret"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.path(t)
			under, err := scope.IsUnder(p, tr.ws)
			require.NoError(t, err)
			assert.True(t, under, "the lexical check allows %s", p)
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.Equal(t, "outside secret", string(b), "a plain open escapes")

			_, err = r.ReadFile(p)
			requireOutside(t, err, p)
			_, err = r.Open(p)
			requireOutside(t, err, p)
			_, err = r.Stat(p)
			requireOutside(t, err, p)
			ok, err := scope.ResolvesUnder(p, tr.ws)
			require.NoError(t, err)
			assert.False(t, ok, "the filesystem-true check sees the escape")
		})
	}
}

// A write through a dangling link or a linked directory creates nothing
// outside.
func TestWriteEscapes(t *testing.T) {
	tr := newTree(t)
	r := openRoot(t, tr.ws)

	dangling := tr.link(t, filepath.Join(tr.out, "created-by-link"), "dangling")
	err := r.WriteFile(dangling, []byte("x"), fsroot.WriteOptions{Sync: true})
	requireOutside(t, err, dangling)
	_, err = r.OpenFile(dangling, os.O_WRONLY|os.O_CREATE, 0o644)
	requireOutside(t, err, dangling)
	assert.NoFileExists(t, filepath.Join(tr.out, "created-by-link"))

	linkedDir := filepath.Join(tr.link(t, tr.out, "outdir"), "new.txt")
	err = r.WriteFile(linkedDir, []byte("x"), fsroot.WriteOptions{})
	requireOutside(t, err, linkedDir)
	err = r.Mkdir(filepath.Join(tr.ws, "outdir", "newdir"), 0o755)
	requireOutside(t, err, filepath.Join(tr.ws, "outdir", "newdir"))
	err = r.MkdirAll(filepath.Join(tr.ws, "outdir", "a", "b"), 0o755)
	requireOutside(t, err, filepath.Join(tr.ws, "outdir", "a", "b"))
	_, err = r.ReadDir(filepath.Join(tr.ws, "outdir"))
	requireOutside(t, err, filepath.Join(tr.ws, "outdir"))
	assert.NoFileExists(t, filepath.Join(tr.out, "new.txt"))
	assert.NoDirExists(t, filepath.Join(tr.out, "newdir"))
	assert.NoDirExists(t, filepath.Join(tr.out, "a"))

	// What a plain write does with the same paths.
	require.NoError(t, os.WriteFile(dangling, []byte("x"), 0o644))
	assert.FileExists(t, filepath.Join(tr.out, "created-by-link"), "a plain write follows the dangling link out")
	require.NoError(t, os.WriteFile(linkedDir, []byte("x"), 0o644))
	assert.FileExists(t, filepath.Join(tr.out, "new.txt"), "a plain write goes through the linked directory")
}

// The check passes on a benign tree; then a component is swapped for a link
// to outside; the Root's open fails where os.Open escapes.
func TestLinkSwappedAfterCheck(t *testing.T) {
	tr := newTree(t)
	require.NoError(t, os.WriteFile(filepath.Join(tr.ws, "sub", "secret"), []byte("benign"), 0o644))
	r := openRoot(t, tr.ws)
	p := filepath.Join(tr.ws, "sub", "secret")

	ok, err := scope.ResolvesUnder(p, tr.ws)
	require.NoError(t, err)
	require.True(t, ok, "the check passes on the benign tree")

	require.NoError(t, os.Rename(filepath.Join(tr.ws, "sub"), filepath.Join(tr.ws, "sub.old")))
	require.NoError(t, os.Symlink(tr.out, filepath.Join(tr.ws, "sub")))

	_, err = r.ReadFile(p)
	requireOutside(t, err, p)
	err = r.WriteFile(p, []byte("overwritten"), fsroot.WriteOptions{})
	requireOutside(t, err, p)
	b, err := os.ReadFile(filepath.Join(tr.out, "secret"))
	require.NoError(t, err)
	assert.Equal(t, "outside secret", string(b), "the Root wrote nothing outside")

	f, err := os.Open(p)
	require.NoError(t, err)
	b, err = os.ReadFile(f.Name())
	f.Close()
	require.NoError(t, err)
	assert.Equal(t, "outside secret", string(b), "os.Open after the check escapes")
}

// Inside the root every operation works, through links that stay inside,
// under either spelling of a root that is itself reached through a link.
func TestInside(t *testing.T) {
	tr := newTree(t)
	wsLink := filepath.Join(filepath.Dir(tr.ws), "wslink")
	require.NoError(t, os.Symlink(tr.ws, wsLink))
	tr.link(t, "sub", "sublink")
	tr.link(t, "sub/..", "up") // up/notes.txt is ws/notes.txt

	r := openRoot(t, wsLink)
	assert.Equal(t, wsLink, r.Dir())
	for _, base := range []string{tr.ws, wsLink} {
		b, err := r.ReadFile(base + "/notes.txt")
		require.NoError(t, err)
		assert.Equal(t, "inside", string(b))
		b, err = r.ReadFile(base + "/up/notes.txt")
		require.NoError(t, err)
		assert.Equal(t, "inside", string(b))
		b, err = r.ReadFile(base + "/sublink/../notes.txt")
		require.NoError(t, err, "sublink/.. is the parent of sub: ws")
		assert.Equal(t, "inside", string(b))
	}
	b, err := r.ReadFile("notes.txt")
	require.NoError(t, err, "a relative name is relative to the root")
	assert.Equal(t, "inside", string(b))

	require.NoError(t, r.MkdirAll(tr.ws+"/sublink/a/b", 0o755))
	require.NoError(t, r.WriteFile(tr.ws+"/sublink/a/b/c.txt", []byte("c"), fsroot.WriteOptions{Sync: true, Perm: 0o600}))
	fi, err := os.Stat(filepath.Join(tr.ws, "sub", "a", "b", "c.txt"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	err = r.WriteFile(tr.ws+"/sub/a/b/c.txt", []byte("again"), fsroot.WriteOptions{Exclusive: true})
	require.ErrorIs(t, err, fs.ErrExist)
	require.NoError(t, r.Mkdir(tr.ws+"/made", 0o755))
	assert.DirExists(t, filepath.Join(tr.ws, "made"))

	ents, err := r.ReadDir(tr.ws)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"made", "notes.txt", "sub", "sublink", "up"}, names)

	fi, err = r.Stat(tr.ws + "/sublink")
	require.NoError(t, err)
	assert.True(t, fi.IsDir(), "Stat follows a link inside")
	require.NoError(t, r.Remove(tr.ws+"/up"))
	assert.NoFileExists(t, filepath.Join(tr.ws, "up"))
	assert.DirExists(t, filepath.Join(tr.ws, "sub"), "Remove takes the link, not its target")
	_, err = r.Stat(tr.ws + "/missing")
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotErrorIs(t, err, fsroot.ErrOutside)
}

// Names that do not start with the root's directory are outside before any
// file is looked at; so is ".." above it and a link with an absolute target.
func TestNamesOutside(t *testing.T) {
	tr := newTree(t)
	r := openRoot(t, tr.ws)
	abs := tr.link(t, filepath.Join(tr.ws, "notes.txt"), "abs")
	for _, name := range []string{
		"/etc/passwd",
		tr.ws + "2/notes.txt",
		tr.out + "/secret",
		tr.ws + "/../out/secret",
		"../out/secret",
		"sub/../../out/secret",
		abs,
	} {
		_, err := r.ReadFile(name)
		requireOutside(t, err, name)
	}
	for _, name := range []string{"", "notes.txt\x00"} {
		_, err := r.ReadFile(name)
		require.ErrorIs(t, err, fs.ErrInvalid, "%q", name)
	}
}

// os.Root reports an escape with an unexported error; fsroot recognises it
// by its text, which this test pins.
func TestEscapeErrorText(t *testing.T) {
	root, err := os.OpenRoot(t.TempDir())
	require.NoError(t, err)
	defer root.Close()
	_, err = root.Open("../x")
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "path escapes from parent", pe.Err.Error())
}

func TestOpenErrors(t *testing.T) {
	_, err := fsroot.Open(filepath.Join(t.TempDir(), "missing"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o644))
	_, err = fsroot.Open(f)
	require.Error(t, err)
	assert.False(t, errors.Is(err, fsroot.ErrOutside))
}

// While another goroutine keeps swapping a directory for a link to outside
// and back, no read through the Root ever returns the outside file.
func TestConcurrentSwap(t *testing.T) {
	tr := newTree(t)
	require.NoError(t, os.WriteFile(filepath.Join(tr.ws, "sub", "secret"), []byte("benign"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(tr.ws, "real"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(tr.ws, "real", "secret"), []byte("benign"), 0o644))
	r := openRoot(t, tr.ws)
	p := filepath.Join(tr.ws, "sub", "secret")

	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		var err error
		for i := 0; err == nil; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			tmp := filepath.Join(tr.ws, "sub.tmp")
			target := "real" // relative: os.Root refuses absolute links
			if i%2 == 0 {
				target = tr.out
			}
			if err = os.Symlink(target, tmp); err == nil {
				err = os.Rename(tmp, filepath.Join(tr.ws, "sub")) // fails on the directory once, then swaps links
				if err != nil {
					err = errors.Join(os.Rename(filepath.Join(tr.ws, "sub"), filepath.Join(tr.ws, "sub.dir")), os.Rename(tmp, filepath.Join(tr.ws, "sub")))
				}
			}
		}
		done <- err
	}()
	var inside, refused int
	for range 2000 {
		b, err := r.ReadFile(p)
		switch {
		case err == nil:
			require.Equal(t, "benign", string(b), "a read through the Root returned the outside file")
			inside++
		case errors.Is(err, fsroot.ErrOutside):
			refused++
		default:
			require.ErrorIs(t, err, fs.ErrNotExist)
		}
	}
	close(stop)
	require.NoError(t, <-done)
	t.Logf("%d reads inside, %d refused", inside, refused)
	assert.NotZero(t, refused, "the swap was seen")
	assert.NotZero(t, inside, "reads through the link inside succeed")
}
