package scope

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"

	"github.com/agentguard/agentguard/internal/glob"
)

// ResultsDef is the results section of a policy: how a tool's result is
// checked after the tool ran and before the result goes back to the
// caller. Without it results are not looked at.
//
//	results:
//	  secrets: redact              # redact (the default) | withhold | allow
//	  patterns:                    # more things to redact (RE2), by name
//	    - name: iban
//	      regex: '\bDE[0-9]{20}\b'
//	  rules:
//	    - name: no-private-keys
//	      effect: withhold         # withhold | redact
//	      tools: ["*"]
//	      when: '"private_key" in findings'
//	    - name: hide-card-numbers
//	      effect: redact
//	      tools: [get_customer]
//	      redact: [/card/number, /orders/*/card]
//
// Result rules read the CEL variables of call rules (principal, tool,
// args, call) and two more: result, the result as JSON (objects, lists,
// strings, numbers...; a result that is text and not JSON is a string),
// and findings, the names of what was found in the result's strings and
// keys: the kinds of secret the built-in detectors know (aws_access_key_id,
// google_api_key, private_key, bearer_token, github_token, slack_token,
// jwt, url_password) and the names of the patterns that matched.
type ResultsDef struct {
	// Secrets says what happens to a result in which the built-in
	// detectors find a secret: "redact" (the default) replaces each
	// secret by a keyed digest, "withhold" keeps the whole result from
	// the caller, "allow" leaves secrets in.
	Secrets string `json:"secrets,omitempty" yaml:"secrets,omitempty"`
	// Patterns are more things to redact from results wherever they
	// appear in a string or key.
	Patterns []ResultPatternDef `json:"patterns,omitempty" yaml:"patterns,omitempty"`
	// Rules withhold or redact results, in order; the first withhold
	// rule that matches withholds.
	Rules []ResultRuleDef `json:"rules,omitempty" yaml:"rules,omitempty"`
}

// ResultPatternDef names a regular expression (RE2 syntax, so matching
// takes time linear in the text) whose matches are redacted from results.
type ResultPatternDef struct {
	Name  string `json:"name" yaml:"name"`
	Regex string `json:"regex" yaml:"regex"`
	// Tools limits the pattern to these tools (names or globs); empty
	// means all.
	Tools []string `json:"tools,omitempty" yaml:"tools,omitempty"`
}

// ResultRuleDef is a rule over a tool's result.
type ResultRuleDef struct {
	// Name identifies the rule in records. Required and unique.
	Name string `json:"name" yaml:"name"`
	// Effect is "withhold" (the result does not go back; the caller gets
	// an error saying why) or "redact" (the values at Redact are
	// replaced by keyed digests).
	Effect string `json:"effect" yaml:"effect"`
	// Tools are the tool names or globs the rule applies to.
	Tools []string `json:"tools" yaml:"tools"`
	// When is an optional CEL condition; empty means always.
	When string `json:"when,omitempty" yaml:"when,omitempty"`
	// Redact are the JSON pointers of the values a redact rule replaces
	// ("*" stands for any array item or member; "" is the whole result).
	Redact []string `json:"redact,omitempty" yaml:"redact,omitempty"`
	// Message is an optional CEL string expression: the reason a
	// withhold rule gives.
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
}

// ResultGuard is what a policy says about the results of one tool.
type ResultGuard struct {
	// Secrets is "redact", "withhold" or "allow" (see [ResultsDef]).
	Secrets string
	// Patterns are the patterns to redact in this tool's results.
	Patterns []ResultPattern
	// Rules reports whether result rules apply to the tool.
	Rules bool
}

// ResultPattern is a compiled pattern of the results section.
type ResultPattern struct {
	Name   string
	Regexp *regexp.Regexp
}

// ResultInput is a call with its result, for [Policy.DecideResult].
type ResultInput struct {
	Input
	// Result is the result as decoded JSON (map[string]any, []any,
	// string, json.Number, bool, nil), or a string for a text result.
	Result any
	// Findings are the names of what was found in the result: kinds of
	// secret and pattern names.
	Findings []string
}

// ResultAction is what happens to a result.
type ResultAction uint8

// The result actions, from weakest to strongest.
const (
	// ResultPass returns the result (secrets and patterns redacted).
	ResultPass ResultAction = iota
	// ResultRedact returns the result with the values of
	// ResultDecision.Redact replaced.
	ResultRedact
	// ResultWithhold keeps the result from the caller.
	ResultWithhold
)

// String returns "pass", "redact" or "withhold".
func (a ResultAction) String() string {
	switch a {
	case ResultRedact:
		return "redact"
	case ResultWithhold:
		return "withhold"
	}
	return "pass"
}

// ResultDecision is the result of [Policy.DecideResult].
type ResultDecision struct {
	Action ResultAction
	// Rules are the result rules that matched, in order (for a withheld
	// result, the last is the one that withheld it).
	Rules []string
	// Reason says why a result is withheld, in words a model can read.
	Reason string
	// Redact are the JSON pointers to redact.
	Redact []string
	// Errors are evaluation errors; an error withholds.
	Errors []EvalError
}

