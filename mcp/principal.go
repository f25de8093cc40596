package guardmcp

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// PrincipalFunc establishes who is calling. r is the HTTP request that
// carried the MCP message, or nil over stdio. An error, or a principal with
// an empty ID, means there is no principal: every call is denied and no tool
// is listed. A PrincipalFunc may be called concurrently.
type PrincipalFunc func(ctx context.Context, r *http.Request) (scope.Principal, error)

// Static returns a PrincipalFunc that always returns pr: for stdio, where
// the principal comes from configuration.
func Static(pr scope.Principal) PrincipalFunc {
	return func(context.Context, *http.Request) (scope.Principal, error) { return pr, nil }
}

type principalErrKey struct{}

// ErrNoBearerToken: the HTTP request has no "Authorization: Bearer" header.
var ErrNoBearerToken = errors.New("guardmcp: no bearer token")

// withPrincipal puts the principal pf establishes into ctx; on failure it
// records the error, which is added to the denial the model reads.
func withPrincipal(ctx context.Context, pf PrincipalFunc, r *http.Request) context.Context {
	if pf == nil {
		return context.WithValue(ctx, principalErrKey{}, errors.New("guardmcp: no principal function"))
	}
	pr, err := pf(ctx, r)
	if err == nil && pr.ID == "" {
		err = errors.New("guardmcp: principal has no ID")
	}
	if err != nil {
		return context.WithValue(ctx, principalErrKey{}, err)
	}
	return toolguard.WithPrincipal(ctx, pr)
}

func principalError(ctx context.Context) error {
	err, _ := ctx.Value(principalErrKey{}).(error)
	return err
}

// HTTPContextFunc returns the context function for mcp-go's streamable HTTP
// (or SSE) server that establishes the principal of each HTTP request:
//
//	server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(v.PrincipalFunc())))
func HTTPContextFunc(pf PrincipalFunc) server.HTTPContextFunc {
	return func(ctx context.Context, r *http.Request) context.Context {
		return withPrincipal(ctx, pf, r)
	}
}

// StdioContextFunc returns the context function for mcp-go's stdio server
// that establishes the principal (usually with [Static]):
//
//	server.ServeStdio(s, server.WithStdioContextFunc(guardmcp.StdioContextFunc(guardmcp.Static(pr))))
func StdioContextFunc(pf PrincipalFunc) server.StdioContextFunc {
	return func(ctx context.Context) context.Context {
		return withPrincipal(ctx, pf, nil)
	}
}

// maxTokenBytes bounds the bearer tokens that are parsed at all.
const maxTokenBytes = 16 << 10

// BearerToken returns the token of the request's single
// "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, error) {
	if r == nil {
		return "", ErrNoBearerToken
	}
	h := r.Header.Values("Authorization")
	if len(h) == 0 {
		return "", ErrNoBearerToken
	}
	if len(h) > 1 {
		return "", errors.New("guardmcp: more than one Authorization header")
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrNoBearerToken
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", ErrNoBearerToken
	}
	if len(tok) > maxTokenBytes {
		return "", errors.New("guardmcp: bearer token too long")
	}
	return tok, nil
}
