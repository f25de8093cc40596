package scopetest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/scope/scopetest"
	"github.com/agentguard/agentguard/toolguard"
)

func load(t *testing.T) *scope.Policy {
	t.Helper()
	p, err := scope.Load("testdata/policy.yaml")
	require.NoError(t, err)
	return p
}

func TestRunPolicy(t *testing.T) {
	cov := scopetest.Run(t, load(t), "testdata/cases.yaml")
	var never []string
	for _, e := range cov.NeverExercised() {
		never = append(never, e.ID)
	}
	assert.Equal(t, []string{"never-used"}, never, "coverage finds the rule no case reaches")
	assert.InDelta(t, 5.0/6.0, cov.Ratio(), 1e-9)
	var undecided []string
	for _, e := range cov.NeverDecided() {
		undecided = append(undecided, e.ID)
	}
	assert.Equal(t, []string{"never-used"}, undecided)
	assert.Contains(t, cov.String(), "rule  never-used               line 24   NEVER EXERCISED")
	require.Error(t, cov.Check(0.9))
	assert.Contains(t, cov.Check(0.9).Error(), `never exercised: rule "never-used"`)
	require.NoError(t, cov.Check(0.8))
}

func newGuard(t *testing.T, p *scope.Policy, sink audit.Sink) *toolguard.Guard {
	t.Helper()
	g, err := toolguard.New(p, toolguard.WithSink(sink))
	require.NoError(t, err)
	h := func(context.Context, json.RawMessage) (any, error) { return "ok", nil }
	require.NoError(t, g.Register(toolguard.Tool{Name: "read_file", Handler: h,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "write_file", Handler: h,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}`)}))
	require.NoError(t, g.Register(toolguard.Tool{Name: "send_email", Handler: h,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}},"required":["to"]}`)}))
	return g
}

func TestRunGuard(t *testing.T) {
	g := newGuard(t, load(t), audit.Discard)
	cov := scopetest.Run(t, g, "testdata/cases.yaml", scopetest.MinCoverage(0.8))
	assert.InDelta(t, 5.0/6.0, cov.Ratio(), 1e-9)

	// With a guard, the schema takes part: a wrongly typed argument is
	// denied before the policy is asked.
	res, err := scopetest.Decide(context.Background(), g, scopetest.Call{
		Principal: scope.Principal{ID: "bot", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}},
		Tool:      "read_file", Args: map[string]any{"path": 42},
	})
	require.NoError(t, err)
	assert.Equal(t, scope.Deny, res.Effect)
	assert.Equal(t, "arguments", res.Stage)
}

// A failing case's message says what was expected, what was decided, and
// the CEL evaluated on the way.
func TestFailureMessage(t *testing.T) {
	_, err := scopetest.Check(context.Background(), load(t), scopetest.Case{
		Name:      "reads .env",
		Principal: scope.Principal{ID: "bot", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}},
		Tool:      "read_file",
		Args:      map[string]any{"path": "/w/.env"},
		Expect:    "allow",
		Grant:     "fs.read",
		File:      "cases.yaml", Line: 7,
	})
	require.Error(t, err)
	assert.Equal(t, `case "reads .env" (cases.yaml:7): expected allow, got deny; expected grant "fs.read", got none
  call:     read_file {"path":"/w/.env"} by "bot"
  decided:  deny by rule "no-dotenv"
  reason:   denied by rule "no-dotenv": secret files are off limits: /w/.env
  evaluated:
    rule  no-dotenv        has(args.path) && args.path.glob("**/.env*") → true  ← decided`, err.Error())

	_, err = scopetest.Check(context.Background(), load(t), scopetest.Case{
		Name:      "writes outside out",
		Principal: scope.Principal{ID: "bot", Scopes: []string{"fs.write"}, Attrs: map[string]any{"workspace": "/w"}},
		Tool:      "write_file",
		Args:      map[string]any{"path": "/w/a.txt", "content": "x"},
		Expect:    "allow",
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `grant fs.write#0       args.path.isUnder(principal.attrs.workspace + "/out") → false`)
}

func TestExpect(t *testing.T) {
	p := load(t)
	bot := scope.Principal{ID: "bot", Scopes: []string{"fs.read", "mail"}, Attrs: map[string]any{"workspace": "/w"}}
	scopetest.Expect(t, p, scopetest.Call{Principal: bot, Tool: "read_file", Args: map[string]any{"path": "/w/a"}}).Allowed().AllowedBy("fs.read")
	scopetest.Expect(t, p, scopetest.Call{Principal: bot, Tool: "read_file", Args: map[string]any{"path": "/w/.env"}}).Denied().DeniedBy("no-dotenv").ReasonContains("off limits")
	scopetest.Expect(t, p, scopetest.Call{Principal: bot, Tool: "send_email", Args: map[string]any{"to": "x@y.z"}}).Asks().AsksBy("external-mail")
}

