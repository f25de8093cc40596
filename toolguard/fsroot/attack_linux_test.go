package fsroot_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// TestAttackBindMount documents a limit shared by the Root and by
// resolvesUnder: a bind mount of a directory outside, made inside the
// root (which takes privilege), is part of the tree. Both follow it; only
// a rule that names the outside directory itself (resolvesUnder compares
// the directory's identity, not its name) still sees where it leads.
func TestAttackBindMount(t *testing.T) {
	tr := newTree(t)
	mnt := filepath.Join(tr.ws, "mnt")
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if err := syscall.Mount(tr.out, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here (needs privilege): %v", err)
	}
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(mnt, 0)) })
	r := openRoot(t, tr.ws)
	b, err := r.ReadFile(filepath.Join(mnt, "secret"))
	require.NoError(t, err)
	assert.Equal(t, "outside secret", string(b))
	ok, err := scope.ResolvesUnder(filepath.Join(mnt, "secret"), tr.ws)
	require.NoError(t, err)
	assert.True(t, ok, "the mount is a directory inside the workspace")
	ok, err = scope.ResolvesUnder(filepath.Join(mnt, "secret"), tr.out)
	require.NoError(t, err)
	assert.True(t, ok, "and it is the outside directory itself")
}
