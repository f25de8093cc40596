package scope

import (
	"fmt"
	"strings"
)

// data reports resource grants too wide to be least privilege, and, for a
// server that offers resources or prompts, a policy that grants none (every
// read and get is then denied: the default for a policy written before
// resources and prompts were governed).
func (l *linter) data() {
	if !l.p.GrantsData() && l.opts.ServesData {
		l.add("no-data-grants", "info", "/scopes",
			"the server offers resources or prompts, but no grant names any: every resources/read and prompts/get is denied and their lists are empty; grant what clients may read with \"resources: [...]\" and \"prompts: [...]\"")
	}
	for _, g := range l.p.data.grants[kindResource] {
		for j, pat := range g.patterns {
			what, wide := wideResource(pat)
			if !wide {
				continue
			}
			sev, tail := "warning", ""
			if g.when != nil {
				sev, tail = "info", " unless its condition narrows it"
			}
			l.add("wide-resource-grant", sev, fmt.Sprintf("%s/resources/%d", grantPath(&grant{scope: g.scope, index: g.index}), j),
				"grant %s lets its holders read %s%s: name the directories or paths they need", g.id, what, tail)
		}
	}
}

// wideResource reports whether a resource pattern grants a whole scheme
// or host: "**", or a pattern whose literal part ends at or before the
// start of the path ("file:///**", "https://*.example.com/**").
func wideResource(pat string) (string, bool) {
	if pat == "**" {
		return "every resource of every server", true
	}
	lit := literalPrefix(pat, "*?\\")
	scheme, rest, ok := strings.Cut(lit, "://")
	if !ok {
		return "every resource", true // the wildcard is in the scheme
	}
	host, path, hasPath := strings.Cut(rest, "/")
	if !hasPath || path == "" {
		if host == "" && hasPath {
			return fmt.Sprintf("every %s resource", scheme), true
		}
		return fmt.Sprintf("every %s resource of host %q", scheme, host), true
	}
	return "", false
}
