package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

const balanceFunctions = `functions:
  - name: balance
    params: [string]
    result: double
    url: %s
    timeout: 300ms
`

// TestFunctionsFile: a valid file, in YAML or JSON, declares its
// functions with the defaults filled in.
func TestFunctionsFile(t *testing.T) {
	for _, src := range []string{
		`functions:
  - name: balance
    params: [string]
    result: double
    url: https://bank.internal/agentguard/balance
  - name: bank.contacts
    params: [ "string", "map( string , list(int) )" ]
    result: list(string)
    url: http://127.0.0.1:8181/contacts
    timeout: 250ms
    cost: 5000
  - name: now
    params: []
    result: int
    url: http://[::1]:9/now
`,
		`{"functions": [
  {"name": "balance", "params": ["string"], "result": "double", "url": "https://bank.internal/agentguard/balance"},
  {"name": "bank.contacts", "params": ["string", "map(string,list(int))"], "result": "list(string)",
   "url": "http://127.0.0.1:8181/contacts", "timeout": "250ms", "cost": 5000},
  {"name": "now", "params": [], "result": "int", "url": "http://[::1]:9/now"}
]}`,
	} {
		fns, err := parseFunctions([]byte(src))
		require.NoError(t, err, src)
		require.Len(t, fns, 3)
		b, c, n := fns[0].function(), fns[1].function(), fns[2].function()
		assert.Equal(t, "balance", b.Name)
		assert.Equal(t, []string{"string"}, typeNames(b.Params))
		assert.Equal(t, "double", b.Result.String())
		assert.Equal(t, scope.DefaultFunctionTimeout, b.Timeout)
		assert.Equal(t, uint64(scope.DefaultFunctionCost), b.Cost)
		assert.Equal(t, "bank.contacts", c.Name)
		assert.Equal(t, []string{"string", "map(string, list(int))"}, typeNames(c.Params))
		assert.Equal(t, "list(string)", c.Result.String())
		assert.Equal(t, 250*time.Millisecond, c.Timeout)
		assert.Equal(t, uint64(5000), c.Cost)
		assert.Empty(t, n.Params)
		assert.Same(t, fns[0].client, fns[2].client, "one client")
	}
}

func typeNames(ts []scope.Type) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.String())
	}
	return out
}

