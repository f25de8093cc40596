package guardmcp_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/internal/cdxtest"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
)

const bomPolicy = `
version: 1
scopes:
  fs.read:
    description: Read files in the workspace.
    grants:
      - tools: [read_text_file, list_directory]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
`

// runBOM runs mcpguard with -bom in front of the filesystem server, with an
// empty stdin (so it exits once the BOM is written), and returns the BOM.
func runBOM(t *testing.T, guard, policy string, extra []string, upstream []string) []byte {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.cdx.json")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-policy", policy,
		"-audit", filepath.Join(dir, "decisions.jsonl"), "-principal", "reader", "-scopes", "fs.read",
		"-bom", out}, extra...)
	args = append(append(args, "--"), upstream...)
	cmd := exec.CommandContext(ctx, guard, args...)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "mcpguard: %s", msg)
	b, err := os.ReadFile(out)
	require.NoError(t, err, "mcpguard wrote no BOM: %s", msg)
	return b
}

// serverTools returns the upstream server's service and its tools' properties by name.
func serverTools(t *testing.T, bom *cdx.BOM) (cdx.Service, map[string]map[string][]string) {
	t.Helper()
	require.NotNil(t, bom.Services)
	var srv []cdx.Service
	for _, s := range *bom.Services {
		if strings.HasPrefix(s.BOMRef, "mcp-server:") {
			srv = append(srv, s)
		}
	}
	require.Len(t, srv, 1, "one upstream server")
	tools := map[string]map[string][]string{}
	require.NotNil(t, srv[0].Services)
	for _, ts := range *srv[0].Services {
		p := map[string][]string{}
		for _, x := range *ts.Properties {
			p[x.Name] = append(p[x.Name], x.Value)
		}
		tools[ts.Name] = p
	}
	return srv[0], tools
}

func bomProps(p *[]cdx.Property) map[string][]string {
	out := map[string][]string{}
	if p != nil {
		for _, x := range *p {
			out[x.Name] = append(out[x.Name], x.Value)
		}
	}
	return out
}

