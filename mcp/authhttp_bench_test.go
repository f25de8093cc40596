package guardmcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// BenchmarkProtectedResource measures what Require costs per request, next
// to the token verification it wraps: "verify" is VerifyContext alone,
// "require" the whole handler with a valid token, "refuse" a request
// without one (the 401 with its challenge).
func BenchmarkProtectedResource(b *testing.B) {
	jf := newJWTFixture(b)
	keys, err := guardmcp.ParseJWKS(jf.jwks)
	require.NoError(b, err)
	const resource = "https://mcp.example.com/mcp"
	v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: resource, Issuer: "https://idp.test"})
	require.NoError(b, err)
	res, err := guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: resource,
		AuthorizationServers: []string{"https://idp.test"}, RequiredScopes: []string{"fs.read"}, Verifier: v})
	require.NoError(b, err)
	claims := validClaims()
	claims["aud"] = resource
	tok := jf.sign(b, claims, nil)
	h := res.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.VerifyContext(context.Background(), tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	serve := func(b *testing.B, auth string, want int) {
		req := httptest.NewRequest("POST", "/mcp", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != want {
				b.Fatalf("status %d", rec.Code)
			}
		}
	}
	b.Run("require", func(b *testing.B) { serve(b, "Bearer "+tok, http.StatusNoContent) })
	b.Run("refuse", func(b *testing.B) { serve(b, "", http.StatusUnauthorized) })
}