// TestFunctionsFileErrors: every mistake in the file stops mcpguard at
// start with a usage error naming the file and the line, before the
// audit log is created.
func TestFunctionsFileErrors(t *testing.T) {
	const fn = "  - name: balance\n    params: [string]\n    result: double\n    url: http://127.0.0.1:1/b\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty file", "", "f.yaml: the file is empty"},
		{"comment only", "# nothing\n", "f.yaml: the file is empty"},
		{"syntax", "functions: [\n", "f.yaml:1: did not find expected node content"},
		{"two documents", "functions: []\n---\nfunctions: []\n", "f.yaml:2: more than one YAML document"},
		{"not an object", "- balance\n", "f.yaml:1: want an object with the member functions"},
		{"unknown top-level field", "functions:\n" + fn + "version: 1\n", `f.yaml:6: unknown field "version" (want functions)`},
		{"functions twice", "functions:\n" + fn + "functions:\n" + fn, "f.yaml:6: functions is given twice"},
		{"no functions", "{}\n", "f.yaml:1: functions is missing"},
		{"empty list", "functions: []\n", "f.yaml:1: functions is empty"},
		{"functions not a list", "functions: {name: balance}\n", "f.yaml:1: functions must be a list"},
		{"function not an object", "functions: [balance]\n", "f.yaml:1: a function must be an object with the fields name, params, result, url, timeout, cost"},
		{"unknown field", "functions:\n" + fn + "    tiemout: 1s\n", `f.yaml:6: unknown field "tiemout" (want name, params, result, url, timeout, cost)`},
		{"field twice", "functions:\n" + fn + "    url: http://127.0.0.1:2/b\n", "f.yaml:6: field url is given twice"},
		{"duplicate name", "functions:\n" + fn + fn, `f.yaml:6: function "balance" is declared twice (first at line 2)`},
		{"missing name", "functions:\n  - params: []\n    result: int\n    url: http://h/x\n", "f.yaml:2: field name is missing"},
		{"missing params", "functions:\n  - name: f\n    result: int\n    url: http://h/x\n", "f.yaml:2: field params is missing"},
		{"missing result", "functions:\n  - name: f\n    params: []\n    url: http://h/x\n", "f.yaml:2: field result is missing"},
		{"missing url", "functions:\n  - name: f\n    params: []\n    result: int\n", "f.yaml:2: field url is missing"},
		{"empty name", "functions:\n  - {name: '', params: [], result: int, url: 'http://h/x'}\n", "f.yaml:2: name is empty"},
		{"name not a string", "functions:\n  - {name: 7, params: [], result: int, url: 'http://h/x'}\n", "f.yaml:2: name must be a string"},
		{"params not a list", "functions:\n  - {name: f, params: string, result: int, url: 'http://h/x'}\n", `f.yaml:2: function "f": params must be a list of types ([] for none)`},
		{"bad param type", "functions:\n  - {name: f, params: [string, float], result: int, url: 'http://h/x'}\n", `f.yaml:2: function "f": parameter 1: type "float": at offset 0: unknown type "float"`},
		{"bad result type", "functions:\n  - {name: f, params: [], result: 'map(int, string)', url: 'http://h/x'}\n", `f.yaml:2: function "f": result: type "map(int, string)": map keys must be string, not int`},
		{"result not a string", "functions:\n  - {name: f, params: [], result: [int], url: 'http://h/x'}\n", `f.yaml:2: function "f": result must be a string`},
		{"ftp URL", "functions:\n  - {name: f, params: [], result: int, url: 'ftp://h/x'}\n", `f.yaml:2: function "f": url: "ftp://h/x" is not an http or https URL`},
		{"relative URL", "functions:\n  - {name: f, params: [], result: int, url: '/x'}\n", `f.yaml:2: function "f": url: "/x" is not an http or https URL`},
		{"URL without host", "functions:\n  - {name: f, params: [], result: int, url: 'http:///x'}\n", `f.yaml:2: function "f": url: "http:///x" has no host`},
		{"URL with fragment", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x#y'}\n", `f.yaml:2: function "f": url: "http://h/x#y" has a fragment`},
		{"unparsable URL", "functions:\n  - {name: f, params: [], result: int, url: 'http://h:port/x'}\n", `f.yaml:2: function "f": url: invalid port ":port"`},
		{"password redacted", "functions:\n  - {name: f, params: [], result: int, url: 'gopher://u:secret@h/x'}\n", `url: "gopher://u:xxxxx@h/x" is not an http or https URL`},
		{"bad timeout", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', timeout: soon}\n", `f.yaml:2: function "f": timeout "soon" is not a positive duration such as 200ms or 2s`},
		{"zero timeout", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', timeout: 0s}\n", `timeout "0s" is not a positive duration`},
		{"negative timeout", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', timeout: -1s}\n", `timeout "-1s" is not a positive duration`},
		{"timeout without unit", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', timeout: 5}\n", `f.yaml:2: function "f": timeout "5" is not a positive duration such as 200ms or 2s`},
		{"zero cost", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', cost: 0}\n", `f.yaml:2: function "f": cost must be a positive integer`},
		{"negative cost", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', cost: -1}\n", `cost must be a positive integer`},
		{"cost not a number", "functions:\n  - {name: f, params: [], result: int, url: 'http://h/x', cost: lots}\n", `cost must be a positive integer`},
		{"builtin name", "functions:\n  - {name: size, params: [string], result: int, url: 'http://h/x'}\n", `f.yaml:2: function "size": the policy language already has a function of this name`},
		{"extension name", "functions:\n  - {name: isUnder, params: [string, string], result: bool, url: 'http://h/x'}\n", `f.yaml:2: function "isUnder": the policy language already has a function of this name`},
		{"reserved name", "functions:\n  - {name: principal, params: [], result: int, url: 'http://h/x'}\n", `f.yaml:2: function "principal": the name is reserved`},
		{"not an identifier", "functions:\n  - {name: get-balance, params: [], result: int, url: 'http://h/x'}\n", `f.yaml:2: function "get-balance": the name must be an identifier, optionally qualified with dots`},
		{"JSON duplicate key", `{"functions": [{"name": "f", "name": "g", "params": [], "result": "int", "url": "http://h/x"}]}`, "f.yaml:1: field name is given twice"},
	}
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(testPolicy), 0o644))
	logPath := filepath.Join(dir, "decisions.jsonl")
	file := filepath.Join(dir, "f.yaml")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(file, []byte(tt.src), 0o644))
			r := runGuard(t, "-functions", file, "-policy", policy, "-audit", logPath, "-principal", "bot", "--", "true")
			assert.Equal(t, 2, r.code, r.stderr)
			want := tt.want
			if rest, ok := strings.CutPrefix(want, "f.yaml"); ok {
				want = "mcpguard: -functions " + file + rest
			}
			assert.Contains(t, r.stderr, want)
			assert.Equal(t, 1, strings.Count(r.stderr, "mcpguard: "), "said once: %s", r.stderr)
			assert.NotContains(t, r.stderr, "main.", "no Go names for a command-line user")
			assert.NoFileExists(t, logPath)
		})
	}

	r := runGuard(t, "-functions", filepath.Join(dir, "missing.yaml"), "-policy", policy, "-audit", logPath, "-principal", "bot", "--", "true")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "-functions open "+filepath.Join(dir, "missing.yaml")+": no such file or directory")

	require.NoError(t, os.WriteFile(file, []byte("functions:\n"+strings.Repeat("#", maxFunctionsFile)), 0o644))
	r = runGuard(t, "-functions", file, "-policy", policy, "-audit", logPath, "-principal", "bot", "--", "true")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, file+": larger than 1048576 bytes")

	r = runGuard(t, "-h")
	assert.Contains(t, r.stdout, "-functions file")
}

