package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope"
)

// Bounds of the -functions file and of a function server's answer.
const (
	maxFunctionsFile   = 1 << 20
	maxFunctionAnswer  = 1 << 20
	maxFunctionNesting = 64
)

// httpFunction is a policy function of the -functions file: each call is
// a POST of the function's name and arguments to its URL, and the answer's
// result, converted to the declared type, is the value.
//
// An httpFunction is safe for concurrent use once logger is set.
type httpFunction struct {
	name    string
	url     string // as written in the file
	params  []scope.Type
	result  scope.Type
	conv    converter
	timeout time.Duration
	cost    uint64
	client  *http.Client
	logger  *slog.Logger // failed calls are logged here; nil: not logged
}

// function returns the declaration the policy is loaded with.
func (f *httpFunction) function() scope.Function {
	return scope.Function{Name: f.name, Params: f.params, Result: f.result,
		Cost: f.cost, Timeout: f.timeout, Impl: f.call}
}

// call is the function's Impl. Its error is the operator's, not the
// model's: scope denies with the function's name only, and the error is
// logged.
func (f *httpFunction) call(ctx context.Context, args ...any) (any, error) {
	v, err := f.ask(ctx, args)
	if err != nil && f.logger != nil {
		f.logger.Warn("mcpguard: policy function failed; the rule that called it does not allow", "function", f.name, "err", err)
	}
	return v, err
}

func (f *httpFunction) ask(ctx context.Context, args []any) (any, error) {
	if args == nil {
		args = []any{}
	}
	body, err := json.Marshal(struct {
		Function string `json:"function"`
		Args     []any  `json:"args"`
	}{f.name, args})
	if err != nil {
		return nil, fmt.Errorf("encoding the arguments: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mcpguard")
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	where := redactedURL(f.url)
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return nil, fmt.Errorf("%s answered %s (redirects are not followed)", where, resp.Status)
		}
		return nil, fmt.Errorf("%s answered %s, not 200 OK", where, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFunctionAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", where, err)
	}
	if len(data) > maxFunctionAnswer {
		return nil, fmt.Errorf("the answer of %s is larger than %d bytes", where, maxFunctionAnswer)
	}
	// safejson refuses duplicate keys, trailing data, invalid UTF-8 and
	// numbers beyond float64, on which JSON parsers disagree.
	obj, err := safejson.DecodeObject(data, safejson.Limits{MaxBytes: maxFunctionAnswer, MaxDepth: maxFunctionNesting})
	if err != nil {
		return nil, fmt.Errorf("the answer of %s is not a JSON object: %w", where, err)
	}
	result, ok := obj["result"]
	if !ok {
		return nil, fmt.Errorf(`the answer of %s has no "result"`, where)
	}
	if len(obj) > 1 {
		for k := range obj {
			if k != "result" {
				return nil, fmt.Errorf(`the answer of %s has %q besides "result"`, where, k)
			}
		}
	}
	v, err := f.conv(result)
	if err != nil {
		return nil, fmt.Errorf("the result from %s does not fit the declared %s: %w", where, f.result, err)
	}
	return v, nil
}

// redactedURL hides the password of a URL with user information.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}

// converter turns a decoded JSON value (safejson's shapes: json.Number,
// string, bool, nil, []any, map[string]any) into the Go value scope
// expects for a declared type, or says why it does not fit.
type converter func(v any) (any, error)