func TestLoadCasesErrors(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"bad-expect.yaml": "cases:\n  - {name: a, tool: t, expect: maybe}\n",
		"no-tool.yaml":    "cases:\n  - {name: a, expect: allow}\n",
		"dup.yaml":        "cases:\n  - {name: a, tool: t, expect: allow}\n  - {name: a, tool: t, expect: deny}\n",
		"unknown.yaml":    "cases:\n  - {name: a, tool: t, expect: allow, principle: {id: x}}\n",
		"unknown2.yaml":   "cases:\n  - {name: a, tool: t, expect: allow, principal: {id: x, scope: [a]}}\n",
		"empty.yaml":      "cases: []\n",
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
		_, err := scopetest.LoadCases(path)
		assert.Error(t, err, name)
	}
}

// TestCoverageSubject is run as a subprocess by TestMinCoverageFailsTheTest.
func TestCoverageSubject(t *testing.T) {
	if os.Getenv("SCOPETEST_SUBJECT") != "1" {
		t.Skip("run by TestMinCoverageFailsTheTest")
	}
	scopetest.Run(t, load(t), "testdata/cases.yaml", scopetest.MinCoverage(0.95))
}

func TestMinCoverageFailsTheTest(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCoverageSubject$", "-test.v")
	cmd.Env = append(os.Environ(), "SCOPETEST_SUBJECT=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the subject test must fail:\n%s", out)
	assert.Contains(t, string(out), `policy coverage 83% is below 95%; never exercised: rule "never-used"`)
	assert.Contains(t, string(out), "--- FAIL: TestCoverageSubject")
}

func TestGolden(t *testing.T) {
	golden := filepath.Join(t.TempDir(), "coverage.golden")
	t.Setenv("SCOPETEST_UPDATE", "1")
	cov := scopetest.Run(t, load(t), "testdata/cases.yaml", scopetest.Golden(golden))
	b, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, cov.String(), string(b))
	t.Setenv("SCOPETEST_UPDATE", "0")
	scopetest.Run(t, load(t), "testdata/cases.yaml", scopetest.Golden(golden))
}

// TestGoldenSubject is run as a subprocess by TestGoldenFailsWhenTheFileDiffers.
func TestGoldenSubject(t *testing.T) {
	golden := os.Getenv("SCOPETEST_GOLDEN_SUBJECT")
	if golden == "" {
		t.Skip("run by TestGoldenFailsWhenTheFileDiffers")
	}
	scopetest.Run(t, load(t), "testdata/cases.yaml", scopetest.Golden(golden))
}

// runGoldenSubject runs TestGoldenSubject against the golden file at path,
// without any update switch, and returns its output and exit error.
func runGoldenSubject(t *testing.T, path string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoldenSubject$", "-test.v", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SCOPETEST_UPDATE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "SCOPETEST_GOLDEN_SUBJECT="+path)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A golden coverage file that differs from the report fails the test, and
// is left as it was.
func TestGoldenFailsWhenTheFileDiffers(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.golden")
	report := scopetest.NewCoverage(load(t))
	for _, c := range mustCases(t) {
		res, _ := scopetest.Check(context.Background(), load(t), c)
		report.Add(res)
	}
	require.NoError(t, os.WriteFile(good, []byte(report.String()), 0o644))
	out, err := runGoldenSubject(t, good)
	require.NoError(t, err, "the control: a matching golden file passes:\n%s", out)

	changes := map[string]func(string) string{
		"one line changed": func(s string) string { return strings.Replace(s, "NEVER EXERCISED", "exercised", 1) },
		"a line added":     func(s string) string { return s + "rule  extra\n" },
		"trailing newline": func(s string) string { return strings.TrimSuffix(s, "\n") },
		"empty":            func(string) string { return "" },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".golden")
			content := change(report.String())
			require.NotEqual(t, report.String(), content)
			require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
			out, err := runGoldenSubject(t, path)
			require.Error(t, err, "the subject test must fail:\n%s", out)
			assert.Contains(t, out, "coverage differs from "+path)
			assert.Contains(t, out, "--- FAIL: TestGoldenSubject")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, content, string(b), "without -update the golden file is not rewritten")
		})
	}
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing.golden")
		out, err := runGoldenSubject(t, path)
		require.Error(t, err, "the subject test must fail:\n%s", out)
		assert.Contains(t, out, "run with -update or SCOPETEST_UPDATE=1 to create it")
		assert.NoFileExists(t, path)
	})
}