// TestFunctionsFlagLoadsPolicies: the policy, at start, on reload and
// with -update-lock, is loaded with the -functions functions: a policy
// that calls one fails to load without the flag and loads with it.
func TestFunctionsFlagLoadsPolicies(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(balancePolicy("/w")), 0o644))
	fns := filepath.Join(dir, "functions.yaml")
	require.NoError(t, os.WriteFile(fns, []byte(fmt.Sprintf(balanceFunctions, "http://127.0.0.1:1/balance")), 0o644))
	lock := filepath.Join(dir, "tools.lock.json")
	t.Setenv(upstreamEnv, "write_file:Write")
	update := func(extra ...string) result {
		args := append([]string{"-lock", lock, "-update-lock", "-policy", policy}, extra...)
		return runGuard(t, append(args, "--", self, "-test.run=^$")...)
	}
	r := update()
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "undeclared reference to 'balance'")
	assert.NoFileExists(t, lock)
	r = update("-functions", fns)
	require.Equal(t, 0, r.code, r.stderr)
	assert.FileExists(t, lock)

	c, err := parse([]string{"-functions", fns, "-policy", policy, "-audit", "a.jsonl", "--", "true"}, io.Discard, io.Discard)
	require.NoError(t, err)
	p, err := scope.Load(policy, c.policyOptions()...)
	require.NoError(t, err, "the options of every load (start, SIGHUP, -watch) declare the functions")
	assert.NotNil(t, p)
	c.maxPolicy = 10
	_, err = scope.Load(policy, c.policyOptions()...)
	assert.ErrorContains(t, err, "policy is larger than 10 bytes", "and keep the size limit")
}

// balancePolicy allows a write under ws of no more bytes than the
// principal's balance.
func balancePolicy(ws string) string {
	return `version: 1
scopes:
  pay:
    grants:
      - tools: [write_file]
        when: args.path.isUnder("` + ws + `") && double(size(args.content)) <= balance(principal.id)
`
}

// functionServer answers a policy function's calls with answer, and
// records the requests.
type functionServer struct {
	*httptest.Server
	answer atomic.Pointer[func(w http.ResponseWriter, r *http.Request)]
	calls  atomic.Int64
	last   atomic.Pointer[http.Request]
	body   atomic.Pointer[[]byte]
}

func newFunctionServer(t *testing.T) *functionServer {
	fs := &functionServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		fs.last.Store(r)
		fs.body.Store(&b)
		(*fs.answer.Load())(w, r)
	}))
	t.Cleanup(fs.Close)
	fs.answerJSON(`{"result": 100}`)
	return fs
}