func TestMCPGuardBOM(t *testing.T) {
	mods := requireExternal(t)
	sch := cdxtest.Schema(t, mods)
	guard := buildBin(t, "mcpguard")
	root, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	policy := filepath.Join(root, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(bomPolicy), 0o644))
	p, err := scope.Load(policy)
	require.NoError(t, err)
	serverJS := filepath.Join(mods, "@modelcontextprotocol", "server-filesystem", "dist", "index.js")
	upstream := []string{"node", serverJS, root}
	lockPath := filepath.Join(root, "tools.lock")

	// The lock is written from the server's tools (-update-lock writes it
	// and exits); the first BOM lists them all as pinned.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msg, err := exec.CommandContext(ctx, guard, append([]string{"-lock", lockPath, "-update-lock", "--"}, upstream...)...).CombinedOutput()
	require.NoError(t, err, "mcpguard -update-lock: %s", msg)
	doc := runBOM(t, guard, policy, []string{"-lock", lockPath}, upstream)
	cdxtest.Validate(t, sch, doc)
	bom := cdxtest.RoundTrip(t, doc)
	lock, err := guardmcp.ReadLock(lockPath)
	require.NoError(t, err)
	require.Greater(t, len(lock.Tools), 5, "the filesystem server lists its tools")

	assert.Equal(t, cdx.SpecVersion1_6, bom.SpecVersion)
	assert.Equal(t, "mcpguard", bom.Metadata.Component.Name)
	assert.Equal(t, []string{p.Revision()}, bomProps(bom.Metadata.Properties)["agentguard:policy:revision"])
	var pol *cdx.Component
	for i, c := range *bom.Components {
		if c.BOMRef == "policy" {
			pol = &(*bom.Components)[i]
		}
	}
	require.NotNil(t, pol, "the policy is a component")
	assert.Equal(t, p.Revision(), pol.Version)
	assert.Equal(t, p.Revision(), (*pol.Hashes)[0].Value)
	assert.Equal(t, []string{"read_text_file, list_directory"}, bomProps(pol.Properties)["agentguard:policy:scope:fs.read"])

	srv, tools := serverTools(t, bom)
	assert.NotEmpty(t, srv.Name, "the server's name as announced")
	assert.NotEmpty(t, srv.Version)
	sp := bomProps(srv.Properties)
	assert.Equal(t, []string{"stdio"}, sp["agentguard:mcp:transport"])
	assert.Equal(t, []string{lockPath}, sp["agentguard:mcp:lock-file"])
	require.Len(t, sp["agentguard:mcp:command"], 1)
	assert.Contains(t, sp["agentguard:mcp:command"][0], serverJS)
	assert.NotEmpty(t, sp["agentguard:mcp:protocol-version"])

	require.Len(t, tools, len(lock.Tools), "every tool of the lock, no more")
	for name, digest := range lock.Tools {
		tp := tools[name]
		require.NotNil(t, tp, "tool %s is listed", name)
		assert.Equal(t, []string{digest}, tp["agentguard:tool:digest"], name)
		assert.Equal(t, []string{digest}, tp["agentguard:mcp:lock-digest"], name)
		assert.Equal(t, []string{"true"}, tp["agentguard:mcp:pinned"], name)
		assert.Equal(t, []string{"enabled"}, tp["agentguard:tool:status"], name)
		assert.Len(t, tp["agentguard:tool:schema-digest"], 1, name)
		assert.Equal(t, []string{"no-dotenv (deny, enforce)"}, tp["agentguard:tool:rule"], name)
	}
	assert.Equal(t, []string{"true"}, tools["read_text_file"]["agentguard:tool:annotation:readOnlyHint"])
	reach := map[string][]string{}
	for _, d := range *bom.Dependencies {
		if d.Dependencies != nil {
			reach[d.Ref] = *d.Dependencies
		}
	}
	assert.ElementsMatch(t, []string{srv.BOMRef + "/tool:list_directory", srv.BOMRef + "/tool:read_text_file"}, reach[srv.BOMRef],
		"the agent reaches the tools its policy grants")
	assert.Contains(t, reach["agentguard"], srv.BOMRef)
	assert.Contains(t, reach["agentguard"], "policy")

	// Second run against an edited lock: a tool dropped from it and a tool
	// whose digest differs are listed as disabled, with the reason, and
	// are not reachable.
	lock.Tools["read_text_file"] = "sha256:" + strings.Repeat("0", 64)
	delete(lock.Tools, "list_directory")
	require.NoError(t, guardmcp.WriteLock(lockPath, lock))
	doc = runBOM(t, guard, policy, []string{"-lock", lockPath}, upstream)
	cdxtest.Validate(t, sch, doc)
	bom = cdxtest.RoundTrip(t, doc)
	srv, tools = serverTools(t, bom)
	changed, unlocked := tools["read_text_file"], tools["list_directory"]
	assert.Equal(t, []string{"false"}, changed["agentguard:mcp:pinned"])
	assert.Equal(t, []string{"disabled"}, changed["agentguard:tool:status"])
	assert.Contains(t, changed["agentguard:tool:disabled-reason"][0], "changed since the tool lock was written")
	assert.NotEqual(t, changed["agentguard:tool:digest"], changed["agentguard:mcp:lock-digest"])
	assert.Empty(t, unlocked["agentguard:mcp:lock-digest"])
	assert.Contains(t, unlocked["agentguard:tool:disabled-reason"][0], "is not in the tool lock")
	assert.Equal(t, []string{"false"}, unlocked["agentguard:tool:reachable"])
	for _, d := range *bom.Dependencies {
		if d.Ref == srv.BOMRef {
			assert.Nil(t, d.Dependencies, "no tool of the server is reachable now")
		}
	}
}
