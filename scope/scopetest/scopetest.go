package scopetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/scope/internal/trace"
	"github.com/agentguard/agentguard/toolguard"
)

// Target is what cases run against: a bare policy, or a guard (whose
// tools' schemas then validate the arguments first, and whose Check makes
// the decision without running or recording anything).
type Target interface {
	*scope.Policy | *toolguard.Guard
}

// Case is one call and what the policy must decide.
type Case struct {
	Name      string          `yaml:"name" json:"name"`
	Principal scope.Principal `yaml:"principal" json:"principal"`
	Tool      string          `yaml:"tool" json:"tool"`
	Args      map[string]any  `yaml:"args" json:"args,omitempty"`
	// Expect is "allow", "deny" or "ask".
	Expect string `yaml:"expect" json:"expect"`
	// Rule, if set, is the rule that must decide.
	Rule string `yaml:"rule,omitempty" json:"rule,omitempty"`
	// Grant, if set, is the grant ("scope#i") or scope that must allow.
	Grant string `yaml:"grant,omitempty" json:"grant,omitempty"`
	// Reason, if set, must be a substring of the decision's reason.
	Reason string `yaml:"reason,omitempty" json:"reason,omitempty"`

	// File and Line say where the case was read from, if from a file.
	File string `yaml:"-" json:"-"`
	Line int    `yaml:"-" json:"-"`
}

// Call is a call to decide in a table test.
type Call struct {
	Principal scope.Principal
	Tool      string
	Args      map[string]any
}

// Result is a decision with the expressions evaluated to reach it.
type Result struct {
	Effect    scope.Effect
	Rule      string
	GrantID   string
	Reason    string
	Stage     string // for a guard: the pipeline stage that decided
	Evaluated []Evaluated
}

// Evaluated is one CEL expression evaluated for a decision.
type Evaluated struct {
	Kind    string // "rule", "grant", or "function" (an application function's call)
	ID      string
	Expr    string // for a function: its name and the shape of its arguments
	Result  string
	Err     error
	Decided bool
	// Duration is how long a function call took.
	Duration time.Duration
}

// Decide decides one call against a policy or a guard, recording the
// expressions evaluated.
func Decide[T Target](ctx context.Context, target T, c Call) (Result, error) {
	rec := &trace.Recorder{}
	ctx = trace.With(ctx, rec)
	var res Result
	switch tg := any(target).(type) {
	case *scope.Policy:
		if tg == nil {
			return res, errors.New("scopetest: nil policy")
		}
		d := tg.Decide(ctx, scope.Input{Principal: c.Principal, Tool: scope.Tool{Name: c.Tool}, Args: normalize(c.Args)})
		res = Result{Effect: d.Effect, Rule: d.Rule, GrantID: d.GrantID, Reason: d.Reason, Stage: "policy"}
	case *toolguard.Guard:
		if tg == nil {
			return res, errors.New("scopetest: nil guard")
		}
		args, err := json.Marshal(jsonable(c.Args))
		if err != nil {
			return res, fmt.Errorf("scopetest: arguments: %w", err)
		}
		// Check's error, for a deny or an ask, restates d: d is the result.
		d, _ := tg.Check(toolguard.WithPrincipal(ctx, c.Principal), c.Tool, args)
		res = Result{Effect: d.Effect, Rule: d.Rule, GrantID: d.GrantID, Reason: d.Reason, Stage: string(d.Stage)}
	}
	for _, e := range rec.Events() {
		res.Evaluated = append(res.Evaluated, Evaluated{Kind: e.Kind, ID: e.ID, Expr: e.Expr, Result: e.Result, Err: e.Err, Decided: e.Decided, Duration: e.Duration})
	}
	return res, nil
}

// Check decides a case and returns an error describing any difference from
// what it expects: what was expected, what was decided and why, and the CEL
// that was evaluated. It is what Run reports for a failing case.
func Check[T Target](ctx context.Context, target T, c Case) (Result, error) {
	res, err := Decide(ctx, target, Call{Principal: c.Principal, Tool: c.Tool, Args: c.Args})
	if err != nil {
		return res, err
	}
	var problems []string
	switch c.Expect {
	case "allow", "deny", "ask":
		if res.Effect.String() != c.Expect {
			problems = append(problems, fmt.Sprintf("expected %s, got %s", c.Expect, res.Effect))
		}
	default:
		return res, fmt.Errorf("scopetest: case %q: expect must be allow, deny or ask, not %q", c.Name, c.Expect)
	}
	if c.Rule != "" && res.Rule != c.Rule {
		problems = append(problems, fmt.Sprintf("expected rule %q to decide, got %s", c.Rule, orNone(res.Rule)))
	}
	if c.Grant != "" && res.GrantID != c.Grant && !strings.HasPrefix(res.GrantID, c.Grant+"#") {
		problems = append(problems, fmt.Sprintf("expected grant %q, got %s", c.Grant, orNone(res.GrantID)))
	}
	if c.Reason != "" && !strings.Contains(res.Reason, c.Reason) {
		problems = append(problems, fmt.Sprintf("expected the reason to contain %q", c.Reason))
	}
	if len(problems) == 0 {
		return res, nil
	}
	return res, errors.New(describe(c, res, problems))
}