// resultPolicy is the compiled results section.
type resultPolicy struct {
	secrets  string
	patterns []resultPattern
	rules    []*resultRule
	guards   sync.Map // tool name → *ResultGuard
	nguards  int64
	mu       sync.Mutex
}

type resultPattern struct {
	ResultPattern
	tools []string
}

type resultRule struct {
	name     string
	withhold bool
	tools    []string
	when     *expr
	message  *expr
	redact   []string
}

// maxResultGuards bounds the per-policy cache of tool result guards.
const maxResultGuards = 4096

// results compiles the results section and returns its normal form.
func (c *compiler) results(p *Policy, def *ResultsDef) *ResultsDef {
	if def == nil {
		return nil
	}
	rp := &resultPolicy{secrets: def.Secrets}
	norm := &ResultsDef{Secrets: def.Secrets}
	switch def.Secrets {
	case "", "redact":
		rp.secrets, norm.Secrets = "redact", "redact"
	case "withhold", "allow":
	default:
		c.errorf("/results/secrets", "", "secrets must be \"redact\", \"withhold\" or \"allow\", not %q", def.Secrets)
	}
	seen := map[string]bool{}
	for i, pd := range def.Patterns {
		path := "/results/patterns/" + strconv.Itoa(i)
		if pd.Name == "" || seen[pd.Name] {
			c.errorf(path+"/name", "", "pattern %d needs a name of its own", i)
		}
		seen[pd.Name] = true
		re, err := regexp.Compile(pd.Regex)
		switch {
		case err != nil:
			c.errorf(path+"/regex", "", "pattern %q: %v", pd.Name, err)
			continue
		case pd.Regex == "" || re.MatchString(""):
			c.errorf(path+"/regex", "", "pattern %q matches the empty string", pd.Name)
			continue
		}
		if len(pd.Tools) > 0 {
			c.checkTools(path+"/tools", pd.Tools)
		}
		rp.patterns = append(rp.patterns, resultPattern{ResultPattern{pd.Name, re}, slices.Clone(pd.Tools)})
		norm.Patterns = append(norm.Patterns, ResultPatternDef{Name: pd.Name, Regex: pd.Regex, Tools: slices.Clone(pd.Tools)})
	}
	c.resultRules(rp, def.Rules, norm)
	p.results = rp
	return norm
}

// resultRules compiles the result rules, in an environment that adds the
// result and findings variables.
func (c *compiler) resultRules(rp *resultPolicy, defs []ResultRuleDef, norm *ResultsDef) {
	if len(defs) == 0 {
		return
	}
	base := c.env
	renv, err := base.Extend(cel.Variable("result", cel.DynType), cel.Variable("findings", cel.ListType(cel.StringType)))
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: building the result rules' CEL environment: %w", err))
		return
	}
	c.env = renv
	defer func() { c.env = base }()
	seen := map[string]bool{}
	for i, rd := range defs {
		path := "/results/rules/" + strconv.Itoa(i)
		r := &resultRule{name: rd.Name, tools: slices.Clone(rd.Tools), redact: slices.Clone(rd.Redact)}
		switch {
		case rd.Name == "":
			c.errorf(path+"/name", "", "result rule %d has no name", i)
		case seen[rd.Name]:
			c.errorf(path+"/name", "", "result rule name %q is used twice", rd.Name)
		}
		seen[rd.Name] = true
		switch rd.Effect {
		case "withhold":
			r.withhold = true
			if len(rd.Redact) > 0 {
				c.errorf(path+"/redact", "", "result rule %q: redact applies only to effect \"redact\"", rd.Name)
			}
		case "redact":
			if len(rd.Redact) == 0 {
				c.errorf(path+"/redact", "", "result rule %q: effect \"redact\" needs the JSON pointers to redact", rd.Name)
			}
		default:
			c.errorf(path+"/effect", "", "result rule %q: effect must be \"withhold\" or \"redact\", not %q", rd.Name, rd.Effect)
		}
		for j, ptr := range rd.Redact {
			if ptr != "" && !strings.HasPrefix(ptr, "/") {
				c.errorf(fmt.Sprintf("%s/redact/%d", path, j), "", "%q is not a JSON pointer (it must start with /)", ptr)
			}
		}
		c.checkTools(path+"/tools", rd.Tools)
		if rd.When != "" {
			r.when = c.compileExpr(path+"/when", rd.When, cel.BoolType)
		}
		if rd.Message != "" {
			r.message = c.compileExpr(path+"/message", rd.Message, cel.StringType)
		}
		rp.rules = append(rp.rules, r)
		norm.Rules = append(norm.Rules, ResultRuleDef{Name: rd.Name, Effect: rd.Effect, Tools: slices.Clone(rd.Tools),
			When: rd.When, Redact: slices.Clone(rd.Redact), Message: rd.Message})
	}
}

