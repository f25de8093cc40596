package guardmcp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/agentguard/agentguard/scope"
)

// ClaimMapping says how the claims of a verified token become a
// principal. A claim is named by its name, or, when no claim has that
// name, by a dotted path into nested objects ("realm_access.roles").
// The zero value is the default mapping:
//
//   - sub becomes the principal's ID (a token without it is refused);
//   - scope, a space-separated string, and scp, an array of strings or a
//     space-separated string, become its scopes;
//   - every other claim becomes an attribute under its own name
//     (principal.attrs.<claim> in the policy).
type ClaimMapping struct {
	// Subject names the claim whose string value is the principal's ID;
	// empty means "sub".
	Subject string
	// Scopes name the claims whose values are the principal's scopes, in
	// order: a string is split at spaces, an array contributes its
	// strings. Nil means "scope" and "scp".
	Scopes []string
	// Attrs maps attribute names to claim names. Nil means every claim
	// except the subject and scope claims, under its own name; otherwise
	// only these, and a claim the token lacks is no attribute.
	Attrs map[string]string
}

// claim returns the claim named name, or found by its dotted path.
func claim(c jwt.MapClaims, name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	if !strings.Contains(name, ".") {
		return nil, false
	}
	var cur any = map[string]any(c)
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// principal maps verified claims to a principal.
func (cm ClaimMapping) principal(c jwt.MapClaims) (scope.Principal, error) {
	subName := cm.Subject
	if subName == "" {
		subName = "sub"
	}
	v, _ := claim(c, subName)
	sub, _ := v.(string)
	if sub == "" {
		return scope.Principal{}, fmt.Errorf("guardmcp: token has no %s claim", subName)
	}
	pr := scope.Principal{ID: sub, Attrs: map[string]any{}}
	scopeNames := cm.Scopes
	if scopeNames == nil {
		scopeNames = []string{"scope", "scp"}
	}
	for _, n := range scopeNames {
		v, _ := claim(c, n)
		switch s := v.(type) {
		case string:
			pr.Scopes = append(pr.Scopes, strings.Fields(s)...)
		case []any:
			for _, e := range s {
				if str, ok := e.(string); ok && str != "" {
					pr.Scopes = append(pr.Scopes, str)
				}
			}
		}
	}
	if cm.Attrs != nil {
		for attr, n := range cm.Attrs {
			if v, ok := claim(c, n); ok {
				pr.Attrs[attr] = v
			}
		}
		return pr, nil
	}
	for k, val := range c {
		if k != subName && !containsString(scopeNames, k) {
			pr.Attrs[k] = val
		}
	}
	return pr, nil
}

// ParseClaimAttrs parses attribute mappings written attr=claim (a claim
// alone maps to an attribute of the same name), as a command line gives
// them.
func ParseClaimAttrs(specs []string) (map[string]string, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, s := range specs {
		attr, name, ok := strings.Cut(s, "=")
		if !ok {
			name = attr
		}
		if attr == "" || name == "" {
			return nil, errors.New("guardmcp: a claim attribute is attr=claim")
		}
		out[attr] = name
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
