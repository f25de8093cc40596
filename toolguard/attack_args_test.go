package toolguard_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// freeFormPolicy grants every tool; rules deny secret files, read through
// several spellings of a member: a select, has(), an index with a constant
// key, a nested member and a comprehension variable.
const freeFormPolicy = `version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
  - name: no-dotenv-opts
    effect: deny
    tools: ["*"]
    when: has(args.opts) && has(args.opts.path) && args.opts.path.glob("**/.env*")
  - name: no-dotenv-target
    effect: deny
    tools: [empty, object]
    when: '"target" in args && args["target"].glob("**/.env*")'
  - name: no-dotenv-files
    effect: deny
    tools: ["*"]
    when: has(args.files) && args.files.exists(f, f.path.glob("**/.env*"))
`

// freeFormArgs is how a handler reads the arguments: encoding/json into a
// struct, which matches keys to fields ignoring case.
type freeFormArgs struct {
	Path   string `json:"path"`
	Target string `json:"target"`
	Opts   struct {
		Path string `json:"path"`
	} `json:"opts"`
	Files []struct {
		Path string `json:"path"`
	} `json:"files"`
}

// freeFormGuard registers one tool per free-form schema — the default for
// an empty InputSchema, {"type":"object"}, and an object declared without
// properties (mcp.WithObject("opts")) — each reading every path it is given
// from a real directory.
func freeFormGuard(t *testing.T, policy string) (*toolguard.Guard, context.Context, string, *[]string) {
	t.Helper()
	ws := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ws, ".env"), []byte("API_KEY=TOPSECRET"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "ok.txt"), []byte("public"), 0o644))
	p, err := scope.Parse([]byte(policy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var mu sync.Mutex
	var read []string
	handler := func(_ context.Context, raw json.RawMessage) (any, error) {
		var a freeFormArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, err
		}
		var out string
		paths := []string{a.Path, a.Target, a.Opts.Path}
		for _, f := range a.Files {
			paths = append(paths, f.Path)
		}
		for _, p := range paths {
			if p == "" {
				continue
			}
			mu.Lock()
			read = append(read, p)
			mu.Unlock()
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out += string(b)
		}
		return out, nil
	}
	for name, schema := range map[string]string{
		"empty":     ``,
		"object":    `{"type":"object"}`,
		"with_opts": `{"type":"object","properties":{"opts":{"type":"object"},"files":{"type":"array"}}}`,
	} {
		require.NoError(t, g.Register(toolguard.Tool{Name: name, InputSchema: json.RawMessage(schema), Handler: handler}))
	}
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "bot", Scopes: []string{"all"}})
	return g, ctx, ws, &read
}

// TestFreeFormKeysReadByPolicy: where the schema declares nothing, a rule
// reading args.path still must not be walked around with {"PATH":...},
// which the handler reads as path. Every spelling folding like a member
// the policy reads is denied, at the top, nested, and in list elements.
func TestFreeFormKeysReadByPolicy(t *testing.T) {
	g, ctx, ws, read := freeFormGuard(t, freeFormPolicy)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	env, ok := q(filepath.Join(ws, ".env")), q(filepath.Join(ws, "ok.txt"))

	for _, tool := range []string{"empty", "object", "with_opts"} {
		out, err := g.Call(ctx, tool, json.RawMessage(`{"path":`+ok+`}`))
		require.NoError(t, err, tool)
		require.Equal(t, "public", out)
		_, err = g.Call(ctx, tool, json.RawMessage(`{"path":`+env+`}`))
		require.ErrorIs(t, err, toolguard.ErrPolicy, tool)
		_, err = g.Call(ctx, tool, json.RawMessage(`{"opts":{"path":`+env+`}}`))
		require.ErrorIs(t, err, toolguard.ErrPolicy, tool)
		_, err = g.Call(ctx, tool, json.RawMessage(`{"files":[{"path":`+env+`}]}`))
		require.ErrorIs(t, err, toolguard.ErrPolicy, tool)
		if tool != "with_opts" {
			args := `{"TARGET":` + env + `}`
			_, err := g.Call(ctx, tool, json.RawMessage(args))
			require.ErrorIs(t, err, toolguard.ErrInvalidArguments, "%s %s", tool, args)
		}
		for _, args := range []string{
			`{"PATH":` + env + `}`,
			`{"Path":` + env + `}`,
			`{"pAth":` + env + `}`,
			`{"\u0050ATH":` + env + `}`,
			`{"opts":{"PATH":` + env + `}}`,
			`{"OPTS":{"path":` + env + `}}`,
			`{"files":[{"path":` + ok + `},{"PATH":` + env + `}]}`,
			`{"Files":[{"path":` + env + `}]}`,
		} {
			out, err := g.Call(ctx, tool, json.RawMessage(args))
			require.ErrorIs(t, err, toolguard.ErrInvalidArguments, "%s %s: %v", tool, args, out)
			var de *toolguard.DeniedError
			require.ErrorAs(t, err, &de)
			require.Contains(t, de.Decision.Reason, "letter case")
			require.NotContains(t, de.Decision.Reason, "fastschema")
		}
		// A key folding like nothing the policy reads is left alone.
		out, err = g.Call(ctx, tool, json.RawMessage(`{"path":`+ok+`,"Note":"x"}`))
		require.NoError(t, err, tool)
		require.Equal(t, "public", out)
	}
	for _, p := range *read {
		require.NotContains(t, p, ".env", "the handler read a path no rule judged")
	}
}

