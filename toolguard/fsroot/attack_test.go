package fsroot_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/toolguard/fsroot"
)

// TestAttackNames: odd names and other spellings of the root. Nothing
// outside is read; every refusal is an *fs.PathError naming the path as
// given.
func TestAttackNames(t *testing.T) {
	tr := newTree(t)
	dir := filepath.Dir(tr.ws)
	tr.link(t, "../out/secret", "fileout")
	tr.link(t, "../out", "dirout")
	tr.link(t, "/", "slash")
	tr.link(t, ".", "dot")
	tr.link(t, "../ws/notes.txt", "viaparent") // leaves the root and comes back
	tr.link(t, filepath.Join(tr.ws, "notes.txt"), "absin")
	require.NoError(t, os.Symlink(tr.ws, filepath.Join(dir, "wslink")))
	r := openRoot(t, tr.ws)

	inside := []string{
		tr.ws + "//notes.txt", tr.ws + "/./notes.txt", "dot/notes.txt", "dot/dot/notes.txt", "./notes.txt", "notes.txt",
	}
	for _, n := range inside {
		b, err := r.ReadFile(n)
		require.NoError(t, err, n)
		assert.Equal(t, "inside", string(b), n)
	}
	outside := []string{
		"..", tr.ws + "/..", "/", "fileout", "dirout/secret", "slash" + tr.out + "/secret", "dirout/../ws/notes.txt",
		"viaparent", "absin", "dot/dot/../ws/notes.txt", tr.ws + "/../ws/notes.txt", tr.ws + "/sub/../../out/secret",
		filepath.Join(dir, "wslink", "notes.txt"), "/proc/self/cwd/notes.txt", "/proc/self/root" + tr.ws + "/notes.txt",
		tr.ws + "x/notes.txt", filepath.Join(dir, "WS", "notes.txt"),
	}
	for _, n := range outside {
		b, err := r.ReadFile(n)
		require.Error(t, err, n)
		assert.NotEqual(t, "outside secret", string(b))
		requireOutside(t, err, n)
	}
	for _, n := range []string{"", "\x00", "notes.txt\x00x"} {
		_, err := r.ReadFile(n)
		require.ErrorIs(t, err, fs.ErrInvalid, "%q", n)
	}
	// A backslash is an ordinary character of a name on Linux.
	_, err := r.ReadFile(`sub\..\..\out\secret`)
	require.ErrorIs(t, err, fs.ErrNotExist)
	// The root itself, under any spelling, is a directory.
	for _, n := range []string{".", tr.ws, tr.ws + "/", tr.ws + "/."} {
		_, err := r.ReadFile(n)
		require.Error(t, err, n)
		assert.NotErrorIs(t, err, fsroot.ErrOutside, n)
	}
}

