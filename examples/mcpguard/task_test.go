package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestTaskFlags: the task flags are listed, misused ones are usage errors,
// an unreadable key stops mcpguard before it creates the audit log, and a
// JWKS file given with -task-jwks verifies tasks signed by its key, with
// -task-audience.
func TestTaskFlags(t *testing.T) {
	r := runGuard(t, "-h")
	for _, f := range []string{"-task-jwks string", "-task-key string", "-task-audience string", "-task-max-lifetime duration"} {
		assert.Contains(t, r.stdout, f)
	}
	base := []string{"-policy", "p.yaml", "-audit", "a.jsonl", "-principal", "bot"}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-task-jwks", "k.json", "-task-key", "k.pem"}, "give -task-jwks or -task-key, not both"},
		{[]string{"-task-audience", "mcpguard"}, "-task-audience needs -task-jwks or -task-key"},
		{[]string{"-task-max-lifetime", "0s"}, "-task-max-lifetime must be positive"},
		{[]string{"-task-max-lifetime", "-1h"}, "-task-max-lifetime must be positive"},
	} {
		r := runGuard(t, append(append(append([]string{}, base...), tt.args...), "--", "true")...)
		assert.Equal(t, 2, r.code, "%v", tt.args)
		assert.Contains(t, r.stderr, tt.want, "%v", tt.args)
	}

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	logPath := filepath.Join(dir, "a.jsonl")
	r = runGuard(t, "-policy", policy, "-audit", logPath, "-principal", "bot", "-task-key", filepath.Join(dir, "missing.pem"), "--", "true")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "missing.pem")
	assert.NoFileExists(t, logPath)

	// -task-jwks: a JWKS file of the application's EC key.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub, err := key.PublicKey.Bytes()
	require.NoError(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "EC", "crv": "P-256", "kid": "app-1", "use": "sig", "alg": "ES256", "x": b64(pub[1:33]), "y": b64(pub[33:]),
	}}})
	require.NoError(t, err)
	jwksPath := filepath.Join(dir, "task-keys.json")
	require.NoError(t, os.WriteFile(jwksPath, jwks, 0o600))
	guarded := func(maxLifetime time.Duration) *server.MCPServer {
		c := taskConfig{jwks: jwksPath, audience: "mcpguard", maxLifetime: maxLifetime}
		require.NoError(t, c.check())
		opt, err := c.option()
		require.NoError(t, err)
		return newTaskServer(t, opt)
	}
	sign := func(aud string, life time.Duration) string {
		c := jwt.MapClaims{"sub": "bot", "exp": time.Now().Add(life).Unix(), "task": map[string]any{"id": "t", "tools": []string{"a"}}}
		if aud != "" {
			c["aud"] = aud
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		tok.Header["kid"] = "app-1"
		s, err := tok.SignedString(key)
		require.NoError(t, err)
		return s
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bot", Scopes: []string{"s"}})
	isError := func(s *server.MCPServer, tool, token string) bool {
		meta, _ := json.Marshal(map[string]string{guardmcp.TaskMetaKey: token})
		msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{},"_meta":` + string(meta) + `}}`
		return s.HandleMessage(ctx, json.RawMessage(msg)).(mcp.JSONRPCResponse).Result.(*mcp.CallToolResult).IsError
	}
	s := guarded(guardmcp.DefaultTaskLifetime)
	assert.False(t, isError(s, "a", sign("mcpguard", time.Minute)), "a task signed by the JWKS key, for the audience")
	assert.True(t, isError(s, "b", sign("mcpguard", time.Minute)), "a tool outside the task")
	assert.True(t, isError(s, "a", sign("", time.Minute)), "no audience")
	assert.True(t, isError(s, "a", sign("elsewhere", time.Minute)), "another audience")
	assert.True(t, isError(s, "a", sign("mcpguard", 2*time.Hour)), "valid for longer than the default hour")
	long := guarded(3 * time.Hour)
	assert.False(t, isError(long, "a", sign("mcpguard", 2*time.Hour)), "-task-max-lifetime 3h admits two hours")
	assert.True(t, isError(long, "a", sign("mcpguard", 4*time.Hour)), "but not four")
}

// newTaskServer is an mcp-go server with tools a and b behind a guard
// that grants every tool, and the task option opt.
func newTaskServer(t *testing.T, opt guardmcp.Option) *server.MCPServer {
	t.Helper()

	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [\"*\"]\n"))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	s := server.NewMCPServer("t", "1", guardmcp.ServerOptions(g, opt)...)
	for _, name := range []string{"a", "b"} {
		require.NoError(t, guardmcp.AddTool(s, g, mcp.NewTool(name), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		}))
	}
	return s
}