// converterFor returns the converter of t. Numbers are converted exactly:
// an int or uint must be written as an integer (no fraction or exponent)
// within range; a double may be any number.
func converterFor(t scope.Type) converter {
	switch t {
	case scope.BoolType:
		return func(v any) (any, error) {
			if b, ok := v.(bool); ok {
				return b, nil
			}
			return nil, notA(v, t)
		}
	case scope.StringType:
		return func(v any) (any, error) {
			if s, ok := v.(string); ok {
				return s, nil
			}
			return nil, notA(v, t)
		}
	case scope.IntType:
		return func(v any) (any, error) {
			n, ok := v.(json.Number)
			if !ok {
				return nil, notA(v, t)
			}
			if strings.ContainsAny(string(n), ".eE") {
				return nil, fmt.Errorf("%s is not written as an integer", n)
			}
			i, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s is out of the range of int", n)
			}
			return i, nil
		}
	case scope.UintType:
		return func(v any) (any, error) {
			n, ok := v.(json.Number)
			if !ok {
				return nil, notA(v, t)
			}
			if strings.ContainsAny(string(n), ".eE") {
				return nil, fmt.Errorf("%s is not written as an integer", n)
			}
			u, err := strconv.ParseUint(string(n), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%s is out of the range of uint", n)
			}
			return u, nil
		}
	case scope.DoubleType:
		return func(v any) (any, error) {
			n, ok := v.(json.Number)
			if !ok {
				return nil, notA(v, t)
			}
			// safejson has refused numbers beyond float64.
			f, err := n.Float64()
			if err != nil {
				return nil, fmt.Errorf("%s is out of the range of double", n)
			}
			return f, nil
		}
	case scope.DynType:
		// scope takes safejson's shapes as they are, json.Number included,
		// and reads numbers as CEL reads the tool's arguments.
		return func(v any) (any, error) { return v, nil }
	}
	// Composite types are not comparable with ==: their element is read
	// back from the canonical spelling.
	s := t.String()
	if inner, ok := strings.CutPrefix(s, "list("); ok {
		elemType, err := scope.ParseType(strings.TrimSuffix(inner, ")"))
		if err != nil {
			panic("mcpguard: " + s + " does not parse back: " + err.Error())
		}
		elem := converterFor(elemType)
		return func(v any) (any, error) {
			l, ok := v.([]any)
			if !ok {
				return nil, notA(v, t)
			}
			out := make([]any, len(l))
			for i, e := range l {
				c, err := elem(e)
				if err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
				out[i] = c
			}
			return out, nil
		}
	}
	inner, ok := strings.CutPrefix(s, "map(string, ")
	if !ok {
		panic("mcpguard: no converter for type " + s)
	}
	elemType, err := scope.ParseType(strings.TrimSuffix(inner, ")"))
	if err != nil {
		panic("mcpguard: " + s + " does not parse back: " + err.Error())
	}
	elem := converterFor(elemType)
	return func(v any) (any, error) {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, notA(v, t)
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			c, err := elem(e)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	}
}

// notA says that v, a decoded JSON value, is not of type t.
func notA(v any, t scope.Type) error {
	var kind string
	switch v.(type) {
	case nil:
		kind = "null"
	case bool:
		kind = "a boolean"
	case json.Number:
		kind = "a number"
	case string:
		kind = "a string"
	case []any:
		kind = "an array"
	case map[string]any:
		kind = "an object"
	default:
		kind = fmt.Sprintf("%T", v)
	}
	return fmt.Errorf("%s, not %s", kind, t)
}

// functionsClient is the HTTP client of every function: redirects are
// answers, not followed (a function's URL is the one the file names, and
// a redirect could send the arguments elsewhere); each call's deadline is
// its context's.
func functionsClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // concurrent decisions call the same server
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// functionFields are the fields of a function in the file, in order.
var functionFields = []string{"name", "params", "result", "url", "timeout", "cost"}

// loadFunctions reads a -functions file: YAML or JSON, an object whose
// only member, functions, lists the functions:
//
//	functions:
//	  - name: balance          # how rules call it
//	    params: [string]       # parameter types; [] for none
//	    result: double         # bool, int, uint, double, string, dyn, list(T), map(string, T)
//	    url: https://bank.internal/agentguard/balance
//	    timeout: 200ms         # optional, default 1s
//	    cost: 100              # optional, default 100
//
// Unknown or repeated fields, repeated names, bad types, URLs that are not
// http or https and missing fields are errors, with the line.
func loadFunctions(path string) ([]*httpFunction, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	src, err := io.ReadAll(io.LimitReader(fh, maxFunctionsFile+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxFunctionsFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFunctionsFile)
	}
	fns, err := parseFunctions(src)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	return fns, nil
}

// fileError is an error at a line of the file; its text starts with the
// line number and a colon, or a space where there is no line.
type fileError struct {
	line int
	msg  string
}

func (e *fileError) Error() string {
	if e.line == 0 {
		return " " + e.msg
	}
	return strconv.Itoa(e.line) + ": " + e.msg
}

func errAt(n *yaml.Node, format string, args ...any) error {
	return &fileError{line: n.Line, msg: fmt.Sprintf(format, args...)}
}

// parseFunctions parses the file's source.
func parseFunctions(src []byte) ([]*httpFunction, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &fileError{msg: "the file is empty"}
		}
		return nil, yamlFileError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &fileError{line: extra.Line, msg: "more than one YAML document"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, errAt(root, "want an object with the member functions")
	}
	var list *yaml.Node
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "functions" {
			return nil, errAt(k, "unknown field %q (want functions)", k.Value)
		}
		if list != nil {
			return nil, errAt(k, "functions is given twice")
		}
		list = v
	}
	if list == nil {
		return nil, errAt(root, "functions is missing")
	}
	if list.Kind != yaml.SequenceNode {
		return nil, errAt(list, "functions must be a list")
	}
	if len(list.Content) == 0 {
		return nil, errAt(list, "functions is empty")
	}
	client := functionsClient()
	seen := map[string]int{}
	var out []*httpFunction
	for _, n := range list.Content {
		f, err := parseFunction(n)
		if err != nil {
			return nil, err
		}
		if line, dup := seen[f.name]; dup {
			return nil, errAt(n, "function %q is declared twice (first at line %d)", f.name, line)
		}
		if err := f.declare(); err != nil {
			return nil, errAt(n, "function %q: %s", f.name, err)
		}
		seen[f.name] = n.Line
		f.client = client
		out = append(out, f)
	}
	return out, nil
}

