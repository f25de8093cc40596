package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// allowAllPolicy (conformance_test.go) grants every tool to scope all.

// samplingFunc adapts a function to client.SamplingHandler.
type samplingFunc func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)

func (f samplingFunc) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return f(ctx, req)
}

// rootsFunc adapts a function to client.RootsHandler.
type rootsFunc func(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error)

func (f rootsFunc) ListRoots(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return f(ctx, req)
}

func cannedSampling(asked *atomic.Int32, text string) client.ClientOption {
	return client.WithSamplingHandler(samplingFunc(func(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		asked.Add(1)
		return &mcp.CreateMessageResult{
			SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent(text)},
			Model:           "canned-model",
			StopReason:      "endTurn",
		}, nil
	}))
}

// TestMCPGuardForwardsServerRequests runs mcpguard over stdio in front of
// server-everything, whose tools send sampling, elicitation and roots
// requests to their client in the middle of a call.
func TestMCPGuardForwardsServerRequests(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	root := t.TempDir()
	policy := filepath.Join(root, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(allowAllPolicy), 0o644))
	everything := filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js")

	var sampled, elicited, rooted atomic.Int32
	full := []client.ClientOption{
		cannedSampling(&sampled, "canned answer 7f3a"),
		client.WithElicitationHandler(elicitFunc(func(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			elicited.Add(1)
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
				Action:  mcp.ElicitationResponseActionAccept,
				Content: map[string]any{"name": "Ada Lovelace 91c2", "check": true},
			}}, nil
		})),
		client.WithRootsHandler(rootsFunc(func(ctx context.Context, req mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
			rooted.Add(1)
			return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///srv/project-5d1e", Name: "project"}}}, nil
		})),
	}

	tests := []struct {
		name    string
		opts    []client.ClientOption
		call    toolCall
		isError bool
		texts   []string
		asked   *atomic.Int32
	}{
		{"sampling reaches a client that can sample", full,
			toolCall{"trigger-sampling-request", map[string]any{"prompt": "say hi", "maxTokens": 20}},
			false, []string{"canned answer 7f3a", "canned-model"}, &sampled},
		{"elicitation reaches a client that can elicit", full,
			toolCall{"trigger-elicitation-request", map[string]any{}},
			false, []string{"Ada Lovelace 91c2"}, &elicited},
		{"roots come from the client", full,
			toolCall{"get-roots-list", map[string]any{}},
			false, []string{"file:///srv/project-5d1e"}, &rooted},
		// Its own upstream session does not declare the capability, so
		// the upstream neither lists the tool nor runs it: its -32602
		// comes back as it is.
		{"a client that cannot sample is not offered the tool", nil,
			toolCall{"trigger-sampling-request", map[string]any{"prompt": "say hi", "maxTokens": 20}},
			true, []string{"-32602", "Tool trigger-sampling-request not found"}, nil},
		{"a client that cannot elicit is not offered the tool", nil,
			toolCall{"trigger-elicitation-request", map[string]any{}},
			true, []string{"-32602", "Tool trigger-elicitation-request not found"}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logPath := filepath.Join(root, "log-"+string(rune('a'+i))+".jsonl")
			argv := []string{guard, "-policy", policy, "-audit", logPath, "-principal", "agent", "-scopes", "all",
				"-forward-roots", "--", "node", everything, "stdio"}
			var before int32
			if tt.asked != nil {
				before = tt.asked.Load()
			}
			start := time.Now()
			res := goSession(t, argv, []toolCall{tt.call}, tt.opts...)
			assert.Less(t, time.Since(start), 45*time.Second)
			if tt.asked != nil {
				assert.Contains(t, res.Tools, tt.call.Name, "the upstream offers the tool because the proxy declared the client's capability")
			} else {
				assert.NotContains(t, res.Tools, tt.call.Name, "a client without the capability is not shown the tool")
			}
			require.Len(t, res.Calls, 1)
			got := res.Calls[0]
			assert.Equal(t, tt.isError, got.IsError, got.Text)
			for _, want := range tt.texts {
				assert.Contains(t, got.Text, want)
			}
			if tt.asked != nil {
				assert.Equal(t, before+1, tt.asked.Load(), "the client was asked once")
			}
			recs := verifyLog(t, logPath)
			require.Len(t, recs, 1, "one decision record")
			assert.Equal(t, tt.call.Name, recs[0].Tool)
			assert.Equal(t, "allow", recs[0].Effect)
			assert.Equal(t, "agent", recs[0].Principal)
		})
	}
}

