package toolguard_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

type adversarialCase struct {
	Name      string `json:"name"`
	Tool      string `json:"tool"`
	Args      string `json:"args"`
	ArgsHex   string `json:"args_hex"`
	Want      string `json:"want"` // allow, or the kind of denial
	Anonymous bool   `json:"anonymous"`
}

var wantErr = map[string]error{
	"invalid_arguments": toolguard.ErrInvalidArguments,
	"policy":            toolguard.ErrPolicy,
	"unknown_tool":      toolguard.ErrUnknownTool,
	"no_principal":      toolguard.ErrNoPrincipal,
}

// generated are the inputs too big to keep in a file.
func generated() []adversarialCase {
	return []adversarialCase{
		{Name: "a megabyte string", Tool: "read_file", Args: `{"path":"/w/` + strings.Repeat("a", 1<<20) + `"}`, Want: "invalid_arguments"},
		{Name: "a string just under the limit", Tool: "read_file", Args: `{"path":"/w/` + strings.Repeat("a", 1<<20-64) + `"}`, Want: "allow"},
		{Name: "a huge array", Tool: "read_file", Args: `{"path":"/w/a","x":[` + strings.Repeat("0,", 200_000) + `0]}`, Want: "invalid_arguments"},
		{Name: "deep nesting", Tool: "read_file", Args: `{"path":"/w/a","x":` + strings.Repeat(`{"a":`, 10_000) + `1` + strings.Repeat(`}`, 10_000) + `}`, Want: "invalid_arguments"},
		{Name: "many keys", Tool: "read_file", Args: `{"path":"/w/a"` + manyKeys(150_000) + `}`, Want: "invalid_arguments"},
		{Name: "an overlong tool name", Tool: strings.Repeat("t", 1<<20), Args: `{}`, Want: "unknown_tool"},
	}
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(`,"k`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(`_`)
		b.WriteString(hex.EncodeToString([]byte{byte(i >> 16), byte(i >> 8), byte(i)}))
		b.WriteString(`":1`)
	}
	return b.String()
}

// TestAdversarialCorpus runs hostile inputs through the guard: each gets a
// clear denial (or is allowed, where it is harmless) within bounded time and
// memory, and never a panic.
func TestAdversarialCorpus(t *testing.T) {
	b, err := os.ReadFile("testdata/adversarial.json")
	require.NoError(t, err)
	var cases []adversarialCase
	require.NoError(t, json.Unmarshal(b, &cases))
	cases = append(cases, generated()...)

	p, err := scope.Parse([]byte(`version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.attrs.workspace)
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
`))
	require.NoError(t, err)
	rec := newRecorder()
	g, err := toolguard.New(p, toolguard.WithSink(rec))
	require.NoError(t, err)
	require.NoError(t, g.Register(toolguard.Tool{Name: "read_file",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"],"additionalProperties":false}`),
		Handler:     func(context.Context, json.RawMessage) (any, error) { return "ok", nil }}))
	agent := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "agent", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}})

	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			args := []byte(c.Args)
			if c.ArgsHex != "" {
				args, err = hex.DecodeString(c.ArgsHex)
				require.NoError(t, err)
			}
			ctx := agent
			if c.Anonymous {
				ctx = context.Background()
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := g.Call(ctx, c.Tool, args)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)

			assert.Less(t, elapsed, 2*time.Second, "bounded time")
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bounded memory")
			if c.Want == "allow" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, toolguard.ErrDenied)
			assert.ErrorIs(t, err, wantErr[c.Want], "%v", err)
			var de *toolguard.DeniedError
			require.True(t, errors.As(err, &de))
			msg := err.Error()
			assert.True(t, utf8.ValidString(msg), "the denial is clean text")
			assert.Less(t, len(msg), 8<<10, "the denial is short enough for a model")
		})
	}
	sum := rec.verify(t)
	assert.Equal(t, len(cases), sum.Decisions, "one decision record per input")
}
