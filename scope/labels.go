package scope

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/agentguard/agentguard/internal/glob"
)

// LabelDef says which labels the result of a tool brings into the caller's
// session: for example untrusted for tools that return third-party content
// (a web page, an e-mail), private for the user's own data. Flow rules read
// the labels seen so far as session.labels and ask where a value came from
// with x.from("label").
type LabelDef struct {
	// Tools are tool names or globs.
	Tools []string `json:"tools" yaml:"tools"`
	// Add are the labels: 1 to 64 characters of A-Z a-z 0-9 _ - . :
	Add []string `json:"add" yaml:"add"`
	// When is an optional CEL condition over principal, tool (with its
	// annotations, such as MCP's openWorldHint), args, call, session, task
	// and result, the result's metadata: result.is_error (bool) and
	// result.attrs (a map the handler attaches). Empty means always. An
	// error in it withholds the result.
	When string `json:"when,omitempty" yaml:"when,omitempty"`
}

// ResultMeta is what a label condition knows about a result: in CEL the
// variable result, a map with is_error and attrs.
type ResultMeta struct {
	// IsError reports that the tool returned an error.
	IsError bool
	// Attrs are the result's attributes, set by the handler; values are
	// JSON-like (string, bool, numbers, []any, map[string]any).
	Attrs map[string]any
}

type labelRule struct {
	tools []string
	add   []string
	when  *expr
}

var (
	labelEnvOnce sync.Once
	labelEnv     *cel.Env
	labelEnvErr  error
)

// resultEnv is the policy environment with the variable result, in which
// label conditions are compiled.
func resultEnv() (*cel.Env, error) {
	labelEnvOnce.Do(func() {
		var e *cel.Env
		if e, labelEnvErr = env(); labelEnvErr == nil {
			labelEnv, labelEnvErr = e.Extend(cel.Variable("result", cel.MapType(cel.StringType, cel.DynType)))
		}
	})
	return labelEnv, labelEnvErr
}

// labels compiles the labels section and returns its normal form.
func (c *compiler) labels(p *Policy, defs []LabelDef) []LabelDef {
	if len(defs) == 0 {
		return nil
	}
	lenv, err := resultEnv()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: building CEL environment for labels: %w", err))
		return nil
	}
	var norm []LabelDef
	for i, ld := range defs {
		path := "/labels/" + strconv.Itoa(i)
		c.checkTools(path+"/tools", ld.Tools)
		if len(ld.Add) == 0 {
			c.errorf(path+"/add", "", "no labels to add")
		}
		for j, l := range ld.Add {
			if !validLabel(l) {
				c.errorf(fmt.Sprintf("%s/add/%d", path, j), "", "label %q must be 1 to 64 characters of A-Z a-z 0-9 _ - . :", l)
			}
		}
		lr := &labelRule{tools: slices.Clone(ld.Tools), add: slices.Clone(ld.Add)}
		if ld.When != "" {
			base := c.env
			c.env = lenv
			lr.when = c.compileExpr(path+"/when", ld.When, cel.BoolType)
			c.env = base
		}
		p.labels = append(p.labels, lr)
		norm = append(norm, LabelDef{Tools: slices.Clone(ld.Tools), Add: slices.Clone(ld.Add), When: ld.When})
	}
	return norm
}

func validLabel(l string) bool {
	if l == "" || len(l) > 64 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Labels reports whether the policy can label the results of tool, so a
// caller can skip the work of labelling results that never carry one.
func (p *Policy) Labels(tool string) bool {
	if p == nil {
		return false
	}
	for _, lr := range p.labels {
		if lr.matches(tool) {
			return true
		}
	}
	return false
}

func (lr *labelRule) matches(tool string) bool {
	for _, pat := range lr.tools {
		if glob.Match(pat, tool) {
			return true
		}
	}
	return false
}

// LabelResult returns the labels the result of the call in brings into
// its session, sorted and without duplicates. It is evaluated when the
// tool returns, before the result goes back to the caller. An error in a
// condition is returned with the labels found so far: the caller must then
// withhold the result, since it cannot say what the result brings.
func (p *Policy) LabelResult(ctx context.Context, in Input, res ResultMeta) ([]string, error) {
	if p == nil || len(p.labels) == 0 {
		return nil, nil
	}
	var out []string
	var act *activation
	defer func() {
		if act != nil {
			putActivation(act)
		}
	}()
	attrs := res.Attrs
	if attrs == nil {
		attrs = map[string]any{}
	}
	result := map[string]any{"is_error": res.IsError, "attrs": attrs}
	for i, lr := range p.labels {
		if !lr.matches(in.Tool.Name) {
			continue
		}
		if lr.when != nil {
			if act == nil {
				act = getActivation(&in)
			}
			ok, err := evalLabel(ctx, lr.when, act, result)
			if err != nil {
				return out, fmt.Errorf("label condition /labels/%d/when: %w", i, err)
			}
			if !ok {
				continue
			}
		}
		out = append(out, lr.add...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// resultActivation adds the variable result to a decision's activation.
type resultActivation struct {
	*activation
	result map[string]any
}

func (r resultActivation) ResolveName(name string) (any, bool) {
	if name == "result" {
		return r.result, true
	}
	return r.activation.ResolveName(name)
}

func evalLabel(ctx context.Context, e *expr, act *activation, result map[string]any) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("evaluation panicked: %v", r)
		}
	}()
	v, _, err := e.prg.ContextEval(ctx, resultActivation{act, result})
	if err != nil {
		return false, err
	}
	b, isBool := v.(types.Bool)
	if !isBool {
		return false, fmt.Errorf("condition produced %s, not bool", v.Type().TypeName())
	}
	return bool(b), nil
}
