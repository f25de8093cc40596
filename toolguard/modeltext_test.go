package toolguard_test

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// goPackage finds a Go package prefix of this module in a text.
var goPackage = regexp.MustCompile(`\b(toolguard|guardmcp|audit|scope|redislimit|safejson|canonjson|fastschema|fsroot|netguard|aibom|hostname|glob): `)

// TestModelTextNamesNoGoPackage: where a denial's reason carries the text of
// an error from another part of the module — an approver's, the audit
// log's — the model reads it without Go package names, while Error() keeps
// them for programmers.
func TestModelTextNamesNoGoPackage(t *testing.T) {
	t.Run("approver error", func(t *testing.T) {
		e := newEnv(t, toolguard.WithApprover(toolguard.ApproverFunc(func(context.Context, toolguard.ApprovalRequest) (toolguard.Approval, error) {
			return toolguard.Approval{}, guardmcp.ErrNoElicitation
		})))
		_, err := e.g.Call(e.ctx, "send_email", mail("alice@partner.test"))
		var de *toolguard.DeniedError
		require.ErrorAs(t, err, &de)
		require.ErrorIs(t, err, guardmcp.ErrNoElicitation)
		assert.Contains(t, de.ModelText(), "cannot ask its user")
		assert.NotRegexp(t, goPackage, de.ModelText())
		assert.True(t, strings.HasPrefix(err.Error(), "toolguard: "), "Error() is a Go error string: %s", err)
	})
	t.Run("closed audit log", func(t *testing.T) {
		p, err := scope.Load("testdata/policy.yaml")
		require.NoError(t, err)
		log, err := audit.OpenFile(filepath.Join(t.TempDir(), "d.jsonl"), audit.FileOptions{})
		require.NoError(t, err)
		require.NoError(t, log.Close())
		g, err := toolguard.New(p, toolguard.WithSink(log))
		require.NoError(t, err)
		require.NoError(t, toolguard.Register(g, "read_file", "", func(context.Context, struct {
			Path string `json:"path"`
		}) (string, error) {
			t.Error("the tool ran without a record")
			return "", nil
		}))
		ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent-7", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})
		_, err = g.Call(ctx, "read_file", []byte(`{"path":"/w/a"}`))
		var de *toolguard.DeniedError
		require.ErrorAs(t, err, &de)
		require.True(t, errors.Is(err, audit.ErrClosed), "%v", err)
		assert.Contains(t, de.ModelText(), "could not be recorded")
		assert.NotRegexp(t, goPackage, de.ModelText())
	})
}
