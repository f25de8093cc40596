package toolguard

import (
	"context"
	"maps"
	"sync"

	"github.com/agentguard/agentguard/scope"
)

// Candidate is what a candidate policy decided for a call, beside the
// enforced one: recorded, never enforced.
type Candidate struct {
	Revision string
	Effect   scope.Effect
	Rule     string
	GrantID  string
	Reason   string
	// Agrees reports whether the candidate reached the enforced policy's
	// effect (before approvals and limits) and the same rule.
	Agrees bool
}

// WithCandidate evaluates a candidate policy beside the enforced one on
// every call that reaches the policy: its decision goes into the record and
// the [ShadowSummary], and is never enforced. It is how a policy change is
// rolled out: watch where the candidate would disagree, then promote it
// with SetPolicy.
func WithCandidate(p *scope.Policy) Option {
	return func(g *Guard) error { g.SetCandidate(p); return nil }
}

// SetCandidate replaces the candidate policy (nil removes it) and resets
// the shadow summary.
func (g *Guard) SetCandidate(p *scope.Policy) {
	g.shadow.mu.Lock()
	defer g.shadow.mu.Unlock()
	g.shadow.sum = ShadowSummary{Disagree: map[string]int{}, ByRule: map[string]int{}}
	if p != nil {
		g.shadow.sum.Candidate = p.Revision()
	}
	g.candidate.Store(p)
}

// ShadowSummary counts how a candidate policy's decisions compare with the
// enforced ones, since it was set.
type ShadowSummary struct {
	// Candidate is the candidate policy's revision.
	Candidate string
	// Calls were decided by both policies; Agree of them alike.
	Calls, Agree int
	// Disagree counts disagreements by kind: "allow→deny" means the
	// enforced policy allowed and the candidate would deny; "rule" means
	// the same effect by another rule.
	Disagree map[string]int
	// ByRule counts disagreements by the candidate's deciding rule (or
	// grant, or "no grant").
	ByRule map[string]int
}

type shadowState struct {
	mu  sync.Mutex
	sum ShadowSummary
}

// ShadowSummary returns a copy of the summary.
func (g *Guard) ShadowSummary() ShadowSummary {
	g.shadow.mu.Lock()
	defer g.shadow.mu.Unlock()
	s := g.shadow.sum
	s.Disagree = maps.Clone(s.Disagree)
	s.ByRule = maps.Clone(s.ByRule)
	if s.Disagree == nil {
		s.Disagree = map[string]int{}
		s.ByRule = map[string]int{}
	}
	return s
}

// decideCandidate decides in with the candidate policy, if any, and counts
// the comparison with the enforced decision d.
func (g *Guard) decideCandidate(ctx context.Context, in scope.Input, d *scope.Decision) *Candidate {
	cand := g.candidate.Load()
	if cand == nil {
		return nil
	}
	cd := cand.Decide(ctx, in)
	c := &Candidate{Revision: cd.Revision, Effect: cd.Effect, Rule: cd.Rule, GrantID: cd.GrantID, Reason: cd.Reason}
	c.Agrees = cd.Effect == d.Effect && cd.Rule == d.Rule
	kind := "rule"
	if cd.Effect != d.Effect {
		kind = d.Effect.String() + "→" + cd.Effect.String()
	}
	by := cd.Rule
	if by == "" {
		by = cd.GrantID
	}
	if by == "" {
		by = "no grant"
	}
	g.shadow.mu.Lock()
	defer g.shadow.mu.Unlock()
	if g.shadow.sum.Candidate != cd.Revision {
		return c // the candidate was replaced meanwhile
	}
	g.shadow.sum.Calls++
	if c.Agrees {
		g.shadow.sum.Agree++
	} else {
		g.shadow.sum.Disagree[kind]++
		g.shadow.sum.ByRule[by]++
	}
	return c
}
