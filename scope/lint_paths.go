package scope

import (
	"fmt"
	"net/url"
	"strings"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/agentguard/agentguard/internal/glob"
)

// pathCall is one call of glob, isUnder or resolvesUnder on an argument
// field, found in an expression's source.
type pathCall struct {
	fn      string // glob, isUnder, resolvesUnder
	field   string // "args.path"
	pattern string // glob's pattern, when it is a string literal
	literal bool
}

// pathCalls returns the calls of fn on args fields in src. An expression
// that does not parse yields none (it compiled, so it parses).
func pathCalls(src string) []pathCall {
	e, err := env()
	if err != nil {
		return nil
	}
	a, iss := e.Parse(src)
	if iss.Err() != nil {
		return nil
	}
	var out []pathCall
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(x ast.Expr) {
		if x.Kind() != ast.CallKind {
			return
		}
		c := x.AsCall()
		switch c.FunctionName() {
		case "glob", "isUnder", "resolvesUnder":
		default:
			return
		}
		if !c.IsMemberFunction() || len(c.Args()) != 1 {
			return
		}
		field := argField(c.Target())
		if field == "" {
			return
		}
		pc := pathCall{fn: c.FunctionName(), field: field}
		if arg := c.Args()[0]; arg.Kind() == ast.LiteralKind {
			s, ok := arg.AsLiteral().(types.String)
			pc.pattern, pc.literal = string(s), ok
		}
		out = append(out, pc)
	}))
	return out
}

// argField renders args.a.b for a selection from args (args["a"] too),
// else "".
func argField(x ast.Expr) string {
	var parts []string
	for {
		if x.Kind() == ast.SelectKind {
			parts = append(parts, x.AsSelect().FieldName())
			x = x.AsSelect().Operand()
			continue
		}
		if x.Kind() == ast.CallKind && x.AsCall().FunctionName() == "_[_]" && len(x.AsCall().Args()) == 2 {
			key := x.AsCall().Args()[1]
			if key.Kind() != ast.LiteralKind {
				return ""
			}
			k, ok := key.AsLiteral().(types.String)
			if !ok {
				return ""
			}
			parts = append(parts, string(k))
			x = x.AsCall().Args()[0]
			continue
		}
		break
	}
	if x.Kind() != ast.IdentKind || x.AsIdent() != "args" || len(parts) == 0 {
		return ""
	}
	out := "args"
	for i := len(parts) - 1; i >= 0; i-- {
		out += "." + parts[i]
	}
	return out
}

// overlap reports whether two tool patterns may match a common tool.
func overlap(a, b string) bool {
	la, lb := glob.Literal(a), glob.Literal(b)
	switch {
	case la && lb:
		return a == b
	case lb:
		return glob.Match(a, b)
	case la:
		return glob.Match(b, a)
	}
	return true
}

// paths reports globs on path arguments that a different spelling of the
// path, or a symbolic link, walks around.
func (l *linter) paths() {
	for _, r := range l.p.rules {
		if r.shadow || r.when == nil {
			continue
		}
		path := fmt.Sprintf("/rules/%d/when", r.index)
		for _, c := range pathCalls(r.when.src) {
			if c.fn == "isUnder" {
				l.add("lexical-path-rule", "warning", path,
					"rule %q stops %s by isUnder, which does not follow symbolic links: a link elsewhere reaches the directory it stops; use resolvesUnder",
					r.name, c.field)
				continue
			}
			if c.fn != "glob" || !c.literal {
				continue
			}
			if i := strings.IndexAny(c.pattern, "[{"); i >= 0 && (i == 0 || c.pattern[i-1] != '\\') {
				l.add("glob-literal-bracket", "warning", path,
					"rule %q matches %s against %q, in which %q matches only itself: glob has no character classes or alternatives, so the rule misses the names it seems to list",
					r.name, c.field, c.pattern, c.pattern[i:i+1])
			}
			switch {
			case glob.URLShaped(c.pattern):
				if want, ok := canonicalURLPattern(c.pattern); !ok {
					l.add("glob-uncleaned-path", "warning", path,
						"rule %q matches %s against %q, but URLs are matched in canonical form (lower-case scheme and host, no default port, cleaned path), so the pattern can never match; write %q",
						r.name, c.field, c.pattern, want)
				}
			case glob.PathShaped(c.pattern) && glob.CleanPath(c.pattern) != c.pattern:
				l.add("glob-uncleaned-path", "warning", path,
					"rule %q matches %s against %q, which is not a clean path: the path it is matched against is cleaned first, so the pattern can never match; write %q",
					r.name, c.field, c.pattern, glob.CleanPath(c.pattern))
			case glob.PathShaped(c.pattern):
				l.lexicalGrants(r, path, c)
			}
		}
	}
}

