package scope_test

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// A bind mount of a denied directory is the denied directory: a rule that
// denies by resolvesUnder fires for a path through the mount, which a
// comparison of names would miss.
func TestResolvesUnderBindMount(t *testing.T) {
	dir := fsTree(t)
	secrets, mnt := filepath.Join(dir, "out", "deep"), filepath.Join(dir, "ws", "mnt")
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "key"), []byte("k"), 0o600))
	require.NoError(t, os.Mkdir(mnt, 0o755))
	if err := syscall.Mount(secrets, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("cannot bind-mount here: %v", err)
	}
	t.Cleanup(func() { require.NoError(t, syscall.Unmount(mnt, 0)) })

	p := compile(t, `version: 1
scopes: {files: {grants: [{tools: [read], when: args.path.resolvesUnder(principal.attrs.workspace)}]}}
rules: [{name: no-secrets, effect: deny, tools: [read], when: args.path.resolvesUnder(principal.attrs.secrets)}]
`)
	i := in("u", []string{"files"}, "read", map[string]any{"path": mnt + "/key"})
	i.Principal.Attrs = map[string]any{"workspace": dir + "/ws", "secrets": secrets}
	d := p.Decide(t.Context(), i)
	assert.Equal(t, scope.Deny, d.Effect)
	assert.Contains(t, d.Reason, "no-secrets")
	ok, err := scope.ResolvesUnder(mnt+"/new/file", secrets)
	require.NoError(t, err)
	assert.True(t, ok, "a file not yet created below the mount")
}

// Links in /proc lead to open files, not to the paths they show, so they
// are not judged.
func TestResolvesUnderProc(t *testing.T) {
	dir := fsTree(t)
	ws := dir + "/ws"
	f, err := os.Open(ws + "/notes.txt")
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, os.Symlink("/proc/self/root"+dir+"/out", ws+"/viaproc"))
	for _, p := range []string{
		"/proc/self/root" + ws + "/notes.txt",
		"/dev/fd/" + strconv.Itoa(int(f.Fd())),
		ws + "/viaproc/secret",
	} {
		ok, err := scope.ResolvesUnder(p, ws)
		require.Error(t, err, p)
		assert.Contains(t, err.Error(), "/proc")
		assert.False(t, ok)
	}
}
