package scope

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/agentguard/agentguard/internal/glob"
)

// Prompt is the prompt being got: in CEL the variable prompt, with field
// name.
type Prompt struct {
	Name string `cel:"name"`
}

// ResourceInput is everything a resource decision depends on.
type ResourceInput struct {
	Principal Principal
	// URI is the resource's URI as the client sent it.
	URI  string
	Call Call
	// Task, when not nil, narrows the principal's scopes to those it names
	// (its tool list does not apply to resources).
	Task *Task
}

// PromptInput is everything a prompt decision depends on.
type PromptInput struct {
	Principal Principal
	// Name is the prompt's name; Args its arguments (in CEL, args).
	Name string
	Args map[string]string
	Call Call
	// Task, when not nil, narrows the principal's scopes to those it names
	// (its tool list does not apply to prompts).
	Task *Task
}

// dataKind is what a data grant or rule governs.
type dataKind uint8

const (
	kindResource dataKind = iota
	kindPrompt
)

func (k dataKind) String() string {
	if k == kindPrompt {
		return "prompt"
	}
	return "resource"
}

// dataPolicy holds the grants and rules over resources and prompts. They
// are kept apart from the tool grants and rules: a rule naming tools ("*"
// included) never applies to a resource, and the reverse.
type dataPolicy struct {
	grants [2][]*dataGrant // by kind
	rules  [2][]*dataRule
}

type dataGrant struct {
	scope    string
	index    int
	id       string
	patterns []string
	when     *expr
}

type dataRule struct {
	name     string
	effect   Effect
	shadow   bool
	patterns []string
	when     *expr
	message  *expr
}

// kindOf says what a grant or rule names; ok is false when it names more
// than one kind, which is an error.
func kindOf(tools, resources, prompts []string) (data bool, k dataKind, n int) {
	for _, l := range [][]string{tools, resources, prompts} {
		if len(l) > 0 {
			n++
		}
	}
	switch {
	case len(resources) > 0:
		return true, kindResource, n
	case len(prompts) > 0:
		return true, kindPrompt, n
	}
	return false, 0, n
}

// dataGrant compiles grant i of scope name if it names resources or
// prompts, and reports whether it did.
func (c *compiler) dataGrant(p *Policy, name string, i int, gd GrantDef) bool {
	data, k, n := kindOf(gd.Tools, gd.Resources, gd.Prompts)
	if !data {
		return false
	}
	path := "/scopes/" + escPtr(name) + "/grants/" + strconv.Itoa(i)
	if n > 1 {
		c.errorf(path, "", "a grant names tools, resources or prompts, not several kinds: their conditions read different variables; split it into one grant per kind")
		return true
	}
	if len(gd.Limit) > 0 {
		c.errorf(path+"/limit", "", "limits apply to tool grants only")
	}
	g := &dataGrant{scope: name, index: i, id: name + "#" + strconv.Itoa(i)}
	g.patterns = c.checkPatterns(path, k, gd.Resources, gd.Prompts)
	if gd.When != "" {
		g.when = c.dataExpr(k, path+"/when", gd.When, cel.BoolType)
	}
	p.data.grants[k] = append(p.data.grants[k], g)
	return true
}

// dataRule compiles a rule that names resources or prompts, and reports
// whether it did.
func (c *compiler) dataRule(p *Policy, path string, r *rule, rd RuleDef) bool {
	data, k, n := kindOf(rd.Tools, rd.Resources, rd.Prompts)
	if !data {
		return false
	}
	if n > 1 {
		c.errorf(path, "", "rule %q names tools, resources or prompts, not several kinds: their conditions read different variables; split it into one rule per kind", rd.Name)
		return true
	}
	if r.effect == Ask {
		c.errorf(path+"/effect", "", "rule %q: a rule over %ss can only deny (ask is for tools)", rd.Name, k)
	}
	dr := &dataRule{name: r.name, effect: r.effect, shadow: r.shadow}
	dr.patterns = c.checkPatterns(path, k, rd.Resources, rd.Prompts)
	if rd.When != "" {
		dr.when = c.dataExpr(k, path+"/when", rd.When, cel.BoolType)
	}
	if rd.Message != "" {
		dr.message = c.dataExpr(k, path+"/message", rd.Message, cel.StringType)
	}
	p.data.rules[k] = append(p.data.rules[k], dr)
	return true
}

