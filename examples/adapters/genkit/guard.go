package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/core/api"
	"github.com/firebase/genkit/go/genkit"
	"github.com/google/jsonschema-go/jsonschema"

	"github.com/agentguard/agentguard/toolguard"
)

// This file is the adapter: copy it into an application built on
// github.com/firebase/genkit/go.

// DefineTool defines a Genkit tool whose every call goes through guard,
// and registers it on both: on guard with the input schema derived from In
// (as toolguard.Register derives it), on g as a tool that offers the model
// exactly that schema. Pass the result, or its name, to ai.WithTools.
//
// When the model calls the tool, Genkit hands the arguments to guard.Call,
// which runs fn only once the call is allowed and its decision recorded. A
// denial is the tool's output: the model reads why and can correct itself,
// and the generation goes on. Genkit's own validation of the input is not
// run before the guard's (it would end the generation with an error), so a
// schema violation is a readable denial too; the arguments fn receives are
// the ones the guard checked. An ask decision interrupts the generation
// (see [Approver] and [Answer]). An error of fn itself ends the generation,
// as it does for any Genkit tool, and fn may interrupt as usual.
//
// The tool's output is fn's Out, or a string when the call is denied.
func DefineTool[In, Out any](g *genkit.Genkit, guard *toolguard.Guard, name, description string, fn ai.ToolFunc[In, Out]) (ai.Tool, error) {
	if fn == nil {
		return nil, fmt.Errorf("genkit: tool %q has no function", name)
	}
	if genkit.LookupTool(g, name) != nil {
		return nil, fmt.Errorf("genkit: a tool named %q is already defined", name)
	}
	s, err := jsonschema.For[In](nil)
	if err != nil {
		return nil, fmt.Errorf("genkit: tool %q: deriving schema: %w", name, err)
	}
	schema, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("genkit: tool %q: %w", name, err)
	}
	var schemaMap map[string]any
	if err := json.Unmarshal(schema, &schemaMap); err != nil {
		return nil, fmt.Errorf("genkit: tool %q: %w", name, err)
	}
	err = guard.Register(toolguard.Tool{
		Name:        name,
		Description: description,
		InputSchema: schema,
		Handler: func(ctx context.Context, args json.RawMessage) (any, error) {
			tc, ok := ctx.Value(toolContextKey{}).(*ai.ToolContext)
			if !ok {
				return nil, fmt.Errorf("genkit: tool %q runs only when Genkit calls it", name)
			}
			var in In
			dec := json.NewDecoder(bytes.NewReader(args))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return nil, fmt.Errorf("genkit: tool %q: decoding arguments: %w", name, err)
			}
			return fn(&ai.ToolContext{Context: ctx, Resumed: tc.Resumed, OriginalInput: tc.OriginalInput}, in)
		},
	})
	if err != nil {
		return nil, err
	}
	// inner has no input schema, so Genkit neither validates nor rejects
	// the arguments before the guard sees them; it gives the call its
	// ToolContext (what an interrupted call resumes with) and its trace span.
	inner := ai.NewTool(name, description, func(tc *ai.ToolContext, in any) (any, error) {
		return call(tc, guard, name, in)
	})
	genkit.RegisterAction(g, &toolAction{
		inner: inner,
		desc: api.ActionDesc{
			Type:        api.ActionTypeToolV2,
			Key:         api.KeyFromName(api.ActionTypeToolV2, name),
			Name:        name,
			Description: description,
			InputSchema: schemaMap,
			Metadata: map[string]any{
				"type":        api.ActionTypeToolV2,
				"name":        name,
				"description": description,
				"tool":        map[string]any{"multipart": false},
			},
		},
	})
	return genkit.LookupTool(g, name), nil
}

// call runs one call of a guarded tool through guard. A denial is the
// tool's output; an ask that no human has answered yet is an interrupt.
func call(tc *ai.ToolContext, guard *toolguard.Guard, name string, in any) (any, error) {
	args, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("genkit: tool %q: arguments: %w", name, err)
	}
	ctx := context.WithValue(tc.Context, toolContextKey{}, tc)
	if a, ok := answerFrom(tc.Resumed); ok {
		ctx = context.WithValue(ctx, answerKey{}, a)
	}
	out, err := guard.Call(ctx, name, args)
	var de *toolguard.DeniedError
	if errors.As(err, &de) {
		var p *pendingError
		if errors.As(err, &p) {
			return nil, ai.InterruptWith(tc, p.interrupt)
		}
		return de.ModelText(), nil
	}
	return out, err
}

type toolContextKey struct{}

// toolAction is the Genkit action of a guarded tool. It describes the tool
// with the guard's input schema and runs every call through inner.
type toolAction struct {
	desc  api.ActionDesc
	inner ai.Tool
}

// Name returns the tool's name.
func (a *toolAction) Name() string { return a.desc.Name }

// Desc describes the tool, with the input schema the guard validates
// against.
func (a *toolAction) Desc() api.ActionDesc { return a.desc }

// Register registers the tool on r, under the keys Genkit looks tools up
// by.
func (a *toolAction) Register(r api.Registry) {
	provider, id := api.ParseName(a.desc.Name)
	r.RegisterAction(api.NewKey(api.ActionTypeToolV2, provider, id), a)
	r.RegisterAction(api.NewKey(api.ActionTypeTool, provider, id), a)
}

