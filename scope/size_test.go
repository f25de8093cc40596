package scope_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

// toolsDef is a policy of n tools, each granted by its own scope under a
// condition.
func toolsDef(n int) scope.Def {
	d := scope.Def{Version: 1, Scopes: map[string]scope.ScopeDef{}}
	for i := range n {
		d.Scopes[fmt.Sprintf("scope_%05d", i)] = scope.ScopeDef{Grants: []scope.GrantDef{
			{Tools: []string{fmt.Sprintf("tool_%05d", i)}, When: `args.path.startsWith("/workspace/")`},
		}}
	}
	return d
}

// TestLargePolicyWithinDefaultLimit: a policy of 20,000 tools (a canonical
// form of about 2 MB) compiles under the default limit, and decides.
func TestLargePolicyWithinDefaultLimit(t *testing.T) {
	p, err := scope.Compile(toolsDef(20000))
	require.NoError(t, err)
	d := p.Decide(context.Background(), scope.Input{
		Principal: scope.Principal{ID: "a", Scopes: []string{"scope_19999"}},
		Tool:      scope.Tool{Name: "tool_19999"},
		Args:      map[string]any{"path": "/workspace/x"},
	})
	assert.Equal(t, scope.Allow, d.Effect, d.Reason)
}

// TestMaxPolicyBytes: the limit applies to the canonical form in Compile
// and to the source in Parse and Load, and the error says how to raise it.
func TestMaxPolicyBytes(t *testing.T) {
	def := toolsDef(50)
	_, err := scope.Compile(def, scope.WithMaxPolicyBytes(1000))
	require.Error(t, err)
	assert.Regexp(t, `^scope: policy is too large: its canonical form is \d+ bytes, over the limit of 1000 \(raise it with WithMaxPolicyBytes\)$`, err.Error())
	_, err = scope.Compile(def, scope.WithMaxPolicyBytes(100_000))
	require.NoError(t, err)

	src := []byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [a]\n" + strings.Repeat("# padding\n", 200))
	_, err = scope.Parse(src, scope.WithMaxPolicyBytes(1000))
	require.Error(t, err)
	assert.Equal(t, "scope: policy is larger than 1000 bytes (raise the limit with WithMaxPolicyBytes)", err.Error())
	_, err = scope.Parse(src, scope.WithMaxPolicyBytes(len(src)))
	require.NoError(t, err)

	file := filepath.Join(t.TempDir(), "p.yaml")
	require.NoError(t, os.WriteFile(file, src, 0o600))
	_, err = scope.Load(file, scope.WithMaxPolicyBytes(1000))
	require.ErrorContains(t, err, "larger than 1000 bytes")
	_, err = scope.Load(file)
	require.NoError(t, err)
	// A larger limit lets a policy above the default through.
	big := append([]byte("version: 1\nscopes:\n  s:\n    grants:\n      - tools: [a]\n"), make([]byte, 0, scope.MaxPolicyBytes)...)
	big = append(big, strings.Repeat("#\n", scope.MaxPolicyBytes/2)...)
	_, err = scope.Parse(big)
	require.ErrorContains(t, err, "larger than")
	_, err = scope.Parse(big, scope.WithMaxPolicyBytes(2*scope.MaxPolicyBytes))
	require.NoError(t, err)
}