func (c *compiler) checkPatterns(path string, k dataKind, resources, prompts []string) []string {
	if k == kindPrompt {
		for i, pat := range prompts {
			if err := glob.Validate(pat); err != nil || pat == "" {
				c.errorf(fmt.Sprintf("%s/prompts/%d", path, i), "", "bad prompt pattern %q", pat)
			}
		}
		return slices.Clone(prompts)
	}
	for i, pat := range resources {
		if err := checkResourcePattern(pat); err != nil {
			c.errorf(fmt.Sprintf("%s/resources/%d", path, i), "", "resource pattern %q: %v", pat, err)
		}
	}
	return slices.Clone(resources)
}

func normDataGrant(gd GrantDef) GrantDef {
	return GrantDef{Tools: slices.Clone(gd.Tools), Resources: slices.Clone(gd.Resources),
		Prompts: slices.Clone(gd.Prompts), When: gd.When, Limit: slices.Clone(gd.Limit)}
}

func normDataRule(rd RuleDef) RuleDef {
	rd.Tools, rd.Resources, rd.Prompts = slices.Clone(rd.Tools), slices.Clone(rd.Resources), slices.Clone(rd.Prompts)
	return rd
}

var (
	dataEnvOnce sync.Once
	dataEnvs    [2]*cel.Env
	dataEnvErr  error
)

// dataEnv returns the CEL environment of conditions over resources (the
// variables principal, call and uri) or prompts (principal, call, prompt
// and args, a map of strings). Neither has tool: a condition that reads a
// variable of the other kind fails to load.
func dataEnv(k dataKind) (*cel.Env, error) {
	dataEnvOnce.Do(func() {
		common := []cel.EnvOption{
			ext.NativeTypes(reflect.TypeFor[Principal](), reflect.TypeFor[Call](),
				reflect.TypeFor[URI](), reflect.TypeFor[Prompt](), ext.ParseStructTags(true)),
			cel.Variable("principal", cel.ObjectType("scope.Principal")),
			cel.Variable("call", cel.ObjectType("scope.Call")),
			ext.Strings(), ext.Lists(), ext.Sets(), ext.Network(),
			cel.CrossTypeNumericComparisons(true),
			cel.DefaultUTCTimeZone(true),
			cel.ParserExpressionSizeLimit(maxExprBytes),
			cel.ExpressionNodeLimit(maxExprNodes),
			cel.Function("isUnder",
				cel.MemberOverload("string_isUnder_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
					cel.BinaryBinding(celIsUnder))),
			resolvesUnderFunction(),
			cel.Function("glob",
				cel.MemberOverload("string_glob_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
					cel.BinaryBinding(celGlob))),
			jsonAdapter(),
		}
		common = append(common, hostFunctions()...)
		res := append(slices.Clone(common), cel.Variable("uri", cel.ObjectType("scope.URI")))
		pr := append(slices.Clone(common), cel.Variable("prompt", cel.ObjectType("scope.Prompt")),
			cel.Variable("args", cel.MapType(cel.StringType, cel.StringType)))
		if dataEnvs[kindResource], dataEnvErr = cel.NewEnv(res...); dataEnvErr != nil {
			return
		}
		dataEnvs[kindPrompt], dataEnvErr = cel.NewEnv(pr...)
	})
	return dataEnvs[k], dataEnvErr
}

// dataExpr compiles an expression in the environment of kind k. It is not
// shared with tool expressions of the same source: the variables differ.
func (c *compiler) dataExpr(k dataKind, path, src string, want *cel.Type) *expr {
	e, err := dataEnv(k)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: building CEL environment: %w", err))
		return nil
	}
	saved := c.env
	c.env = e
	defer func() { c.env = saved }()
	return c.compileExpr(path, src, want)
}

// dataActivation holds the variables of a data decision.
type dataActivation struct {
	principal Principal
	call      Call
	uri       URI
	prompt    Prompt
	args      map[string]string
	task      *Task // narrows the scopes; not a CEL variable
}

func (a *dataActivation) ResolveName(name string) (any, bool) {
	switch name {
	case "principal":
		return &a.principal, true
	case "call":
		return &a.call, true
	case "uri":
		return &a.uri, true
	case "prompt":
		return &a.prompt, true
	case "args":
		if a.args == nil {
			return map[string]string{}, true
		}
		return a.args, true
	}
	return nil, false
}

func (a *dataActivation) Parent() interpreter.Activation { return nil }

