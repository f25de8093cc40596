package guardmcp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const allowAllPolicy = `
version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
      - resources: ["**"]
      - prompts: ["**"]
`

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}

func waitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s after %v", addr, timeout)
}

// startProcess starts cmd and stops it (SIGTERM, then kill) at cleanup.
func startProcess(t testing.TB, cmd *exec.Cmd) *syncBuffer {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return out
}

var scenarioRE = regexp.MustCompile(`^[✓✗] (\S+): (\d+) passed, (\d+) failed`)

// conformance runs the conformance suite against url and returns the
// scenarios that passed, and the total checks passed and failed.
func conformance(t *testing.T, mods, url string) (passed []string, checksOK, checksFailed int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(mods, "@modelcontextprotocol", "conformance", "dist", "index.js"), "server", "--url", url)
	cmd.Dir = t.TempDir()          // it writes results/ into the working directory
	out, _ := cmd.CombinedOutput() // non-zero when any scenario fails
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	found := false
	for sc.Scan() {
		m := scenarioRE.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		found = true
		ok, _ := strconv.Atoi(m[2])
		bad, _ := strconv.Atoi(m[3])
		checksOK += ok
		checksFailed += bad
		if bad == 0 && ok > 0 {
			passed = append(passed, m[1])
		}
	}
	require.True(t, found, "no scenario results in the conformance output:\n%s", out)
	sort.Strings(passed)
	return passed, checksOK, checksFailed
}

func TestConformanceThroughMCPGuard(t *testing.T) {
	mods := requireExternal(t)
	if _, err := os.Stat(filepath.Join(mods, "@modelcontextprotocol", "conformance", "dist", "index.js")); err != nil {
		t.Fatalf("conformance package layout changed: %v", err)
	}
	guard := buildBin(t, "mcpguard")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(allowAllPolicy), 0o644))

	upPort := freePort(t)
	ev := exec.Command("node", filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "streamableHttp")
	ev.Env = append(os.Environ(), "PORT="+strconv.Itoa(upPort))
	evOut := startProcess(t, ev)
	upAddr := fmt.Sprintf("127.0.0.1:%d", upPort)
	waitListening(t, upAddr, 20*time.Second)
	upURL := "http://" + upAddr + "/mcp"

	pxPort := freePort(t)
	pxAddr := fmt.Sprintf("127.0.0.1:%d", pxPort)
	px := exec.Command(guard, "-policy", policy, "-audit", filepath.Join(dir, "decisions.jsonl"),
		"-listen", pxAddr, "-principal", "conformance", "-scopes", "all", "-call-timeout", "30s", "-upstream", upURL)
	pxOut := startProcess(t, px)
	waitListening(t, pxAddr, 20*time.Second)

	direct, dOK, dBad := conformance(t, mods, upURL)
	proxied, pOK, pBad := conformance(t, mods, "http://"+pxAddr+"/mcp")
	t.Logf("conformance directly against server-everything: %d scenarios passed (%d checks passed, %d failed): %v", len(direct), dOK, dBad, direct)
	t.Logf("conformance through mcpguard:                   %d scenarios passed (%d checks passed, %d failed): %v", len(proxied), pOK, pBad, proxied)
	require.NotEmpty(t, direct, "server-everything output: %s", evOut.String())
	// Scenarios that call tools server-everything does not have pass
	// directly because it answers with an isError result; through mcpguard
	// the guard denies such a call, records it and answers the same way.
	assert.Equal(t, direct, proxied, "the scenarios passing through mcpguard must be those passing directly; mcpguard output: %s", pxOut.String())
	// The calls of tools server-everything lacks were decided and recorded.
	denied := map[string]bool{}
	for _, r := range verifyLog(t, filepath.Join(dir, "decisions.jsonl")) {
		if r.Effect == "deny" {
			denied[r.Tool] = true
		}
	}
	assert.True(t, denied["test_simple_text"], "a denial record for the unknown tool test_simple_text")
	assert.True(t, denied["test_error_handling"], "a denial record for the unknown tool test_error_handling")
}
