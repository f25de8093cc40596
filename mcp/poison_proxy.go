package guardmcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
)

// RulePoisoning is the rule of the decision records of calls to tools the
// proxy hides because of their findings (see [WithHideFlagged]).
const RulePoisoning = "tool-poisoning"

// WithHideFlagged sets the severity from which a finding of [ScanTools]
// hides an upstream tool: it is not listed, and every call to it is denied
// and recorded (rule "tool-poisoning"), as for a tool that fails the lock.
// The default is SeverityHigh: a poisoned description acts on the model as
// soon as the tool is listed, before any call the guard could stop, so
// in front of a third-party server the safe choice is to withhold it until
// an operator has looked. "" (ParseSeverity("none")) hides nothing; the
// findings are still logged, put into the BOM ([Proxy.BOMServer]) and,
// when the lock is rewritten, into the lock.
func WithHideFlagged(min Severity) Option {
	return func(o *options) { o.hideFlagged = min }
}

// Findings returns the findings of the tools the upstream lists now, sorted
// by tool, pointer and rule.
func (p *Proxy) Findings() []Finding {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Finding
	for _, name := range sortedToolNames(p.tools) {
		if pt := p.tools[name]; !pt.gone {
			out = append(out, pt.findings...)
		}
	}
	return out
}

func sortedToolNames(m map[string]*proxyTool) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// scan returns the findings of each listed tool by name.
func (p *Proxy) scan(list []rawTool) map[string][]Finding {
	raws := make([]json.RawMessage, len(list))
	for i, rt := range list {
		raws[i] = rt.raw
	}
	fs, err := ScanTools(raws, ScanOptions{})
	if err != nil {
		p.o.logger.Warn("guardmcp: scanning upstream tools", "err", err)
	}
	out := map[string][]Finding{}
	for _, f := range fs {
		out[f.Tool] = append(out[f.Tool], f)
	}
	return out
}

// flagged returns why a tool with these findings is hidden, or "".
func (p *Proxy) flagged(name string, fs []Finding) string {
	if p.o.hideFlagged == "" {
		return ""
	}
	for _, f := range fs {
		if f.Severity.rank() >= p.o.hideFlagged.rank() {
			return fmt.Sprintf("tool %q is hidden: its definition looks poisoned (%s at %s); it stays disabled until an operator reviews it", name, f.Rule, f.Pointer)
		}
	}
	return ""
}

// rescanned updates the findings of an unchanged tool, whose findings can
// change with the other tools listed (shadowing); a tool they now flag is
// disabled, and stays so.
func (p *Proxy) rescanned(pt *proxyTool, fs []Finding) {
	if slices.Equal(pt.findings, fs) {
		return
	}
	pt.findings = fs
	reason := ""
	if pt.disabled == "" {
		reason = p.flagged(pt.def.Name, fs)
	}
	p.logFindings(fs, pt.disabled != "" || reason != "")
	if reason == "" {
		return
	}
	if !pt.gone {
		p.g.Unregister(pt.def.Name)
	}
	pt.disabled, pt.rule = reason, RulePoisoning
	p.o.logger.Warn("guardmcp: disabling an upstream tool", "tool", pt.def.Name, "reason", reason)
}

func (p *Proxy) logFindings(fs []Finding, hidden bool) {
	for _, f := range fs {
		p.o.logger.Warn("guardmcp: upstream tool definition looks poisoned", "tool", f.Tool, "rule", f.Rule,
			"severity", string(f.Severity), "pointer", f.Pointer, "excerpt", f.Excerpt, "hidden", hidden)
	}
}

// rewriteLock writes the lock from the upstream's tools, with their
// findings, and logs (at debug level) what it pinned and what changed since
// the lock it replaces.
func (p *Proxy) rewriteLock(list []rawTool) error {
	prev, err := ReadLock(p.o.lockPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			p.o.logger.Warn("guardmcp: the previous tool lock cannot be read; every tool counts as added", "err", err)
		}
		prev = nil
	}
	findings := p.scan(list)
	l := &Lock{Version: LockVersion, Tools: map[string]string{}, Findings: map[string][]Finding{}}
	for _, rt := range list {
		if d, err := ToolDigest(rt.raw); err == nil && toolNameRE.MatchString(rt.Name) {
			l.Tools[rt.Name] = d
			if fs := findings[rt.Name]; len(fs) > 0 {
				l.Findings[rt.Name] = fs
			}
		}
	}
	if err := WriteLock(p.o.lockPath, l); err != nil {
		return err
	}
	p.lock = l
	added, removed, changed := l.Changes(prev)
	// At debug level: a command (mcpguard -update-lock) prints its own
	// report from the lock file.
	p.o.logger.Debug("guardmcp: tool lock written", "path", p.o.lockPath, "pinned", len(l.Tools),
		"added", added, "changed", changed, "removed", removed, "unchanged", len(l.Tools)-len(added)-len(changed))
	for _, name := range sortedKeys(l.Tools) {
		since := "unchanged"
		if slices.Contains(added, name) {
			since = "added"
		} else if slices.Contains(changed, name) {
			since = "changed"
		}
		p.o.logger.Debug("guardmcp: pinned tool", "tool", name, "digest", l.Tools[name],
			"since", since, "findings", len(l.Findings[name]))
	}
	return nil
}
