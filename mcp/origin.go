package guardmcp

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// OriginOptions say which web pages may call an MCP server over HTTP. The
// zero value allows requests without an Origin header (clients that are
// not browsers) and, on a server reached at a loopback address, pages
// served from loopback hosts.
type OriginOptions struct {
	// Origins are the origins (scheme://host[:port]) whose pages may call
	// the server, such as https://app.example.com. They are compared in
	// canonical form: scheme and host in lower case, without the scheme's
	// default port.
	Origins []string
	// Hosts are extra host names (without port) a request that arrived at
	// a loopback address may name in its Host header — the public name of
	// a reverse proxy in front of the server. Loopback names and the hosts
	// of Origins are always allowed.
	Hosts []string
}

// OriginPolicy validates the Origin header of HTTP requests, as the MCP
// streamable HTTP transport requires, against DNS rebinding: a page a
// browser loaded from a foreign origin must not reach a server it can
// address, least of all one on the user's own machine. An OriginPolicy is
// immutable and safe for concurrent use.
type OriginPolicy struct {
	origins []string
	hosts   []string
}

// NewOriginPolicy checks opts and returns the policy.
func NewOriginPolicy(opts OriginOptions) (*OriginPolicy, error) {
	p := &OriginPolicy{}
	for _, o := range opts.Origins {
		c, ok := canonicalOrigin(o)
		if !ok {
			return nil, fmt.Errorf("guardmcp: %q is not an origin (scheme://host[:port], no path)", o)
		}
		p.origins = append(p.origins, c)
		u, _ := url.Parse(c)
		p.hosts = append(p.hosts, strings.ToLower(u.Hostname()))
	}
	for _, h := range opts.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ ") {
			return nil, fmt.Errorf("guardmcp: %q is not a host name", h)
		}
		p.hosts = append(p.hosts, strings.ToLower(strings.TrimSuffix(h, ".")))
	}
	return p, nil
}

// canonicalOrigin returns an origin's canonical serialisation, or false if
// s is not an http(s) origin.
func canonicalOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Path != "" && u.Path != "/") {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// Allowed reports whether r may be served, and if not, why. A request
// without an Origin header is allowed (unless it reached a loopback
// address under a foreign Host name); one with an Origin is allowed if it
// is one of the policy's, or if both the page and the server are on
// loopback. An opaque origin ("null") and two Origin headers are refused.
func (p *OriginPolicy) Allowed(r *http.Request) (bool, string) {
	local := localIsLoopback(r)
	if local && !p.loopbackHostOK(r.Host) {
		return false, "the Host header names no host this server answers to"
	}
	vals := r.Header.Values("Origin")
	switch {
	case len(vals) == 0:
		return true, ""
	case len(vals) > 1:
		return false, "more than one Origin header"
	}
	o, ok := canonicalOrigin(vals[0])
	if !ok {
		return false, "the origin is not allowed"
	}
	if slices.Contains(p.origins, o) {
		return true, ""
	}
	if u, err := url.Parse(o); err == nil && local && isLoopbackHost(u.Hostname()) {
		return true, ""
	}
	return false, "the origin is not allowed"
}

// loopbackHostOK reports whether a Host header may be served by a
// loopback listener: a loopback name or address, or one of the policy's
// hosts.
func (p *OriginPolicy) loopbackHostOK(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	return host != "" && (isLoopbackHost(host) || slices.Contains(p.hosts, host))
}

// localIsLoopback reports whether r arrived at a loopback address of this
// machine.
func localIsLoopback(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Require returns a handler that answers a request Allowed refuses with
// 403 before next sees it. For an allowed browser origin it adds the CORS
// headers a browser client needs (the MCP session, protocol version and
// authentication challenge headers are exposed) and answers CORS
// preflight requests itself, since a browser sends those without
// credentials.
func (p *OriginPolicy) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, why := p.Allowed(r); !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"forbidden: %s"}}`, why)
			return
		}
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