func (fs *functionServer) answerWith(h func(w http.ResponseWriter, r *http.Request)) {
	fs.answer.Store(&h)
}

func (fs *functionServer) answerJSON(body string) {
	fs.answerWith(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
}

// function parses a one-function file for url with the result type.
func function(t *testing.T, result, url string) *httpFunction {
	t.Helper()
	fns, err := parseFunctions([]byte(fmt.Sprintf("functions:\n  - {name: bank.f, params: [string, int], result: %q, url: %q, timeout: 500ms}\n", result, url)))
	require.NoError(t, err)
	return fns[0]
}

// TestHTTPFunctionRequest: a call POSTs the name and the arguments as
// JSON.
func TestHTTPFunctionRequest(t *testing.T) {
	srv := newFunctionServer(t)
	f := function(t, "double", srv.URL+"/balance?v=1")
	v, err := f.call(context.Background(), "alice", int64(7))
	require.NoError(t, err)
	assert.Equal(t, 100.0, v)
	r := srv.last.Load()
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/balance?v=1", r.URL.RequestURI())
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"function": "bank.f", "args": ["alice", 7]}`, string(*srv.body.Load()))

	g := function(t, "int", srv.URL)
	srv.answerJSON(`{"result": 3}`)
	_, err = g.call(context.Background())
	require.NoError(t, err)
	assert.JSONEq(t, `{"function": "bank.f", "args": []}`, string(*srv.body.Load()), "no arguments: an empty list")
}

// TestHTTPFunctionResults: a result is converted to the declared type
// exactly, or the call fails.
func TestHTTPFunctionResults(t *testing.T) {
	srv := newFunctionServer(t)
	tests := []struct {
		result, answer string
		want           any    // when it fits
		err            string // when it does not
	}{
		{"double", `{"result": 12.5}`, 12.5, ""},
		{"double", `{"result": 12}`, 12.0, ""},
		{"double", `{"result": -1e300}`, -1e300, ""},
		{"double", `{"result": 1e400}`, nil, "number out of range"},
		{"double", `{"result": "12"}`, nil, "a string, not double"},
		{"double", `{"result": null}`, nil, "null, not double"},
		{"int", `{"result": 42}`, int64(42), ""},
		{"int", `{"result": -9223372036854775808}`, int64(-9223372036854775808), ""},
		{"int", `{"result": 9223372036854775807}`, int64(9223372036854775807), ""},
		{"int", `{"result": 9223372036854775808}`, nil, "9223372036854775808 is out of the range of int"},
		{"int", `{"result": 42.0}`, nil, "42.0 is not written as an integer"},
		{"int", `{"result": 4.2e1}`, nil, "4.2e1 is not written as an integer"},
		{"int", `{"result": 1e400}`, nil, "number out of range"},
		{"int", `{"result": true}`, nil, "a boolean, not int"},
		{"uint", `{"result": 18446744073709551615}`, uint64(18446744073709551615), ""},
		{"uint", `{"result": -1}`, nil, "-1 is out of the range of uint"},
		{"uint", `{"result": -0}`, nil, "-0 is out of the range of uint"},
		{"bool", `{"result": false}`, false, ""},
		{"bool", `{"result": 0}`, nil, "a number, not bool"},
		{"string", `{"result": "é"}`, "é", ""},
		{"list(int)", `{"result": [1, 2]}`, []any{int64(1), int64(2)}, ""},
		{"list(int)", `{"result": [1, 2.5]}`, nil, "item 1: 2.5 is not written as an integer"},
		{"list(int)", `{"result": {"a": 1}}`, nil, "an object, not list(int)"},
		{"map(string, list(bool))", `{"result": {"a": [true], "b": []}}`, map[string]any{"a": []any{true}, "b": []any{}}, ""},
		{"map(string, bool)", `{"result": {"a": "yes"}}`, nil, `key "a": a string, not bool`},
		{"dyn", `{"result": {"n": 1, "l": [null, "x", 2.5]}}`, map[string]any{"n": json.Number("1"), "l": []any{nil, "x", json.Number("2.5")}}, ""},
		// Answers JSON parsers would read differently are refused.
		{"int", `{"result": 1, "result": 2}`, nil, "duplicate object key"},
		{"int", `{"result": 1} trailing`, nil, "syntax error"},
		{"int", `{"result": 1}{"result": 2}`, nil, "syntax error"},
		{"string", "{\"result\": \"\xff\"}", nil, "UTF-8"},
		{"int", `[1]`, nil, "not a JSON object"},
		{"int", `{}`, nil, `has no "result"`},
		{"int", `{"result": 1, "error": "x"}`, nil, `has "error" besides "result"`},
		{"int", ``, nil, "not a JSON object"},
		{"dyn", `{"result": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, nil, "nesting too deep"},
	}
	for _, tt := range tests {
		srv.answerJSON(tt.answer)
		f := function(t, tt.result, srv.URL)
		v, err := f.call(context.Background(), "alice", int64(1))
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, "%s from %s", tt.result, tt.answer)
			assert.Nil(t, v)
			continue
		}
		if assert.NoError(t, err, "%s from %s", tt.result, tt.answer) {
			assert.Equal(t, tt.want, v, "%s from %s", tt.result, tt.answer)
		}
	}
}

