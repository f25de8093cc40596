package scopetest

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// Coverage counts, for each rule and grant of a policy, how often its
// condition was evaluated and how often it decided a call. Safe for
// concurrent use.
type Coverage struct {
	mu       sync.Mutex
	elements []scope.Element
	index    map[string]int // kind+id → element
	hits     []ElementCoverage
}

// ElementCoverage is the coverage of one rule or grant.
type ElementCoverage struct {
	scope.Element
	Exercised int // times its condition was evaluated (or it applied, with no condition)
	Decided   int // times it decided a call
}

// NewCoverage returns an empty coverage for p's rules and grants.
func NewCoverage(p *scope.Policy) *Coverage {
	c := &Coverage{index: map[string]int{}}
	for i, e := range p.Elements() {
		c.elements = append(c.elements, e)
		c.index[e.Kind+"\x00"+e.ID] = i
		c.hits = append(c.hits, ElementCoverage{Element: e})
	}
	return c
}

// Add counts the expressions a decision evaluated.
func (c *Coverage) Add(r Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range r.Evaluated {
		i, ok := c.index[e.Kind+"\x00"+e.ID]
		if !ok {
			continue
		}
		if e.Expr != "" {
			c.hits[i].Exercised++
		}
		if e.Decided {
			c.hits[i].Decided++
		}
	}
}

// Elements returns the coverage of every rule and grant.
func (c *Coverage) Elements() []ElementCoverage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ElementCoverage(nil), c.hits...)
}

// Ratio returns the fraction of rules and grants exercised at least once
// (1 for a policy without any).
func (c *Coverage) Ratio() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hits) == 0 {
		return 1
	}
	n := 0
	for _, h := range c.hits {
		if h.Exercised > 0 {
			n++
		}
	}
	return float64(n) / float64(len(c.hits))
}

// NeverExercised returns the rules and grants no call evaluated.
func (c *Coverage) NeverExercised() []ElementCoverage {
	return c.filter(func(h ElementCoverage) bool { return h.Exercised == 0 })
}

// NeverDecided returns the rules and grants that never decided a call.
func (c *Coverage) NeverDecided() []ElementCoverage {
	return c.filter(func(h ElementCoverage) bool { return h.Decided == 0 })
}

func (c *Coverage) filter(keep func(ElementCoverage) bool) []ElementCoverage {
	var out []ElementCoverage
	for _, h := range c.Elements() {
		if keep(h) {
			out = append(out, h)
		}
	}
	return out
}

// String is the coverage report: one line per rule and grant.
func (c *Coverage) String() string {
	hits := c.Elements()
	var b strings.Builder
	exercised, decided := 0, 0
	for _, h := range hits {
		if h.Exercised > 0 {
			exercised++
		}
		if h.Decided > 0 {
			decided++
		}
	}
	fmt.Fprintf(&b, "policy coverage: %d of %d rules and grants exercised (%.0f%%), %d decided a call\n",
		exercised, len(hits), 100*c.Ratio(), decided)
	for _, h := range hits {
		where := ""
		if h.Line > 0 {
			where = fmt.Sprintf("line %d", h.Line)
		}
		state := fmt.Sprintf("exercised %d, decided %d", h.Exercised, h.Decided)
		switch {
		case h.Exercised == 0:
			state = "NEVER EXERCISED"
		case h.Decided == 0:
			state += " (never decided)"
		}
		fmt.Fprintf(&b, "  %-5s %-24s %-9s %s\n", h.Kind, h.ID, where, state)
	}
	return b.String()
}

// Check returns an error naming the rules and grants never exercised if
// the coverage ratio is below min.
func (c *Coverage) Check(min float64) error {
	if c.Ratio() >= min {
		return nil
	}
	var ids []string
	for _, h := range c.NeverExercised() {
		ids = append(ids, fmt.Sprintf("%s %q", h.Kind, h.ID))
	}
	return fmt.Errorf("scopetest: policy coverage %.0f%% is below %.0f%%; never exercised: %s",
		100*c.Ratio(), 100*min, strings.Join(ids, ", "))
}

func (c *Coverage) check(t *testing.T, o runOptions) {
	t.Helper()
	if o.min > 0 {
		if err := c.Check(o.min); err != nil {
			t.Error(err)
		}
	}
	if o.golden == "" {
		return
	}
	got := c.String()
	if updateGolden() {
		if err := os.WriteFile(o.golden, []byte(got), 0o644); err != nil {
			t.Errorf("scopetest: writing golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(o.golden)
	if err != nil {
		t.Errorf("scopetest: %v (run with -update or SCOPETEST_UPDATE=1 to create it)", err)
		return
	}
	if string(want) != got {
		t.Errorf("scopetest: coverage differs from %s (run with -update or SCOPETEST_UPDATE=1 to accept):\n--- want\n%s--- got\n%s", o.golden, want, got)
	}
}
