package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/fsroot"
)

// A lexical policy, as most are: it allows any path written under the
// workspace, links included.
const lexicalPolicy = `version: 1
scopes:
  fs.rw:
    grants:
      - tools: [read_text_file, list_directory, write_file]
        when: args.path.isUnder(principal.attrs.workspace)
`

type fixture struct {
	ws, out string
	c       *client.Client
	ctx     context.Context
}

// newFixture serves the example's tools over an in-process mcp-go client,
// on a workspace with links that lead out of it:
//
//	ws/notes.txt
//	ws/outdir   -> out       (a directory outside)
//	ws/outfile  -> out/secret
//	ws/dangling -> out/created (does not exist yet)
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	f := &fixture{ws: filepath.Join(dir, "ws"), out: filepath.Join(dir, "out")}
	require.NoError(t, os.MkdirAll(f.ws, 0o755))
	require.NoError(t, os.MkdirAll(f.out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.ws, "notes.txt"), []byte("inside"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(f.out, "secret"), []byte("outside secret"), 0o644))
	require.NoError(t, os.Symlink(f.out, filepath.Join(f.ws, "outdir")))
	require.NoError(t, os.Symlink(filepath.Join(f.out, "secret"), filepath.Join(f.ws, "outfile")))
	require.NoError(t, os.Symlink(filepath.Join(f.out, "created"), filepath.Join(f.ws, "dangling")))

	p, err := scope.Parse([]byte(lexicalPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	root, err := fsroot.Open(f.ws)
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	s := server.NewMCPServer("files", "1", guardmcp.ServerOptions(g)...)
	require.NoError(t, addTools(s, g, root))

	f.c, err = client.NewInProcessClient(s)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	require.NoError(t, f.c.Start(ctx))
	t.Cleanup(func() { f.c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	_, err = f.c.Initialize(ctx, init)
	require.NoError(t, err)
	f.ctx = toolguard.WithPrincipal(ctx, scope.Principal{ID: "bot", Scopes: []string{"fs.rw"}, Attrs: map[string]any{"workspace": f.ws}})
	return f
}

func (f *fixture) call(t *testing.T, tool string, args map[string]any) (string, bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := f.c.CallTool(f.ctx, req)
	require.NoError(t, err)
	require.NotEmpty(t, res.Content)
	return res.Content[0].(mcp.TextContent).Text, res.IsError
}

// The policy allows each of these paths (they are written under the
// workspace); the tools refuse them when they open the file, and nothing
// is created or read outside.
func TestToolsStayInsideRoot(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"write_file", map[string]any{"path": f.ws + "/outdir/pwned.txt", "content": "x"}},
		{"write_file", map[string]any{"path": f.ws + "/dangling", "content": "x"}},
		{"write_file", map[string]any{"path": f.ws + "/outfile", "content": "overwritten"}},
		{"read_text_file", map[string]any{"path": f.ws + "/outfile"}},
		{"read_text_file", map[string]any{"path": f.ws + "/outdir/secret"}},
		{"list_directory", map[string]any{"path": f.ws + "/outdir"}},
	} {
		text, isErr := f.call(t, c.tool, c.args)
		assert.True(t, isErr, "%s %v: %s", c.tool, c.args, text)
		assert.Contains(t, text, "access denied")
		assert.Contains(t, text, "outside the allowed directory")
		assert.NotContains(t, text, "outside secret")
	}
	assert.NoFileExists(t, filepath.Join(f.out, "pwned.txt"), "no write through the linked directory")
	assert.NoFileExists(t, filepath.Join(f.out, "created"), "no write through the dangling link")
	b, err := os.ReadFile(filepath.Join(f.out, "secret"))
	require.NoError(t, err)
	assert.Equal(t, "outside secret", string(b))
}

func TestToolsInsideRoot(t *testing.T) {
	f := newFixture(t)
	text, isErr := f.call(t, "write_file", map[string]any{"path": f.ws + "/new.txt", "content": "written"})
	require.False(t, isErr, text)
	text, isErr = f.call(t, "read_text_file", map[string]any{"path": f.ws + "/new.txt"})
	require.False(t, isErr, text)
	assert.Equal(t, "written", text)
	text, isErr = f.call(t, "list_directory", map[string]any{"path": f.ws})
	require.False(t, isErr, text)
	assert.Equal(t, "[FILE] dangling\n[FILE] new.txt\n[FILE] notes.txt\n[FILE] outdir\n[FILE] outfile", text)
	text, isErr = f.call(t, "read_text_file", map[string]any{"path": f.out + "/secret"})
	assert.True(t, isErr)
	assert.Contains(t, text, "no scope held", "the policy still decides first")
}
