package guardmcp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/scope"
)

// TokenVerifier checks a bearer token and returns the principal it
// stands for. *JWTVerifier is one. A TokenVerifier must be safe for
// concurrent use.
type TokenVerifier interface {
	VerifyContext(ctx context.Context, token string) (scope.Principal, error)
}

// ResourceOptions describe an MCP server as an OAuth 2.0 protected
// resource (the MCP authorization specification, RFC 9728, RFC 6750).
type ResourceOptions struct {
	// Resource is the canonical URI of the MCP endpoint as clients reach
	// it, such as https://mcp.example.com/mcp. It is normalised with
	// CanonicalResourceURI; tokens must carry it as their audience (the
	// Verifier checks that: give it the same string).
	Resource string
	// AuthorizationServers are the issuer URLs of the authorization
	// servers whose tokens are accepted; at least one.
	AuthorizationServers []string
	// ScopesSupported are the scopes the metadata advertises (clients
	// request them when a challenge names none).
	ScopesSupported []string
	// RequiredScopes must all be held by a token's principal; a token
	// without one of them is answered with 403 insufficient_scope.
	RequiredScopes []string
	// ResourceName is a human-readable name for the metadata; optional.
	ResourceName string
	// Verifier checks the tokens. Required.
	Verifier TokenVerifier
}

// ProtectedResource is the HTTP side of the MCP authorization
// specification for one MCP endpoint: Require refuses every request
// without a valid bearer token before the MCP server sees it, and Metadata
// serves the OAuth 2.0 Protected Resource Metadata (RFC 9728) that tells a
// client where to get a token. A ProtectedResource is safe for concurrent
// use; the zero value refuses every request.
type ProtectedResource struct {
	resource     string
	metadataURL  string
	metadataPath string
	metadata     http.Handler
	required     []string
	verifier     TokenVerifier
	// sessionKey binds session ids to principals (SessionIDs).
	sessionKey   [32]byte
	bindSessions atomic.Bool
}

// WellKnownProtectedResource is the path of the Protected Resource
// Metadata of a resource at a host's root (RFC 9728, section 3).
const WellKnownProtectedResource = "/.well-known/oauth-protected-resource"

// NewProtectedResource checks opts and returns the protected resource.
func NewProtectedResource(opts ResourceOptions) (*ProtectedResource, error) {
	res, err := CanonicalResourceURI(opts.Resource)
	if err != nil {
		return nil, err
	}
	if opts.Verifier == nil {
		return nil, errors.New("guardmcp: a protected resource needs a token verifier")
	}
	if len(opts.AuthorizationServers) == 0 {
		return nil, errors.New("guardmcp: a protected resource needs at least one authorization server")
	}
	for _, as := range opts.AuthorizationServers {
		if err := checkFetchURL(as); err != nil {
			return nil, fmt.Errorf("guardmcp: authorization server: %w", err)
		}
	}
	for _, s := range slices.Concat(opts.ScopesSupported, opts.RequiredScopes) {
		if !validScopeToken(s) {
			return nil, fmt.Errorf("guardmcp: scope %q is not a valid OAuth scope", s)
		}
	}
	u, _ := url.Parse(res) // parsed by CanonicalResourceURI
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	p := &ProtectedResource{
		resource:     res,
		metadataPath: WellKnownProtectedResource + path,
		metadataURL:  u.Scheme + "://" + u.Host + WellKnownProtectedResource + path,
		required:     slices.Clone(opts.RequiredScopes),
		verifier:     opts.Verifier,
	}
	_, _ = rand.Read(p.sessionKey[:]) // never fails (crypto/rand)
	p.metadata = server.NewProtectedResourceMetadataHandler(server.ProtectedResourceMetadataConfig{
		Resource:               res,
		AuthorizationServers:   slices.Clone(opts.AuthorizationServers),
		ScopesSupported:        slices.Clone(opts.ScopesSupported),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           opts.ResourceName,
	})
	return p, nil
}