// TestHTTPFunctionFailures: a server that fails, stalls, redirects or
// answers without end fails the call, promptly and within bounds.
func TestHTTPFunctionFailures(t *testing.T) {
	srv := newFunctionServer(t)
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		io.WriteString(w, `{"result": 1e6}`)
	}))
	defer other.Close()
	f := function(t, "double", srv.URL)
	call := func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		start := time.Now()
		_, err := f.call(ctx, "alice", int64(1))
		return time.Since(start), err
	}

	srv.answerWith(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"result": 100}`, http.StatusInternalServerError)
	})
	_, err := call()
	assert.ErrorContains(t, err, "answered 500 Internal Server Error, not 200 OK")

	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		srv.answerWith(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL, code)
		})
		_, err = call()
		assert.ErrorContains(t, err, fmt.Sprintf("answered %d %s (redirects are not followed)", code, http.StatusText(code)))
	}
	assert.Zero(t, elsewhere.Load(), "the redirect's target is never asked")

	srv.answerWith(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	took, err := call()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, took, 2*time.Second)

	// An endless answer is cut at 1 MiB, not read to the deadline.
	var sent atomic.Int64
	srv.answerWith(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result": "`)
		chunk := []byte(strings.Repeat("a", 32<<10))
		for r.Context().Err() == nil {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	took, err = call()
	assert.ErrorContains(t, err, "is larger than 1048576 bytes")
	assert.Less(t, took, f.timeout, "cut at the bound, before the deadline")

	srv.Close()
	_, err = call()
	assert.ErrorContains(t, err, "connection refused")

	// The password of a URL stays out of the messages.
	teapot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	defer teapot.Close()
	g := function(t, "double", "http://user:hunter2@"+strings.TrimPrefix(teapot.URL, "http://")+"/x")
	_, err = g.call(context.Background(), "alice", int64(1))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
	assert.Contains(t, err.Error(), "answered 418")
}

// TestReadmeFunctionsFile: the -functions example in the README parses.
func TestReadmeFunctionsFile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "```yaml\nfunctions:\n")
	require.True(t, ok, "the README shows a functions file")
	src, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	fns, err := parseFunctions([]byte("functions:\n" + src))
	require.NoError(t, err)
	require.Len(t, fns, 1)
	assert.Equal(t, "balance", fns[0].name)
	assert.Equal(t, 200*time.Millisecond, fns[0].timeout)
}

// FuzzParseFunctions: any file is parsed or refused, never a panic, and
// what is accepted declares to a policy.
func FuzzParseFunctions(f *testing.F) {
	f.Add([]byte(fmt.Sprintf(balanceFunctions, "http://127.0.0.1:1/b")))
	f.Add([]byte(`{"functions": [{"name": "f", "params": ["list(int)"], "result": "map(string, dyn)", "url": "https://h/x", "cost": 5}]}`))
	f.Add([]byte("---\n"))
	f.Add([]byte("functions: [{<<: {name: f}}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		fns, err := parseFunctions(src)
		if err != nil {
			return
		}
		if _, err := scope.Parse([]byte("version: 1\n"), functionOptions(fns)...); err != nil {
			t.Fatalf("accepted functions do not declare: %v", err)
		}
	})
}
