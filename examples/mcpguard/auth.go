package main

import (
	"context"
	"flag"
	"log/slog"
	"strings"
	"time"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// authConfig is what the flags say about fetched keys and claims.
type authConfig struct {
	jwksURL                 string
	discover                bool
	refresh, unknownKID     time.Duration
	claimSubject, claimScps string
	claimAttrs              listFlag
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (a *authConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&a.jwksURL, "jwks-url", "", "fetch the keys of bearer tokens from this JWKS URL, and refresh them")
	fs.BoolVar(&a.discover, "discover-keys", false, "find the JWKS URL in -issuer's metadata (RFC 8414 or OpenID Connect discovery), fetch the keys and refresh them")
	fs.DurationVar(&a.refresh, "jwks-refresh", time.Hour, "how often fetched keys are refreshed")
	fs.DurationVar(&a.unknownKID, "jwks-unknown-kid", 5*time.Minute, "least time between two refreshes caused by tokens with an unknown key id")
	fs.StringVar(&a.claimSubject, "claim-subject", "sub", "token claim that is the principal's ID")
	fs.StringVar(&a.claimScps, "claim-scopes", "scope,scp", "comma-separated token claims that hold the principal's scopes (space-separated strings or arrays)")
	fs.Var(&a.claimAttrs, "claim-attr", "principal attribute from a token claim, attr=claim (repeatable; without it every other claim is an attribute)")
}

// remote reports whether keys are fetched rather than read from a file.
func (a *authConfig) remote() bool { return a.jwksURL != "" || a.discover }

// options returns the token options for the flags.
func (a *authConfig) options(audience, issuer string) (guardmcp.JWTOptions, error) {
	attrs, err := guardmcp.ParseClaimAttrs(a.claimAttrs)
	if err != nil {
		return guardmcp.JWTOptions{}, err
	}
	cm := guardmcp.ClaimMapping{Subject: a.claimSubject, Attrs: attrs, Scopes: []string{}}
	for _, s := range strings.Split(a.claimScps, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cm.Scopes = append(cm.Scopes, s)
		}
	}
	return guardmcp.JWTOptions{Audience: audience, Issuer: issuer, Claims: cm}, nil
}

// verifier fetches the keys (-jwks-url or -discover-keys) and returns the
// verifier; its refreshes stop when ctx is done.
func (a *authConfig) verifier(ctx context.Context, opts guardmcp.JWTOptions, logger *slog.Logger) (*guardmcp.JWTVerifier, error) {
	if a.jwksURL != "" && a.discover {
		return nil, usageErrorf("give -jwks-url or -discover-keys, not both")
	}
	return guardmcp.NewJWKSVerifier(ctx, guardmcp.JWKSOptions{
		URL: a.jwksURL, RefreshInterval: a.refresh, UnknownKIDInterval: a.unknownKID, Logger: logger,
	}, opts)
}