// validScopeToken reports whether s is a scope-token of RFC 6749,
// section 3.3 (printable ASCII without space, '"' and '\'), so that it can
// stand in a challenge's quoted scope parameter.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// CanonicalResourceURI returns the canonical form of an MCP server's URI
// (the MCP authorization specification, RFC 8707 section 2): an absolute
// https URL (or http on a loopback host), with scheme and host in lower
// case, without the scheme's default port, user information, fragment or a
// trailing slash. A query, and "." or ".." path segments, are refused.
func CanonicalResourceURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("guardmcp: resource URI: %w", err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("guardmcp: resource URI %q is not an absolute URL", raw)
	case u.User != nil:
		return "", fmt.Errorf("guardmcp: resource URI %q has user information", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("guardmcp: resource URI %q has a query", raw)
	case slices.ContainsFunc(strings.Split(u.Path, "/"), func(seg string) bool { return seg == "." || seg == ".." }):
		return "", fmt.Errorf("guardmcp: resource URI %q has dot segments", raw)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		port = ""
	}
	u.Host = host
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	if port != "" {
		u.Host += ":" + port
	}
	u.Fragment, u.RawFragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	out := u.String()
	if err := checkFetchURL(out); err != nil {
		return "", fmt.Errorf("guardmcp: resource URI: %w", err)
	}
	return out, nil
}

// Resource returns the canonical URI of the resource.
func (p *ProtectedResource) Resource() string { return p.resource }

// MetadataURL returns the URL of the resource's Protected Resource
// Metadata, the one every challenge names.
func (p *ProtectedResource) MetadataURL() string { return p.metadataURL }

// Metadata returns the handler that serves the Protected Resource
// Metadata document to GET and HEAD, to anyone (it is public, and browser
// clients may read it from any origin), with mcp-go's
// server.NewProtectedResourceMetadataHandler.
func (p *ProtectedResource) Metadata() http.Handler { return p.metadata }

// Mount registers the metadata handler on mux at the resource's
// path-suffixed well-known URI (/.well-known/oauth-protected-resource/mcp
// for a resource at /mcp, RFC 9728 section 3.1) and at the root one,
// which clients try when a challenge names no metadata URL.
func (p *ProtectedResource) Mount(mux *http.ServeMux) {
	mux.Handle(p.metadataPath, p.Metadata())
	if p.metadataPath != WellKnownProtectedResource {
		mux.Handle(WellKnownProtectedResource, p.Metadata())
	}
}

type verifiedPrincipalKey struct{}

// Require returns a handler that lets a request through to next only with
// exactly one "Authorization: Bearer" header whose token the Verifier
// accepts and whose principal holds every RequiredScopes. Every other
// request — whatever its HTTP or MCP method, before any MCP session exists
// — is answered here (RFC 6750, section 3):
//
//   - no bearer credential: 401 with a challenge naming the metadata URL
//     (and the required scopes), so that an OAuth client starts its flow;
//   - a token that is malformed, badly signed, expired, not yet valid or
//     for another audience: 401, error="invalid_token";
//   - a valid token without a required scope: 403,
//     error="insufficient_scope";
//   - two Authorization headers, an empty Bearer credential, or an
//     access_token in the query string (never accepted, as OAuth 2.1
//     says): 400, error="invalid_request".
//
// With SessionIDs in use, a request whose Mcp-Session-Id was not issued to
// its principal gets 404. next sees the request without its Authorization
// header, so the token cannot travel further, and with the principal in
// its context, which PrincipalFunc reads.
func (p *ProtectedResource) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p == nil || p.verifier == nil {
			http.Error(w, "no token verifier", http.StatusInternalServerError)
			return
		}
		if tokenInQuery(r.URL.RawQuery) {
			p.refuse(w, http.StatusBadRequest, "invalid_request", "access tokens are not accepted in the query string")
			return
		}
		tok, status, code, desc := bearerCredential(r.Header.Values("Authorization"))
		if status != 0 {
			p.refuse(w, status, code, desc)
			return
		}
		pr, err := p.verifier.VerifyContext(r.Context(), tok)
		if err == nil && pr.ID == "" {
			err = errors.New("the token names no subject")
		}
		if err != nil {
			p.refuse(w, http.StatusUnauthorized, "invalid_token", tokenErrorDescription(err))
			return
		}
		for _, s := range p.required {
			if !slices.Contains(pr.Scopes, s) {
				p.refuse(w, http.StatusForbidden, "insufficient_scope", "the token lacks a scope this server requires")
				return
			}
		}
		if !p.checkSession(w, r, pr.ID) {
			return
		}
		r2 := r.Clone(context.WithValue(r.Context(), verifiedPrincipalKey{}, pr))
		r2.Header.Del("Authorization")
		next.ServeHTTP(w, r2)
	})
}

