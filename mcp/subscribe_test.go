package guardmcp_test

//lint:file-ignore SA1019 the test speaks the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"encoding/json"
	"net/http/httptest"
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

const listedOnlyPolicy = `
version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
      - resources: ["test://listed"]
`

// TestDialProxySubscriptionsAreDecided: resources/subscribe and
// resources/unsubscribe are decided by the rules that decide a read of the
// URI and recorded (as resources/subscribe and resources/unsubscribe, with
// the client's session) before anything reaches the upstream; a principal
// that may not read a URI cannot subscribe to it, and the upstream never
// hears of the attempt.
func TestDialProxySubscriptionsAreDecided(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	upTS, log := poolUpstream(t)
	pol, err := scope.Parse([]byte(listedOnlyPolicy))
	require.NoError(t, err)
	sink := &memSink{}
	g, err := toolguard.New(pol, toolguard.WithSink(sink))
	require.NoError(t, err)
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{URL: upTS.URL,
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()}}, g)
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(whoFunc))))
	t.Cleanup(front.Close)
	c, _ := poolClient(t, ctx, front.URL, "alice")

	send := func(id int64, method, uri string) *mcp.JSONRPCErrorDetails {
		t.Helper()
		resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(id),
			Method: method, Params: map[string]any{"uri": uri}})
		require.NoError(t, err)
		return resp.Error
	}
	assert.Nil(t, send(1, "resources/subscribe", "test://listed"), "a URI alice may read")
	denied := send(2, "resources/subscribe", "test://secret")
	require.NotNil(t, denied, "a URI alice may not read")
	assert.Contains(t, denied.Message, "test://secret")
	assert.NotContains(t, denied.Message, "guardmcp:")
	assert.NotContains(t, denied.Message, "toolguard:", "no Go package names in what the client reads")
	assert.Nil(t, send(3, "resources/unsubscribe", "test://listed"))

	log.mu.Lock()
	assert.Equal(t, []string{"test://listed"}, log.subs, "only the allowed subscription reached the upstream")
	log.mu.Unlock()

	var got []string
	for _, r := range sink.decisions() {
		if r.Tool == toolguard.ResourceSubscribeName || r.Tool == toolguard.ResourceUnsubscribeName {
			var args struct {
				URI string `json:"uri"`
			}
			require.NoError(t, json.Unmarshal(r.Args, &args))
			got = append(got, r.Tool+" "+args.URI+" "+r.Effect)
			assert.Equal(t, "alice", r.Principal)
			assert.NotEmpty(t, r.Session, "the record names the client's session")
		}
	}
	assert.Equal(t, []string{
		"resources/subscribe test://listed allow",
		"resources/subscribe test://secret deny",
		"resources/unsubscribe test://listed allow",
	}, got)
}
