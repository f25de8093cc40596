package guardmcp_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// requireExternal skips a test that needs node and the packages of
// testdata/node, unless AGENTGUARD_REQUIRE_EXTERNAL=1, when their absence
// fails it. It returns the node_modules directory.
func requireExternal(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	require.NoError(t, err)
	mods := filepath.Join(dir, "node_modules")
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(mods, "@modelcontextprotocol", "sdk")); err != nil {
		missing = "node packages are not installed"
	}
	if missing != "" {
		msg := missing + ": run npm ci in mcp/testdata/node (npm ci --prefix mcp/testdata/node)"
		if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return mods
}

// memSink collects records.
type memSink struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (m *memSink) Write(_ context.Context, r *audit.Record) error {
	// A sink must not retain the record (its slices belong to the
	// guard's pooled buffers): keep a deep copy.
	var c audit.Record
	if err := json.Unmarshal(r.AppendJSON(nil), &c); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, c)
	return nil
}

func (m *memSink) decisions() []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Record
	for _, r := range m.recs {
		if r.Kind == audit.KindDecision {
			out = append(out, r)
		}
	}
	return out
}

const testPolicy = `
version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_text_file, list_directory]
        when: args.path.isUnder(principal.attrs.workspace)
  fs.write:
    grants:
      - tools: [write_file]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
    message: '"secret files are off limits: " + args.path'
`

func testGuard(t testing.TB, sink audit.Sink) *toolguard.Guard {
	t.Helper()
	p, err := scope.Parse([]byte(testPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	return g
}

func principals(workspace string) (ro, rw scope.Principal) {
	ro = scope.Principal{ID: "reader", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": workspace}}
	rw = scope.Principal{ID: "writer", Scopes: []string{"fs.read", "fs.write"}, Attrs: map[string]any{"workspace": workspace}}
	return ro, rw
}

const pathSchema = `{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}`

// fileServer is an in-process server with three file tools that echo what
// they were asked to do (they touch no files).
func fileServer(t testing.TB, g *toolguard.Guard, opts ...guardmcp.Option) *server.MCPServer {
	t.Helper()
	s := server.NewMCPServer("files", "1", guardmcp.ServerOptions(g, opts...)...)
	echo := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(req.Params.Name + " " + req.GetString("path", "")), nil
	}
	for _, name := range []string{"read_text_file", "list_directory"} {
		require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema(name, "", json.RawMessage(pathSchema)), echo))
	}
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewToolWithRawSchema("write_file", "",
		json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"],"additionalProperties":false}`)), echo))
	return s
}

// rpc sends one JSON-RPC message to s and returns the decoded response.
func rpc(t testing.TB, ctx context.Context, s *server.MCPServer, msg string) map[string]any {
	t.Helper()
	resp := s.HandleMessage(ctx, json.RawMessage(msg))
	b, err := json.Marshal(resp)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func listNames(t testing.TB, ctx context.Context, s *server.MCPServer) []string {
	t.Helper()
	resp := rpc(t, ctx, s, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	res, ok := resp["result"].(map[string]any)
	require.True(t, ok, "tools/list failed: %v", resp)
	var names []string
	tools, _ := res["tools"].([]any)
	for _, tl := range tools {
		names = append(names, tl.(map[string]any)["name"].(string))
	}
	return names
}

// callResult is the outcome of a tools/call: a result (possibly isError)
// or a JSON-RPC error.
type callResult struct {
	IsError  bool
	Text     string
	RPCError string
}

func call(t testing.TB, ctx context.Context, s *server.MCPServer, name, args string) callResult {
	t.Helper()
	msg := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":` + mustJSON(name) + `,"arguments":` + args + `}}`
	resp := rpc(t, ctx, s, msg)
	if e, ok := resp["error"].(map[string]any); ok {
		return callResult{RPCError: e["message"].(string)}
	}
	res, ok := resp["result"].(map[string]any)
	require.True(t, ok, "tools/call: %v", resp)
	var cr callResult
	cr.IsError, _ = res["isError"].(bool)
	var texts []string
	content, _ := res["content"].([]any)
	for _, c := range content {
		if s, ok := c.(map[string]any)["text"].(string); ok {
			texts = append(texts, s)
		}
	}
	cr.Text = strings.Join(texts, "\n")
	return cr
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
