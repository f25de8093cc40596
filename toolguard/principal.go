package toolguard

import (
	"context"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
)

type principalKey struct{}

// WithPrincipal returns a context carrying the principal on whose behalf
// calls are made. A call whose context has no principal is denied.
func WithPrincipal(ctx context.Context, p scope.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, &p)
}

// PrincipalFrom returns the principal carried by ctx.
func PrincipalFrom(ctx context.Context) (scope.Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*scope.Principal)
	if !ok || p == nil {
		return scope.Principal{}, false
	}
	return *p, true
}

func principalFrom(ctx context.Context) *scope.Principal {
	p, _ := ctx.Value(principalKey{}).(*scope.Principal)
	return p
}

type correlationKey struct{}

// WithCorrelation returns a context whose calls' records carry c: the
// caller's trace and span ids, conversation and turn, and the id of the model
// message that asked for the call.
func WithCorrelation(ctx context.Context, c audit.Correlation) context.Context {
	return context.WithValue(ctx, correlationKey{}, &c)
}

func correlationFrom(ctx context.Context) *audit.Correlation {
	c, _ := ctx.Value(correlationKey{}).(*audit.Correlation)
	return c
}

type callIDKey struct{}

// CallIDFrom returns the id of the guarded call whose handler ctx belongs
// to: the id its audit records carry. Handlers use it to correlate their own
// logs with the decision log.
func CallIDFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(callIDKey{}).(string)
	return id, ok
}
