package main

import (
	"flag"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
)

// httpAuthConfig is what the flags say about authorization over HTTP.
type httpAuthConfig struct {
	resourceURL, requireScopes string
	allowOrigins, allowHosts   listFlag
	insecureStatic             bool

	// resource is the canonical resource URI, once resolved.
	resource string
	// verifier checks bearer tokens; nil without them.
	verifier guardmcp.TokenVerifier
}

func (a *httpAuthConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&a.resourceURL, "resource-url", "", "with bearer tokens: the URL clients reach this server's /mcp at, its canonical resource URI and the tokens' audience (default http://<-listen>/mcp on a specific address)")
	fs.StringVar(&a.requireScopes, "require-scopes", "", "comma-separated scopes every bearer token must hold (else 403 insufficient_scope)")
	fs.Var(&a.allowOrigins, "allow-origin", "origin (scheme://host[:port]) of web pages that may call the server (repeatable; loopback pages may always call a loopback address)")
	fs.Var(&a.allowHosts, "allow-host", "host name a request to a loopback address may carry in its Host header, such as a reverse proxy's (repeatable)")
	fs.BoolVar(&a.insecureStatic, "insecure-static-principal", false, "serve the static -principal over HTTP on an address that is not loopback, to anyone who can reach it")
}

// resolveResource sets the canonical resource URI for bearer tokens, and
// the audience to it unless -audience says otherwise.
func (c *config) resolveResource(logger *slog.Logger) error {
	raw := c.httpAuth.resourceURL
	if raw == "" {
		host, _, err := net.SplitHostPort(c.listen)
		if err != nil {
			return usageErrorf("-listen %q: %v", c.listen, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return usageErrorf("-listen %s serves every interface: give -resource-url, the URL clients reach /mcp at", c.listen)
		}
		raw = "http://" + c.listen + "/mcp"
	}
	res, err := guardmcp.CanonicalResourceURI(raw)
	if err != nil {
		return usageErrorf("-resource-url: %v (an https URL, or http on a loopback address)", err)
	}
	c.httpAuth.resource = res
	if c.audience == "" {
		c.audience = res
	} else if c.audience != res {
		logger.Warn("mcpguard: tokens must carry -audience, not the resource URI that MCP clients ask their tokens for",
			"audience", c.audience, "resource", res)
	}
	return nil
}

// httpFront is what stands in front of /mcp: the Origin check and, with
// bearer tokens, the protected resource.
type httpFront struct {
	origins  *guardmcp.OriginPolicy
	resource *guardmcp.ProtectedResource
}

// newHTTPFront builds the front for -listen, or returns nil over stdio.
func (c *config) newHTTPFront(p *scope.Policy) (*httpFront, error) {
	a := &c.httpAuth
	if c.listen == "" {
		if a.resourceURL != "" || a.requireScopes != "" || len(a.allowOrigins) > 0 || len(a.allowHosts) > 0 || a.insecureStatic {
			return nil, usageErrorf("-resource-url, -require-scopes, -allow-origin, -allow-host and -insecure-static-principal need -listen")
		}
		return nil, nil
	}
	f := &httpFront{}
	origins, hosts := []string(a.allowOrigins), []string(a.allowHosts)
	if a.verifier == nil {
		if a.resourceURL != "" || a.requireScopes != "" {
			return nil, usageErrorf("-resource-url and -require-scopes need bearer tokens (-jwks, -jwt-key, -jwks-url or -discover-keys)")
		}
		if !loopbackAddr(c.listen) && !a.insecureStatic {
			return nil, usageErrorf("refusing to serve the static principal %q on %s, which is not a loopback address: "+
				"anyone who can reach it would act as that principal. Use bearer tokens (-jwks, -jwt-key, -jwks-url or -discover-keys), "+
				"listen on 127.0.0.1, or pass -insecure-static-principal if something in front of mcpguard authenticates callers", c.principal, c.listen)
		}
	} else {
		res, err := guardmcp.NewProtectedResource(guardmcp.ResourceOptions{
			Resource:             a.resource,
			AuthorizationServers: []string{c.issuer},
			ScopesSupported:      scopesSupported(p, splitList(a.requireScopes)),
			RequiredScopes:       splitList(a.requireScopes),
			ResourceName:         "mcpguard",
			Verifier:             a.verifier,
		})
		if err != nil {
			return nil, usageError{err}
		}
		f.resource = res
		// A page served from the resource's own origin may call it, under
		// the resource's host name.
		u, err := url.Parse(res.Resource())
		if err != nil {
			return nil, err
		}
		origins = append(slices.Clone(origins), u.Scheme+"://"+u.Host)
		hosts = append(slices.Clone(hosts), u.Hostname())
	}
	op, err := guardmcp.NewOriginPolicy(guardmcp.OriginOptions{Origins: origins, Hosts: hosts})
	if err != nil {
		return nil, usageError{err}
	}
	f.origins = op
	return f, nil
}

// handler wraps the MCP endpoint: the Origin is checked first, then the
// bearer token, then the request size.
func (f *httpFront) handler(mcpHandler http.Handler) http.Handler {
	h := mcpHandler
	if f.resource != nil {
		h = f.resource.Require(h)
	}
	return f.origins.Require(h)
}

// serverOptions are the streamable HTTP server's options: the principal
// of each request (the token's, verified by the front, or pf's) and, with
// tokens, session ids bound to the principal that opened the session.
func (f *httpFront) serverOptions(pf guardmcp.PrincipalFunc) []server.StreamableHTTPOption {
	if f.resource == nil {
		return []server.StreamableHTTPOption{server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(pf))}
	}
	return []server.StreamableHTTPOption{
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(f.resource.PrincipalFunc())),
		server.WithSessionIdManagerResolver(f.resource.SessionIDs()),
	}
}

// mount registers the Protected Resource Metadata on mux.
func (f *httpFront) mount(mux *http.ServeMux) {
	if f.resource != nil {
		f.resource.Mount(mux)
	}
}

// scopesSupported are the scopes the metadata advertises: the policy's
// and the required ones, those that are valid OAuth scopes.
func scopesSupported(p *scope.Policy, required []string) []string {
	var out []string
	for name := range p.Def().Scopes {
		out = append(out, name)
	}
	out = append(out, required...)
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(s string) bool {
		return s == "" || strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '"' || r == '\\' }) >= 0
	})
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// loopbackAddr reports whether a listen address is on a loopback
// interface only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