func describe(c Case, res Result, problems []string) string {
	var b strings.Builder
	where := ""
	if c.File != "" {
		where = fmt.Sprintf(" (%s:%d)", c.File, c.Line)
	}
	fmt.Fprintf(&b, "case %q%s: %s\n", c.Name, where, strings.Join(problems, "; "))
	fmt.Fprintf(&b, "  call:     %s %s by %q\n", c.Tool, compactJSON(c.Args), c.Principal.ID)
	fmt.Fprintf(&b, "  decided:  %s", res.Effect)
	if res.Rule != "" {
		fmt.Fprintf(&b, " by rule %q", res.Rule)
	}
	if res.GrantID != "" {
		fmt.Fprintf(&b, " by grant %q", res.GrantID)
	}
	if res.Stage != "" && res.Stage != "policy" {
		fmt.Fprintf(&b, " at stage %s", res.Stage)
	}
	fmt.Fprintf(&b, "\n  reason:   %s\n", res.Reason)
	if len(res.Evaluated) == 0 {
		b.WriteString("  evaluated: nothing (no rule or grant applies to this tool)\n")
	} else {
		b.WriteString("  evaluated:\n")
		for _, e := range res.Evaluated {
			fmt.Fprintf(&b, "    %-5s %-16s %s → %s", e.Kind, e.ID, e.Expr, e.Result)
			if e.Err != nil {
				fmt.Fprintf(&b, " (%v)", e.Err)
			}
			if e.Decided {
				b.WriteString("  ← decided")
			}
			b.WriteByte('\n')
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return fmt.Sprintf("%q", s)
}

func compactJSON(v map[string]any) string {
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Option configures Run.
type Option func(*runOptions)

type runOptions struct {
	min    float64
	golden string
}

// MinCoverage fails the test if the fraction of rules and grants the cases
// exercised is below min (0 to 1).
func MinCoverage(min float64) Option { return func(o *runOptions) { o.min = min } }

// Golden compares the coverage report with the file at path, rewriting the
// file when the test binary has an -update flag set to true or the
// environment has SCOPETEST_UPDATE=1.
func Golden(path string) Option { return func(o *runOptions) { o.golden = path } }

// Run runs every case in the YAML files matching pattern, each as a
// subtest, and returns the coverage of the target's policy.
func Run[T Target](t *testing.T, target T, pattern string, opts ...Option) *Coverage {
	t.Helper()
	var o runOptions
	for _, f := range opts {
		f(&o)
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatalf("scopetest: %v", err)
	}
	if len(files) == 0 {
		t.Fatalf("scopetest: no case files match %q", pattern)
	}
	cov := NewCoverage(policyOf(target))
	for _, file := range files {
		cases, err := LoadCases(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Helper()
				res, err := Check(t.Context(), target, c)
				cov.Add(res)
				if err != nil {
					t.Error(err)
				}
			})
		}
	}
	cov.check(t, o)
	return cov
}

func policyOf[T Target](target T) *scope.Policy {
	switch tg := any(target).(type) {
	case *scope.Policy:
		return tg
	case *toolguard.Guard:
		return tg.Policy()
	}
	return nil
}

// LoadCases reads a case file.
func LoadCases(path string) ([]Case, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scopetest: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("scopetest: %s: %w", path, err)
	}
	var f struct {
		Cases []yaml.Node `yaml:"cases"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("scopetest: %s: %w", path, err)
	}
	var cases []Case
	names := map[string]bool{}
	for i, n := range f.Cases {
		var c Case
		if err := knownKeys(&n, caseKeys, "case"); err != nil {
			return nil, fmt.Errorf("scopetest: %s:%w", path, err)
		}
		if err := n.Decode(&c); err != nil {
			return nil, fmt.Errorf("scopetest: %s:%d: %w", path, n.Line, err)
		}
		c.File, c.Line = path, n.Line
		if c.Name == "" {
			c.Name = fmt.Sprintf("case %d", i+1)
		}
		if names[c.Name] {
			return nil, fmt.Errorf("scopetest: %s:%d: case name %q is used twice", path, n.Line, c.Name)
		}
		names[c.Name] = true
		if c.Tool == "" {
			return nil, fmt.Errorf("scopetest: %s:%d: case %q names no tool", path, n.Line, c.Name)
		}
		switch c.Expect {
		case "allow", "deny", "ask":
		default:
			return nil, fmt.Errorf("scopetest: %s:%d: case %q: expect must be allow, deny or ask, not %q", path, n.Line, c.Name, c.Expect)
		}
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("scopetest: %s has no cases", path)
	}
	return cases, nil
}

// normalize converts values decoded from YAML into the JSON-like values a
// decision sees (map[any]any keys become strings).
func normalize(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = normalizeValue(v)
	}
	return out
}

func normalizeValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return normalize(x)
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[fmt.Sprint(k)] = normalizeValue(v)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, v := range x {
			l[i] = normalizeValue(v)
		}
		return l
	}
	return v
}

func jsonable(m map[string]any) map[string]any { return normalize(m) }

// updateGolden reports whether golden files should be rewritten.
func updateGolden() bool {
	if os.Getenv("SCOPETEST_UPDATE") == "1" {
		return true
	}
	if f := flag.Lookup("update"); f != nil {
		return f.Value.String() == "true"
	}
	return false
}

var caseKeys = map[string]map[string]bool{
	"":          {"name": true, "principal": true, "tool": true, "args": true, "expect": true, "rule": true, "grant": true, "reason": true},
	"principal": {"id": true, "scopes": true, "attrs": true},
}

// knownKeys rejects misspelt keys in a case (and its principal): a typo
// must not silently weaken a test.
func knownKeys(n *yaml.Node, allowed map[string]map[string]bool, what string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%d: a %s must be a mapping", n.Line, what)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !allowed[""][k.Value] {
			return fmt.Errorf("%d:%d: unknown key %q in a %s", k.Line, k.Column, k.Value, what)
		}
		if sub, ok := allowed[k.Value]; ok && n.Content[i+1].Kind == yaml.MappingNode {
			if err := knownKeys(n.Content[i+1], map[string]map[string]bool{"": sub}, k.Value); err != nil {
				return err
			}
		}
	}
	return nil
}