// TestFreeFormKeysFollowThePolicy: the members read are those of the
// policy in force; SetPolicy to a policy that reads args.path starts
// denying {"PATH":...} at once, and back.
func TestFreeFormKeysFollowThePolicy(t *testing.T) {
	const open = `version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
`
	g, ctx, ws, _ := freeFormGuard(t, open)
	args := json.RawMessage(`{"PATH":` + func() string { b, _ := json.Marshal(filepath.Join(ws, "ok.txt")); return string(b) }() + `}`)
	_, err := g.Call(ctx, "object", args)
	require.NoError(t, err, "no expression reads path: nothing to walk around")
	strict, err := scope.Parse([]byte(freeFormPolicy))
	require.NoError(t, err)
	require.NoError(t, g.SetPolicy(strict))
	_, err = g.Call(ctx, "object", args)
	require.ErrorIs(t, err, toolguard.ErrInvalidArguments)
	_, err = g.Check(ctx, "object", args)
	require.ErrorIs(t, err, toolguard.ErrInvalidArguments)
	loose, err := scope.Parse([]byte(open))
	require.NoError(t, err)
	require.NoError(t, g.SetPolicy(loose))
	_, err = g.Call(ctx, "object", args)
	require.NoError(t, err)
}

// TestRegisterStructShapes: the shapes of Go input types an attacker
// would aim at — an embedded struct (encoding/json promotes its fields),
// a json:"-" field, a map and an interface field — never let the handler
// read a path the policy did not judge.
func TestRegisterStructShapes(t *testing.T) {
	type Base struct {
		Path string `json:"path"`
	}
	type in struct {
		Base
		Hidden string            `json:"-"`
		Env    map[string]string `json:"env,omitempty"`
		Opts   any               `json:"opts,omitempty"`
	}
	ws := t.TempDir()
	env := filepath.Join(ws, ".env")
	require.NoError(t, os.WriteFile(env, []byte("API_KEY=TOPSECRET"), 0o600))
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [read]
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: >
      (has(args.path) && args.path.glob("**/.env*")) ||
      (has(args.opts) && has(args.opts.path) && args.opts.path.glob("**/.env*"))
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var mu sync.Mutex
	var read []string
	require.NoError(t, toolguard.Register(g, "read", "Read.", func(_ context.Context, a in) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		read = append(read, a.Path, a.Hidden)
		if m, ok := a.Opts.(map[string]any); ok {
			for k, v := range m {
				if s, ok := v.(string); ok && (k == "path" || k == "PATH") {
					read = append(read, s)
				}
			}
		}
		return "ok", nil
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	_, err = g.Call(ctx, "read", json.RawMessage(`{"path":"/w/ok"}`))
	require.NoError(t, err)
	for _, args := range []string{
		`{"path":` + q(env) + `}`,
		`{"PATH":` + q(env) + `}`,
		`{"Base":{"path":` + q(env) + `}}`,
		`{"-":` + q(env) + `}`,
		`{"Hidden":` + q(env) + `}`,
		`{"opts":{"PATH":` + q(env) + `}}`,
		`{"opts":{"path":` + q(env) + `}}`,
		`{"env":{"HOME":"/w","home":` + q(env) + `}}`,
	} {
		_, _ = g.Call(ctx, "read", json.RawMessage(args))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range read {
		require.NotContains(t, s, ".env", "the handler read a path no rule judged")
	}
}
