package aibom_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/cdxtest"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/aibom"
)

var nodeModules = filepath.Join("..", "..", "mcp", "testdata", "node", "node_modules")

const policySrc = `
version: 1
scopes:
  fs.read:
    description: Read files.
    grants:
      - tools: [read_*]
        when: args.path.startsWith("/w/")
  fs.write:
    grants:
      - tools: [write_file]
        limit: writes
rules:
  - name: confirm-writes
    effect: ask
    tools: [write_file]
limits:
  writes: {rate: 10/m, burst: 5}
`

func handler(ctx context.Context, args json.RawMessage) (any, error) { return "ok", nil }

const pathSchema = `{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`

func testGuard(t *testing.T) *toolguard.Guard {
	t.Helper()
	p, err := scope.Parse([]byte(policySrc))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	for _, tl := range []toolguard.Tool{
		{Name: "read_text_file", Description: "Read a text file", InputSchema: json.RawMessage(pathSchema),
			Annotations: map[string]any{"readOnlyHint": true}},
		{Name: "write_file", Title: "Write", InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}}}`)},
		{Name: "delete_file", InputSchema: json.RawMessage(pathSchema)}, // no scope grants it
	} {
		tl.Handler = handler
		require.NoError(t, g.Register(tl))
	}
	return g
}

// encode builds and encodes the BOM of inv.
func encode(t *testing.T, inv aibom.Inventory) []byte {
	t.Helper()
	bom, err := aibom.New(inv)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, aibom.Encode(&buf, bom))
	return buf.Bytes()
}

func props(p *[]cdx.Property) map[string][]string {
	out := map[string][]string{}
	if p != nil {
		for _, x := range *p {
			out[x.Name] = append(out[x.Name], x.Value)
		}
	}
	return out
}

func dependsOn(bom *cdx.BOM) map[string][]string {
	out := map[string][]string{}
	for _, d := range *bom.Dependencies {
		out[d.Ref] = nil
		if d.Dependencies != nil {
			out[d.Ref] = *d.Dependencies
		}
	}
	return out
}

func sha(t *testing.T, raw string) string {
	t.Helper()
	b, err := canonjson.Marshal(json.RawMessage(raw))
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestNewInProcessGuard(t *testing.T) {
	g := testGuard(t)
	doc := encode(t, aibom.Inventory{
		Application: aibom.Application{Name: "support-agent", Version: "1.4.0", Supplier: "Example Ltd"},
		Guard:       g,
		Models: []aibom.Model{{Name: "claude-sonnet", Version: "4.5", Provider: "Anthropic",
			Task: "text-generation", Approach: "self-supervised", Datasets: []string{"public web"},
			UseCases: []string{"customer support"}, TechnicalLimitations: []string{"may follow injected instructions"},
			EthicalConsiderations: []string{"privacy"}, ModelCardURL: "https://example.com/model-card"}},
	})
	cdxtest.ValidateIfInstalled(t, nodeModules, doc)
	bom := cdxtest.RoundTrip(t, doc)

	rev := g.Policy().Revision()
	require.Len(t, rev, 64)
	assert.Equal(t, cdx.SpecVersion1_6, bom.SpecVersion)
	assert.Equal(t, "support-agent", bom.Metadata.Component.Name)
	assert.Equal(t, []string{rev}, props(bom.Metadata.Properties)["agentguard:policy:revision"])

	comps := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		comps[c.BOMRef] = c
	}
	pol := comps["policy"]
	assert.Equal(t, rev, pol.Version)
	assert.Equal(t, []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: rev}}, *pol.Hashes)
	pp := props(pol.Properties)
	assert.Equal(t, []string{"read_*"}, pp["agentguard:policy:scope:fs.read"])
	assert.Equal(t, []string{"write_file"}, pp["agentguard:policy:scope:fs.write"])
	assert.Equal(t, []string{"ask enforce: write_file"}, pp["agentguard:policy:rule:confirm-writes"])
	assert.Equal(t, []string{"rate 10/m, burst 5"}, pp["agentguard:policy:limit:writes"])

	m := comps["model:claude-sonnet@4.5"]
	assert.Equal(t, cdx.ComponentTypeMachineLearningModel, m.Type)
	assert.Equal(t, "Anthropic", m.Supplier.Name)
	require.NotNil(t, m.ModelCard)
	assert.Equal(t, "text-generation", m.ModelCard.ModelParameters.Task)
	assert.Equal(t, []string{"customer support"}, *m.ModelCard.Considerations.UseCases)

	svcs := map[string]cdx.Service{}
	for _, s := range *bom.Services {
		svcs[s.BOMRef] = s
	}
	require.Len(t, svcs, 3)
	read := props(svcs["tool:read_text_file"].Properties)
	assert.Equal(t, []string{sha(t, pathSchema)}, read["agentguard:tool:schema-digest"])
	assert.Equal(t, []string{"true"}, read["agentguard:tool:annotation:readOnlyHint"])
	assert.Equal(t, []string{"fs.read"}, read["agentguard:tool:granted-by"])
	assert.Equal(t, []string{"true"}, read["agentguard:tool:reachable"])
	write := props(svcs["tool:write_file"].Properties)
	assert.Equal(t, []string{"confirm-writes (ask, enforce)"}, write["agentguard:tool:rule"])
	assert.Equal(t, []string{"Write"}, write["agentguard:tool:title"])
	del := props(svcs["tool:delete_file"].Properties)
	assert.Empty(t, del["agentguard:tool:granted-by"])
	assert.Equal(t, []string{"false"}, del["agentguard:tool:reachable"])

	deps := dependsOn(bom)
	app := bom.Metadata.Component.BOMRef
	assert.ElementsMatch(t, []string{"agentguard", "model:claude-sonnet@4.5"}, deps[app])
	assert.ElementsMatch(t, []string{"policy", "tool:read_text_file", "tool:write_file"}, deps["agentguard"],
		"the tool no scope grants is not reachable")
	assert.Contains(t, deps, "tool:delete_file", "but it is listed")
}

// The definition digest of an in-process tool is the digest a tool lock
// would pin for the same definition served over MCP.
func TestToolDigestMatchesLockDigest(t *testing.T) {
	g := testGuard(t)
	bom, err := aibom.New(aibom.Inventory{Application: aibom.Application{Name: "a"}, Guard: g})
	require.NoError(t, err)
	got := map[string]string{}
	for _, s := range *bom.Services {
		got[s.Name] = props(s.Properties)["agentguard:tool:digest"][0]
	}
	for _, ti := range g.Tools() {
		def := map[string]any{"name": ti.Name, "inputSchema": ti.InputSchema}
		if ti.Description != "" {
			def["description"] = ti.Description
		}
		if len(ti.Annotations) > 0 {
			def["annotations"] = ti.Annotations
		}
		raw, err := json.Marshal(def)
		require.NoError(t, err)
		want, err := guardmcp.ToolDigest(raw)
		require.NoError(t, err)
		assert.Equal(t, want, got[ti.Name], ti.Name)
	}
	require.Len(t, got, 3)
}

func TestNewServers(t *testing.T) {
	g := testGuard(t)
	const d1, d2, d3 = "sha256:" + "11", "sha256:" + "22", "sha256:" + "33"
	srv := aibom.Server{
		Name: "files", Version: "2.0", Transport: aibom.TransportHTTP,
		URL:      "https://user:s3cret@mcp.example.com:8443/mcp?token=s3cret#frag",
		LockFile: "/etc/agent/tools.lock",
		Tools: []aibom.ServerTool{
			{Name: "read_text_file", Digest: d1, LockedDigest: d1},
			{Name: "read_media_file", Digest: d2, LockedDigest: "sha256:99", Disabled: "changed since the lock",
				Findings: []aibom.Finding{{ID: "tool-poisoning", Severity: "High", Description: "hidden instructions"}}},
			{Name: "read_secret", Digest: d3, Disabled: "not in the lock"},
		},
	}
	doc := encode(t, aibom.Inventory{Application: aibom.Application{Name: "agent"}, Guard: g, Servers: []aibom.Server{srv, srv}})
	assert.NotContains(t, string(doc), "s3cret", "credentials in the URL stay out of the BOM")
	assert.NotContains(t, string(doc), "frag")
	cdxtest.ValidateIfInstalled(t, nodeModules, doc)
	bom := cdxtest.RoundTrip(t, doc)

	var servers []cdx.Service
	for _, s := range *bom.Services {
		if strings.HasPrefix(s.BOMRef, "mcp-server:") {
			servers = append(servers, s)
		}
	}
	require.Len(t, servers, 2)
	assert.NotEqual(t, servers[0].BOMRef, servers[1].BOMRef, "bom-refs are unique")
	s := servers[0]
	assert.Equal(t, []string{"https://mcp.example.com:8443/mcp"}, *s.Endpoints)
	assert.Equal(t, []string{"/etc/agent/tools.lock"}, props(s.Properties)["agentguard:mcp:lock-file"])
	require.Len(t, *s.Services, 3)
	tools := map[string]map[string][]string{}
	for _, ts := range *s.Services {
		tools[ts.Name] = props(ts.Properties)
	}
	assert.Equal(t, []string{d1}, tools["read_text_file"]["agentguard:tool:digest"])
	assert.Equal(t, []string{"true"}, tools["read_text_file"]["agentguard:mcp:pinned"])
	assert.Equal(t, []string{"false"}, tools["read_media_file"]["agentguard:mcp:pinned"])
	assert.Equal(t, []string{"disabled"}, tools["read_media_file"]["agentguard:tool:status"])
	assert.Equal(t, []string{"false"}, tools["read_media_file"]["agentguard:tool:reachable"])
	assert.Equal(t, []string{"not in the lock"}, tools["read_secret"]["agentguard:tool:disabled-reason"])
	assert.Empty(t, tools["read_secret"]["agentguard:mcp:lock-digest"])

	deps := dependsOn(bom)
	assert.Equal(t, []string{s.BOMRef + "/tool:read_text_file"}, deps[s.BOMRef], "only the pinned, granted tool is reachable")
	assert.Contains(t, deps["agentguard"], s.BOMRef)
	assert.ElementsMatch(t, []string{"policy", "tool:write_file", servers[0].BOMRef, servers[1].BOMRef}, deps["agentguard"],
		"read_text_file is the server's, not an in-process tool; delete_file is not granted")

	require.NotNil(t, bom.Vulnerabilities)
	require.Len(t, *bom.Vulnerabilities, 2, "one finding per server")
	v := (*bom.Vulnerabilities)[0]
	assert.Equal(t, "tool-poisoning", v.ID)
	assert.Equal(t, cdx.SeverityHigh, (*v.Ratings)[0].Severity)
	assert.Equal(t, s.BOMRef+"/tool:read_media_file", (*v.Affects)[0].Ref)
}

func TestNewRefusesIncompleteInventory(t *testing.T) {
	for name, inv := range map[string]aibom.Inventory{
		"no application name": {},
		"model without name":  {Application: aibom.Application{Name: "a"}, Models: []aibom.Model{{Version: "1"}}},
		"tool without name":   {Application: aibom.Application{Name: "a"}, Servers: []aibom.Server{{Tools: []aibom.ServerTool{{Digest: "x"}}}}},
		"annotation that is not JSON": {Application: aibom.Application{Name: "a"}, Servers: []aibom.Server{{Tools: []aibom.ServerTool{
			{Name: "t", Annotations: map[string]any{"hint": func() {}}}}}}},
		"relative URL":        {Application: aibom.Application{Name: "a"}, Servers: []aibom.Server{{URL: "mcp.example.com/mcp?key=s3cret"}}},
		"URL with a bad host": {Application: aibom.Application{Name: "a"}, Servers: []aibom.Server{{URL: "http://us:s3cret@[::1/mcp"}}},
	} {
		t.Run(name, func(t *testing.T) {
			bom, err := aibom.New(inv)
			require.Error(t, err)
			assert.Nil(t, bom)
			assert.True(t, strings.HasPrefix(err.Error(), "aibom: "), err.Error())
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bom.cdx.json")
	ts := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	bom, err := aibom.New(aibom.Inventory{Application: aibom.Application{Name: "a"}, Time: ts,
		SerialNumber: "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
	require.NoError(t, aibom.WriteFile(path, bom))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	doc := readFile(t, path)
	cdxtest.ValidateIfInstalled(t, nodeModules, doc)
	got := cdxtest.RoundTrip(t, doc)
	assert.Equal(t, "2026-12-04T12:00:00Z", got.Metadata.Timestamp)
	assert.Equal(t, "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79", got.SerialNumber)

	require.Error(t, aibom.WriteFile(filepath.Join(t.TempDir(), "missing", "bom.json"), bom))
}

func TestSerialNumbersDiffer(t *testing.T) {
	a, err := aibom.New(aibom.Inventory{Application: aibom.Application{Name: "a"}})
	require.NoError(t, err)
	b, err := aibom.New(aibom.Inventory{Application: aibom.Application{Name: "a"}})
	require.NoError(t, err)
	assert.Regexp(t, `^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a.SerialNumber)
	assert.NotEqual(t, a.SerialNumber, b.SerialNumber)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// The schema check is not vacuous: a BOM broken in ways the 1.6 schema
// forbids fails it.
func TestSchemaRejectsBrokenBOM(t *testing.T) {
	sch := cdxtest.Schema(t, nodeModules)
	doc := encode(t, aibom.Inventory{Application: aibom.Application{Name: "a"}, Guard: testGuard(t)})
	for name, edit := range map[string]func(m map[string]any){
		"unknown component type": func(m map[string]any) { m["components"].([]any)[0].(map[string]any)["type"] = "agent" },
		"bad serial number":      func(m map[string]any) { m["serialNumber"] = "not-a-urn" },
		"bad hash": func(m map[string]any) {
			m["components"].([]any)[1].(map[string]any)["hashes"].([]any)[0].(map[string]any)["content"] = "xyz"
		},
		"not CycloneDX": func(m map[string]any) { m["bomFormat"] = "SPDX" },
		"bad timestamp": func(m map[string]any) { m["metadata"].(map[string]any)["timestamp"] = "yesterday" },
	} {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			require.NoError(t, json.Unmarshal(doc, &m))
			edit(m)
			b, err := json.Marshal(m)
			require.NoError(t, err)
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			require.NoError(t, err)
			assert.Error(t, sch.Validate(v))
		})
	}
}
