package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"encoding/json"
	"math/big"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// typedPolicy: read_file reads under the caller's workspace (a path
// elsewhere is denied by a rule; the schema does not require a path), and
// pay pays at most 100.
const typedPolicy = `
version: 1
scopes:
  tools:
    grants:
      - tools: [read_file]
      - tools: [pay]
        when: args.amount <= 100
rules:
  - name: outside-workspace
    effect: deny
    tools: [read_file]
    when: >
      (has(args.path) && !args.path.isUnder(principal.attrs.workspace)) ||
      (has(args.options) && has(args.options.path) && !args.options.path.isUnder(principal.attrs.workspace))
`

type typedReadArgs struct {
	Path    string `json:"path"`
	Options struct {
		Path string `json:"path"`
	} `json:"options"`
}

// typedServer serves read_file and pay with mcp-go's typed handlers
// (mcp.NewTypedToolHandler, which decodes with BindArguments) over
// streamable HTTP, guarded, and records every path read and every amount
// paid.
type typedServer struct {
	mu    sync.Mutex
	read  []string
	paid  []*big.Rat
	url   string
	wsDir string
}

func newTypedServer(t *testing.T, ws string) *typedServer {
	t.Helper()
	p, err := scope.Parse([]byte(typedPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(&memSink{}))
	require.NoError(t, err)
	ts := &typedServer{wsDir: ws}
	s := server.NewMCPServer("files", "1", guardmcp.ServerOptions(g)...)
	// Schemas as mcp-go's builders write them: no additionalProperties.
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewTool("read_file",
		mcp.WithString("path"),
		mcp.WithObject("options", mcp.Properties(map[string]any{"path": map[string]any{"type": "string"}})),
	), mcp.NewTypedToolHandler(func(_ context.Context, _ mcp.CallToolRequest, a typedReadArgs) (*mcp.CallToolResult, error) {
		var out string
		for _, p := range []string{a.Path, a.Options.Path} {
			if p == "" {
				continue
			}
			ts.mu.Lock()
			ts.read = append(ts.read, p)
			ts.mu.Unlock()
			b, err := os.ReadFile(p)
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			out += string(b)
		}
		return mcp.NewToolResultText(out), nil
	})))
	require.NoError(t, guardmcp.AddTool(s, g, mcp.NewTool("pay", mcp.WithNumber("amount", mcp.Required())),
		mcp.NewTypedToolHandler(func(_ context.Context, _ mcp.CallToolRequest, a struct {
			Amount json.Number `json:"amount"` // the exact decimal, as a payment service reads it
		}) (*mcp.CallToolResult, error) {
			r, ok := new(big.Rat).SetString(a.Amount.String())
			if !ok {
				return mcp.NewToolResultError("bad amount"), nil
			}
			ts.mu.Lock()
			ts.paid = append(ts.paid, r)
			ts.mu.Unlock()
			return mcp.NewToolResultText("paid " + a.Amount.String()), nil
		})))
	pr := scope.Principal{ID: "agent", Scopes: []string{"tools"}, Attrs: map[string]any{"workspace": ws}}
	hs := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(guardmcp.Static(pr)))))
	t.Cleanup(hs.Close)
	ts.url = hs.URL + "/mcp"
	return ts
}

// call sends raw arguments with a real mcp-go client over HTTP.
func (ts *typedServer) call(t *testing.T, name, args string) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.NewStreamableHttpClient(ts.url)
	require.NoError(t, err)
	c = client.NewClient(c.GetTransport(), client.WithLegacyProtocolOnly())
	require.NoError(t, c.Start(ctx))
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = json.RawMessage(args)
	res, err := c.CallTool(ctx, req)
	require.NoError(t, err)
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var s string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			s += tc.Text
		}
	}
	return s
}

