package aibom

import (
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/agentguard/agentguard/internal/glob"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const modulePath = "github.com/agentguard/agentguard"

// builder assembles one BOM.
type builder struct {
	inv  Inventory
	bom  *cdx.BOM
	refs map[string]bool // bom-refs handed out
	pol  scope.Def
	rev  string
	deps map[string][]string // bom-ref → what it depends on
	// order of the dependency entries, so the output is stable
	depOrder []string
	// guardTools are the guard's tools by name.
	guardTools map[string]toolguard.ToolInfo
	vulns      []cdx.Vulnerability
}

func (b *builder) build() error {
	serial := b.inv.SerialNumber
	if serial == "" {
		s, err := newSerial()
		if err != nil {
			return err
		}
		serial = s
	}
	ts := b.inv.Time
	if ts.IsZero() {
		ts = time.Now()
	}
	b.deps = map[string][]string{}
	b.guardTools = map[string]toolguard.ToolInfo{}
	if g := b.inv.Guard; g != nil {
		p := g.Policy()
		b.pol, b.rev = p.Def(), p.Revision()
		for _, t := range g.Tools() {
			b.guardTools[t.Name] = t
		}
	}

	bom := cdx.NewBOM()
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = serial
	b.bom = bom
	app := b.ref("application:" + b.inv.Application.Name)
	bom.Metadata = b.metadata(app, ts)

	var comps []cdx.Component
	var svcs []cdx.Service
	agRef := b.ref("agentguard")
	comps = append(comps, agentguardComponent(agRef))
	b.node(app, agRef)
	b.node(agRef)
	if b.inv.Guard != nil {
		polRef := b.ref("policy")
		comps = append(comps, b.policyComponent(polRef))
		b.node(agRef, polRef)
		b.node(polRef)
	}
	for _, m := range b.inv.Models {
		c, err := b.modelComponent(m)
		if err != nil {
			return err
		}
		comps = append(comps, c)
		b.node(app, c.BOMRef)
		b.node(c.BOMRef)
	}
	served := map[string]bool{}
	for _, s := range b.inv.Servers {
		svc, err := b.serverService(s)
		if err != nil {
			return err
		}
		svcs = append(svcs, svc)
		b.node(agRef, svc.BOMRef)
		for _, t := range s.Tools {
			served[t.Name] = true
		}
	}
	tools, err := b.inProcessTools(agRef, served)
	if err != nil {
		return err
	}
	svcs = append(svcs, tools...)
	bom.Components = &comps
	if len(svcs) > 0 {
		bom.Services = &svcs
	}
	b.finish()
	return nil
}

// inProcessTools describes the guard's tools that no server in the
// inventory lists; the reachable ones are linked from agentguard.
func (b *builder) inProcessTools(agRef string, served map[string]bool) ([]cdx.Service, error) {
	var svcs []cdx.Service
	for _, name := range sortedKeys(b.guardTools) {
		if served[name] {
			continue
		}
		t := b.guardTools[name]
		svc, err := b.toolService("tool:"+name, ServerTool{Name: name, Title: t.Title,
			Description: t.Description, Annotations: t.Annotations})
		if err != nil {
			return nil, err
		}
		svcs = append(svcs, svc)
		if b.reachable(name, "") {
			b.node(agRef, svc.BOMRef)
		}
	}
	return svcs, nil
}

// ref returns a bom-ref unique in the BOM, based on want.
func (b *builder) ref(want string) string {
	r := want
	for i := 2; b.refs[r]; i++ {
		r = want + "#" + strconv.Itoa(i)
	}
	b.refs[r] = true
	return r
}

// node records that ref depends on deps (and that ref is in the graph).
func (b *builder) node(ref string, deps ...string) {
	if _, ok := b.deps[ref]; !ok {
		b.depOrder = append(b.depOrder, ref)
		b.deps[ref] = nil
	}
	b.deps[ref] = append(b.deps[ref], deps...)
}

// finish writes the dependency graph: one entry for every component and
// service, with what it depends on.
func (b *builder) finish() {
	deps := make([]cdx.Dependency, 0, len(b.depOrder))
	for _, r := range b.depOrder {
		d := cdx.Dependency{Ref: r}
		if on := b.deps[r]; len(on) > 0 {
			on = slices.Clone(on)
			d.Dependencies = &on
		}
		deps = append(deps, d)
	}
	b.bom.Dependencies = &deps
	if len(b.vulns) > 0 {
		b.bom.Vulnerabilities = &b.vulns
	}
}

func (b *builder) metadata(app string, ts time.Time) *cdx.Metadata {
	a := b.inv.Application
	md := &cdx.Metadata{
		Timestamp:  ts.UTC().Format(time.RFC3339),
		Lifecycles: &[]cdx.Lifecycle{{Phase: cdx.LifecyclePhaseOperations}},
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeLibrary, Name: modulePath + "/toolguard/aibom", Version: moduleVersion(),
		}}},
		Component: &cdx.Component{BOMRef: app, Type: cdx.ComponentTypeApplication,
			Name: a.Name, Version: a.Version, Description: a.Description},
	}
	if a.Supplier != "" {
		md.Component.Supplier = &cdx.OrganizationalEntity{Name: a.Supplier}
	}
	if b.inv.Guard != nil {
		md.Properties = &[]cdx.Property{{Name: "agentguard:policy:revision", Value: b.rev}}
	}
	b.node(app)
	return md
}

