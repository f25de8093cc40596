package guardmcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// everythingPolicy grants part of server-everything's resources and
// prompts: its static documents but one, the text template and not the
// blob one, and three of its four prompts.
const everythingPolicy = `
version: 1
scopes:
  docs:
    grants:
      - resources: ["demo://resource/static/document/**", "demo://resource/dynamic/text/*"]
      - prompts: [simple-prompt, args-prompt, completable-prompt]
        when: '!has(args.city) || args.city != "Atlantis"'
rules:
  - name: no-architecture
    effect: deny
    resources: ["demo://resource/static/document/architecture.md"]
`

// TestMCPGuardEverythingResourcesE2E: through mcpguard, an mcp-go client
// of the reference server-everything lists only the granted resources,
// templates and prompts, reads granted resources and no other (under no
// spelling), gets granted prompts, has completions only for granted
// prompts and templates, and every read and get is in the verified log.
func TestMCPGuardEverythingResourcesE2E(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(everythingPolicy), 0o600))
	auditPath := filepath.Join(dir, "decisions.jsonl")
	argv := []string{guard, "-policy", policy, "-audit", auditPath, "-principal", "reader", "-scopes", "docs", "--",
		"node", filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio"}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sc := startStdioClient(t, ctx, argv)
	c := sc.c

	rl, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
	require.NoError(t, err, "stderr: %s", sc.stderr.String())
	var uris []string
	for _, r := range rl.Resources {
		uris = append(uris, r.URI)
	}
	sort.Strings(uris)
	assert.Equal(t, []string{
		"demo://resource/static/document/extension.md", "demo://resource/static/document/features.md",
		"demo://resource/static/document/how-it-works.md", "demo://resource/static/document/instructions.md",
		"demo://resource/static/document/startup.md", "demo://resource/static/document/structure.md",
	}, uris, "the granted documents, without the one a rule denies")

	tl, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	var templates []string
	for _, tm := range tl.ResourceTemplates {
		templates = append(templates, tm.URITemplate.Raw())
	}
	assert.Equal(t, []string{"demo://resource/dynamic/text/{resourceId}"}, templates)

	pl, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	require.NoError(t, err)
	var prompts []string
	for _, p := range pl.Prompts {
		prompts = append(prompts, p.Name)
	}
	sort.Strings(prompts)
	assert.Equal(t, []string{"args-prompt", "completable-prompt", "simple-prompt"}, prompts)

	read := func(uri string) (*mcp.ReadResourceResult, error) {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		return c.ReadResource(ctx, req)
	}
	res, err := read("demo://resource/static/document/features.md")
	require.NoError(t, err)
	require.Len(t, res.Contents, 1)
	res, err = read("demo://resource/dynamic/text/1")
	require.NoError(t, err, "a URI of the granted template")
	require.Len(t, res.Contents, 1)
	for _, uri := range []string{
		"demo://resource/static/document/architecture.md",
		"DEMO://resource/static/document/architecture.md",
		"demo://RESOURCE/static/document/architecture.md",
		"demo://resource/static/document/./architecture.md",
		"demo://resource/static/document/x/../architecture.md",
		"demo://resource/static/document/%61rchitecture.md",
		"demo://resource/static/document/architecture.md#x",
		"demo://resource/dynamic/blob/1",
		"demo://resource/dynamic/text/..%2Fblob%2F1",
		"demo://resource/dynamic/text/1/../../blob/1",
	} {
		_, err := read(uri)
		assert.Error(t, err, "%s must not be readable", uri)
	}

	get := func(name string, args map[string]string) error {
		req := mcp.GetPromptRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		_, err := c.GetPrompt(ctx, req)
		return err
	}
	assert.NoError(t, get("simple-prompt", nil))
	assert.NoError(t, get("args-prompt", map[string]string{"city": "Paris"}))
	assert.ErrorContains(t, get("args-prompt", map[string]string{"city": "Atlantis"}), "no scope held")
	assert.ErrorContains(t, get("resource-prompt", map[string]string{"resourceType": "Text", "resourceId": "1"}), "no scope held")

	// server-everything completes a resource id only when it is a number.
	complete := func(ref any, arg string) []string {
		req := mcp.CompleteRequest{}
		req.Params.Ref = ref
		req.Params.Argument = mcp.CompleteArgument{Name: arg, Value: map[string]string{"resourceId": "7"}[arg]}
		out, err := c.Complete(ctx, req)
		require.NoError(t, err)
		return out.Completion.Values
	}
	assert.NotEmpty(t, complete(mcp.PromptReference{Type: "ref/prompt", Name: "completable-prompt"}, "department"))
	assert.Empty(t, complete(mcp.PromptReference{Type: "ref/prompt", Name: "resource-prompt"}, "resourceType"))
	assert.NotEmpty(t, complete(mcp.ResourceReference{Type: "ref/resource", URI: "demo://resource/dynamic/text/{resourceId}"}, "resourceId"))
	assert.Empty(t, complete(mcp.ResourceReference{Type: "ref/resource", URI: "demo://resource/dynamic/blob/{resourceId}"}, "resourceId"))
	sc.stop(t)

	// The log verifies and holds each read and get that reached the guard.
	recs := verifyLog(t, auditPath)
	type row struct{ tool, effect, args, rule string }
	var got []row
	for _, r := range recs {
		assert.Equal(t, "reader", r.Principal)
		got = append(got, row{r.Tool, r.Effect, string(r.Args), r.Rule})
	}
	for _, want := range []row{
		{"resources/read", "allow", `{"uri":"demo://resource/static/document/features.md"}`, ""},
		{"resources/read", "allow", `{"uri":"demo://resource/dynamic/text/1"}`, ""},
		{"resources/read", "deny", `{"uri":"demo://resource/static/document/architecture.md"}`, "no-architecture"},
		{"resources/read", "deny", `{"uri":"demo://resource/dynamic/blob/1"}`, ""},
		{"prompts/get", "allow", `{"arguments":{},"name":"simple-prompt"}`, ""},
		{"prompts/get", "deny", `{"arguments":{"city":"Atlantis"},"name":"args-prompt"}`, ""},
		{"prompts/get", "deny", `{"arguments":{"resourceId":"1","resourceType":"Text"},"name":"resource-prompt"}`, ""},
	} {
		assert.Contains(t, got, want)
	}
}

