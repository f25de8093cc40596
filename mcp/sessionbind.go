package guardmcp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/agentguard/agentguard/scope"
)

// boundSessionPrefix starts the MCP session ids a ProtectedResource
// issues: "mcp-session-b1." + 32 hex digits of randomness + "." + the
// base64url HMAC-SHA256 of the randomness and the principal's ID.
const boundSessionPrefix = "mcp-session-b1."

// SessionIDs returns the resolver of MCP session ids for mcp-go's
// streamable HTTP server (server.WithSessionIdManagerResolver) that binds
// each session to the principal that opened it, as the MCP security best
// practices ask: a session id carries a MAC of the principal's ID under a
// key only this ProtectedResource holds, and Require answers 404 to a
// request whose token's principal is not the session's — whatever the
// method, the GET stream included, so that one principal cannot read
// another's notifications or answer the requests sent to them. Once this
// resolver is in use, Require also refuses session ids it did not issue.
func (p *ProtectedResource) SessionIDs() server.SessionIdManagerResolver {
	p.bindSessions.Store(true)
	return sessionResolver{p}
}

type sessionResolver struct{ p *ProtectedResource }

// ResolveSessionIdManager returns the manager for r's principal. r is nil
// when mcp-go sweeps idle sessions or closes them all: that manager may
// only terminate.
func (s sessionResolver) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r == nil {
		return boundSessions{p: s.p, internal: true}
	}
	pr, ok := r.Context().Value(verifiedPrincipalKey{}).(scope.Principal)
	if !ok {
		return boundSessions{p: s.p}
	}
	return boundSessions{p: s.p, sub: pr.ID, ok: true}
}

// boundSessions issues and checks the session ids of one principal.
type boundSessions struct {
	p        *ProtectedResource
	sub      string
	ok       bool // a principal was verified
	internal bool // mcp-go's own housekeeping, outside any request
}

func (m boundSessions) Generate() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	nonce := hex.EncodeToString(b[:])
	return boundSessionPrefix + nonce + "." + m.p.sessionMAC(nonce, m.sub)
}

var errForeignSession = errors.New("guardmcp: the session belongs to another principal, or was not issued here")

func (m boundSessions) Validate(id string) (bool, error) {
	if !m.ok || !m.p.sessionBound(id, m.sub) {
		return false, errForeignSession
	}
	return false, nil
}

func (m boundSessions) Terminate(id string) (bool, error) {
	if m.internal {
		return false, nil
	}
	if !m.ok || !m.p.sessionBound(id, m.sub) {
		return true, nil // not allowed
	}
	return false, nil
}

// sessionMAC is the MAC binding a session nonce to a principal's ID.
func (p *ProtectedResource) sessionMAC(nonce, sub string) string {
	h := hmac.New(sha256.New, p.sessionKey[:])
	h.Write([]byte(nonce))
	h.Write([]byte{0})
	h.Write([]byte(sub))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// sessionBound reports whether id is a session id this resource issued
// to the principal sub.
func (p *ProtectedResource) sessionBound(id, sub string) bool {
	rest, ok := strings.CutPrefix(id, boundSessionPrefix)
	if !ok || sub == "" {
		return false
	}
	nonce, mac, ok := strings.Cut(rest, ".")
	if !ok || len(nonce) != 32 {
		return false
	}
	return hmac.Equal([]byte(mac), []byte(p.sessionMAC(nonce, sub)))
}

// checkSession refuses a request whose session id is not bound to its
// principal, once SessionIDs is in use. It reports whether the request
// may go on.
func (p *ProtectedResource) checkSession(w http.ResponseWriter, r *http.Request, sub string) bool {
	if !p.bindSessions.Load() {
		return true
	}
	ids := r.Header.Values(server.HeaderKeySessionID)
	switch {
	case len(ids) == 0:
		return true
	case len(ids) == 1 && p.sessionBound(ids[0], sub):
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"session not found"}}`))
	return false
}
