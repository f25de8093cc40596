package scope

import (
	"fmt"
	"slices"
)

// Element is a rule or a grant of a policy, with where it is written.
type Element struct {
	// Kind is "rule" or "grant".
	Kind string
	// ID is the rule's name, or the grant's id "scope#index".
	ID string
	// Path is the element's JSON pointer in the policy; Line and Column
	// its position in the source (zero for policies built in code).
	Path         string
	Line, Column int
	// Tools are the tool names or globs the element applies to.
	Tools []string
	// Effect is the rule's effect (Deny or Ask), or Allow for a grant.
	Effect Effect
	// Shadow reports a shadow-mode rule.
	Shadow bool
	// When is the condition's source; empty means always.
	When string
	// Limits are the names of a grant's limits.
	Limits []string
	// Cost is the estimated worst-case cost of the condition.
	Cost uint64
}

// Elements returns the policy's rules (in order) and grants (by scope name,
// then index).
func (p *Policy) Elements() []Element {
	if p == nil {
		return nil
	}
	var out []Element
	at := func(path string) (int, int) {
		for q := path; q != ""; {
			if ps, ok := p.opts.pos[q]; ok {
				return ps.line, ps.col
			}
			i := len(q) - 1
			for i >= 0 && q[i] != '/' {
				i--
			}
			if i < 0 {
				break
			}
			q = q[:i]
		}
		return 0, 0
	}
	for _, r := range p.rules {
		e := Element{Kind: "rule", ID: r.name, Path: pathf("/rules/%d", r.index), Tools: slices.Clone(r.tools), Effect: r.effect, Shadow: r.shadow}
		e.Line, e.Column = at(e.Path)
		if r.when != nil {
			e.When, e.Cost = r.when.src, r.when.cost.Max
		}
		out = append(out, e)
	}
	for _, g := range p.grants {
		e := Element{Kind: "grant", ID: g.id, Path: pathf("/scopes/%s/grants/%d", escPtr(g.scope), g.index), Tools: slices.Clone(g.tools), Effect: Allow}
		e.Line, e.Column = at(e.Path)
		if g.when != nil {
			e.When, e.Cost = g.when.src, g.when.cost.Max
		}
		for _, l := range g.limits {
			e.Limits = append(e.Limits, l.Name)
		}
		out = append(out, e)
	}
	return out
}

func pathf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
