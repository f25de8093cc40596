package aibom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/toolguard"
)

// definitionDigest is the digest of a tool definition: SHA-256 over the
// canonical JSON of its name, description, input schema and annotations,
// as guardmcp.ToolDigest computes it for a tool listed over MCP.
func definitionDigest(t toolguard.ToolInfo) (string, error) {
	def := map[string]any{"name": t.Name, "inputSchema": json.RawMessage(t.InputSchema)}
	if t.Description != "" {
		def["description"] = t.Description
	}
	if len(t.Annotations) > 0 {
		a, err := json.Marshal(t.Annotations)
		if err != nil {
			return "", fmt.Errorf("aibom: tool %q: annotations: %w", t.Name, err)
		}
		def["annotations"] = json.RawMessage(a)
	}
	return digest(def)
}

func digest(v any) (string, error) {
	b, err := canonjson.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("aibom: %w", err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// serverService describes an upstream MCP server and, nested, its tools.
func (b *builder) serverService(s Server) (cdx.Service, error) {
	name := s.Name
	if name == "" {
		name = "upstream"
	}
	ref := b.ref("mcp-server:" + name)
	props := []cdx.Property{}
	add := func(k, v string) {
		if v != "" {
			props = append(props, cdx.Property{Name: k, Value: v})
		}
	}
	add("agentguard:mcp:transport", s.Transport)
	add("agentguard:mcp:protocol-version", s.ProtocolVersion)
	add("agentguard:mcp:lock-file", s.LockFile)
	svc := cdx.Service{BOMRef: ref, Name: name, Version: s.Version,
		Description: "MCP server reached through the agentguard proxy"}
	switch {
	case s.URL != "":
		u, err := safeURL(s.URL)
		if err != nil {
			return svc, fmt.Errorf("aibom: server %q: %w", name, err)
		}
		svc.Endpoints = &[]string{u}
		svc.CrossesTrustBoundary = ptr(true)
	case len(s.Command) > 0:
		add("agentguard:mcp:command", commandLine(s.Command))
	}
	var tools []cdx.Service
	b.node(ref)
	for _, t := range s.Tools {
		ts, err := b.toolService(ref+"/tool:"+t.Name, t)
		if err != nil {
			return svc, err
		}
		tools = append(tools, ts)
		if b.reachable(t.Name, t.Disabled) {
			b.node(ref, ts.BOMRef)
		}
	}
	if len(tools) > 0 {
		svc.Services = &tools
	}
	svc.Properties = &props
	return svc, nil
}

// toolService describes one tool. Its definition digest is t.Digest for an
// MCP tool, else computed from the guard's registration.
func (b *builder) toolService(want string, t ServerTool) (cdx.Service, error) {
	if t.Name == "" {
		return cdx.Service{}, errors.New("aibom: a tool needs a name")
	}
	ref := b.ref(want)
	svc := cdx.Service{BOMRef: ref, Name: t.Name, Description: t.Description}
	var props []cdx.Property
	add := func(k, v string) { props = append(props, cdx.Property{Name: k, Value: v}) }
	if t.Title != "" {
		add("agentguard:tool:title", t.Title)
	}
	d := t.Digest
	if gt, ok := b.guardTools[t.Name]; ok {
		if d == "" {
			var err error
			if d, err = definitionDigest(gt); err != nil {
				return svc, err
			}
		}
		sd, err := digest(json.RawMessage(gt.InputSchema))
		if err != nil {
			return svc, fmt.Errorf("aibom: tool %q: input schema: %w", t.Name, err)
		}
		add("agentguard:tool:schema-digest", sd)
	}
	if d != "" {
		add("agentguard:tool:digest", d)
	}
	for _, k := range sortedKeys(t.Annotations) {
		v, err := json.Marshal(t.Annotations[k])
		if err != nil {
			return svc, fmt.Errorf("aibom: tool %q: annotation %q: %w", t.Name, k, err)
		}
		add("agentguard:tool:annotation:"+k, string(v))
	}
	props = append(props, b.toolStatus(t)...)
	svc.Properties = &props
	b.node(ref)
	b.findings(ref, t)
	return svc, nil
}

// toolStatus are the properties that say whether and by whom the tool can
// be called.
func (b *builder) toolStatus(t ServerTool) []cdx.Property {
	var props []cdx.Property
	add := func(k, v string) { props = append(props, cdx.Property{Name: k, Value: v}) }
	if t.LockedDigest != "" {
		add("agentguard:mcp:lock-digest", t.LockedDigest)
	}
	if t.Digest != "" {
		add("agentguard:mcp:pinned", strconv.FormatBool(t.LockedDigest != "" && t.LockedDigest == t.Digest))
	}
	for _, s := range b.grantedBy(t.Name) {
		add("agentguard:tool:granted-by", s)
	}
	for _, r := range b.rulesFor(t.Name) {
		add("agentguard:tool:rule", r)
	}
	if t.Disabled != "" {
		add("agentguard:tool:status", "disabled")
		add("agentguard:tool:disabled-reason", t.Disabled)
	} else {
		add("agentguard:tool:status", "enabled")
	}
	add("agentguard:tool:reachable", strconv.FormatBool(b.reachable(t.Name, t.Disabled)))
	return props
}

var severities = map[string]cdx.Severity{
	"critical": cdx.SeverityCritical, "high": cdx.SeverityHigh, "medium": cdx.SeverityMedium,
	"low": cdx.SeverityLow, "info": cdx.SeverityInfo, "none": cdx.SeverityNone, "unknown": cdx.SeverityUnknown, "": cdx.SeverityUnknown,
}

// findings records the tool's findings as vulnerabilities affecting it.
func (b *builder) findings(ref string, t ServerTool) {
	for _, f := range t.Findings {
		sev, ok := severities[strings.ToLower(f.Severity)]
		if !ok {
			sev = cdx.SeverityUnknown
		}
		id := f.ID
		if id == "" {
			id = "finding"
		}
		b.vulns = append(b.vulns, cdx.Vulnerability{
			BOMRef: b.ref("finding:" + ref + ":" + id), ID: id,
			Source:      &cdx.Source{Name: "agentguard"},
			Ratings:     &[]cdx.VulnerabilityRating{{Severity: sev}},
			Description: f.Description, Detail: f.Detail,
			Affects: &[]cdx.Affects{{Ref: ref}},
		})
	}
}

// safeURL drops the parts of an endpoint where credentials tend to be: user
// information, query and fragment. Its error does not repeat the URL.
func safeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("the URL is not an absolute URL")
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String(), nil
}

// commandLine joins argv, quoting arguments that need it.
func commandLine(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = strconv.Quote(a)
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

func ptr[T any](v T) *T { return &v }

// modelComponent describes a declared model with its model card.
func (b *builder) modelComponent(m Model) (cdx.Component, error) {
	if m.Name == "" {
		return cdx.Component{}, errors.New("aibom: a model needs a name")
	}
	want := "model:" + m.Name
	if m.Version != "" {
		want += "@" + m.Version
	}
	c := cdx.Component{BOMRef: b.ref(want), Type: cdx.ComponentTypeMachineLearningModel,
		Name: m.Name, Version: m.Version, Description: m.Description, PackageURL: m.PURL}
	if m.Provider != "" {
		c.Supplier = &cdx.OrganizationalEntity{Name: m.Provider}
		c.Manufacturer = &cdx.OrganizationalEntity{Name: m.Provider}
	}
	if m.ModelCardURL != "" {
		c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeModelCard, URL: m.ModelCardURL}}
	}
	c.ModelCard = modelCard(m)
	return c, nil
}