// ResultGuard returns what the policy says about the results of a tool,
// and false when the policy has no results section: results are then not
// looked at. The result must not be modified.
func (p *Policy) ResultGuard(tool string) (*ResultGuard, bool) {
	if p == nil || p.results == nil {
		return nil, false
	}
	rp := p.results
	if g, ok := rp.guards.Load(tool); ok {
		return g.(*ResultGuard), true
	}
	g := &ResultGuard{Secrets: rp.secrets}
	for _, pt := range rp.patterns {
		if len(pt.tools) == 0 || toolMatches(pt.tools, tool) {
			g.Patterns = append(g.Patterns, pt.ResultPattern)
		}
	}
	for _, r := range rp.rules {
		if toolMatches(r.tools, tool) {
			g.Rules = true
			break
		}
	}
	rp.mu.Lock()
	if rp.nguards < maxResultGuards {
		rp.nguards++
		rp.guards.Store(tool, g)
	}
	rp.mu.Unlock()
	return g, true
}

func toolMatches(pats []string, tool string) bool {
	for _, pt := range pats {
		if glob.Match(pt, tool) {
			return true
		}
	}
	return false
}

// DecideResult applies the result rules to a call's result. It is pure,
// like [Policy.Decide]. A rule whose condition fails to evaluate withholds
// the result: what cannot be checked does not go back. Without a results
// section, or without rules for the tool, the action is ResultPass.
func (p *Policy) DecideResult(ctx context.Context, in ResultInput) (d ResultDecision) {
	if p == nil || p.results == nil {
		return d
	}
	var act *resultGuardActivation
	defer func() {
		if act != nil {
			putActivation(act.activation)
		}
	}()
	for _, r := range p.results.rules {
		if !toolMatches(r.tools, in.Tool.Name) {
			continue
		}
		if act == nil {
			act = &resultGuardActivation{activation: getActivation(&in.Input), result: in.Result, findings: in.Findings}
			act.app = appCalls{fns: p.fns, ctx: ctx}
		}
		ok, err := act.evalBool(ctx, r.when)
		if err != nil {
			d.Errors = append(d.Errors, EvalError{Path: r.when.path, Expr: r.when.src, Err: err})
			d.Action, d.Rules = ResultWithhold, append(d.Rules, r.name)
			d.Reason = fmt.Sprintf("result rule %q could not be evaluated, so the result is withheld to be safe: %v", r.name, err)
			return d
		}
		if !ok {
			continue
		}
		d.Rules = append(d.Rules, r.name)
		if r.withhold {
			d.Action = ResultWithhold
			d.Reason = fmt.Sprintf("withheld by result rule %q: %s", r.name, act.reason(ctx, r, &d))
			return d
		}
		d.Action = ResultRedact
		d.Redact = append(d.Redact, r.redact...)
	}
	return d
}

// resultGuardActivation adds result and findings to a call's activation.
type resultGuardActivation struct {
	*activation
	result   any
	findings []string
}

// ResolveName implements interpreter.Activation.
func (a *resultGuardActivation) ResolveName(name string) (any, bool) {
	switch name {
	case "result":
		return a.result, true
	case "findings":
		return a.findings, true
	}
	return a.activation.ResolveName(name)
}

// Parent implements interpreter.Activation.
func (a *resultGuardActivation) Parent() interpreter.Activation { return nil }

// ResolveFunction implements interpreter.FunctionActivation.
func (a *resultGuardActivation) ResolveFunction(name string) (functions.LateBoundOp, bool) {
	return a.activation.ResolveFunction(name)
}

func (a *resultGuardActivation) eval(ctx context.Context, e *expr) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("evaluation panicked: %v", r)
		}
	}()
	out, _, err := e.prg.ContextEval(ctx, a)
	if err != nil {
		return nil, err
	}
	if types.IsError(out) {
		return nil, out.(*types.Err)
	}
	return out, nil
}

func (a *resultGuardActivation) evalBool(ctx context.Context, e *expr) (bool, error) {
	if e == nil {
		return true, nil
	}
	v, err := a.eval(ctx, e)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("condition produced %T, not bool", v)
	}
	return bool(b), nil
}

// reason evaluates a withhold rule's message.
func (a *resultGuardActivation) reason(ctx context.Context, r *resultRule, d *ResultDecision) string {
	if r.message == nil {
		return "this result may not be returned"
	}
	v, err := a.eval(ctx, r.message)
	s, ok := v.(types.String)
	if err == nil && !ok {
		err = fmt.Errorf("message produced %T, not string", v)
	}
	if err != nil {
		d.Errors = append(d.Errors, EvalError{Path: r.message.path, Expr: r.message.src, Err: err})
		return "this result may not be returned (the rule's message could not be evaluated)"
	}
	return string(s)
}
