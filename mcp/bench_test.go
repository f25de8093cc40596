package guardmcp_test

//lint:file-ignore SA1019 the tests speak the legacy MCP protocol on purpose: an initialize handshake, and server→client requests

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

func httpClient(b *testing.B, url string) *client.Client {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.NewStreamableHttpClient(url)
	require.NoError(b, err)
	c = client.NewClient(c.GetTransport(), client.WithLegacyProtocolOnly())
	require.NoError(b, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	_, err = c.Initialize(ctx, init)
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	return c
}

// benchCalls runs b.N tools/call requests and reports their median.
func benchCalls(b *testing.B, c *client.Client) {
	req := mcp.CallToolRequest{}
	req.Params.Name = "read_text_file"
	req.Params.Arguments = map[string]any{"path": "/w/a.txt"}
	ctx := context.Background()
	durs := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		res, err := c.CallTool(ctx, req)
		durs = append(durs, time.Since(start))
		if err != nil || res.IsError {
			b.Fatalf("call failed: %v %+v", err, res)
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	if len(durs) > 0 {
		b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	}
}

// BenchmarkProxyOverhead measures a tools/call over loopback streamable
// HTTP to an mcp-go upstream, directly and through the guarding proxy. The
// difference of the p50s is the proxy's added latency (a second HTTP hop
// plus the guard); BenchmarkGuardDecision is the guard's share.
func BenchmarkProxyOverhead(b *testing.B) {
	up := upstreamServer("Read a file.")
	upTS := httptest.NewServer(server.NewStreamableHTTPServer(up))
	defer upTS.Close()

	b.Run("direct", func(b *testing.B) {
		benchCalls(b, httpClient(b, upTS.URL))
	})

	b.Run("proxy", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := scope.Parse([]byte(testPolicy))
		require.NoError(b, err)
		g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
		require.NoError(b, err)
		upc := httpClient(b, upTS.URL)
		px, err := guardmcp.NewProxy(ctx, upc, g)
		require.NoError(b, err)
		ro, _ := principals("/w")
		pxTS := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
			server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(guardmcp.Static(ro)))))
		b.Cleanup(pxTS.Close) // after the client's Close, which runs first
		benchCalls(b, httpClient(b, pxTS.URL))
	})
}

// BenchmarkGuardDecision is the guard's own time for one allowed call of
// a tool added with AddTool, through the in-process middleware.
func BenchmarkGuardDecision(b *testing.B) {
	g := testGuard(b, audit.Discard)
	s := fileServer(b, g)
	ro, _ := principals("/w")
	ctx := toolguard.WithPrincipal(context.Background(), ro)
	msg := json.RawMessage(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"/w/a.txt"}}}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if resp := s.HandleMessage(ctx, msg); resp == nil {
				b.Fatal("no response")
			}
		}
	})
}

// BenchmarkServerNoGuard is the same message through an mcp-go server
// without the guard, for comparison with BenchmarkGuardDecision.
func BenchmarkServerNoGuard(b *testing.B) {
	s := server.NewMCPServer("x", "1")
	s.AddTool(mcp.NewToolWithRawSchema("read_text_file", "", json.RawMessage(pathSchema)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.Params.Name + " " + req.GetString("path", "")), nil
		})
	ctx := context.Background()
	msg := json.RawMessage(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_text_file","arguments":{"path":"/w/a.txt"}}}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if resp := s.HandleMessage(ctx, msg); resp == nil {
				b.Fatal("no response")
			}
		}
	})
}
