// Package taskmeta reads the signed task an MCP request carries in its
// _meta, for guardmcp (mcp-go) and guardsdk (the official Go SDK) alike:
// both SDKs hold _meta's fields in a map[string]any.
package taskmeta

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// Key is the _meta key under which a request carries a task token.
const Key = "io.agentguard/task"

// SessionPrefix begins the guard session of a request that has no MCP
// session and whose task token names one (its session claim), so that
// such sessions never meet MCP sessions of the same id.
const SessionPrefix = "task-session:"

// Verifier checks a task token for a call judged for principal in the MCP
// session session ("" for none), and returns the task and the token's
// session claim ("" for none).
type Verifier interface {
	VerifySession(ctx context.Context, token, principal, session string) (scope.Task, string, error)
}

// Read returns the task token the fields of a request's _meta carry,
// whether they carry one, and an error for fields that try to and cannot:
// a value under Key that is not a string, or another key containing
// "agentguard" in any letter case (Unicode simple folding), whose sender
// meant to narrow the request.
func Read(fields map[string]any) (string, bool, error) {
	tok, present := "", false
	var lookalikes []string
	for k, v := range fields {
		if k == Key {
			s, ok := v.(string)
			if !ok {
				return "", true, errors.New("the value of _meta \"" + Key + "\" is not a string (a signed task token)")
			}
			tok, present = s, true
			continue
		}
		if strings.Contains(string(safejson.AppendFold(nil, k)), "AGENTGUARD") {
			lookalikes = append(lookalikes, k)
		}
	}
	if len(lookalikes) > 0 {
		slices.Sort(lookalikes)
		return "", true, fmt.Errorf("the request's _meta has the key %q, which is not one this server reads; a task goes under %q exactly", lookalikes[0], Key)
	}
	return tok, present, nil
}

// Narrow narrows ctx, which holds the request's principal and guard
// session, to the task fields carry, or marks it refused
// ([toolguard.WithRefusedTask]): when fields cannot be read, when there
// is no verifier v or no principal, or when v refuses the token. session
// is what a token's sid is checked against. A token's session claim
// becomes the guard session, SessionPrefix and the claim.
func Narrow(ctx context.Context, fields map[string]any, v Verifier, session string) context.Context {
	tok, present, err := Read(fields)
	switch {
	case err != nil:
		return toolguard.WithRefusedTask(ctx, err)
	case !present:
		return ctx
	case v == nil:
		return toolguard.WithRefusedTask(ctx, errors.New("the request carries a task (_meta \""+Key+"\"), and this server has no key to verify tasks with, so it cannot narrow the request as asked"))
	}
	pr, ok := toolguard.PrincipalFrom(ctx)
	if !ok || pr.ID == "" {
		return toolguard.WithRefusedTask(ctx, errors.New("the request carries a task, and there is no principal to check it against"))
	}
	t, own, err := v.VerifySession(ctx, tok, pr.ID, session)
	if err != nil {
		return toolguard.WithRefusedTask(ctx, err)
	}
	if own != "" {
		ctx = toolguard.WithSession(ctx, SessionPrefix+own)
	}
	return toolguard.WithTask(ctx, t)
}

// Without returns fields without the task token, for the handler: a
// handler that logs or forwards its requests must not leak a token that
// narrows — and through its attrs allows — calls until it expires. fields
// itself is left alone (the request may be shared); it is returned as it
// is when it holds no token, and nil when the token was all it held.
func Without(fields map[string]any) map[string]any {
	if _, ok := fields[Key]; !ok {
		return fields
	}
	out := maps.Clone(fields)
	delete(out, Key)
	if len(out) == 0 {
		return nil
	}
	return out
}
