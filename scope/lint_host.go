package scope

import (
	"errors"
	"fmt"
	"strings"

	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/agentguard/agentguard/internal/hostname"
)

// hosts reports comparisons of urlHost(...) or canonicalHost() with a
// string that is not a canonical host ("Example.com", "0x7f000001",
// "[::1]", "bücher.de"): the comparison is never true, so a deny rule
// written that way never denies.
func (l *linter) hosts() {
	check := func(e *expr, what string) {
		if e == nil {
			return
		}
		for _, f := range nonCanonicalHosts(e.src) {
			l.add("non-canonical-host", "warning", e.path, "%s compares a host with %q, which a canonical host never equals: %s", what, f.lit, f.hint)
		}
	}
	for _, r := range l.p.rules {
		check(r.when, fmt.Sprintf("rule %q", r.name))
	}
	for _, g := range l.p.grants {
		check(g.when, "grant "+g.id)
	}
}

type hostLiteral struct{ lit, hint string }

// nonCanonicalHosts returns the string constants in src that are compared
// (==, !=, in, endsWith) with the result of a host function and are not
// canonical hosts.
func nonCanonicalHosts(src string) []hostLiteral {
	e, err := env()
	if err != nil {
		return nil
	}
	a, iss := e.Parse(src)
	if iss.Err() != nil {
		return nil
	}
	var out []hostLiteral
	for _, n := range celast.MatchDescendants(celast.NavigateAST(a.NativeRep()), celast.KindMatcher(celast.CallKind)) {
		call := n.AsCall()
		args := call.Args()
		if len(args) != 2 && call.FunctionName() != "endsWith" {
			continue
		}
		var lits []celast.Expr
		switch call.FunctionName() {
		case "_==_", "_!=_":
			if isHostCall(args[0]) {
				lits = append(lits, args[1])
			} else if isHostCall(args[1]) {
				lits = append(lits, args[0])
			}
		case "@in":
			if isHostCall(args[0]) && args[1].Kind() == celast.ListKind {
				lits = args[1].AsList().Elements()
			}
		case "endsWith":
			if call.IsMemberFunction() && isHostCall(call.Target()) && len(args) == 1 {
				if s, ok := stringLiteral(args[0]); ok && strings.HasPrefix(s, ".") {
					if hint := hostHint(s[1:]); hint != "" {
						out = append(out, hostLiteral{s, strings.Replace(hint, `write "`, `write ".`, 1)})
					}
				}
			}
		}
		for _, x := range lits {
			if s, ok := stringLiteral(x); ok {
				if hint := hostHint(s); hint != "" {
					out = append(out, hostLiteral{s, hint})
				}
			}
		}
	}
	return out
}

func isHostCall(e celast.Expr) bool {
	if e.Kind() != celast.CallKind {
		return false
	}
	f := e.AsCall().FunctionName()
	return f == "urlHost" || f == "canonicalHost"
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

// hostHint says how s differs from its canonical form, or "" if it is
// canonical.
func hostHint(s string) string {
	c, err := hostname.Canonical(s)
	if err != nil {
		var he *hostname.Error
		if errors.As(err, &he) {
			return "it " + he.Reason
		}
		return err.Error()
	}
	if c != s {
		return fmt.Sprintf("write %q", c)
	}
	return ""
}
