package toolguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// TestCallWithApplicationFunction: an application function decides
// through Guard.Call; it reads the caller from its context; its failure
// denies the call, the tool does not run, and the record holds the error.
func TestCallWithApplicationFunction(t *testing.T) {
	owners := map[string]string{"f1": "alice"}
	owns := scope.Function{Name: "owns", Params: []scope.Type{scope.StringType}, Result: scope.BoolType, Timeout: 50 * time.Millisecond,
		Impl: func(ctx context.Context, args ...any) (any, error) {
			pr, ok := toolguard.PrincipalFrom(ctx)
			if !ok {
				return nil, errors.New("no caller")
			}
			if args[0] == "slow" {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return owners[args[0].(string)] == pr.ID, nil
		}}
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [read]\n        when: owns(args.id)\n"), scope.WithFunction(owns))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec))
	require.NoError(t, err)
	ran := 0
	require.NoError(t, g.Register(toolguard.Tool{Name: "read", Handler: func(context.Context, json.RawMessage) (any, error) { ran++; return "ok", nil }}))
	alice := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "alice", Scopes: []string{"s"}})
	bob := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bob", Scopes: []string{"s"}})

	_, err = g.Call(alice, "read", json.RawMessage(`{"id":"f1"}`))
	require.NoError(t, err)
	_, err = g.Call(bob, "read", json.RawMessage(`{"id":"f1"}`))
	require.ErrorIs(t, err, toolguard.ErrDenied)
	_, err = g.Call(alice, "read", json.RawMessage(`{"id":"slow"}`))
	require.ErrorIs(t, err, toolguard.ErrDenied)
	var de *toolguard.DeniedError
	require.ErrorAs(t, err, &de)
	assert.Contains(t, de.ModelText(), "function owns did not answer within 50ms")
	assert.Equal(t, 1, ran)

	recs := rec.records()
	last := recs[len(recs)-1]
	assert.Equal(t, "deny", last.Effect)
	require.NotEmpty(t, last.Errors)
	assert.Contains(t, last.Errors[0], "function owns did not answer")
	rec.verify(t)
}