// evalData evaluates a compiled data expression; a nil one is true.
func evalData(ctx context.Context, e *expr, act *dataActivation) (v any, err error) {
	if e == nil {
		return true, nil
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("evaluation panicked: %v", r)
		}
	}()
	out, _, err := e.prg.ContextEval(ctx, act)
	if err != nil {
		return nil, err
	}
	if types.IsError(out) {
		return nil, out.(*types.Err)
	}
	return out.Value(), nil
}

func evalDataBool(ctx context.Context, e *expr, act *dataActivation) (bool, error) {
	v, err := evalData(ctx, e, act)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition produced %T, not bool", v)
	}
	return b, nil
}

// DecideResource decides a read of a resource (MCP resources/read) by URI.
// Like [Policy.Decide] it is pure. The URI is parsed with [ParseURI]; a URI
// it refuses is denied. Then enforced deny rules naming resources (the
// first whose pattern matches the canonical URI and whose condition holds,
// or fails to evaluate, denies); then the resource grants of the
// principal's scopes (the first whose pattern matches and whose condition
// holds allows); else deny. Rules and grants that name tools never apply.
func (p *Policy) DecideResource(ctx context.Context, in ResourceInput) Decision {
	d := Decision{Grant: -1}
	if !p.admitData(ctx, in.Principal, &d) {
		return d
	}
	u, err := ParseURI(in.URI)
	if err != nil {
		d.Reason = "the resource URI is refused: " + err.Error()
		return d
	}
	act := &dataActivation{principal: in.Principal, call: in.Call, uri: u, task: in.Task}
	p.decideData(ctx, kindResource, u.Canonical, quoteShort(in.URI), act, &d)
	return d
}

// DecidePrompt decides a get of a prompt (MCP prompts/get) by name, with its
// arguments, as DecideResource decides a resource: deny rules naming
// prompts, then prompt grants, else deny.
func (p *Policy) DecidePrompt(ctx context.Context, in PromptInput) Decision {
	d := Decision{Grant: -1}
	if !p.admitData(ctx, in.Principal, &d) {
		return d
	}
	act := &dataActivation{principal: in.Principal, call: in.Call, prompt: Prompt{Name: in.Name}, args: in.Args, task: in.Task}
	p.decideData(ctx, kindPrompt, in.Name, quoteShort(in.Name), act, &d)
	return d
}

func (p *Policy) admitData(ctx context.Context, pr Principal, d *Decision) bool {
	switch {
	case p == nil:
		d.Reason = "no policy is loaded"
		return false
	case ctx.Err() != nil:
		d.Reason = "the request was cancelled before it could be decided"
		return false
	case pr.ID == "":
		d.Reason = "the caller is not identified (no principal)"
		return false
	}
	d.Revision = p.revision
	return true
}

func (p *Policy) decideData(ctx context.Context, k dataKind, subject, quoted string, act *dataActivation, d *Decision) {
	match := matcher(k)
	for _, r := range p.data.rules[k] {
		if !slices.ContainsFunc(r.patterns, func(pat string) bool { return match(pat, subject) }) {
			continue
		}
		ok, err := evalDataBool(ctx, r.when, act)
		if err != nil {
			d.Errors = append(d.Errors, EvalError{Path: r.when.path, Expr: r.when.src, Err: err})
		}
		if r.shadow {
			res := ShadowResult{Rule: r.name, Effect: r.effect, Matched: ok, Err: err}
			if ok {
				res.Message = r.reason(ctx, act, d, k, quoted)
			}
			d.Shadow = append(d.Shadow, res)
			continue
		}
		if ok || err != nil {
			d.Effect, d.Rule = Deny, r.name
			d.Reason = r.reason(ctx, act, d, k, quoted)
			return
		}
	}
	for _, g := range p.data.grants[k] {
		if !p.holdsData(&act.principal, act.task, g.scope) || !slices.ContainsFunc(g.patterns, func(pat string) bool { return match(pat, subject) }) {
			continue
		}
		ok, err := evalDataBool(ctx, g.when, act)
		if err != nil {
			d.Errors = append(d.Errors, EvalError{Path: g.when.path, Expr: g.when.src, Err: err})
		}
		if ok {
			d.Effect, d.Scope, d.Grant, d.GrantID = Allow, g.scope, g.index, g.id
			d.Reason = fmt.Sprintf("allowed by scope %q (grant %d)", g.scope, g.index)
			return
		}
	}
	d.Reason = fmt.Sprintf("no scope held by %s grants %s %s", quoteShort(act.principal.ID), k, quoted)
}

