package guardmcp_test

//lint:file-ignore SA1019 the test speaks the legacy MCP protocol on purpose: an initialize handshake, and server→client requests on the GET stream

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestStdioUpstreamRequestsOnFirstCall puts a TypeScript SDK server that
// sends its elicitation and sampling requests outside the call (as the
// conformance suite's reference server does) behind a stdio upstream
// (testdata/node/stdio-bridge.mjs), and has clients call the tool that
// sends them right after initialize, while their upstream process is still
// starting: each client is asked, and only it, and its answer comes back.
// Before the bridge opened the server's GET stream first, such first calls
// hung until the request timed out.
func TestStdioUpstreamRequestsOnFirstCall(t *testing.T) {
	mods := requireExternal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	port := freePort(t)
	srv := exec.Command("node", filepath.Join(mods, "..", "session-requests.mjs"))
	srv.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	startProcess(t, srv)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, 20*time.Second)

	pol, err := scope.Parse([]byte(allowAllPolicy))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(pol, toolguard.WithSink(sink))
	require.NoError(t, err)
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{
		Command:       []string{"node", filepath.Join(mods, "..", "stdio-bridge.mjs"), "http://" + addr + "/mcp"},
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()},
	}, g, guardmcp.WithCallTimeout(15*time.Second))
	require.NoError(t, err)
	defer px.Close()
	pr := scope.Principal{ID: "agent", Scopes: []string{"all"}}
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(guardmcp.Static(pr)))))
	defer front.Close()

	const rounds = 3
	var mu sync.Mutex
	var clients []*client.Client
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range clients {
			c.Close()
		}
	}()
	// session connects a client that answers as name, calls tool at once
	// and returns the result's text.
	session := func(name, tool string, asked *atomic.Int32) (string, error) {
		tr, err := transport.NewStreamableHTTP(front.URL, transport.WithContinuousListening())
		if err != nil {
			return "", err
		}
		c := client.NewClient(tr, client.WithLegacyProtocolOnly(), cannedSampling(asked, name),
			client.WithElicitationHandler(elicitFunc(func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
				asked.Add(1)
				return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
					Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"name": name}}}, nil
			})))
		mu.Lock()
		clients = append(clients, c)
		mu.Unlock()
		if err := c.Start(ctx); err != nil {
			return "", err
		}
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "guardmcp-test-" + name, Version: "1"}
		if _, err := c.Initialize(ctx, init); err != nil {
			return "", err
		}
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		res, err := c.CallTool(ctx, req)
		if err != nil {
			return "", err
		}
		if len(res.Content) == 0 {
			return "", fmt.Errorf("%s: an empty result", tool)
		}
		text, _ := res.Content[0].(mcp.TextContent)
		if res.IsError {
			return "", fmt.Errorf("%s: %s", tool, text.Text)
		}
		return text.Text, nil
	}

	for i := range rounds {
		tool := "ask"
		want := func(name string) string { return "accept: " + name }
		if i == rounds-1 {
			tool = "sample"
			want = func(name string) string { return "sampled: " + name }
		}
		var wg sync.WaitGroup
		for _, name := range []string{fmt.Sprintf("alpha%d", i), fmt.Sprintf("bravo%d", i)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var asked atomic.Int32
				text, err := session(name, tool, &asked)
				if assert.NoError(t, err, "%s's first call of %s", name, tool) {
					assert.Equal(t, want(name), text, "%s gets its own answer back", name)
				}
				assert.Equal(t, int32(1), asked.Load(), "%s was asked once, for its own call", name)
			}()
		}
		wg.Wait()
	}
	assert.Len(t, sink.decisions(), 2*rounds, "each call has its decision record")
}
