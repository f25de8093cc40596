package toolguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// warnedTools returns the tools named by the warnings in a JSON log.
func warnedTools(t *testing.T, buf *bytes.Buffer) []string {
	t.Helper()
	var tools []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		assert.Equal(t, "WARN", m["level"])
		assert.Contains(t, m["msg"], "every call to it will be denied")
		tools = append(tools, m["tool"].(string))
	}
	buf.Reset()
	return tools
}

func TestRegisterWarnsAboutUngrantedTools(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_text_file]
        when: args.path.startsWith("/w/")
  off:
    grants:
      - tools: [write_file]
        when: "false"
`))
	require.NoError(t, err)
	var buf bytes.Buffer
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard),
		toolguard.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	require.NoError(t, err)
	type args struct {
		Path string `json:"path"`
	}
	read := func(ctx context.Context, in args) (string, error) { return in.Path, nil }

	require.NoError(t, toolguard.Register(g, "read_text_file", "", read))
	assert.Empty(t, warnedTools(t, &buf), "a granted tool is not warned about")
	// The README's old mistake: the policy grants read_text_file.
	require.NoError(t, toolguard.Register(g, "read_file", "", read), "an ungranted tool is still registered")
	assert.Equal(t, []string{"read_file"}, warnedTools(t, &buf))
	require.NoError(t, toolguard.Register(g, "write_file", "", read))
	assert.Equal(t, []string{"write_file"}, warnedTools(t, &buf), "a grant whose condition is always false grants nothing")

	// A policy that grants everything: no warnings; one that grants
	// nothing: a warning for each registered tool, in name order.
	all, err := scope.Parse([]byte("version: 1\nscopes:\n  all:\n    grants:\n      - tools: [\"*\"]\n"))
	require.NoError(t, err)
	require.NoError(t, g.SetPolicy(all))
	assert.Empty(t, warnedTools(t, &buf))
	none, err := scope.Parse([]byte("version: 1\nscopes:\n  other:\n    grants:\n      - tools: [send_mail]\n"))
	require.NoError(t, err)
	require.NoError(t, g.SetPolicy(none))
	assert.Equal(t, []string{"read_file", "read_text_file", "write_file"}, warnedTools(t, &buf))

	_, err = toolguard.New(p, toolguard.WithSink(audit.Discard), toolguard.WithLogger(nil))
	require.Error(t, err)
}