// yamlFileError turns a yaml syntax error into a fileError.
func yamlFileError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &fileError{line: line, msg: strings.TrimSpace(after)}
			}
		}
	}
	return &fileError{msg: msg}
}

// parseFunction parses one function's object.
func parseFunction(n *yaml.Node) (*httpFunction, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "a function must be an object with the fields %s", strings.Join(functionFields, ", "))
	}
	fields := map[string]*yaml.Node{}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		known := false
		for _, f := range functionFields {
			known = known || k.Value == f
		}
		switch {
		case !known:
			return nil, errAt(k, "unknown field %q (want %s)", k.Value, strings.Join(functionFields, ", "))
		case fields[k.Value] != nil:
			return nil, errAt(k, "field %s is given twice", k.Value)
		}
		fields[k.Value] = v
	}
	for _, f := range []string{"name", "params", "result", "url"} {
		if fields[f] == nil {
			return nil, errAt(n, "field %s is missing", f)
		}
	}
	f := &httpFunction{timeout: scope.DefaultFunctionTimeout, cost: scope.DefaultFunctionCost}
	var err error
	if f.name, err = str(fields["name"], "name"); err != nil {
		return nil, err
	}
	if f.name == "" {
		return nil, errAt(fields["name"], "name is empty")
	}
	in := func(err error) error {
		var fe *fileError
		if errors.As(err, &fe) {
			fe.msg = fmt.Sprintf("function %q: %s", f.name, fe.msg)
		}
		return err
	}
	if p := fields["params"]; p.Kind != yaml.SequenceNode {
		return nil, in(errAt(p, "params must be a list of types ([] for none)"))
	}
	for i, p := range fields["params"].Content {
		t, err := typeOf(p, fmt.Sprintf("parameter %d", i))
		if err != nil {
			return nil, in(err)
		}
		f.params = append(f.params, t)
	}
	if f.result, err = typeOf(fields["result"], "result"); err != nil {
		return nil, in(err)
	}
	f.conv = converterFor(f.result)
	if f.url, err = str(fields["url"], "url"); err != nil {
		return nil, in(err)
	}
	if err := checkURL(f.url); err != nil {
		return nil, in(errAt(fields["url"], "url: %s", err))
	}
	if v := fields["timeout"]; v != nil {
		var err error
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
			f.timeout, err = time.ParseDuration(v.Value)
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || err != nil || f.timeout <= 0 {
			return nil, in(errAt(v, "timeout %q is not a positive duration such as 200ms or 2s", v.Value))
		}
	}
	if v := fields["cost"]; v != nil {
		c, err := strconv.ParseUint(v.Value, 10, 64)
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || err != nil || c == 0 {
			return nil, in(errAt(v, "cost must be a positive integer"))
		}
		f.cost = c
	}
	return f, nil
}

// str returns the string value of a field.
func str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", errAt(n, "%s must be a string", field)
	}
	return n.Value, nil
}

// typeOf parses a type field.
func typeOf(n *yaml.Node, what string) (scope.Type, error) {
	s, err := str(n, what)
	if err != nil {
		return scope.Type{}, err
	}
	t, err := scope.ParseType(s)
	if err != nil {
		return scope.Type{}, errAt(n, "%s: %s", what, strings.TrimPrefix(err.Error(), "scope: "))
	}
	return t, nil
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.Unwrap(err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q is not an http or https URL", redactedURL(s))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", redactedURL(s))
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q has a fragment, which is never sent", redactedURL(s))
	}
	return nil
}

// functionOptions are the scope options declaring the functions.
func functionOptions(fns []*httpFunction) []scope.Option {
	opts := make([]scope.Option, len(fns))
	for i, f := range fns {
		opts[i] = scope.WithFunction(f.function())
	}
	return opts
}

// declare declares f to an empty policy, so that a name the policy
// language already has, or reserves, is refused at start, whatever the
// policy.
func (f *httpFunction) declare() error {
	_, err := scope.Parse([]byte("version: 1\n"), scope.WithFunction(f.function()))
	var se *scope.Error
	if errors.As(err, &se) {
		return errors.New(strings.TrimPrefix(se.Msg, fmt.Sprintf("application function 0 (%q): ", f.name)))
	}
	return err
}

// loadFunctions reads -functions, if given.
func (c *config) loadFunctions() error {
	if c.functionsFile == "" {
		return nil
	}
	fns, err := loadFunctions(c.functionsFile)
	if err != nil {
		return fmt.Errorf("-functions %w", err)
	}
	c.functions = fns
	return nil
}
