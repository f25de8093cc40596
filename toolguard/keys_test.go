package toolguard_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// keysPolicy lets read_files read under the caller's workspace; a path
// outside it is denied by a rule. A call without a path is allowed: the
// schema does not require one.
const keysPolicy = `version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_files, read_struct]
rules:
  - name: outside-workspace
    effect: deny
    tools: ["*"]
    when: >
      (has(args.path) && !args.path.isUnder(principal.attrs.workspace)) ||
      (has(args.opts) && has(args.opts.path) && !args.opts.path.isUnder(principal.attrs.workspace)) ||
      (has(args.files) && args.files.exists(f, has(f.path) && !f.path.isUnder(principal.attrs.workspace)))
`

// openSchema is what mcp-go's mcp.NewTool(..., mcp.WithString("path"))
// builds: properties, no additionalProperties: false.
const openSchema = `{"type":"object","properties":{
	"path":{"type":"string"},
	"opts":{"type":"object","properties":{"path":{"type":"string"}}},
	"files":{"type":"array","items":{"type":"object","properties":{"path":{"type":"string"}}}}}}`

// foldArgs is how a Go handler reads the arguments: encoding/json into a
// struct, which matches keys to fields ignoring case.
type foldArgs struct {
	Path string `json:"path"`
	Opts struct {
		Path string `json:"path"`
	} `json:"opts"`
	Files []struct {
		Path string `json:"path"`
	} `json:"files"`
}

// fileFixture is a workspace with one file and a secret file outside it.
type fileFixture struct {
	ws, ok, secret string
}

func newFileFixture(t *testing.T) fileFixture {
	t.Helper()
	dir := t.TempDir()
	f := fileFixture{ws: filepath.Join(dir, "w"), secret: filepath.Join(dir, "secret.txt")}
	require.NoError(t, os.Mkdir(f.ws, 0o755))
	f.ok = filepath.Join(f.ws, "ok.txt")
	require.NoError(t, os.WriteFile(f.ok, []byte("public"), 0o644))
	require.NoError(t, os.WriteFile(f.secret, []byte("TOP SECRET"), 0o600))
	return f
}

// readFiles reads every path in a, as a real file tool would.
func readFiles(a foldArgs) (string, error) {
	var out []string
	for _, p := range append([]string{a.Path, a.Opts.Path}, func() (ps []string) {
		for _, f := range a.Files {
			ps = append(ps, f.Path)
		}
		return ps
	}()...) {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		out = append(out, string(b))
	}
	return strings.Join(out, ","), nil
}