// PrincipalFunc returns the PrincipalFunc that reads the principal
// Require verified; a request that did not pass Require (or stdio) has
// none, so every call is denied.
func (p *ProtectedResource) PrincipalFunc() PrincipalFunc {
	return func(ctx context.Context, r *http.Request) (scope.Principal, error) {
		if r == nil {
			return scope.Principal{}, ErrNoBearerToken
		}
		pr, ok := r.Context().Value(verifiedPrincipalKey{}).(scope.Principal)
		if !ok {
			return scope.Principal{}, errors.New("guardmcp: the request was not authorized by the protected resource")
		}
		return pr, nil
	}
}

// refuse writes a Bearer challenge (RFC 6750, section 3; the MCP
// authorization specification) with status. code is empty when the
// request had no credential at all.
func (p *ProtectedResource) refuse(w http.ResponseWriter, status int, code, desc string) {
	var b strings.Builder
	b.WriteString(`Bearer resource_metadata="`)
	b.WriteString(p.metadataURL)
	b.WriteByte('"')
	if len(p.required) > 0 {
		b.WriteString(`, scope="`)
		b.WriteString(strings.Join(p.required, " "))
		b.WriteByte('"')
	}
	if code != "" {
		fmt.Fprintf(&b, `, error="%s", error_description="%s"`, code, desc)
	}
	h := w.Header()
	h.Set("WWW-Authenticate", b.String())
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code == "" {
		code, desc = "unauthorized", "a bearer token is required"
	}
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
	_, _ = w.Write(body)
}

// bearerCredential returns the token of the only Authorization header,
// or the status, error code and description of the refusal.
func bearerCredential(h []string) (tok string, status int, code, desc string) {
	switch {
	case len(h) == 0:
		return "", http.StatusUnauthorized, "", ""
	case len(h) > 1:
		return "", http.StatusBadRequest, "invalid_request", "more than one Authorization header"
	}
	scheme, rest, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// Another scheme (Basic, a misspelled Bearer): no bearer
		// credential, so challenge for one.
		return "", http.StatusUnauthorized, "", ""
	}
	tok = strings.TrimLeft(rest, " ")
	switch {
	case tok == "":
		return "", http.StatusBadRequest, "invalid_request", "the Bearer credential is empty"
	case len(tok) > maxTokenBytes:
		return "", http.StatusUnauthorized, "invalid_token", "the token is too long"
	case !b64token(tok):
		return "", http.StatusUnauthorized, "invalid_token", "the token is malformed"
	}
	return tok, 0, "", ""
}

// b64token reports whether s has the syntax of RFC 6750's b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// tokenInQuery reports whether a query string carries an access_token
// parameter, however its name is cased or percent-encoded.
func tokenInQuery(raw string) bool {
	if raw == "" {
		return false
	}
	for _, part := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(part, "=")
		if un, err := url.QueryUnescape(name); err == nil {
			name = un
		}
		if strings.EqualFold(strings.TrimSpace(name), "access_token") {
			return true
		}
	}
	return false
}

// tokenErrorDescription says why a token was refused, without echoing
// it (and in the characters a quoted challenge parameter allows).
func tokenErrorDescription(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the token is not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the token was not issued for this resource"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the token was issued by an authorization server this resource does not trust"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token signature does not verify"
	}
	return "the token is not valid"
}

// isLoopbackHost reports whether host (a name or an IP address, without
// port or brackets) is a loopback host: localhost, a name under
// .localhost, or a loopback address.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
