package scope

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/agentguard/agentguard/internal/glob"
)

// The index finds what applies to a tool name without looking at every
// rule and grant: tool patterns are grouped by their literal text (names)
// and by the literal prefix of a glob, and a plan — the rules, grants and
// redactions of one tool — is cached by name, or, for names the policy does
// not spell out, by the set of globs the name matches.

// maxCachedPlans, plus twice the number of the policy's tool patterns,
// bounds the names cached for tool names that the policy does not name
// literally, and the plans shared by the globs such names match, so that
// callers inventing tool names cannot grow the caches without limit. Plans
// of names the policy spells out are all cached: the policy bounds them.
const maxCachedPlans = 10_000

// maxGlobMatches is the most glob patterns one tool name may match and
// still share a plan by signature; a name matching more gets a plan of its
// own (and is cached by name while there is room).
const maxGlobMatches = 32

type toolPattern struct {
	pattern string
	rules   []int // indexes into Policy.rules
	grants  []int // indexes into Policy.grants
	redact  []int // indexes into Policy.redact
}

// toolIndex groups the policy's tool patterns.
type toolIndex struct {
	patterns []toolPattern
	literal  map[string]int   // tool name → index into patterns
	prefixed map[string][]int // literal prefix of a glob → indexes into patterns
	lens     []int            // the distinct lengths of those prefixes, ascending

	// Plans, built on first use: for names the policy names literally, in
	// litPlans by their pattern's index (one lookup in literal finds it,
	// with no lock); for other names by name while there is room, and by
	// the signature of matched globs.
	litPlans []atomic.Pointer[plan]
	byName   nameCache
	sigMu    sync.RWMutex
	bySig    map[string]*plan
}

// nameCache maps tool names the policy does not name to plans. Reads are
// a lookup in an immutable map; new names wait in a small locked map until
// they are a quarter of the immutable one, which is then rebuilt with them
// — so a read of a cached name takes no lock, and n names cost O(n)
// copying in all.
type nameCache struct {
	snap    atomic.Pointer[map[string]*plan]
	mu      sync.Mutex
	pending map[string]*plan
	others  int // names cached
}

func (nc *nameCache) load(name string) (*plan, bool) {
	if m := nc.snap.Load(); m != nil {
		if pl, ok := (*m)[name]; ok {
			return pl, true
		}
	}
	nc.mu.Lock()
	pl, ok := nc.pending[name]
	nc.mu.Unlock()
	return pl, ok
}

// store caches pl for name, unless the name is cached already (then it
// returns the cached plan) or bound names are cached.
func (nc *nameCache) store(name string, pl *plan, bound int) *plan {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	snap := nc.snap.Load()
	if snap != nil {
		if old, ok := (*snap)[name]; ok {
			return old
		}
	}
	if old, ok := nc.pending[name]; ok {
		return old
	}
	if nc.others >= bound {
		return pl
	}
	nc.others++
	if nc.pending == nil {
		nc.pending = map[string]*plan{}
	}
	nc.pending[name] = pl
	n := 0
	if snap != nil {
		n = len(*snap)
	}
	if len(nc.pending) > n/4 {
		m := make(map[string]*plan, n+len(nc.pending))
		if snap != nil {
			maps.Copy(m, *snap)
		}
		maps.Copy(m, nc.pending)
		nc.snap.Store(&m)
		nc.pending = nil
	}
	return pl
}

// globPrefix returns the literal text of pattern before its first
// wildcard or escape.
func globPrefix(pattern string) string {
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '*', '?', '\\':
			return pattern[:i]
		}
	}
	return pattern
}

// index groups rules, grants and redactions by tool pattern, so that
// deciding a call looks at only the ones that can apply to its tool.
func (p *Policy) index() {
	ix := &p.ix
	ix.literal = map[string]int{}
	ix.prefixed = map[string][]int{}
	ix.bySig = map[string]*plan{}
	byPattern := map[string]int{}
	add := func(pat string) *toolPattern {
		i, ok := byPattern[pat]
		if !ok {
			i = len(ix.patterns)
			byPattern[pat] = i
			ix.patterns = append(ix.patterns, toolPattern{pattern: pat})
			if glob.Literal(pat) {
				ix.literal[pat] = i
			} else {
				pre := globPrefix(pat)
				ix.prefixed[pre] = append(ix.prefixed[pre], i)
				if !slices.Contains(ix.lens, len(pre)) {
					ix.lens = append(ix.lens, len(pre))
				}
			}
		}
		return &ix.patterns[i]
	}
	for ri, r := range p.rules {
		for _, t := range r.tools {
			tp := add(t)
			tp.rules = append(tp.rules, ri)
		}
	}
	for gi, g := range p.grants {
		for _, t := range g.tools {
			tp := add(t)
			tp.grants = append(tp.grants, gi)
		}
	}
	for ri, r := range p.redact {
		tp := add(r.tools)
		tp.redact = append(tp.redact, ri)
	}
	slices.Sort(ix.lens)
	ix.litPlans = make([]atomic.Pointer[plan], len(ix.patterns))
}