func keysGuard(t *testing.T, ws string) (*toolguard.Guard, context.Context, *atomic.Int32) {
	t.Helper()
	p, err := scope.Parse([]byte(keysPolicy))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var ran atomic.Int32
	require.NoError(t, g.Register(toolguard.Tool{
		Name: "read_files", InputSchema: json.RawMessage(openSchema),
		Handler: func(_ context.Context, raw json.RawMessage) (any, error) {
			ran.Add(1)
			var a foldArgs
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			return readFiles(a)
		},
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{
		ID: "reader", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": ws},
	})
	return g, ctx, &ran
}

// TestKeysFoldingLikeADeclaredProperty: the handler, decoding with
// encoding/json, would read a key in other letter case (or with a Unicode
// letter that folds to an ASCII one) as the declared property, which the
// policy never saw. Each such call is denied before the handler runs.
func TestKeysFoldingLikeADeclaredProperty(t *testing.T) {
	f := newFileFixture(t)
	g, ctx, ran := keysGuard(t, f.ws)
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	out, err := g.Call(ctx, "read_files", json.RawMessage(`{"path":`+q(f.ok)+`}`))
	require.NoError(t, err)
	require.Equal(t, "public", out)
	_, err = g.Call(ctx, "read_files", json.RawMessage(`{"path":`+q(f.secret)+`}`))
	require.ErrorIs(t, err, toolguard.ErrPolicy, "the policy must deny the plain spelling")

	tests := []struct {
		name, args, pointer string
	}{
		// A key the schema does not declare, folding like one it does.
		{"upper case", `{"PATH":` + q(f.secret) + `}`, "/PATH"},
		{"long s", `{"pat\u017f":` + q(f.secret) + `}`, ""}, // "paſ" does not fold like "path": allowed, see below
		{"nested", `{"opts":{"Path":` + q(f.secret) + `}}`, "/opts/Path"},
		{"in an array", `{"files":[{"path":` + q(f.ok) + `},{"pAth":` + q(f.secret) + `}]}`, "/files/1/pAth"},
		// Two keys of one object folding alike.
		{"both spellings", `{"path":` + q(f.ok) + `,"PATH":` + q(f.secret) + `}`, "/PATH"},
		{"both spellings, nested", `{"opts":{"path":` + q(f.ok) + `,"paTH":` + q(f.secret) + `}}`, "/opts/paTH"},
		{"both spellings, in an array", `{"files":[{"path":` + q(f.ok) + `,"Path":` + q(f.secret) + `}]}`, "/files/0/Path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ran.Load()
			out, err := g.Call(ctx, "read_files", json.RawMessage(tc.args))
			if tc.pointer == "" {
				// "pat\u017f" folds to "PATS", not "PATH": the handler
				// does not read it as path, and the call is harmless.
				require.NoError(t, err)
				require.Equal(t, "", out)
				return
			}
			require.ErrorIs(t, err, toolguard.ErrInvalidArguments)
			require.Equal(t, before, ran.Load(), "the handler ran")
			require.Nil(t, out)
			var de *toolguard.DeniedError
			require.ErrorAs(t, err, &de)
			require.Equal(t, toolguard.StageArguments, de.Decision.Stage)
			require.Contains(t, de.Decision.Reason, tc.pointer)
			require.Contains(t, de.Decision.Reason, "letter case")
			require.NotContains(t, de.Decision.Reason, "safejson")
			require.NotContains(t, de.Decision.Reason, "fastschema")
			require.Len(t, de.Decision.Violations, 1)
			require.Equal(t, tc.pointer, de.Decision.Violations[0].Pointer)
		})
	}
}

// TestKeysFoldingUnicode: encoding/json folds "ſ" (U+017F) like "s" and
// the Kelvin sign (U+212A) like "k".
func TestKeysFoldingUnicode(t *testing.T) {
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [t]
        when: '!has(args.secret) && !has(args.kind)'
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var seen []string
	require.NoError(t, g.Register(toolguard.Tool{
		Name: "t", InputSchema: json.RawMessage(`{"type":"object","properties":{"secret":{"type":"string"},"kind":{"type":"string"},"note":{"type":"string"}}}`),
		Handler: func(_ context.Context, raw json.RawMessage) (any, error) {
			var a struct {
				Secret string `json:"secret"`
				Kind   string `json:"kind"`
			}
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, err
			}
			seen = append(seen, a.Secret+a.Kind)
			return nil, nil
		},
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}})
	_, err = g.Call(ctx, "t", json.RawMessage(`{"note":"x"}`))
	require.NoError(t, err)
	for _, args := range []string{
		`{"\u017fecret":"leak"}`, `{"ſECRET":"leak"}`, `{"\u212aind":"leak"}`, `{"\u212aIND":"leak"}`,
		`{"note":"x","SECRET":"leak"}`, `{"secret":"","\u017fecret":"leak"}`,
	} {
		_, err := g.Call(ctx, "t", json.RawMessage(args))
		require.ErrorIs(t, err, toolguard.ErrInvalidArguments, args)
	}
	require.Equal(t, []string{""}, seen, "the handler read an unchecked value")
}