// lexicalGrants reports a grant that admits a path by isUnder on the field
// a deny or ask rule matches by glob: a symbolic link below the granted
// directory reaches what the rule is meant to stop. For a rooted pattern
// ("/w/secrets/**") it is a warning, since resolvesUnder can say the same;
// for a "**/" pattern ("**/.env*") it is information, since no subtree
// check can.
func (l *linter) lexicalGrants(r *rule, path string, c pathCall) {
	for _, g := range l.p.grants {
		if g.when == nil || !sharesTool(r.tools, g.tools) {
			continue
		}
		for _, gc := range pathCalls(g.when.src) {
			if gc.fn != "isUnder" || gc.field != c.field {
				continue
			}
			if strings.HasPrefix(c.pattern, "/") {
				l.add("glob-lexical-grant", "warning", path,
					"rule %q matches %s by a glob and grant %s admits it by isUnder; neither follows symbolic links, so a link below the granted directory reaches what the rule stops; use resolvesUnder in the grant, or in the rule instead of the glob",
					r.name, c.field, g.id)
			} else {
				l.add("glob-lexical-grant", "info", path,
					"rule %q matches %s by name as written and grant %s admits it by isUnder; a symbolic link with another name below the granted directory leads to a file the rule matches; use resolvesUnder in the grant so that such a link cannot lead out, and keep such links out of the directory",
					r.name, c.field, g.id)
			}
			break
		}
	}
}

func sharesTool(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if overlap(x, y) {
				return true
			}
		}
	}
	return false
}

// encodedPathPattern returns the path of a URL pattern (up to a "\\?"
// that starts its query) with its literal characters encoded as GlobURL
// encodes a URL's path — "my docs" as "my%20docs", "é" as "%C3%A9", "("
// as "%28" — and its wildcards as they are, so that it can match.
func encodedPathPattern(tail string) string {
	path, query, hasQuery := strings.Cut(tail, `\?`)
	var b, run strings.Builder
	flush := func() {
		lit := run.String()
		run.Reset()
		if dec, err := url.PathUnescape(lit); err == nil {
			lit = strings.TrimPrefix((&url.URL{Path: "/" + dec}).EscapedPath(), "/")
		}
		b.WriteString(lit)
	}
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '*' || c == '?':
			flush()
			b.WriteByte(c)
		case c == '\\' && i+1 < len(path):
			flush()
			b.WriteString(`\` + path[i+1:i+2])
			i++
		default:
			run.WriteByte(c)
		}
	}
	flush()
	if hasQuery {
		b.WriteString(`\?` + query)
	}
	return b.String()
}

// canonicalURLPattern reports whether the scheme, host and port of a
// URL-shaped pattern are written as GlobURL writes them, and if not, the
// pattern with them rewritten. Wildcards in the scheme or host are left
// alone; only their case is checked.
func canonicalURLPattern(pattern string) (string, bool) {
	scheme, rest, _ := strings.Cut(pattern, "://")
	auth, tail := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		auth, tail = rest[:i], rest[i:]
	}
	tail = encodedPathPattern(tail)
	if strings.ContainsAny(scheme+auth, "*?\\") {
		want := strings.ToLower(scheme) + "://" + strings.ToLower(auth) + tail
		return want, want == pattern
	}
	u, err := GlobURL(scheme + "://" + auth + "/")
	if err != nil {
		return pattern, true // an impossible host: never-matches is reported elsewhere
	}
	if tail == "" {
		return u, u == pattern || u == pattern+"/"
	}
	want := strings.TrimSuffix(u, "/") + tail
	return want, want == pattern
}
