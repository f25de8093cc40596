package guardmcp_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// TestOriginPolicy: the Origin header (DNS rebinding) and, on a loopback
// address, the Host header, decide whether a request reaches the server.
func TestOriginPolicy(t *testing.T) {
	op, err := guardmcp.NewOriginPolicy(guardmcp.OriginOptions{
		Origins: []string{"https://App.Example.com:443", "http://localhost:6274"},
		Hosts:   []string{"mcp.example.com"},
	})
	require.NoError(t, err)
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	public := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 10), Port: 8080}
	tests := []struct {
		name    string
		local   net.Addr
		host    string
		origins []string
		allowed bool
	}{
		{"no Origin (not a browser)", loopback, "127.0.0.1:8080", nil, true},
		{"no Origin, public address", public, "mcp.example.com", nil, true},
		{"an allowed origin", public, "mcp.example.com", []string{"https://app.example.com"}, true},
		{"an allowed origin, other spelling", public, "mcp.example.com", []string{"HTTPS://APP.EXAMPLE.COM:443"}, true},
		{"an allowed origin with a trailing slash", public, "mcp.example.com", []string{"https://app.example.com/"}, true},
		{"the allowed host over http", public, "mcp.example.com", []string{"http://app.example.com"}, false},
		{"the allowed host on another port", public, "mcp.example.com", []string{"https://app.example.com:8443"}, false},
		{"a subdomain of an allowed origin", public, "mcp.example.com", []string{"https://evil.app.example.com"}, false},
		{"an allowed origin as a prefix", public, "mcp.example.com", []string{"https://app.example.com.evil.test"}, false},
		{"a foreign origin", public, "mcp.example.com", []string{"https://evil.test"}, false},
		{"a foreign origin to loopback (DNS rebinding)", loopback, "127.0.0.1:8080", []string{"http://evil.test:8080"}, false},
		{"DNS rebinding: foreign Host and Origin", loopback, "evil.test:8080", []string{"http://evil.test:8080"}, false},
		{"DNS rebinding: foreign Host, no Origin", loopback, "evil.test:8080", nil, false},
		{"opaque origin", loopback, "127.0.0.1:8080", []string{"null"}, false},
		{"not an origin", loopback, "127.0.0.1:8080", []string{"file:///etc/passwd"}, false},
		{"an origin with a path", public, "mcp.example.com", []string{"https://app.example.com/x"}, false},
		{"two Origin headers", public, "mcp.example.com", []string{"https://app.example.com", "https://evil.test"}, false},
		{"loopback page to loopback server", loopback, "localhost:8080", []string{"http://localhost:3000"}, true},
		{"loopback IP page to loopback server", loopback, "127.0.0.1:8080", []string{"http://127.0.0.1:5173"}, true},
		{"IPv6 loopback page to loopback server", loopback, "[::1]:8080", []string{"http://[::1]:5173"}, true},
		{"loopback page to a public address", public, "mcp.example.com", []string{"http://localhost:3000"}, false},
		{"a configured loopback origin to a public address", public, "mcp.example.com", []string{"http://localhost:6274"}, true},
		{"reverse proxy's host name to loopback", loopback, "mcp.example.com", nil, true},
		{"allowed origin's host to loopback", loopback, "app.example.com", nil, true},
		{"a look-alike loopback name", loopback, "localhost.evil.test:8080", nil, false},
		{"no Host", loopback, "", nil, false},
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := op.Require(next)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/mcp", nil)
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tt.local))
			req.Host = tt.host
			req.Header["Origin"] = tt.origins
			ok, why := op.Allowed(req)
			assert.Equal(t, tt.allowed, ok, why)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if tt.allowed {
				assert.Equal(t, http.StatusTeapot, rec.Code)
				if len(tt.origins) == 1 {
					assert.Equal(t, tt.origins[0], rec.Header().Get("Access-Control-Allow-Origin"))
				}
			} else {
				assert.Equal(t, http.StatusForbidden, rec.Code)
				assert.Contains(t, rec.Body.String(), `"jsonrpc":"2.0"`)
				assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
			}
		})
	}

	for _, bad := range []string{"*", "app.example.com", "https://app.example.com/path", "ftp://x", "https://u@x"} {
		_, err := guardmcp.NewOriginPolicy(guardmcp.OriginOptions{Origins: []string{bad}})
		assert.Error(t, err, bad)
	}
	_, err = guardmcp.NewOriginPolicy(guardmcp.OriginOptions{Hosts: []string{"evil.test:80"}})
	assert.Error(t, err)
}

// TestOriginPolicyPreflight: an allowed origin's CORS preflight is
// answered without a token (browsers send none); a foreign one is refused.
func TestOriginPolicyPreflight(t *testing.T) {
	op, err := guardmcp.NewOriginPolicy(guardmcp.OriginOptions{Origins: []string{"https://app.example.com"}})
	require.NoError(t, err)
	h := op.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the preflight reached the server")
	}))
	for origin, want := range map[string]int{"https://app.example.com": http.StatusNoContent, "https://evil.test": http.StatusForbidden} {
		req := httptest.NewRequest("OPTIONS", "/mcp", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-session-id")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, want, rec.Code, origin)
		if want == http.StatusNoContent {
			assert.Contains(t, rec.Header().Get("Access-Control-Allow-Headers"), "Authorization")
			assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "WWW-Authenticate")
		}
	}
}