func modelCard(m Model) *cdx.MLModelCard {
	params := &cdx.MLModelParameters{Task: m.Task, ArchitectureFamily: m.ArchitectureFamily, ModelArchitecture: m.ModelArchitecture}
	if m.Approach != "" {
		params.Approach = &cdx.MLModelParametersApproach{Type: cdx.MLModelParametersApproachType(m.Approach)}
	}
	if len(m.Datasets) > 0 {
		ds := make([]cdx.MLDatasetChoice, len(m.Datasets))
		for i, d := range m.Datasets {
			ds[i] = cdx.MLDatasetChoice{ComponentData: &cdx.ComponentData{Type: cdx.ComponentDataTypeDataset, Name: d}}
		}
		params.Datasets = &ds
	}
	cons := &cdx.MLModelCardConsiderations{Users: list(m.Users), UseCases: list(m.UseCases),
		TechnicalLimitations: list(m.TechnicalLimitations), PerformanceTradeoffs: list(m.PerformanceTradeoffs)}
	if len(m.EthicalConsiderations) > 0 {
		ec := make([]cdx.MLModelCardEthicalConsideration, len(m.EthicalConsiderations))
		for i, e := range m.EthicalConsiderations {
			ec[i] = cdx.MLModelCardEthicalConsideration{Name: e}
		}
		cons.EthicalConsiderations = &ec
	}
	card := &cdx.MLModelCard{}
	if *params != (cdx.MLModelParameters{}) {
		card.ModelParameters = params
	}
	if *cons != (cdx.MLModelCardConsiderations{}) {
		card.Considerations = cons
	}
	if card.ModelParameters == nil && card.Considerations == nil {
		return nil
	}
	return card
}

func list(s []string) *[]string {
	if len(s) == 0 {
		return nil
	}
	return &s
}