// moduleVersion is agentguard's version in the running binary, or "" when
// the build does not say (a development build).
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := ""
	if bi.Main.Path == modulePath {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			v = d.Version
			if d.Replace != nil {
				v = d.Replace.Version
			}
		}
	}
	if v == "(devel)" {
		return ""
	}
	return v
}

func agentguardComponent(ref string) cdx.Component {
	c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: modulePath,
		Description: "agentguard: validates, decides, records and only then runs each tool call"}
	if v := moduleVersion(); v != "" {
		c.Version = v
		c.PackageURL = "pkg:golang/" + modulePath + "@" + v
	}
	return c
}

// policyComponent describes the policy in force: its revision (a SHA-256
// over the canonical JSON of its definition), scopes, rules and limits.
func (b *builder) policyComponent(ref string) cdx.Component {
	d := b.pol
	props := []cdx.Property{{Name: "agentguard:policy:revision", Value: b.rev}}
	for _, name := range sortedKeys(d.Scopes) {
		var pats []string
		for _, g := range d.Scopes[name].Grants {
			pats = append(pats, g.Tools...)
		}
		props = append(props, cdx.Property{Name: "agentguard:policy:scope:" + name, Value: strings.Join(pats, ", ")})
	}
	for _, r := range d.Rules {
		mode := r.Mode
		if mode == "" {
			mode = "enforce"
		}
		props = append(props, cdx.Property{Name: "agentguard:policy:rule:" + r.Name,
			Value: r.Effect + " " + mode + ": " + strings.Join(r.Tools, ", ")})
	}
	for _, name := range sortedKeys(d.Limits) {
		props = append(props, cdx.Property{Name: "agentguard:policy:limit:" + name, Value: limitText(d.Limits[name])})
	}
	return cdx.Component{
		BOMRef: ref, Type: cdx.ComponentTypeData, Name: "agentguard policy", Version: b.rev,
		Description: "The policy in force; version and hash are its revision, the SHA-256 of the canonical JSON of its definition.",
		Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: b.rev}},
		Data:        &[]cdx.ComponentData{{Type: cdx.ComponentDataTypeConfiguration, Name: "agentguard policy, version 1"}},
		Properties:  &props,
	}
}

func limitText(l scope.LimitDef) string {
	var parts []string
	add := func(k, v string) {
		if v != "" && v != "0" {
			parts = append(parts, k+" "+v)
		}
	}
	add("rate", l.Rate)
	add("burst", strconv.Itoa(l.Burst))
	add("concurrency", strconv.Itoa(l.Concurrency))
	add("quota", l.Quota)
	return strings.Join(parts, ", ")
}

// grantedBy returns the scopes whose grants name the tool.
func (b *builder) grantedBy(tool string) []string {
	var out []string
	for _, name := range sortedKeys(b.pol.Scopes) {
		for _, g := range b.pol.Scopes[name].Grants {
			if slices.ContainsFunc(g.Tools, func(p string) bool { return p == tool || glob.Match(p, tool) }) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// rulesFor returns the rules that apply to the tool, as "name (effect, mode)".
func (b *builder) rulesFor(tool string) []string {
	var out []string
	for _, r := range b.pol.Rules {
		if slices.ContainsFunc(r.Tools, func(p string) bool { return p == tool || glob.Match(p, tool) }) {
			mode := r.Mode
			if mode == "" {
				mode = "enforce"
			}
			out = append(out, fmt.Sprintf("%s (%s, %s)", r.Name, r.Effect, mode))
		}
	}
	return out
}

// reachable reports whether the agent can call the tool: it is not
// disabled and some scope grants it.
func (b *builder) reachable(tool, disabled string) bool {
	return disabled == "" && len(b.grantedBy(tool)) > 0
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
