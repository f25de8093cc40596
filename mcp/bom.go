package guardmcp

import (
	"fmt"
	"slices"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentguard/agentguard/toolguard/aibom"
)

// upstreamInfo is what the proxy knows of its upstream for a BOM.
type upstreamInfo struct {
	server   mcp.Implementation // serverInfo, if the proxy initialized the client
	protocol string
	command  []string // set by DialProxy
	url      string   // set by DialProxy
}

// BOMServer describes the upstream server for an AI-BOM (package aibom):
// its name and version as announced, transport, command line or URL, the
// lock file, and every tool it lists now — served or disabled — with the
// digest of its definition as listed, the digest the lock holds for it,
// for a disabled tool why calls to it are denied, and the findings of
// [ScanTools] (ID "tool-poisoning:<rule>"). Tools are sorted by name.
//
// The command line and URL are known only to a proxy built by
// [DialProxy]; name and version only when the proxy initialized the
// upstream client.
func (p *Proxy) BOMServer() aibom.Server {
	s := aibom.Server{
		Name: p.info.server.Name, Version: p.info.server.Version,
		ProtocolVersion: p.info.protocol,
		Command:         slices.Clone(p.info.command), URL: p.info.url,
		LockFile: p.o.lockPath,
	}
	switch p.c.GetTransport().(type) {
	case *transport.Stdio:
		s.Transport = aibom.TransportStdio
	case *transport.StreamableHTTP:
		s.Transport = aibom.TransportHTTP
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, pt := range p.tools {
		if pt.gone {
			continue
		}
		t := aibom.ServerTool{Name: name, Digest: pt.digest, Disabled: pt.disabled}
		if gt, err := guardTool(pt.def); err == nil {
			t.Title, t.Description, t.Annotations = gt.Title, gt.Description, gt.Annotations
		}
		if p.lock != nil {
			t.LockedDigest = p.lock.Tools[name]
		}
		for _, f := range pt.findings {
			t.Findings = append(t.Findings, aibom.Finding{
				ID: RulePoisoning + ":" + f.Rule, Severity: string(f.Severity),
				Description: fmt.Sprintf("possible tool poisoning (%s) at %s", f.Rule, f.Pointer),
				Detail:      f.Excerpt,
			})
		}
		s.Tools = append(s.Tools, t)
	}
	slices.SortFunc(s.Tools, func(a, b aibom.ServerTool) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return s
}
