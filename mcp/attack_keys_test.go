package guardmcp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestTypedHandlerFreeFormObjectKeys: mcp.WithObject("opts") without
// properties leaves the object free-form, so the schema declares no path
// in it; a rule reading args.opts.path must still not be walked around
// with {"opts":{"PATH":...}}, which mcp-go's typed handler reads as path.
func TestTypedHandlerFreeFormObjectKeys(t *testing.T) {
	ws := t.TempDir()
	env := filepath.Join(ws, ".env")
	require.NoError(t, os.WriteFile(env, []byte("API_KEY=TOPSECRET"), 0o600))
	ok := filepath.Join(ws, "ok.txt")
	require.NoError(t, os.WriteFile(ok, []byte("public"), 0o644))
	p, err := scope.Parse([]byte(`version: 1
scopes:
  tools:
    grants:
      - tools: [read]
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.opts) && has(args.opts.path) && args.opts.path.glob("**/.env*")
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(&memSink{}))
	require.NoError(t, err)
	s := server.NewMCPServer("files", "1", guardmcp.ServerOptions(g)...)
	var mu sync.Mutex
	var read []string
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewTool("read", mcp.WithObject("opts")),
		mcp.NewTypedToolHandler(func(_ context.Context, _ mcp.CallToolRequest, a struct {
			Opts struct {
				Path string `json:"path"`
			} `json:"opts"`
		}) (*mcp.CallToolResult, error) {
			mu.Lock()
			read = append(read, a.Opts.Path)
			mu.Unlock()
			b, err := os.ReadFile(a.Opts.Path)
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText(string(b)), nil
		})))
	pr := scope.Principal{ID: "agent", Scopes: []string{"tools"}}
	hs := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(guardmcp.Static(pr)))))
	t.Cleanup(hs.Close)
	ts := &typedServer{url: hs.URL + "/mcp"}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	res := ts.call(t, "read", `{"opts":{"path":`+q(ok)+`}}`)
	require.False(t, res.IsError, resultText(res))
	require.Equal(t, "public", resultText(res))
	res = ts.call(t, "read", `{"opts":{"path":`+q(env)+`}}`)
	require.True(t, res.IsError)
	for _, args := range []string{
		`{"opts":{"PATH":` + q(env) + `}}`,
		`{"opts":{"Path":` + q(env) + `}}`,
		`{"OPTS":{"path":` + q(env) + `}}`,
	} {
		res := ts.call(t, "read", args)
		require.True(t, res.IsError, "%s: %s", args, resultText(res))
		require.Contains(t, resultText(res), "letter case")
		require.NotContains(t, resultText(res), "TOPSECRET")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{ok}, read, "the handler read a path no rule judged")
}
