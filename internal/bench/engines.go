package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
)

// Result is an engine's answer: allowed or not and, for a denial by a deny
// rule, the rule's name.
type Result struct {
	Allow    bool
	DenyRule string
}

// Engine is one policy engine loaded with one policy.
type Engine interface {
	// Name is "agentguard", "opa" or "cedar".
	Name() string
	// Prepare converts a call into the engine's native input, once, so that
	// a benchmark of Decide times the evaluation alone.
	Prepare(c Call) (Prepared, error)
	// DecideJSON decides a call from its JSON arguments, converting them
	// to the engine's input on every call as an application would.
	DecideJSON(ctx context.Context, c *Call) (bool, error)
}

// Prepared is a call ready for one engine.
type Prepared interface {
	// Decide reports whether the call is allowed: the cheapest form of the
	// engine's answer, which is what the benchmarks time.
	Decide(ctx context.Context) (bool, error)
	// Explain also names the deny rule that denied it, for the agreement
	// test.
	Explain(ctx context.Context) (Result, error)
}

// Engines loads p into each engine, in the order agentguard, opa, cedar.
func Engines(ctx context.Context, p Policies) ([]Engine, error) {
	ag, err := NewAgentguard(p.Agentguard)
	if err != nil {
		return nil, err
	}
	op, err := NewOPA(ctx, p.Rego)
	if err != nil {
		return nil, err
	}
	cd, err := NewCedar(p.Cedar, false)
	if err != nil {
		return nil, err
	}
	return []Engine{ag, op, cd}, nil
}

// decodeArgs decodes JSON arguments as encoding/json does with UseNumber.
func decodeArgs(s []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("bench: arguments: %w", err)
	}
	return m, nil
}

// Agentguard is agentguard's scope.Policy.Decide.
type Agentguard struct {
	Policy *scope.Policy
	// Label replaces the name "agentguard" when set, for variants loaded
	// with options.
	Label string
}

// NewAgentguard parses a scope policy.
func NewAgentguard(src string, opts ...scope.Option) (*Agentguard, error) {
	p, err := scope.Parse([]byte(src), opts...)
	if err != nil {
		return nil, err
	}
	return &Agentguard{Policy: p}, nil
}

// Name returns "agentguard" or the Label.
func (e *Agentguard) Name() string {
	if e.Label != "" {
		return e.Label
	}
	return "agentguard"
}

func agPrincipal(p *Principal) scope.Principal {
	return scope.Principal{ID: p.ID, Scopes: p.Scopes, Attrs: map[string]any{"max_results": p.MaxResults}}
}

// Prepare decodes the arguments once, as the guard does.
func (e *Agentguard) Prepare(c Call) (Prepared, error) {
	args, err := safejson.DecodeObject([]byte(c.Args), safejson.Limits{})
	if err != nil {
		return nil, err
	}
	return &agPrepared{p: e.Policy, in: scope.Input{
		Principal: agPrincipal(&c.Principal),
		Tool:      scope.Tool{Name: c.Tool},
		Args:      args,
		Call:      scope.Call{ID: "bench", Time: time.Now()},
	}}, nil
}

// DecideJSON decodes the arguments strictly and decides.
func (e *Agentguard) DecideJSON(ctx context.Context, c *Call) (bool, error) {
	args, err := safejson.DecodeObject([]byte(c.Args), safejson.Limits{})
	if err != nil {
		return false, err
	}
	d := e.Policy.Decide(ctx, scope.Input{
		Principal: agPrincipal(&c.Principal),
		Tool:      scope.Tool{Name: c.Tool},
		Args:      args,
	})
	return d.Effect == scope.Allow, decideErr(d)
}

type agPrepared struct {
	p  *scope.Policy
	in scope.Input
}

func (a *agPrepared) Decide(ctx context.Context) (bool, error) {
	d := a.p.Decide(ctx, a.in)
	return d.Effect == scope.Allow, decideErr(d)
}

func (a *agPrepared) Explain(ctx context.Context) (Result, error) {
	d := a.p.Decide(ctx, a.in)
	return Result{Allow: d.Effect == scope.Allow, DenyRule: d.Rule}, decideErr(d)
}