// globsMatching appends to buf the indexes of the glob patterns that match
// tool, ascending.
func (ix *toolIndex) globsMatching(buf []int, tool string) []int {
	for _, n := range ix.lens {
		if n > len(tool) {
			break
		}
		for _, i := range ix.prefixed[tool[:n]] {
			if glob.Match(ix.patterns[i].pattern, tool) {
				buf = append(buf, i)
			}
		}
	}
	slices.Sort(buf)
	return buf
}

// planFor returns the plan of a tool name.
func (p *Policy) planFor(tool string) *plan {
	ix := &p.ix
	if lit, ok := ix.literal[tool]; ok {
		// Named by the policy: one plan per name, always cached.
		if pl := ix.litPlans[lit].Load(); pl != nil {
			return pl
		}
		var buf [maxGlobMatches]int
		pl := p.buildPlan(tool, lit, ix.globsMatching(buf[:0], tool))
		if ix.litPlans[lit].CompareAndSwap(nil, pl) {
			return pl
		}
		return ix.litPlans[lit].Load()
	}
	if pl, ok := ix.byName.load(tool); ok {
		return pl
	}
	var buf [maxGlobMatches]int
	globs := ix.globsMatching(buf[:0], tool)
	// Not named: the plan depends only on the globs the name matches, so
	// names matching the same globs share it.
	if len(globs) > maxGlobMatches {
		return p.cacheByName(tool, p.buildPlan(tool, -1, globs))
	}
	var sb [maxGlobMatches * 4]byte
	sig := sb[:0]
	for _, g := range globs {
		sig = strconv.AppendInt(sig, int64(g), 36)
		sig = append(sig, ',')
	}
	ix.sigMu.RLock()
	pl, ok := ix.bySig[string(sig)]
	ix.sigMu.RUnlock()
	if !ok {
		pl = p.buildPlan(tool, -1, globs)
		ix.sigMu.Lock()
		if old, ok := ix.bySig[string(sig)]; ok {
			pl = old
		} else if len(ix.bySig) < maxCachedPlans+2*len(ix.patterns) {
			ix.bySig[string(sig)] = pl
		}
		ix.sigMu.Unlock()
	}
	return p.cacheByName(tool, pl)
}

// cacheByName caches the plan of a name the policy does not name, while
// there is room.
func (p *Policy) cacheByName(tool string, pl *plan) *plan {
	return p.ix.byName.store(tool, pl, maxCachedPlans+2*len(p.ix.patterns))
}

// buildPlan builds the plan from the literal pattern (-1 for none) and the
// globs a tool name matches. A plan built from globs alone must not depend
// on the name beyond them: it is shared by every name matching the same
// globs (tool.name tests are resolved only for literal plans).
func (p *Policy) buildPlan(tool string, lit int, globs []int) *plan {
	var ri, gi, xi []int
	addFrom := func(i int) {
		tp := &p.ix.patterns[i]
		ri = append(ri, tp.rules...)
		gi = append(gi, tp.grants...)
		xi = append(xi, tp.redact...)
	}
	if lit >= 0 {
		addFrom(lit)
	}
	for _, i := range globs {
		addFrom(i)
	}
	ri, gi, xi = sortedSet(ri), sortedSet(gi), sortedSet(xi)
	pl := &plan{}
	rules := make([]*rule, 0, len(ri))
	for _, i := range ri {
		rules = append(rules, p.rules[i])
	}
	if len(gi) == 1 {
		pl.one[0] = p.grants[gi[0]]
		pl.grants = pl.one[:]
	} else {
		for _, i := range gi {
			pl.grants = append(pl.grants, p.grants[i])
		}
	}
	for _, i := range xi {
		pl.redact = append(pl.redact, p.redact[i].pointers...)
	}
	name, known := "", false
	if lit >= 0 {
		name, known = tool, true
	}
	pl.build(rules, p.noIndex, name, known, &p.subs, &p.rulePlans)
	return pl
}