// TestAttackRel: Rel maps only names below the root; "." and ".." are kept
// for the operation to resolve.
func TestAttackRel(t *testing.T) {
	tr := newTree(t)
	r := openRoot(t, tr.ws)
	for in, want := range map[string]string{
		".": ".", tr.ws: ".", tr.ws + "/": ".", tr.ws + "//": ".", "a/": "a/", tr.ws + "/a/../b": "a/../b",
		"..": "..", "../x": "../x", tr.ws + "/..": "..", "//" + tr.ws[1:] + "/a": "a",
	} {
		got, err := r.Rel(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"/", tr.ws + "x", filepath.Dir(tr.ws), tr.out + "/secret"} {
		_, err := r.Rel(in)
		require.ErrorIs(t, err, fsroot.ErrOutside, in)
	}
}

// TestAttackWrites: creating through dangling links, MkdirAll through a
// link, Exclusive over a dangling link. Nothing is created outside.
func TestAttackWrites(t *testing.T) {
	tr := newTree(t)
	tr.link(t, "../out/new", "dangle_out")
	tr.link(t, "new_in", "dangle_in")
	tr.link(t, "../out", "dirout")
	r := openRoot(t, tr.ws)

	err := r.WriteFile("dangle_out", []byte("x"), fsroot.WriteOptions{})
	requireOutside(t, err, "dangle_out")
	// O_EXCL does not follow the final link: the link itself exists.
	err = r.WriteFile("dangle_out", []byte("x"), fsroot.WriteOptions{Exclusive: true})
	require.ErrorIs(t, err, fs.ErrExist)
	err = r.WriteFile("dangle_in", []byte("x"), fsroot.WriteOptions{Exclusive: true})
	require.ErrorIs(t, err, fs.ErrExist)
	// Without Exclusive a dangling link whose target is inside creates it.
	require.NoError(t, r.WriteFile("dangle_in", []byte("x"), fsroot.WriteOptions{Sync: true}))
	_, err = os.Lstat(filepath.Join(tr.ws, "new_in"))
	require.NoError(t, err)

	requireOutside(t, r.MkdirAll("dirout/x/y", 0o755), "dirout/x/y")
	requireOutside(t, r.MkdirAll("dangle_out/x", 0o755), "dangle_out/x")
	require.ErrorIs(t, r.Mkdir("dangle_out", 0o755), fs.ErrExist)
	_, err = r.OpenFile("dirout/secret", os.O_WRONLY|os.O_TRUNC, 0)
	requireOutside(t, err, "dirout/secret")
	_, err = r.OpenFile("dirout/new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	requireOutside(t, err, "dirout/new")

	for _, p := range []string{"new", "x", "deep/x"} {
		_, err := os.Lstat(filepath.Join(tr.out, p))
		require.ErrorIs(t, err, fs.ErrNotExist, "created outside: %s", p)
	}
	b, err := os.ReadFile(filepath.Join(tr.out, "secret"))
	require.NoError(t, err)
	assert.Equal(t, "outside secret", string(b))
}

// TestAttackRemoveAndList: Remove of a link pointing outside removes the
// link, never the target; removing through a link, the root itself or
// its parent fails; ReadDir and Stat of a link outside fail.
func TestAttackRemoveAndList(t *testing.T) {
	tr := newTree(t)
	tr.link(t, "../out/secret", "fileout")
	tr.link(t, "../out", "dirout")
	r := openRoot(t, tr.ws)

	_, err := r.ReadDir("dirout")
	requireOutside(t, err, "dirout")
	_, err = r.Stat("fileout")
	requireOutside(t, err, "fileout")
	requireOutside(t, r.Remove("dirout/secret"), "dirout/secret")
	requireOutside(t, r.Remove(".."), "..")
	require.Error(t, r.Remove("."))
	require.Error(t, r.Remove(tr.ws+"/"))

	require.NoError(t, r.Remove("fileout"))
	_, err = os.Lstat(filepath.Join(tr.ws, "fileout"))
	require.ErrorIs(t, err, fs.ErrNotExist, "the link is gone")
	b, err := os.ReadFile(filepath.Join(tr.out, "secret"))
	require.NoError(t, err, "the target stays")
	assert.Equal(t, "outside secret", string(b))
	_, err = os.Stat(tr.ws)
	require.NoError(t, err, "the root stays")
}

// TestAttackHardLink documents a limit: a hard link inside the root to a
// file outside is a name inside; the Root reads it.
func TestAttackHardLink(t *testing.T) {
	tr := newTree(t)
	if err := os.Link(filepath.Join(tr.out, "secret"), filepath.Join(tr.ws, "hard")); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	r := openRoot(t, tr.ws)
	b, err := r.ReadFile("hard")
	require.NoError(t, err)
	assert.Equal(t, "outside secret", string(b))
}

// TestAttackSwap: while readers open ws/d/secret through the Root, another
// goroutine swaps ws/d between a directory and a link to out (whose
// secret file has the same name), and a second one swaps ws/f between a
// file and a link to out/secret. No read ever returns the outside content;
// reads that lose the race fail with ErrOutside or "not exist".
func TestAttackSwap(t *testing.T) {
	tr := newTree(t)
	d := filepath.Join(tr.ws, "d")
	require.NoError(t, os.Mkdir(d, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d, "secret"), []byte("inside"), 0o644))
	inDir := filepath.Join(tr.ws, "d.in")
	require.NoError(t, os.Rename(d, inDir))
	require.NoError(t, os.Symlink("d.in", d))
	r := openRoot(t, tr.ws)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tmp := filepath.Join(tr.ws, "d.tmp")
		for i := 0; !stop.Load(); i++ {
			target := "d.in"
			if i%2 == 1 {
				target = "../out" // relative, so only the walk out of the root refuses it
			}
			_ = os.Remove(tmp)
			if os.Symlink(target, tmp) == nil {
				_ = os.Rename(tmp, d) // atomic swap of the link
			}
		}
	}()
	var inside, refused int
	for range 3000 {
		b, err := r.ReadFile(filepath.Join(d, "secret"))
		switch {
		case err == nil:
			require.Equal(t, "inside", string(b), "read the file outside")
			inside++
		case errors.Is(err, fsroot.ErrOutside):
			refused++
		default:
			require.ErrorIs(t, err, fs.ErrNotExist)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("inside %d, refused %d", inside, refused)
	assert.Positive(t, inside+refused)
}