// TestTypedHandlerKeysFolding: mcp-go's typed handlers decode arguments
// with encoding/json, which reads "PATH", "Path" or "paTH" into the field
// tagged "path". The guard denies every such call; the handler only ever
// reads the paths the policy judged.
func TestTypedHandlerKeysFolding(t *testing.T) {
	dir := t.TempDir()
	ws := filepath.Join(dir, "w")
	require.NoError(t, os.Mkdir(ws, 0o755))
	ok, secret := filepath.Join(ws, "ok.txt"), filepath.Join(dir, "secret.txt")
	require.NoError(t, os.WriteFile(ok, []byte("public"), 0o644))
	require.NoError(t, os.WriteFile(secret, []byte("TOP SECRET"), 0o600))
	ts := newTypedServer(t, ws)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	res := ts.call(t, "read_file", `{"path":`+q(ok)+`}`)
	require.False(t, res.IsError, resultText(res))
	require.Equal(t, "public", resultText(res))
	res = ts.call(t, "read_file", `{"path":`+q(secret)+`}`)
	require.True(t, res.IsError)

	for _, tc := range []struct{ args, pointer string }{
		{`{"PATH":` + q(secret) + `}`, "/PATH"},
		{`{"path":` + q(ok) + `,"PATH":` + q(secret) + `}`, "/PATH"},
		{`{"PATH":` + q(secret) + `,"path":` + q(ok) + `}`, "/path"},
		{`{"options":{"Path":` + q(secret) + `}}`, "/options/Path"},
		{`{"options":{"path":` + q(ok) + `,"pATH":` + q(secret) + `}}`, "/options/pATH"},
	} {
		res := ts.call(t, "read_file", tc.args)
		require.True(t, res.IsError, "%s: %s", tc.args, resultText(res))
		require.Contains(t, resultText(res), tc.pointer)
		require.Contains(t, resultText(res), "letter case")
		require.NotContains(t, resultText(res), "TOP SECRET")
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	require.Equal(t, []string{ok}, ts.read, "the handler read a path the policy did not judge")
}

// TestTypedHandlerInexactNumbers: the policy would compare
// 100.0000000000000001 as 100, while the typed handler reads the exact
// decimal. The guard denies such a number before the policy.
func TestTypedHandlerInexactNumbers(t *testing.T) {
	ts := newTypedServer(t, t.TempDir())
	for _, a := range []string{`{"amount":100}`, `{"amount":99.5}`, `{"amount":1e2}`} {
		res := ts.call(t, "pay", a)
		require.False(t, res.IsError, resultText(res))
	}
	for _, a := range []string{`{"amount":100.0000000000000001}`, `{"amount":100.00000000000000000001}`, `{"amount":1.0000000000000000001e2}`} {
		res := ts.call(t, "pay", a)
		require.True(t, res.IsError, "%s: %s", a, resultText(res))
		require.Contains(t, resultText(res), "/amount")
		require.Contains(t, resultText(res), "send it as a string")
	}
	res := ts.call(t, "pay", `{"amount":101}`)
	require.True(t, res.IsError)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	require.Len(t, ts.paid, 3)
	for _, p := range ts.paid {
		require.LessOrEqual(t, p.Cmp(big.NewRat(100, 1)), 0, "paid %s", p.FloatString(25))
	}
}

// TestProxyKeysFoldingAndNumbers: the proxy forwards the very bytes the
// guard judged to an upstream mcp-go server whose typed handlers decode
// with encoding/json (keys matched ignoring case, numbers as float64, as a
// JavaScript server reads them too). A key folding like "path" and an
// account number the upstream would read as the blocked one are denied at
// the proxy; the upstream handlers only see judged values.
func TestProxyKeysFoldingAndNumbers(t *testing.T) {
	var mu sync.Mutex
	var read []string
	var accounts []float64
	up := server.NewMCPServer("upstream", "1", server.WithToolCapabilities(true))
	up.AddTool(mcp.NewTool("read_file", mcp.WithString("path")),
		mcp.NewTypedToolHandler(func(_ context.Context, _ mcp.CallToolRequest, a struct {
			Path string `json:"path"`
		}) (*mcp.CallToolResult, error) {
			mu.Lock()
			read = append(read, a.Path)
			mu.Unlock()
			return mcp.NewToolResultText("read " + a.Path), nil
		}))
	up.AddTool(mcp.NewTool("pay", mcp.WithNumber("account", mcp.Required())),
		mcp.NewTypedToolHandler(func(_ context.Context, _ mcp.CallToolRequest, a struct {
			Account float64 `json:"account"`
		}) (*mcp.CallToolResult, error) {
			mu.Lock()
			accounts = append(accounts, a.Account)
			mu.Unlock()
			return mcp.NewToolResultText("paid"), nil
		}))
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  tools:
    grants:
      - tools: [read_file, pay]
rules:
  - name: outside-workspace
    effect: deny
    tools: [read_file]
    when: has(args.path) && !args.path.isUnder(principal.attrs.workspace)
  - name: blocked-account
    effect: deny
    tools: [pay]
    when: args.account == 9007199254740992
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(&memSink{}))
	require.NoError(t, err)
	// The proxy reaches the upstream with mcp-go's in-process client.
	px := newTestProxy(t, up, g)
	ctx := toolguard.WithPrincipal(context.Background(),
		scope.Principal{ID: "agent", Scopes: []string{"tools"}, Attrs: map[string]any{"workspace": "/w"}})

	for _, a := range []string{`{"path":"/w/a.txt"}`, `{}`} {
		res := call(t, ctx, px.Server(), "read_file", a)
		require.False(t, res.IsError, res.Text+res.RPCError)
	}
	res := call(t, ctx, px.Server(), "pay", `{"account":9007199254740991}`)
	require.False(t, res.IsError, res.Text+res.RPCError)
	res = call(t, ctx, px.Server(), "pay", `{"account":9007199254740992}`)
	require.True(t, res.IsError, "the policy must deny the blocked account")

	for _, c := range []struct{ tool, args, want string }{
		{"read_file", `{"PATH":"/etc/passwd"}`, "letter case"},
		{"read_file", `{"path":"/w/a.txt","Path":"/etc/passwd"}`, "letter case"},
		{"read_file", `{"pat\u0127":"/x","p\u0041th":"/etc/shadow"}`, "letter case"},
		{"pay", `{"account":9007199254740993}`, "send it as a string"},
		{"pay", `{"account":9.007199254740993e15}`, "send it as a string"},
	} {
		res := call(t, ctx, px.Server(), c.tool, c.args)
		require.True(t, res.IsError, "%s: %s%s", c.args, res.Text, res.RPCError)
		require.Contains(t, res.Text, c.want)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"/w/a.txt", ""}, read)
	require.Equal(t, []float64{9007199254740991}, accounts)
}
