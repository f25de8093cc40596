package scope

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"cel.dev/cel-go/common/cost"
	"go.yaml.in/yaml/v3"
)

// MaxPolicyBytes is the default of [WithMaxPolicyBytes]: the largest policy
// source [Parse] and [Load] accept, and the largest canonical form
// [Compile] accepts.
const MaxPolicyBytes = 4 << 20

// Error is one problem found in a policy. Line and Column are 1-based and
// zero when unknown (a policy built in code has no positions).
type Error struct {
	File   string // file name, if known
	Line   int
	Column int
	Path   string // JSON pointer of the offending element, e.g. /scopes/fs.read/grants/0/when
	Expr   string // the CEL expression, if the problem is in one
	Msg    string
}

// Error formats the problem as file:line:column: path: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("scope: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	} else if e.File != "" {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Expr != "" {
		fmt.Fprintf(&b, " (in %q)", e.Expr)
	}
	return b.String()
}

// Load reads and compiles a YAML or JSON policy file. Errors name the file,
// line and column.
func Load(path string, opts ...Option) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("scope: %w", err)
	}
	defer f.Close()
	o := newOptions(opts)
	src, err := io.ReadAll(io.LimitReader(f, int64(o.maxBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("scope: reading %s: %w", path, err)
	}
	return Parse(src, append([]Option{WithFilename(path)}, opts...)...)
}

// Parse compiles a YAML or JSON policy. Unknown fields, duplicate keys,
// wrong types and bad expressions are errors with line and column.
func Parse(src []byte, opts ...Option) (*Policy, error) {
	o := newOptions(opts)
	if len(src) > o.maxBytes {
		return nil, &Error{File: o.file, Msg: fmt.Sprintf("policy is larger than %d bytes (raise the limit with WithMaxPolicyBytes)", o.maxBytes)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, yamlError(o.file, err)
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &Error{File: o.file, Msg: "policy is empty"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var def Def
	if err := dec.Decode(&def); err != nil {
		return nil, yamlError(o.file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: o.file, Line: extra.Line, Column: extra.Column, Msg: "policy has more than one YAML document"}
	}
	positions := map[string]pos{}
	collectPositions(root.Content[0], "", positions)
	all := append([]Option{func(o *options) { o.pos = positions; o.src = src }}, opts...)
	return Compile(def, all...)
}

// yamlError turns a yaml error ("yaml: line 3: ...") into an *Error.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, m := range te.Errors {
			errs = append(errs, lineError(file, m))
		}
		return errors.Join(errs...)
	}
	return lineError(file, err.Error())
}

func lineError(file, msg string) *Error {
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: file, Msg: msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ":"); ok {
			if line, err := strconv.Atoi(n); err == nil {
				e.Line, e.Column, e.Msg = line, 1, strings.TrimSpace(after)
			}
		}
	}
	return e
}

// pos is where an expression's scalar starts in the source.
type pos struct {
	line, col int
	style     yaml.Style
}

// at maps a 1-based line and 0-based column inside an expression to the
// policy source.
func (p pos) at(src []byte, line, col int) (int, int) {
	switch {
	case p.style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// Block scalar: content starts on the line after the indicator,
		// and columns count from the block's indentation.
		return p.line + line, indentOf(src, p.line+1) + col + 1
	case line <= 1:
		c := p.col + col
		if p.style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			c++
		}
		return p.line, c
	default:
		l := p.line + line - 1
		return l, indentOf(src, l) + col + 1
	}
}

func indentOf(src []byte, line int) int {
	for i := 1; i < line; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return 0
		}
		src = src[j+1:]
	}
	n := 0
	for n < len(src) && (src[n] == ' ' || src[n] == '\t') {
		n++
	}
	return n
}

// collectPositions records the position of every node by JSON pointer.
func collectPositions(n *yaml.Node, path string, out map[string]pos) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	out[path] = pos{line: n.Line, col: n.Column, style: n.Style}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			collectPositions(n.Content[i+1], path+"/"+escPtr(n.Content[i].Value), out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			collectPositions(c, path+"/"+strconv.Itoa(i), out)
		}
	}
}

// costEstimator bounds the sizes of inputs by the argument decoder's limits,
// so that estimates are finite.
type costEstimator struct{}

func (costEstimator) EstimateSize(cost.AstNode) *cost.SizeEstimate {
	return &cost.SizeEstimate{Min: 0, Max: 1 << 20}
}

func (costEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