func sortedSet(s []int) []int {
	slices.Sort(s)
	return slices.Compact(s)
}

// plan is what applies to one tool name: rules and grants in policy order,
// the pointers to redact, and the phases a decision walks. The fields a
// decision reads come first, to share cache lines.
type plan struct {
	// rulePlan holds the rules and their phases; plans whose rules are the
	// same share it, so that a policy of many tools under the same rules
	// keeps one copy of them, hot in the cache.
	*rulePlan
	// needsSession reports that an enforced rule or grant of the plan
	// reads the session: a call without one is denied.
	needsSession bool
	grantPh      phase[*grant]
	// one holds the grant of a plan that has one, beside the fields a
	// decision reads, so that grants and grantPh.items need no line of
	// their own.
	one [1]*grant

	grants []*grant
	redact []string

	// reasons caches the tail of the no-grant reason by which of the
	// plan's grants the principal holds (a bit per grant; plans with more
	// than 64 grants are not cached), at most maxCachedReasons of them.
	reasons  sync.Map // uint64 → string
	nreasons atomic.Int32
	// refs are the argument members the plan's expressions read by name,
	// built on first use.
	refsOnce sync.Once
	refs     []ArgRef
}

// rulePlan is the rule part of a plan: the rules that name the tool, in
// policy order, and the phases of those whose conditions can apply.
type rulePlan struct {
	rules             []*rule
	deny, ask, shadow phase[*rule]
}

// rulePlans shares rule parts between plans, keyed by the rules they hold
// and those their phases keep.
type rulePlans struct {
	mu sync.Mutex
	m  map[string]*rulePlan
}

// maxRulePlans bounds the rule parts a policy shares; beyond it a plan
// builds its own.
const maxRulePlans = 4096

const maxCachedReasons = 64

// build makes the plan's phases from its rules and grants. When the
// tool's name is known (the plan is not shared by several names),
// conditions whose tool.name tests reject it are left out: they are false
// without error for every call.
func (pl *plan) build(rules []*rule, noIndex bool, tool string, known bool, subs *subCache, shared *rulePlans) {
	keep := func(e *expr) bool {
		if noIndex || !known || e == nil {
			return true
		}
		for _, c := range e.clauses {
			if t := &c[0]; len(c) == 1 && t.tool && !t.accepts(tool) {
				return false
			}
		}
		return true
	}
	var deny, ask, shadow []*rule
	var kb [64]byte
	key := kb[:0]
	for _, r := range rules {
		kind := byte('s')
		switch {
		case r.shadow:
			shadow = append(shadow, r)
		case !keep(r.when):
			kind = '-'
		case r.effect == Deny:
			deny = append(deny, r)
			kind = 'd'
		case r.effect == Ask:
			ask = append(ask, r)
			kind = 'a'
		default:
			kind = '-'
		}
		key = strconv.AppendInt(key, int64(r.index), 36)
		key = append(key, kind)
	}
	pl.rulePlan = shared.get(string(key), func() *rulePlan {
		return &rulePlan{rules: rules, deny: newPhase(deny, noIndex, subs),
			ask: newPhase(ask, noIndex, subs), shadow: newPhase(shadow, noIndex, subs)}
	})
	grants := pl.grants // shared when every grant is kept
	if slices.ContainsFunc(grants, func(g *grant) bool { return !keep(g.when) }) {
		grants = slices.DeleteFunc(slices.Clone(grants), func(g *grant) bool { return !keep(g.when) })
	}
	pl.grantPh = newPhase(grants, noIndex, subs)
	pl.needsSession = pl.computeNeedsSession()
}

// get returns the rule part under key, made by mk and shared if there is
// room.
func (rp *rulePlans) get(key string, mk func() *rulePlan) *rulePlan {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if r, ok := rp.m[key]; ok {
		return r
	}
	r := mk()
	if len(rp.m) < maxRulePlans {
		if rp.m == nil {
			rp.m = map[string]*rulePlan{}
		}
		rp.m[key] = r
	}
	return r
}