// TestDialProxyRoutesByCallInFlight serves a proxy over streamable HTTP to
// two clients: an upstream request goes to the client whose call sent it,
// also while a call of the other client is in flight (each client has an
// upstream session of its own).
func TestDialProxyRoutesByCallInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	entered, release := make(chan struct{}, 1), make(chan struct{})
	up := server.NewMCPServer("sampler", "1", server.WithToolCapabilities(true))
	up.AddTool(mcp.NewTool("sample"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		sr := mcp.CreateMessageRequest{}
		sr.CreateMessageParams.Messages = []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("hi")}}
		sr.CreateMessageParams.MaxTokens = 10
		res, err := up.RequestSampling(ctx, sr) //nolint:staticcheck // sampling is what is tested
		if err != nil {
			return mcp.NewToolResultError("sampling failed: " + err.Error()), nil
		}
		return mcp.NewToolResultText("sampled: " + res.Content.(mcp.TextContent).Text), nil
	})
	up.AddTool(mcp.NewTool("block"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return mcp.NewToolResultText("released"), nil
	})
	upHTTP := httptest.NewServer(server.NewStreamableHTTPServer(up))
	defer upHTTP.Close()

	pol, err := scope.Parse([]byte(allowAllPolicy))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(pol, toolguard.WithSink(sink))
	require.NoError(t, err)
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{
		URL:           upHTTP.URL,
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()},
	}, g, guardmcp.WithCallTimeout(10*time.Second))
	require.NoError(t, err)
	defer px.Close()
	pr := scope.Principal{ID: "agent", Scopes: []string{"all"}}
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(guardmcp.Static(pr)))))
	defer front.Close()

	var askedA, askedB atomic.Int32
	var clients []*client.Client
	defer func() {
		// Before the servers close: the listening streams end with them.
		for _, c := range clients {
			c.Close()
		}
	}()
	connect := func(asked *atomic.Int32, text string) *client.Client {
		// mcp-go's HTTP server sends sampling requests on the
		// listening (GET) stream.
		tr, err := transport.NewStreamableHTTP(front.URL, transport.WithContinuousListening())
		require.NoError(t, err)
		c := client.NewClient(tr, client.WithLegacyProtocolOnly(), cannedSampling(asked, text))
		clients = append(clients, c)
		require.NoError(t, c.Start(ctx))
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "guardmcp-test", Version: "1"}
		_, err = c.Initialize(ctx, init)
		require.NoError(t, err)
		return c
	}
	a, b := connect(&askedA, "from A"), connect(&askedB, "from B")
	callText := func(c *client.Client, name string) (bool, string) {
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		res, err := c.CallTool(ctx, req)
		require.NoError(t, err)
		require.NotEmpty(t, res.Content)
		return res.IsError, res.Content[0].(mcp.TextContent).Text
	}

	isErr, text := callText(a, "sample")
	assert.False(t, isErr, text)
	assert.Equal(t, "sampled: from A", text)
	isErr, text = callText(b, "sample")
	assert.False(t, isErr, text)
	assert.Equal(t, "sampled: from B", text)

	blocked := make(chan string, 1)
	go func() {
		_, text := callText(a, "block")
		blocked <- text
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the blocking call did not reach the upstream")
	}
	// mcp-go v1.6 delivers a request the upstream sends on a call's own
	// response stream with that call's context, so B's sampling request
	// reaches B even while A's call is in flight.
	isErr, text = callText(b, "sample")
	assert.False(t, isErr, text)
	assert.Equal(t, "sampled: from B", text)
	close(release)
	select {
	case text = <-blocked:
		assert.Equal(t, "released", text)
	case <-ctx.Done():
		t.Fatal("the blocking call did not finish")
	}
	assert.Equal(t, int32(1), askedA.Load(), "A was asked only for its own call")
	assert.Equal(t, int32(2), askedB.Load(), "B was asked only for its own calls")
	assert.Len(t, sink.decisions(), 4, "each call has its decision record")
}
