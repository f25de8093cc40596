package scope

import "fmt"

// computedKeys warns of expressions that look an argument up by a key
// computed at run time: a guard denies keys folding like the members a
// policy reads by a constant name ([Policy.ArgRefs]), but cannot know this
// one, so {"PATH":...} may reach a handler that reads it as path while the
// lookup of "path" finds nothing.
func (l *linter) computedKeys() {
	check := func(e *expr, what string) {
		if e != nil && e.computedKey {
			l.add("computed-arg-key", "warning", e.path, "%s looks an argument up by a key computed at run time; a key in other letter case is not caught for it, which a handler decoding with encoding/json reads as the same member: name the member with a constant (args.path, args[\"path\"])", what)
		}
	}
	for _, r := range l.p.rules {
		check(r.when, fmt.Sprintf("rule %q", r.name))
	}
	for _, g := range l.p.grants {
		check(g.when, "grant "+g.id)
	}
}
