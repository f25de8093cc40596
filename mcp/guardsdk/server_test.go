package guardsdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/mcp/guardsdk"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const policy = `
version: 1
scopes:
  files.read:
    grants:
      - tools: [read_file]
        when: args.path.startsWith("/w/")
  files.write:
    grants:
      - tools: [write_file]
rules:
  - name: no-dotenv
    effect: deny
    tools: [read_file]
    when: args.path.endsWith(".env")
    message: '"secret files are off limits: " + args.path'
  - name: confirm-writes
    effect: ask
    tools: [write_file]
    message: '"writing " + args.path'
`

type readArgs struct {
	Path string `json:"path"`
}

type writeArgs struct {
	Path string `json:"path"`
	Text string `json:"text"`
}

var bot = scope.Principal{ID: "bot", Scopes: []string{"files.read", "files.write"}}

// fixture is a guarded go-sdk server with a record of what ran.
type fixture struct {
	server  *mcp.Server
	guard   *toolguard.Guard
	records *bytes.Buffer
	writes  atomic.Int32
}

func newFixture(t *testing.T, pf guardsdk.PrincipalFunc, opts ...toolguard.Option) *fixture {
	t.Helper()
	p, err := scope.Parse([]byte(policy))
	require.NoError(t, err)
	f := &fixture{records: &bytes.Buffer{}}
	opts = append([]toolguard.Option{toolguard.WithSink(audit.NewLog(f.records))}, opts...)
	f.guard, err = toolguard.New(p, opts...)
	require.NoError(t, err)
	f.server = mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1.0.0"}, nil)
	f.server.AddReceivingMiddleware(guardsdk.Middleware(f.guard, pf))
	require.NoError(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "read_file", Description: "Read a file."},
		func(_ context.Context, _ *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
			if in.Path == "/w/missing.txt" {
				return nil, nil, errors.New("no such file")
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "contents of " + in.Path}}}, nil, nil
		}))
	require.NoError(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "write_file", Description: "Write a file."},
		func(_ context.Context, _ *mcp.CallToolRequest, in writeArgs) (*mcp.CallToolResult, any, error) {
			f.writes.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "wrote " + in.Path}}}, nil, nil
		}))
	return f
}

// connect connects a client over in-memory transports. The returned
// function closes the session and returns the verified audit summary.
func (f *fixture) connect(t *testing.T, copts *mcp.ClientOptions) (*mcp.ClientSession, func() audit.Summary) {
	return f.connectVersion(t, copts, "2025-11-25")
}

// connectVersion connects a client that asks for protocol version v.
func (f *fixture) connectVersion(t *testing.T, copts *mcp.ClientOptions, v string) (*mcp.ClientSession, func() audit.Summary) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := f.server.Connect(ctx, st, nil)
	require.NoError(t, err)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, copts).Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: v})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = cs.Close()
			_ = ss.Wait()
		}
	})
	return cs, func() audit.Summary {
		closed = true
		require.NoError(t, cs.Close())
		_ = ss.Wait()
		sum, err := audit.Verify(bytes.NewReader(f.records.Bytes()), audit.VerifyOptions{})
		require.NoError(t, err, "the audit log verifies")
		return sum
	}
}

func text(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	require.Len(t, res.Content, 1)
	tc, ok := res.Content[0].(*mcp.TextContent)
	require.True(t, ok, "content is %T", res.Content[0])
	return tc.Text
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, guardsdk.Static(scope.Principal{ID: "bot", Scopes: []string{"files.read"}}))
	cs, finish := f.connect(t, nil)
	ctx := context.Background()

	list, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	assert.Equal(t, []string{"read_file"}, names, "write_file is not granted: not listed")
	assert.Equal(t, "private", list.CacheScope)

	calls := []struct {
		name, tool string
		args       any
		isError    bool
		want       string
	}{
		{"allowed", "read_file", map[string]any{"path": "/w/notes.txt"}, false, "contents of /w/notes.txt"},
		{"deny rule", "read_file", map[string]any{"path": "/w/.env"}, true, `denied by rule "no-dotenv": secret files are off limits: /w/.env`},
		{"no grant", "read_file", map[string]any{"path": "/etc/passwd"}, true, `args.path.startsWith("/w/")`},
		{"hidden tool", "write_file", map[string]any{"path": "/w/x", "text": "x"}, true, `grants tool "write_file"`},
		{"unknown tool", "shell", map[string]any{"cmd": "id"}, true, `call to "shell" denied`},
		{"schema violation", "read_file", map[string]any{"path": 42}, true, "at /path: got number, want string"},
		{"duplicate keys", "read_file", json.RawMessage(`{"path":"/w/.env","path":"/w/notes.txt"}`), true, `key "path" appears twice`},
		{"case-folded duplicate", "read_file", json.RawMessage(`{"path":"/w/notes.txt","PATH":"/w/.env"}`), true, "PATH"},
		{"tool error", "read_file", map[string]any{"path": "/w/missing.txt"}, true, "no such file"},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
			require.NoError(t, err)
			assert.Equal(t, c.isError, res.IsError)
			assert.Contains(t, text(t, res), c.want)
			if c.isError {
				assert.NotRegexp(t, `\b(toolguard|guardsdk|guardmcp|scope|audit): `, text(t, res), "the model reads no Go package names")
			}
		})
	}
	assert.Zero(t, f.writes.Load())
	sum := finish()
	assert.Equal(t, len(calls), sum.Decisions, "every call is decided and recorded")
	assert.Equal(t, 2, sum.Allowed, "the read and the read of a missing file")
	assert.Equal(t, 1, sum.ByRule["no-dotenv"])
}

func TestNoPrincipal(t *testing.T) {
	f := newFixture(t, func(context.Context, mcp.Request) (scope.Principal, error) {
		return scope.Principal{}, errors.New("token expired")
	})
	cs, finish := f.connect(t, nil)
	ctx := context.Background()
	list, err := cs.ListTools(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, list.Tools)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/w/notes.txt"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(t, res), "(token expired)")
	assert.Equal(t, 1, finish().Denied)
}

func TestTokenPrincipal(t *testing.T) {
	tests := []struct {
		name    string
		extra   *mcp.RequestExtra
		want    string
		wantErr string
	}{
		{"no extra", nil, "", "no verified bearer token"},
		{"no token", &mcp.RequestExtra{}, "", "no verified bearer token"},
		{"no user", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{Scopes: []string{"files.read"}}}, "", "names no user"},
		{"user", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "alice", Scopes: []string{"files.read"}}}, "alice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := guardsdk.TokenPrincipal(context.Background(), &mcp.CallToolRequest{Extra: tt.extra})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, pr.ID)
			assert.Equal(t, []string{"files.read"}, pr.Scopes)
		})
	}
}

// TestTokenPrincipalOverHTTP: over streamable HTTP behind the SDK's
// bearer-token check, the verified token's user is the principal, and a
// request without a token never reaches the tools.
func TestTokenPrincipalOverHTTP(t *testing.T) {
	f := newFixture(t, guardsdk.TokenPrincipal)
	verify := func(_ context.Context, tok string, _ *http.Request) (*auth.TokenInfo, error) {
		if tok != "good" {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: "bot", Scopes: []string{"files.read"}, Expiration: time.Now().Add(time.Hour)}, nil
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return f.server }, nil)
	srv := httptest.NewServer(auth.RequireBearerToken(verify, nil)(h))
	t.Cleanup(srv.Close)
	ctx := context.Background()

	connect := func(tok string) (*mcp.ClientSession, error) {
		hc := &http.Client{Transport: bearer{tok}}
		return mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).
			Connect(ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc}, nil)
	}
	_, err := connect("bad")
	require.Error(t, err, "no session without a valid token")

	cs, err := connect("good")
	require.NoError(t, err)
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/w/a.txt"}})
	require.NoError(t, err)
	assert.False(t, res.IsError, text(t, res))
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": "/w/a.txt", "text": "x"}})
	require.NoError(t, err)
	assert.True(t, res.IsError, "the token's scopes hold no write grant")
	assert.Zero(t, f.writes.Load())
}

type bearer struct{ tok string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

func TestAddToolRejects(t *testing.T) {
	f := newFixture(t, guardsdk.Static(bot))
	h := func(context.Context, *mcp.CallToolRequest, readArgs) (*mcp.CallToolResult, any, error) {
		return nil, nil, nil
	}
	assert.Error(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "read_file"}, h), "a duplicate")
	assert.Error(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "bad name!"}, h), "an invalid name")
	assert.Error(t, guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "list", InputSchema: map[string]any{"type": "array"}}, h), "not an object schema")
	chanOut := func(context.Context, *mcp.CallToolRequest, readArgs) (*mcp.CallToolResult, chan int, error) {
		return nil, nil, nil
	}
	err := guardsdk.AddTool(f.server, f.guard, &mcp.Tool{Name: "list"}, chanOut)
	require.ErrorContains(t, err, "output schema")
	_, known := f.guard.Tool("list")
	assert.False(t, known, "a tool the server refused is taken off the guard")
	assert.Error(t, guardsdk.AddTool[readArgs, any](f.server, f.guard, &mcp.Tool{Name: "x"}, nil))
}

// TestHandlerOnlyThroughMiddleware: a server whose middleware is missing
// cannot run a guarded tool: the guard's handler refuses.
func TestHandlerOnlyThroughMiddleware(t *testing.T) {
	p, err := scope.Parse([]byte(policy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	s := mcp.NewServer(&mcp.Implementation{Name: "x", Version: "1"}, nil)
	ran := false
	require.NoError(t, guardsdk.AddTool(s, g, &mcp.Tool{Name: "read_file"},
		func(context.Context, *mcp.CallToolRequest, readArgs) (*mcp.CallToolResult, any, error) {
			ran = true
			return &mcp.CallToolResult{}, nil, nil
		}))
	ctx := toolguard.WithPrincipal(context.Background(), bot)
	_, err = g.Call(ctx, "read_file", json.RawMessage(`{"path":"/w/a"}`))
	require.ErrorContains(t, err, "runs only through the MCP server's middleware")
	assert.False(t, ran)
}

// TestStdioServer runs a guarded server as its own process over stdio,
// as an MCP host would, and calls it with the SDK's command transport.
func TestStdioServer(t *testing.T) {
	if os.Getenv("GUARDSDK_STDIO_CHILD") == "1" {
		return
	}
	if testing.Short() {
		t.Skip("builds a program")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/stdioserver").CombinedOutput()
	require.NoError(t, err, string(out))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.Command(bin, filepath.Join(dir, "decisions.jsonl"))
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	require.NoError(t, err)
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/w/.env"}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(t, res), "secret files are off limits")
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/w/a.txt"}})
	require.NoError(t, err)
	assert.False(t, res.IsError)
	require.NoError(t, cs.Close())
	log, err := os.ReadFile(filepath.Join(dir, "decisions.jsonl"))
	require.NoError(t, err)
	sum, err := audit.Verify(bytes.NewReader(log), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Decisions)
	assert.True(t, strings.Contains(string(log), `"rule":"no-dotenv"`))
}