type nodeAttempt struct {
	OK   bool   `json:"ok"`
	Text string `json:"text"`
}

type nodeDataResult struct {
	Resources []string      `json:"resources"`
	Templates []string      `json:"templates"`
	Prompts   []string      `json:"prompts"`
	Reads     []nodeAttempt `json:"reads"`
	Gets      []nodeAttempt `json:"gets"`
}

// TestMCPGuardEverythingResourcesTypeScriptClient: the official
// TypeScript SDK client sees the same through mcpguard in front of
// server-everything: granted resources, templates and prompts only, and
// reads and gets allowed exactly as the policy says, each recorded.
func TestMCPGuardEverythingResourcesTypeScriptClient(t *testing.T) {
	mods := requireExternal(t)
	guard := buildBin(t, "mcpguard")
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(everythingPolicy), 0o600))
	auditPath := filepath.Join(dir, "decisions.jsonl")
	plan := map[string]any{
		"read": []string{
			"demo://resource/static/document/features.md",
			"demo://resource/static/document/architecture.md",
			"demo://resource/static/document/%61rchitecture.md",
			"demo://resource/dynamic/text/2",
			"demo://resource/dynamic/blob/2",
		},
		"get": []map[string]any{
			{"name": "simple-prompt", "arguments": map[string]string{}},
			{"name": "args-prompt", "arguments": map[string]string{"city": "Atlantis"}},
			{"name": "resource-prompt", "arguments": map[string]string{"resourceType": "Text", "resourceId": "1"}},
		},
	}
	planPath := filepath.Join(dir, "plan.json")
	b, err := json.Marshal(plan)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(planPath, b, 0o600))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := []string{guard, "-policy", policy, "-audit", auditPath, "-principal", "reader", "-scopes", "docs", "--",
		"node", filepath.Join(mods, "@modelcontextprotocol", "server-everything", "dist", "index.js"), "stdio"}
	cmd := exec.CommandContext(ctx, "node", append([]string{"resources.mjs", planPath, "--"}, argv...)...)
	cmd.Dir = filepath.Join("testdata", "node")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "node client: %s", stderr.String())
	var res nodeDataResult
	require.NoError(t, json.Unmarshal(out, &res), "output: %s", out)

	assert.Len(t, res.Resources, 6)
	assert.NotContains(t, res.Resources, "demo://resource/static/document/architecture.md")
	assert.Equal(t, []string{"demo://resource/dynamic/text/{resourceId}"}, res.Templates)
	assert.Equal(t, []string{"args-prompt", "completable-prompt", "simple-prompt"}, res.Prompts)
	var reads, gets []bool
	for _, r := range res.Reads {
		reads = append(reads, r.OK)
	}
	for _, g := range res.Gets {
		gets = append(gets, g.OK)
	}
	assert.Equal(t, []bool{true, false, false, true, false}, reads, "%+v", res.Reads)
	assert.Equal(t, []bool{true, false, false}, gets, "%+v", res.Gets)
	assert.Contains(t, res.Reads[1].Text, `denied by rule "no-architecture"`)

	recs := verifyLog(t, auditPath)
	var effects []string
	for _, r := range recs {
		effects = append(effects, r.Tool+" "+r.Effect)
	}
	assert.Equal(t, []string{
		"resources/read allow", "resources/read deny", "resources/read deny", "resources/read allow", "resources/read deny",
		"prompts/get allow", "prompts/get deny", "prompts/get deny",
	}, effects, "one record per read and get: %61rchitecture.md, unlisted, is decided before the upstream is asked")
}
