package scopetest

import (
	"context"
	"strings"
	"testing"

	"github.com/agentguard/agentguard/scope"
)

// Expectation checks one decision; build it with [Expect]. Each method
// reports a failure on the test with the decision and the CEL evaluated,
// and returns the Expectation so checks can be chained.
type Expectation struct {
	t   testing.TB
	c   Call
	res Result
	err error
}

// Expect decides call against a policy or a guard.
func Expect[T Target](t testing.TB, target T, call Call) *Expectation {
	t.Helper()
	res, err := Decide(context.Background(), target, call)
	if err != nil {
		t.Fatal(err)
	}
	return &Expectation{t: t, c: call, res: res, err: err}
}

// Result returns the decision.
func (e *Expectation) Result() Result { return e.res }

func (e *Expectation) check(c Case) *Expectation {
	e.t.Helper()
	c.Principal, c.Tool, c.Args = e.c.Principal, e.c.Tool, e.c.Args
	if c.Name == "" {
		c.Name = e.c.Tool
	}
	var problems []string
	if e.res.Effect.String() != c.Expect {
		problems = append(problems, "expected "+c.Expect+", got "+e.res.Effect.String())
	}
	if c.Rule != "" && e.res.Rule != c.Rule {
		problems = append(problems, "expected rule "+quote(c.Rule)+" to decide, got "+orNone(e.res.Rule))
	}
	if c.Grant != "" && e.res.GrantID != c.Grant && !strings.HasPrefix(e.res.GrantID, c.Grant+"#") {
		problems = append(problems, "expected grant "+quote(c.Grant)+", got "+orNone(e.res.GrantID))
	}
	if c.Reason != "" && !strings.Contains(e.res.Reason, c.Reason) {
		problems = append(problems, "expected the reason to contain "+quote(c.Reason))
	}
	if len(problems) > 0 {
		e.t.Error(describe(c, e.res, problems))
	}
	return e
}

func quote(s string) string { return `"` + s + `"` }

// Allowed expects the call to be allowed.
func (e *Expectation) Allowed() *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: scope.Allow.String()})
}

// AllowedBy expects the call to be allowed by the grant ("scope#i") or
// scope.
func (e *Expectation) AllowedBy(grant string) *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: scope.Allow.String(), Grant: grant})
}

// Denied expects the call to be denied.
func (e *Expectation) Denied() *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: scope.Deny.String()})
}

// DeniedBy expects the call to be denied by the named rule.
func (e *Expectation) DeniedBy(rule string) *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: scope.Deny.String(), Rule: rule})
}

// Asks expects the call to need approval.
func (e *Expectation) Asks() *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: scope.Ask.String()})
}

// AsksBy expects the named ask rule to send the call for approval.
func (e *Expectation) AsksBy(rule string) *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: scope.Ask.String(), Rule: rule})
}

// ReasonContains expects the reason to contain s, whatever the effect.
func (e *Expectation) ReasonContains(s string) *Expectation {
	e.t.Helper()
	return e.check(Case{Expect: e.res.Effect.String(), Reason: s})
}
