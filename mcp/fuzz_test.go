package guardmcp_test

import (
	"encoding/json"
	"testing"

	guardmcp "github.com/agentguard/agentguard/mcp"
)

// FuzzToolDigest: no input panics, and whitespace around the document does
// not change a digest.
func FuzzToolDigest(f *testing.F) {
	f.Add([]byte(`{"name":"t","description":"d","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`))
	f.Add([]byte(`{"name":"t","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":1e400}}}}`))
	f.Add([]byte(`{"name":"\u00e9","x":[1,2,{"a":null}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := guardmcp.ToolDigest(json.RawMessage(raw))
		if err != nil {
			return
		}
		d2, err := guardmcp.ToolDigest(json.RawMessage(" \n" + string(raw) + "\t "))
		if err != nil || d != d2 {
			t.Fatalf("digest changed with surrounding whitespace: %v", err)
		}
	})
}

// FuzzJWTVerify: no token without a valid signature yields a principal,
// and nothing panics.
func FuzzJWTVerify(f *testing.F) {
	fx := newJWTFixture(f)
	valid := fx.sign(f, validClaims(), nil)
	f.Add(valid[:len(valid)-2])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == valid {
			return
		}
		if pr, err := fx.verifier.Verify(tok); err == nil {
			t.Fatalf("forged token accepted: %q → %+v", tok, pr)
		}
	})
}
