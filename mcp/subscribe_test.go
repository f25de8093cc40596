package guardmcp_test

//lint:file-ignore SA1019 the test speaks the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

// subscriptionProxy is a proxy under listedOnlyPolicy, recording to sink,
// in front of a pool upstream (whose log it returns), with alice's client
// connected over HTTP.
func subscriptionProxy(t *testing.T, ctx context.Context, sink *memSink, opts ...guardmcp.Option) (*client.Client, *upstreamLog) {
	t.Helper()
	upTS, log := poolUpstream(t)
	pol, err := scope.Parse([]byte(listedOnlyPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(pol, toolguard.WithSink(sink))
	require.NoError(t, err)
	px, err := guardmcp.DialProxy(ctx, guardmcp.Upstream{URL: upTS.URL,
		ClientOptions: []client.ClientOption{client.WithLegacyProtocolOnly()}}, g, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	front := httptest.NewServer(server.NewStreamableHTTPServer(px.Server(),
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(whoFunc))))
	t.Cleanup(front.Close)
	c, _ := poolClient(t, ctx, front.URL, "alice")
	return c, log
}

// TestDialProxySubscriptionsAreDecided: resources/subscribe and
// resources/unsubscribe are decided by the rules that decide a read of the
// URI and recorded (as resources/subscribe and resources/unsubscribe, with
// the client's session) before anything reaches the upstream; a principal
// that may not read a URI cannot subscribe to it, and the upstream never
// hears of the attempt.
func TestDialProxySubscriptionsAreDecided(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink := &memSink{}
	c, log := subscriptionProxy(t, ctx, sink)

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

// TestDialProxySubscriptionsCarryTheTask: a subscription's _meta task
// narrows it as it narrows a read. A task signed by another key, or one
// sent to a proxy with no key to verify tasks, denies the subscription
// before the upstream hears of it, in words without the crypto package's;
// a valid task whose scopes allow no resource denies it too; the upstream never
// receives the token.
func TestDialProxySubscriptionsCarryTheTask(t *testing.T) {
	s := newTaskSigner(t)
	v, err := guardmcp.NewTaskVerifier(s.keys, guardmcp.TaskOptions{})
	require.NoError(t, err)
	for name, verify := range map[string][]guardmcp.Option{"verifier": {guardmcp.WithTaskVerifier(v)}, "no verifier": nil} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, log := subscriptionProxy(t, ctx, &memSink{}, verify...)
			send := func(id int64, token string) *mcp.JSONRPCErrorDetails {
				t.Helper()
				resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(id),
					Method: "resources/subscribe", Params: map[string]any{"uri": "test://listed",
						"_meta": map[string]any{guardmcp.TaskMetaKey: token}}})
				require.NoError(t, err)
				return resp.Error
			}
			forged, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, taskClaims("alice", map[string]any{"id": "t1", "scopes": []any{"all"}})).SignedString(s.other)
			require.NoError(t, err)
			denied := send(1, forged)
			require.NotNil(t, denied, "a forged task")
			assert.Contains(t, denied.Message, "task")
			for _, pkg := range []string{"ed25519", "crypto/", "guardmcp:", "toolguard:"} {
				assert.NotContains(t, denied.Message, pkg)
			}
			if verify != nil {
				assert.Contains(t, denied.Message, "signature is not valid")
				// A valid task whose tools allow no resource read.
				narrow := s.sign(t, taskClaims("alice", map[string]any{"id": "t2", "scopes": []any{"other"}}))
				assert.NotNil(t, send(2, narrow), "a task whose scopes allow no resource")
				ok := s.sign(t, taskClaims("alice", map[string]any{"id": "t3"}))
				assert.Nil(t, send(3, ok), "a task that narrows nothing")
			}
			log.mu.Lock()
			defer log.mu.Unlock()
			if verify != nil {
				assert.Equal(t, []string{"test://listed"}, log.subs, "only the allowed subscription reached the upstream")
			} else {
				assert.Empty(t, log.subs, "no subscription reached the upstream")
			}
		})
	}
}
