package guardmcp_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// FuzzRequireAuthorization: whatever the Authorization headers and the
// query string, Require never panics, lets a request through only with
// exactly one header carrying the valid token under the Bearer scheme and
// no access_token in the query, and otherwise answers 400 or 401 with a
// Bearer challenge that does not echo what was sent.
func FuzzRequireAuthorization(f *testing.F) {
	jf := newJWTFixture(f)
	keys, err := guardmcp.ParseJWKS(jf.jwks)
	if err != nil {
		f.Fatal(err)
	}
	const resource = "https://mcp.example.com/mcp"
	v, err := guardmcp.NewJWTVerifier(keys, guardmcp.JWTOptions{Audience: resource, Issuer: "https://idp.test"})
	if err != nil {
		f.Fatal(err)
	}
	res, err := guardmcp.NewProtectedResource(guardmcp.ResourceOptions{Resource: resource,
		AuthorizationServers: []string{"https://idp.test"}, Verifier: v})
	if err != nil {
		f.Fatal(err)
	}
	claims := validClaims()
	claims["aud"] = resource
	valid := jf.sign(f, claims, nil)
	h := res.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	f.Add("Bearer "+valid, "", "")
	f.Add("bearer "+valid, "", "x=1")
	f.Add("Bearer "+valid, "Bearer "+valid, "")
	f.Add("Bearer  "+valid, "", "access_token=x")
	f.Add("Basic YTpi", "", "")
	f.Add("Bearer", "", "")
	f.Add("Bearer "+valid+"=", "", "ACCESS%5FTOKEN=1")
	f.Add("Bearer "+strings.ToUpper(valid), "", "")
	f.Fuzz(func(t *testing.T, auth1, auth2, query string) {
		req := httptest.NewRequest("POST", "/mcp", nil)
		req.URL.RawQuery = query
		var hdrs []string
		for _, a := range []string{auth1, auth2} {
			if a != "" {
				hdrs = append(hdrs, a)
			}
		}
		req.Header["Authorization"] = hdrs
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		ch := rec.Header().Get("WWW-Authenticate")
		if rec.Code == http.StatusNoContent {
			scheme, tok, _ := strings.Cut(hdrs[0], " ")
			if len(hdrs) != 1 || !strings.EqualFold(scheme, "Bearer") || strings.TrimLeft(tok, " ") != valid {
				t.Fatalf("let through: %q", hdrs)
			}
			q, _ := url.ParseQuery(query)
			for k := range q {
				if strings.EqualFold(k, "access_token") {
					t.Fatalf("let through with a token in the query %q", query)
				}
			}
			return
		}
		if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusBadRequest {
			t.Fatalf("status %d", rec.Code)
		}
		if !strings.HasPrefix(ch, `Bearer resource_metadata="`+res.MetadataURL()+`"`) {
			t.Fatalf("challenge %q", ch)
		}
		for _, a := range hdrs {
			if len(a) > 16 && (strings.Contains(ch, a) || strings.Contains(rec.Body.String(), a)) {
				t.Fatalf("echoed %q", a)
			}
		}
	})
}