// TestRegisterKeysFoldingAlike: Register[T] derives a schema that refuses
// undeclared members, so a key in other case is refused as one; keys
// folding alike inside a free-form map are refused too.
func TestRegisterKeysFoldingAlike(t *testing.T) {
	type in struct {
		Path string // no json tag: encoding/json matches "path", "PATH", ...
		Opts struct {
			Mode string
		} `json:"opts"`
		Env map[string]string `json:"env,omitempty"`
	}
	f := newFileFixture(t)
	p, err := scope.Parse([]byte(`version: 1
scopes:
  s:
    grants:
      - tools: [read]
        when: args.Path.isUnder(principal.attrs.workspace)
`))
	require.NoError(t, err)
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
	require.NoError(t, err)
	var ran atomic.Int32
	require.NoError(t, toolguard.Register(g, "read", "Read a file.", func(_ context.Context, a in) (string, error) {
		ran.Add(1)
		b, err := os.ReadFile(a.Path)
		return string(b), err
	}))
	ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "a", Scopes: []string{"s"}, Attrs: map[string]any{"workspace": f.ws}})
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	out, err := g.Call(ctx, "read", json.RawMessage(`{"Path":`+q(f.ok)+`,"opts":{"Mode":"r"}}`))
	require.NoError(t, err)
	require.Equal(t, "public", out)
	for _, args := range []string{
		`{"Path":` + q(f.ok) + `,"path":` + q(f.secret) + `,"opts":{"Mode":"r"}}`,
		`{"Path":` + q(f.ok) + `,"opts":{"Mode":"r","mode":"w"}}`,
		`{"Path":` + q(f.ok) + `,"opts":{"Mode":"r"},"env":{"HOME":"/w","home":"/etc"}}`,
		`{"path":` + q(f.secret) + `,"opts":{"Mode":"r"}}`,
		`{"PATH":` + q(f.secret) + `,"opts":{"Mode":"r"}}`,
	} {
		_, err := g.Call(ctx, "read", json.RawMessage(args))
		require.ErrorIs(t, err, toolguard.ErrInvalidArguments, args)
	}
	require.Equal(t, int32(1), ran.Load())
}

// TestKeysFoldingPastResultExpressions: a label condition, a result rule
// and an ask rule's remember key read the arguments as rule conditions
// do; a key the handler would read as theirs, in another letter case, is
// denied before the handler runs, even where the schema declares nothing.
func TestKeysFoldingPastResultExpressions(t *testing.T) {
	for name, extra := range map[string]string{
		"label condition": `labels:
  - {tools: [fetch], add: [untrusted], when: 'has(args.url) && args.url.startsWith("http:")'}
`,
		"result rule condition": `results:
  rules:
    - {name: hide, effect: withhold, tools: [fetch], when: 'has(args.url) && args.url.startsWith("http:")'}
`,
		"result rule message": `results:
  rules:
    - {name: hide, effect: withhold, tools: [fetch], when: 'false', message: 'args.url'}
`,
		"remember key": `rules:
  - {name: confirm2, effect: ask, tools: [fetch], when: 'false', remember: args.url}
`,
	} {
		t.Run(name, func(t *testing.T) {
			p, err := scope.Parse([]byte("version: 1\nscopes:\n  s: {grants: [{tools: [fetch]}]}\n" + extra))
			require.NoError(t, err)
			g, err := toolguard.New(p, toolguard.WithSink(audit.Discard))
			require.NoError(t, err)
			var ran atomic.Int32
			require.NoError(t, g.Register(toolguard.Tool{
				Name: "fetch", InputSchema: json.RawMessage(`{"type":"object"}`),
				Handler: func(_ context.Context, raw json.RawMessage) (any, error) {
					ran.Add(1)
					var a struct {
						URL string `json:"url"`
					}
					return a.URL, json.Unmarshal(raw, &a)
				},
			}))
			ctx := toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "p", Scopes: []string{"s"}})
			_, err = g.Call(ctx, "fetch", json.RawMessage(`{"URL":"http://evil.test/"}`))
			require.ErrorIs(t, err, toolguard.ErrInvalidArguments)
			require.Zero(t, ran.Load(), "the handler ran")
			_, err = g.Call(ctx, "fetch", json.RawMessage(`{"other":"x"}`))
			require.NoError(t, err)
			require.EqualValues(t, 1, ran.Load())
		})
	}
}