func mustCases(t *testing.T) []scopetest.Case {
	t.Helper()
	cases, err := scopetest.LoadCases("testdata/cases.yaml")
	require.NoError(t, err)
	return cases
}

func TestReplay(t *testing.T) {
	// Record a log under the old policy.
	old := load(t)
	var buf bytes.Buffer
	log := audit.NewLog(&buf)
	approver := toolguard.ApproverFunc(func(_ context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		return toolguard.Approval{Approved: true, By: "ops", Binding: req.Binding}, nil
	})
	g, err := toolguard.New(old, toolguard.WithSink(log), toolguard.WithApprover(approver))
	require.NoError(t, err)
	h := func(context.Context, json.RawMessage) (any, error) { return "ok", nil }
	for _, name := range []string{"read_file", "write_file", "send_email"} {
		require.NoError(t, g.Register(toolguard.Tool{Name: name, Handler: h}))
	}
	principals := map[string]scope.Principal{
		"reader": {ID: "reader", Scopes: []string{"fs.read"}, Attrs: map[string]any{"workspace": "/w"}},
		"writer": {ID: "writer", Scopes: []string{"fs.read", "fs.write", "mail"}, Attrs: map[string]any{"workspace": "/w"}},
	}
	calls := []struct{ who, tool, args string }{
		{"reader", "read_file", `{"path":"/w/a.txt"}`},                // allow → allow
		{"reader", "read_file", `{"path":"/w/tmp/b.txt"}`},            // allow → deny (new rule no-tmp)
		{"reader", "read_file", `{"path":"/w/.env"}`},                 // deny → deny
		{"reader", "write_file", `{"path":"/w/out/a","content":"x"}`}, // deny → allow (fs.read now grants writes under out/)
		{"writer", "write_file", `{"path":"/w/out/a","content":"x"}`}, // allow → allow, by another grant (fs.read#1)
		{"writer", "send_email", `{"to":"a@example.com"}`},            // allow → ask (new: all mail asks)
		{"writer", "send_email", `{"to":"x@evil.test"}`},              // ask → ask
		{"reader", "nope", `{}`},                                      // skipped: unknown tool
	}
	for _, c := range calls {
		ctx := toolguard.WithPrincipal(context.Background(), principals[c.who])
		_, _ = g.Call(ctx, c.tool, json.RawMessage(c.args))
	}
	_, err = audit.Verify(bytes.NewReader(buf.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)

	candidate, err := scope.Parse([]byte(`version: 1
scopes:
  fs.read:
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.attrs.workspace)
      - tools: [write_file]
        when: args.path.isUnder(principal.attrs.workspace + "/out")
  fs.write:
    grants:
      - tools: [write_file]
        when: args.path.isUnder(principal.attrs.workspace + "/out")
  mail:
    grants:
      - tools: [send_email]
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
  - name: no-tmp
    effect: deny
    tools: [read_file]
    when: args.path.glob("**/tmp/**")
  - name: all-mail
    effect: ask
    tools: [send_email]
`))
	require.NoError(t, err)
	rep, err := scopetest.Replay(context.Background(), candidate, bytes.NewReader(buf.Bytes()), scopetest.ReplayOptions{
		Principal: func(id string) (scope.Principal, bool) { p, ok := principals[id]; return p, ok },
	})
	require.NoError(t, err)
	t.Log(rep)
	assert.Equal(t, 7, rep.Decisions)
	assert.Equal(t, 1, rep.Skipped-countOutcomes(buf.Bytes()), "the unknown tool is not a policy decision")
	assert.Equal(t, map[string]int{"allow→deny": 1, "deny→allow": 1, "allow→ask": 1, "rule": 2}, rep.Counts)
	assert.Len(t, rep.Changes, 5)
	assert.Equal(t, 2, rep.Unchanged)
	kinds := map[string]string{}
	for _, c := range rep.Changes {
		kinds[c.Tool+" "+c.Principal+" "+c.Kind()] = c.After.Rule
	}
	assert.Equal(t, map[string]string{
		"read_file reader allow→deny":  "no-tmp",
		"write_file reader deny→allow": "",
		"send_email writer allow→ask":  "all-mail",
		"send_email writer rule":       "all-mail",
		"write_file writer rule":       "",
	}, kinds)
	assert.True(t, strings.Contains(rep.String(), "allow→deny  1"))
}

func countOutcomes(log []byte) int {
	return bytes.Count(log, []byte(`"kind":"outcome"`))
}
