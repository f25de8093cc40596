package guardmcp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/mark3labs/mcp-go/server"

	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
)

// ExampleNewProtectedResource puts an MCP server behind the MCP
// authorization specification: requests without a valid bearer token are
// answered 401 with a challenge that names the Protected Resource
// Metadata, where an OAuth client finds the authorization server.
func ExampleNewProtectedResource() {
	const resource = "https://mcp.example.com/mcp"
	// In production: guardmcp.NewJWKSVerifier(ctx, guardmcp.JWKSOptions{},
	//     guardmcp.JWTOptions{Audience: resource, Issuer: "https://id.example.com"})
	var verifier guardmcp.TokenVerifier = verifierFunc(func(ctx context.Context, token string) (scope.Principal, error) {
		return scope.Principal{}, fmt.Errorf("unknown token")
	})
	res, err := guardmcp.NewProtectedResource(guardmcp.ResourceOptions{
		Resource:             resource,
		AuthorizationServers: []string{"https://id.example.com"},
		ScopesSupported:      []string{"fs.read", "fs.write"},
		Verifier:             verifier,
	})
	if err != nil {
		panic(err)
	}
	origins, err := guardmcp.NewOriginPolicy(guardmcp.OriginOptions{Origins: []string{"https://app.example.com"}})
	if err != nil {
		panic(err)
	}
	s := server.NewMCPServer("files", "1.0")
	mcpHandler := server.NewStreamableHTTPServer(s,
		server.WithHTTPContextFunc(guardmcp.HTTPContextFunc(res.PrincipalFunc())))
	mux := http.NewServeMux()
	mux.Handle("/mcp", origins.Require(res.Require(mcpHandler)))
	res.Mount(mux) // /.well-known/oauth-protected-resource/mcp

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", resource, nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))

	req := httptest.NewRequest("POST", resource, nil)
	req.Header.Set("Authorization", "Bearer forged")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))

	req = httptest.NewRequest("POST", resource, nil)
	req.Header.Set("Origin", "https://evil.example")
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="the token is not valid"
	// 403
}

type verifierFunc func(ctx context.Context, token string) (scope.Principal, error)

func (f verifierFunc) VerifyContext(ctx context.Context, token string) (scope.Principal, error) {
	return f(ctx, token)
}
