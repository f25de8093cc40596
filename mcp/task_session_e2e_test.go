package guardmcp_test

//lint:file-ignore SA1019 one client speaks the legacy MCP protocol on purpose: an initialize handshake

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// taskSessionPolicy labels the inbox untrusted and stops mail after it.
const taskSessionPolicy = `
version: 1
labels:
  - tools: [read_inbox]
    add: [untrusted]
scopes:
  mail:
    grants:
      - tools: [send_email, read_inbox]
rules:
  - name: no-mail-after-inbox
    effect: deny
    tools: [send_email]
    when: '"untrusted" in session.labels'
`

// TestMCPGuardTaskSessionStateless: a client of protocol 2026-07-28 has
// no MCP session; the host application names the conversation in the
// signed task token (its session claim), and flows are judged across the
// requests of that conversation through the mcpguard binary. Another
// conversation is untouched, a request without a token belongs to no
// session and is denied, and a legacy client that has an MCP session
// cannot swap it for a token's session.
func TestMCPGuardTaskSessionStateless(t *testing.T) {
	guard := buildBin(t, "mcpguard")
	_, logPath, _, upstream := taskEnv(t)
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(taskSessionPolicy), 0o644))
	s := newTaskSigner(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out := startProcess(t, exec.Command(guard, append([]string{"-policy", policy, "-audit", logPath, "-listen", addr,
		"-principal", "alice", "-scopes", "mail", "-task-key", s.pemPath}, upstream...)...))
	waitListening(t, addr, 30*time.Second)
	url := "http://" + addr + "/mcp"

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stateless, err := client.NewStreamableHttpClient(url)
	require.NoError(t, err)
	require.NoError(t, stateless.Start(ctx))
	defer stateless.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	_, err = stateless.Initialize(ctx, init)
	require.NoError(t, err)
	require.Empty(t, stateless.GetSessionId(), "protocol 2026-07-28 has no MCP session")

	conv := func(session, task string) map[string]any {
		c := taskClaims("alice", map[string]any{"id": task})
		if session != "" {
			c["session"] = session
		}
		return map[string]any{guardmcp.TaskMetaKey: s.sign(t, c)}
	}
	bob := map[string]any{"to": "bob@example.com"}
	must := func(c *client.Client, name string, args, meta map[string]any) callOutcome {
		t.Helper()
		res, err := metaCall(ctx, c, name, args, meta)
		require.NoError(t, err, "mcpguard: %s", out.String())
		return res
	}
	one, two := conv("conv-1", "t1"), conv("conv-2", "t2")
	res := must(stateless, "send_email", bob, one)
	assert.False(t, res.IsError, res.Text)
	res = must(stateless, "read_inbox", nil, one)
	assert.False(t, res.IsError, res.Text)
	res = must(stateless, "send_email", bob, conv("conv-1", "t1b"))
	assert.True(t, res.IsError, "after conv-1 read the inbox")
	assert.Contains(t, res.Text, "no-mail-after-inbox")
	assert.Contains(t, res.Text, "read_inbox")
	res = must(stateless, "send_email", bob, two)
	assert.False(t, res.IsError, "conv-2 read nothing: %s", res.Text)
	res = must(stateless, "send_email", bob, nil)
	assert.True(t, res.IsError)
	assert.Contains(t, res.Text, "belongs to no session")
	res = must(stateless, "send_email", bob, conv("", "t3"))
	assert.True(t, res.IsError, "a task without a session claim gives no session")

	legacy := taskHTTPClient(t, url, "unused")
	res = must(legacy, "send_email", bob, nil)
	assert.False(t, res.IsError, "a legacy client has its MCP session: %s", res.Text)
	res = must(legacy, "send_email", bob, two)
	assert.True(t, res.IsError)
	assert.Contains(t, res.Text, "MCP session of its own")

	sessions := map[string][]string{}
	for _, r := range completeDecisions(t, logPath) {
		sessions[r.Session] = append(sessions[r.Session], r.Tool+"/"+r.Effect)
	}
	assert.Equal(t, []string{"send_email/allow", "read_inbox/allow", "send_email/deny"}, sessions[guardmcp.TaskSessionPrefix+"conv-1"])
	assert.Equal(t, []string{"send_email/allow"}, sessions[guardmcp.TaskSessionPrefix+"conv-2"])
	assert.Equal(t, []string{"send_email/deny", "send_email/deny"}, sessions[""])
	assert.Equal(t, []string{"send_email/allow", "send_email/deny"}, sessions[legacy.GetSessionId()])
}
