package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStaticPrincipalOffLoopback: mcpguard refuses to serve the static
// principal over HTTP on an address that is not loopback-only, unless the
// operator says so explicitly; on loopback it starts.
func TestStaticPrincipalOffLoopback(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	logPath := filepath.Join(dir, "decisions.jsonl")
	missing := filepath.Join(dir, "no-such-command") // the start fails there, after the checks
	for _, addr := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080", "example.com:8080", "127.0.0.1.nip.io:8080"} {
		r := runGuard(t, "-policy", policy, "-audit", logPath, "-listen", addr, "-principal", "bot", "--", missing)
		assert.Equal(t, 2, r.code, "%s: %s", addr, r.stderr)
		assert.Contains(t, r.stderr, `refusing to serve the static principal "bot" on `+addr, addr)
		assert.Contains(t, r.stderr, "-insecure-static-principal", "the message says how to insist")
		_, err := os.Stat(logPath)
		assert.ErrorIs(t, err, os.ErrNotExist, "refused before anything was opened")
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0", "127.0.0.2:0"} {
		r := runGuard(t, "-policy", policy, "-audit", logPath, "-listen", addr, "-principal", "bot", "--", missing)
		assert.Equal(t, 1, r.code, "%s: %s", addr, r.stderr)
		assert.NotContains(t, r.stderr, "refusing", addr)
	}
	r := runGuard(t, "-policy", policy, "-audit", logPath, "-listen", "0.0.0.0:0", "-principal", "bot", "-insecure-static-principal", "--", missing)
	assert.Equal(t, 1, r.code, r.stderr)
	assert.NotContains(t, r.stderr, "refusing", "the operator insisted")
}

// TestHTTPAuthUsageErrors: the authorization flags that do not fit.
func TestHTTPAuthUsageErrors(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	jwks := filepath.Join(dir, "jwks.json")
	require.NoError(t, os.WriteFile(jwks, []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`), 0o644))
	logPath := filepath.Join(dir, "decisions.jsonl")
	base := []string{"-policy", policy, "-audit", logPath}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-principal", "bot", "-allow-origin", "https://a.example", "--", "true"}, "need -listen"},
		{[]string{"-principal", "bot", "-listen", "127.0.0.1:0", "-require-scopes", "x", "--", "true"}, "need bearer tokens"},
		{[]string{"-principal", "bot", "-listen", "127.0.0.1:0", "-allow-origin", "*", "--", "true"}, "is not an origin"},
		{[]string{"-jwks", jwks, "-issuer", "https://idp.test", "-listen", "0.0.0.0:0", "--", "true"}, "give -resource-url"},
		{[]string{"-jwks", jwks, "-issuer", "https://idp.test", "-listen", "10.0.0.1:8080", "--", "true"}, "http on a loopback address"},
		{[]string{"-jwks", jwks, "-issuer", "https://idp.test", "-listen", "127.0.0.1:0", "-resource-url", "https://mcp.example.com/mcp?x=1", "--", "true"}, "has a query"},
		{[]string{"-jwks", jwks, "-issuer", "https://idp.test", "-listen", "127.0.0.1:0", "-require-scopes", `a"b`, "--", "true"}, "not a valid OAuth scope"},
	}
	for _, tt := range tests {
		r := runGuard(t, append(base, tt.args...)...)
		assert.Equal(t, 2, r.code, "%v: %s", tt.args, r.stderr)
		assert.Contains(t, r.stderr, tt.want, "%v", tt.args)
	}
}

// TestStaticPrincipalOriginCheck: on loopback with the static principal
// (no tokens), mcpguard still refuses foreign web pages: a foreign Origin,
// and a foreign Host name (DNS rebinding), get 403; a client that is not a
// browser, and a loopback page, are served.
func TestStaticPrincipalOriginCheck(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(upstreamEnv, "read_text_file:Read a file")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := exitCode(ctx, []string{"-policy", policy, "-audit", filepath.Join(dir, "decisions.jsonl"),
			"-listen", addr, "-principal", "bot", "-scopes", "fs.read", "-allow-origin", "https://app.example.com", "--", self},
			strings.NewReader(""), &stdout, &stderr)
		done <- result{code, stdout.String(), stderr.String()}
	}()
	defer func() {
		cancel()
		r := <-done
		assert.Equal(t, 0, r.code, r.stderr)
	}()
	url := "http://" + addr + "/mcp"
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "mcpguard did not start listening")
		time.Sleep(20 * time.Millisecond)
	}
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	for _, tc := range []struct {
		origin, host string
		want         int
	}{
		{"", "", http.StatusOK},
		{"http://localhost:3000", "", http.StatusOK},
		{"https://app.example.com", "", http.StatusOK},
		{"https://evil.test", "", http.StatusForbidden},
		{"null", "", http.StatusForbidden},
		{"", "rebind.evil.test", http.StatusForbidden},
		{"http://rebind.evil.test", "rebind.evil.test", http.StatusForbidden},
	} {
		req, err := http.NewRequest("POST", url, strings.NewReader(init))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, "%+v", tc)
		if tc.want == http.StatusForbidden {
			assert.Empty(t, resp.Header.Get("Mcp-Session-Id"), "no session")
		}
	}
	// Without tokens there is no protected resource metadata.
	resp, err := http.Get("http://" + addr + "/.well-known/oauth-protected-resource")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