// RunJSON runs one call with the arguments as Genkit received them from
// the model.
func (a *toolAction) RunJSON(ctx context.Context, input json.RawMessage, _ func(context.Context, json.RawMessage) error) (json.RawMessage, error) {
	resp, err := a.inner.RunRawMultipart(ctx, input)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// RunJSONWithTelemetry is RunJSON; the trace span is inner's.
func (a *toolAction) RunJSONWithTelemetry(ctx context.Context, input json.RawMessage, cb func(context.Context, json.RawMessage) error) (*api.ActionRunResult[json.RawMessage], error) {
	out, err := a.RunJSON(ctx, input, cb)
	if err != nil {
		return nil, err
	}
	return &api.ActionRunResult[json.RawMessage]{Result: out}, nil
}

// Interrupt is what a human is asked to approve when an ask rule matches a
// call: the metadata of the interrupt, read from the interrupted part with
// ai.InterruptAs[Interrupt].
type Interrupt struct {
	Tool string `json:"tool"`
	// CallID identifies the interrupted call in the audit log.
	CallID string `json:"callId"`
	// Args are the call's canonical arguments, sensitive values redacted.
	Args json.RawMessage `json:"args"`
	// Rule is the ask rule that matched, Reason its message.
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	// Binding is the hash of the exact call (principal, tool, arguments,
	// policy revision) that an answer approves.
	Binding string `json:"binding"`
}

// Approver returns the approver to give the guard of DefineTool's tools
// (toolguard.WithApprover): it turns ask decisions into Genkit interrupts.
//
// A call that an ask rule matches is decided by a human's answer to its
// interrupt, passed back with [Answer]. Until there is one, the approver
// refuses: the guard records the call as not approved and the tool
// interrupts the generation (genkit.Generate returns a response whose
// FinishReason is ai.FinishReasonInterrupted, with the call among its
// Interrupts). Calls made outside DefineTool's tools are refused.
func Approver() toolguard.Approver {
	return toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		if a, ok := ctx.Value(answerKey{}).(toolguard.Approval); ok {
			// The guard refuses an answer whose binding is not this call's.
			return a, nil
		}
		return toolguard.Approval{}, &pendingError{interrupt: Interrupt{
			Tool: req.Tool, CallID: req.CallID, Args: req.Args,
			Rule: req.Rule, Reason: req.Reason, Binding: req.Binding,
		}}
	})
}

// pendingError is the approver's refusal of a call that a human has not
// answered yet.
type pendingError struct{ interrupt Interrupt }

func (*pendingError) Error() string { return "interrupted to ask a human" }

type answerKey struct{}

// Keys of a human's answer in the metadata an interrupted call resumes
// with. The values are strings and booleans, so that an interrupted
// conversation can be stored as JSON and resumed later.
const (
	resumedApproved = "agentguard.approved"
	resumedBy       = "agentguard.by"
	resumedReason   = "agentguard.reason"
	resumedBinding  = "agentguard.binding"
)

// Answer returns the tool request that resumes an interrupted call with a
// human's answer: pass it to genkit.Generate with ai.WithToolRestarts,
// together with the interrupted response's history
// (ai.WithMessages(resp.History()...)) and the same tools.
//
// The resumed call goes through the guard again, and the answer counts for
// that exact call only: the same principal, tool, arguments and policy
// revision as the one interrupted. If a.Approved, the tool runs and the
// record names a.By; otherwise the model reads the denial, with a.Reason.
func Answer(g *genkit.Genkit, interrupted *ai.Part, a toolguard.Approval) (*ai.Part, error) {
	it, ok := ai.InterruptAs[Interrupt](interrupted)
	if !ok || it.Binding == "" {
		return nil, errors.New("genkit: the part is not an interrupt of a guarded tool")
	}
	if a.Binding != "" && a.Binding != it.Binding {
		return nil, fmt.Errorf("genkit: %w", toolguard.ErrWrongBinding)
	}
	t := genkit.LookupTool(g, interrupted.ToolRequest.Name)
	if t == nil {
		return nil, fmt.Errorf("genkit: tool %q is not defined", interrupted.ToolRequest.Name)
	}
	return t.Restart(interrupted, &ai.RestartOptions{ResumedMetadata: map[string]any{
		resumedApproved: a.Approved,
		resumedBy:       a.By,
		resumedReason:   a.Reason,
		resumedBinding:  it.Binding,
	}}), nil
}

// answerFrom returns the human's answer that a resumed call carries. An
// answer must name the call it is for.
func answerFrom(resumed map[string]any) (toolguard.Approval, bool) {
	binding, _ := resumed[resumedBinding].(string)
	if binding == "" {
		return toolguard.Approval{}, false
	}
	approved, _ := resumed[resumedApproved].(bool)
	by, _ := resumed[resumedBy].(string)
	reason, _ := resumed[resumedReason].(string)
	return toolguard.Approval{Approved: approved, By: by, Reason: reason, Binding: binding}, true
}

// Unguarded returns the names of the tools defined on g that guard does
// not know, sorted. Genkit runs any tool of its registry that a model
// names, whether or not the request offered it, so an application checks
// at startup that this is empty.
func Unguarded(g *genkit.Genkit, guard *toolguard.Guard) []string {
	var out []string
	for _, t := range genkit.ListTools(g) {
		if _, ok := guard.Tool(t.Name()); !ok && !slices.Contains(out, t.Name()) {
			out = append(out, t.Name())
		}
	}
	slices.Sort(out)
	return out
}