func decideErr(d scope.Decision) error {
	if len(d.Errors) == 0 {
		return nil
	}
	errs := make([]error, len(d.Errors))
	for i, e := range d.Errors {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// OPA is a prepared Rego query, evaluated per call.
type OPA struct {
	allow, deny rego.PreparedEvalQuery
}

// NewOPA compiles a Rego module and prepares the queries
// data.agentguard.allow and data.agentguard.deny.
func NewOPA(ctx context.Context, src string) (*OPA, error) {
	allow, err := rego.New(rego.Query("data.agentguard.allow"), rego.Module("policy.rego", src)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: opa: %w", err)
	}
	deny, err := rego.New(rego.Query("data.agentguard.deny"), rego.Module("policy.rego", src)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: opa: %w", err)
	}
	return &OPA{allow: allow, deny: deny}, nil
}

// Name returns "opa".
func (*OPA) Name() string { return "opa" }

func opaInput(c *Call, args map[string]any) map[string]any {
	scopes := make([]any, len(c.Principal.Scopes))
	for i, s := range c.Principal.Scopes {
		scopes[i] = s
	}
	return map[string]any{
		"principal": map[string]any{
			"id":     c.Principal.ID,
			"scopes": scopes,
			"attrs":  map[string]any{"max_results": json.Number(fmt.Sprint(c.Principal.MaxResults))},
		},
		"tool": c.Tool,
		"args": args,
	}
}

// Prepare converts the input to an OPA AST value once; Decide evaluates it
// with rego.EvalParsedInput, the fastest way to hand OPA an input.
func (e *OPA) Prepare(c Call) (Prepared, error) {
	args, err := decodeArgs([]byte(c.Args))
	if err != nil {
		return nil, err
	}
	v, err := ast.InterfaceToValue(opaInput(&c, args))
	if err != nil {
		return nil, fmt.Errorf("bench: opa: %w", err)
	}
	return &opaPrepared{e: e, input: v}, nil
}

// DecideJSON decodes the arguments and evaluates with rego.EvalInput,
// which converts the Go value on every call.
func (e *OPA) DecideJSON(ctx context.Context, c *Call) (bool, error) {
	args, err := decodeArgs([]byte(c.Args))
	if err != nil {
		return false, err
	}
	rs, err := e.allow.Eval(ctx, rego.EvalInput(opaInput(c, args)))
	if err != nil {
		return false, err
	}
	return rs.Allowed(), nil
}

type opaPrepared struct {
	e     *OPA
	input ast.Value
}

func (o *opaPrepared) Decide(ctx context.Context) (bool, error) {
	rs, err := o.e.allow.Eval(ctx, rego.EvalParsedInput(o.input))
	if err != nil {
		return false, err
	}
	return rs.Allowed(), nil
}

func (o *opaPrepared) Explain(ctx context.Context) (Result, error) {
	ok, err := o.Decide(ctx)
	if err != nil {
		return Result{}, err
	}
	rs, err := o.e.deny.Eval(ctx, rego.EvalParsedInput(o.input))
	if err != nil {
		return Result{}, err
	}
	var r Result
	r.Allow = ok
	if len(rs) == 1 && len(rs[0].Expressions) == 1 {
		set, _ := rs[0].Expressions[0].Value.([]any)
		if len(set) > 0 {
			// The first in order of the policy file, as agentguard and
			// Cedar report: the call table has one matching rule at most.
			names := make([]string, 0, len(set))
			for _, v := range set {
				if s, ok := v.(string); ok {
					names = append(names, s)
				}
			}
			slices.Sort(names)
			r.DenyRule = names[0]
		}
	}
	return r, nil
}

// Cedar is a cedar-go policy set.
type Cedar struct {
	policies cedar.PolicyIterator
	byTool   map[cedar.EntityUID][]idPolicy // when indexed
	global   []idPolicy
	indexed  bool
}

type idPolicy struct {
	id cedar.PolicyID
	p  *cedar.Policy
}

// NewCedar parses a Cedar policy set, taking each policy's ID from its @id
// annotation. With indexed, Authorize is given only the policies whose
// resource scope is the called tool or unconstrained, through a
// cedar.PolicyIterator — an optimisation any cedar-go user can make, since
// cedar-go itself evaluates every policy in the set.
func NewCedar(src string, indexed bool) (*Cedar, error) {
	list, err := cedar.NewPolicyListFromBytes("policy.cedar", []byte(src))
	if err != nil {
		return nil, fmt.Errorf("bench: cedar: %w", err)
	}
	ps := cedar.NewPolicySet()
	e := &Cedar{policies: ps, indexed: indexed, byTool: map[cedar.EntityUID][]idPolicy{}}
	for i, p := range list {
		id := cedar.PolicyID(fmt.Sprintf("policy%d", i))
		if v, ok := p.Annotations()["id"]; ok {
			id = cedar.PolicyID(v)
		}
		if !ps.Add(id, p) {
			return nil, fmt.Errorf("bench: cedar: duplicate policy id %q", id)
		}
		if res, ok := resourceEq(p); ok {
			e.byTool[res] = append(e.byTool[res], idPolicy{id, p})
		} else {
			e.global = append(e.global, idPolicy{id, p})
		}
	}
	return e, nil
}

// resourceEq returns the entity a policy's resource scope is equal to.
func resourceEq(p *cedar.Policy) (cedar.EntityUID, bool) {
	var v struct {
		Resource struct {
			Op     string `json:"op"`
			Entity struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"entity"`
		} `json:"resource"`
	}
	b, err := p.MarshalJSON()
	if err != nil || json.Unmarshal(b, &v) != nil || v.Resource.Op != "==" {
		return cedar.EntityUID{}, false
	}
	return cedar.NewEntityUID(cedar.EntityType(v.Resource.Entity.Type), cedar.String(v.Resource.Entity.ID)), true
}

// Name returns "cedar" or "cedar-indexed".
func (e *Cedar) Name() string {
	if e.indexed {
		return "cedar-indexed"
	}
	return "cedar"
}

var callAction = cedar.NewEntityUID("Action", "call")

// cedarEntities returns the principal's entity (its parents are the scopes
// it holds) and the tool's.
func cedarEntities(c *Call) cedar.EntityMap {
	parents := make([]cedar.EntityUID, len(c.Principal.Scopes))
	for i, s := range c.Principal.Scopes {
		parents[i] = cedar.NewEntityUID("Scope", cedar.String(s))
	}
	pr := cedar.NewEntityUID("Agent", cedar.String(c.Principal.ID))
	tool := cedar.NewEntityUID("Tool", cedar.String(c.Tool))
	return cedar.EntityMap{
		pr: {UID: pr, Parents: cedar.NewEntityUIDSet(parents...), Attributes: cedar.NewRecord(cedar.RecordMap{
			"max_results": cedar.Long(c.Principal.MaxResults),
		})},
		tool:       {UID: tool},
		callAction: {UID: callAction},
	}
}

// cedarRequest builds the request, the arguments being context.args.
func cedarRequest(c *Call, args cedar.Record) cedar.Request {
	return cedar.Request{
		Principal: cedar.NewEntityUID("Agent", cedar.String(c.Principal.ID)),
		Action:    callAction,
		Resource:  cedar.NewEntityUID("Tool", cedar.String(c.Tool)),
		Context:   cedar.NewRecord(cedar.RecordMap{"args": args}),
	}
}

// Prepare builds the entities and the request once.
func (e *Cedar) Prepare(c Call) (Prepared, error) {
	var args cedar.Record
	if err := json.Unmarshal([]byte(c.Args), &args); err != nil {
		return nil, fmt.Errorf("bench: cedar: arguments: %w", err)
	}
	return &cedarPrepared{e: e, entities: cedarEntities(&c), req: cedarRequest(&c, args)}, nil
}

// DecideJSON decodes the arguments into a Cedar record on every call; the
// principal's entities are built once per principal in an application, so
// they are built here too.
func (e *Cedar) DecideJSON(_ context.Context, c *Call) (bool, error) {
	var args cedar.Record
	if err := json.Unmarshal([]byte(c.Args), &args); err != nil {
		return false, fmt.Errorf("bench: cedar: arguments: %w", err)
	}
	req := cedarRequest(c, args)
	dec, diag := cedar.Authorize(e.iter(req.Resource), cedarEntities(c), req)
	return dec == cedar.Allow, diagErr(diag)
}

func (e *Cedar) iter(tool cedar.EntityUID) cedar.PolicyIterator {
	if !e.indexed {
		return e.policies
	}
	return toolPolicies{global: e.global, tool: e.byTool[tool]}
}

// toolPolicies iterates over the unconstrained policies and those of one
// tool.
type toolPolicies struct{ global, tool []idPolicy }

func (t toolPolicies) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, s := range [2][]idPolicy{t.global, t.tool} {
			for _, p := range s {
				if !yield(p.id, p.p) {
					return
				}
			}
		}
	}
}

func diagErr(d cedar.Diagnostic) error {
	if len(d.Errors) == 0 {
		return nil
	}
	errs := make([]error, len(d.Errors))
	for i, e := range d.Errors {
		errs[i] = fmt.Errorf("cedar: %s: %s", e.PolicyID, e.Message)
	}
	return errors.Join(errs...)
}

type cedarPrepared struct {
	e        *Cedar
	entities cedar.EntityMap
	req      cedar.Request
}

func (c *cedarPrepared) Decide(context.Context) (bool, error) {
	dec, diag := cedar.Authorize(c.e.iter(c.req.Resource), c.entities, c.req)
	return dec == cedar.Allow, diagErr(diag)
}

func (c *cedarPrepared) Explain(context.Context) (Result, error) {
	dec, diag := cedar.Authorize(c.e.iter(c.req.Resource), c.entities, c.req)
	r := Result{Allow: dec == cedar.Allow}
	if !r.Allow && len(diag.Reasons) > 0 {
		ids := make([]string, len(diag.Reasons))
		for i, re := range diag.Reasons {
			ids[i] = string(re.PolicyID)
		}
		slices.Sort(ids)
		r.DenyRule = ids[0]
	}
	return r, diagErr(diag)
}