func (r *dataRule) reason(ctx context.Context, act *dataActivation, d *Decision, k dataKind, quoted string) string {
	if r.message == nil {
		return fmt.Sprintf("%s %s is denied by rule %q", k, quoted, r.name)
	}
	v, err := evalData(ctx, r.message, act)
	s, ok := v.(string)
	if err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("message produced %T, not string", v)
		}
		d.Errors = append(d.Errors, EvalError{Path: r.message.path, Expr: r.message.src, Err: err})
		return fmt.Sprintf("%s %s is denied by rule %q (its message could not be evaluated)", k, quoted, r.name)
	}
	return s
}

func matcher(k dataKind) func(pattern, subject string) bool {
	if k == kindPrompt {
		return glob.Match
	}
	return MatchResource
}

// ResourceVisible reports whether a resource belongs in the principal's
// resource list: [Policy.DecideResource] allows reading it. Listing and
// reading never disagree about a resource.
func (p *Policy) ResourceVisible(ctx context.Context, pr Principal, task *Task, uri string) bool {
	return p.DecideResource(ctx, ResourceInput{Principal: pr, URI: uri, Task: task}).Effect == Allow
}

// holdsData reports whether the principal holds scope s and the task, if
// any, keeps it.
func (p *Policy) holdsData(pr *Principal, task *Task, s string) bool {
	if task != nil && task.Scopes != nil && !slices.Contains(task.Scopes, s) {
		return false
	}
	return p.holds(pr, s)
}

// ResourceTemplateVisible reports whether a resource template (an RFC 6570
// URI template such as "file:///{+path}") belongs in the principal's list
// of templates, and whether completions of its arguments may be given: a
// resource grant of a scope the principal holds has a pattern that can
// match URIs the template produces — the literal text before the first
// wildcard of the pattern and the literal text before the first "{" of the
// template agree (one begins with the other) — and no enforced deny rule
// without a condition covers the whole template. Conditions are not
// evaluated: each read is still decided by URI.
func (p *Policy) ResourceTemplateVisible(pr Principal, task *Task, template string) bool {
	if p == nil || pr.ID == "" {
		return false
	}
	tp := literalPrefix(template, "{")
	if !strings.Contains(template, "{") {
		if _, err := ParseURI(template); err != nil {
			return false
		}
	}
	for _, r := range p.data.rules[kindResource] {
		if r.effect == Deny && !r.shadow && r.when == nil && slices.ContainsFunc(r.patterns, func(pat string) bool {
			return prefixCovered(pat, tp)
		}) {
			return false
		}
	}
	for _, g := range p.data.grants[kindResource] {
		if !p.holdsData(&pr, task, g.scope) {
			continue
		}
		for _, pat := range g.patterns {
			gp := literalPrefix(pat, "*?\\")
			if strings.HasPrefix(tp, gp) || strings.HasPrefix(gp, tp) {
				return true
			}
		}
	}
	return false
}

// prefixCovered reports whether the pattern matches every URI beginning
// with prefix: it is "**" or prefix followed by "**" within the pattern's
// own literal prefix.
func prefixCovered(pattern, prefix string) bool {
	if pattern == "**" {
		return true
	}
	lit, ok := strings.CutSuffix(pattern, "**")
	return ok && !strings.ContainsAny(lit, "*?\\") && strings.HasPrefix(prefix, lit)
}

// PromptVisible reports whether a prompt belongs in the principal's prompt
// list: a prompt grant of a scope the principal holds names it, and no
// enforced deny rule without a condition covers it. Conditions, which may
// read the prompt's arguments, are not evaluated.
func (p *Policy) PromptVisible(pr Principal, task *Task, name string) bool {
	if p == nil || pr.ID == "" {
		return false
	}
	for _, r := range p.data.rules[kindPrompt] {
		if r.effect == Deny && !r.shadow && r.when == nil && slices.ContainsFunc(r.patterns, func(pat string) bool { return glob.Match(pat, name) }) {
			return false
		}
	}
	for _, g := range p.data.grants[kindPrompt] {
		if p.holdsData(&pr, task, g.scope) && slices.ContainsFunc(g.patterns, func(pat string) bool { return glob.Match(pat, name) }) {
			return true
		}
	}
	return false
}

// GrantsData reports whether the policy has any grant over resources or
// prompts. A policy without one (every policy written before resources and
// prompts were governed) lets no one list or read a resource or get a
// prompt.
func (p *Policy) GrantsData() bool {
	return p != nil && len(p.data.grants[kindResource])+len(p.data.grants[kindPrompt]) > 0
}
