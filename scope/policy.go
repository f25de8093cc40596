package scope

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/glob"
)

// DefaultCostLimit is the runtime cost limit of one CEL expression when no
// [WithCostLimit] option is given. Cost units are cel-go's: roughly one per
// operation, plus string and list sizes for functions that scan them.
const DefaultCostLimit = 100_000

// Policy is a compiled policy: every expression parsed, type-checked and
// cost-estimated, grants indexed by tool name. Build one with [Load], [Parse]
// or [Compile]. A Policy is immutable and safe for concurrent use. The zero
// value is not usable; a nil *Policy denies every call.
type Policy struct {
	opts       options // how it was compiled: file name, positions
	def        Def
	revision   string
	costLimit  uint64
	rules      []*rule
	grants     []*grant // by scope name, then grant index
	scopes     map[string]*ScopeDef
	limits     map[string]*limit
	principals map[string][]string
	redact     []redactRule

	// Tool name → plan, built on first use.
	plans    sync.Map
	nplans   atomic.Int64
	literal  map[string][]int // tool name → indexes into patterns
	patterns []toolPattern    // every distinct tool pattern of rules and grants
}

// maxCachedPlans bounds the per-tool-name plan cache, so that callers
// inventing tool names cannot grow it without limit.
const maxCachedPlans = 10_000

type redactRule struct {
	tools    string
	pointers []string
}

type toolPattern struct {
	pattern string
	rules   []int // indexes into Policy.rules
	grants  []int // indexes into Policy.grants
}

type rule struct {
	name    string
	effect  Effect
	shadow  bool
	tools   []string
	when    *expr
	message *expr
}

type grant struct {
	scope       string
	index       int
	id          string // "scope#index"
	allowReason string
	tools       []string
	when        *expr
	limits      []*limit
}

type limit struct {
	Limit
	key  *expr
	cost *expr // nil: each call costs 1
}

// expr is one compiled CEL expression with its source and location.
type expr struct {
	src  string
	path string
	prg  cel.Program
	cost cost.CostEstimate
	// loops reports a comprehension (all, exists, map, filter...): only
	// those can run long enough to need interrupting, so only they are
	// evaluated with the context.
	loops bool
	// direct, when set, computes the expression's value without the
	// program (see directField).
	direct func(*activation) string
	// refs are the argument members the expression reads by name;
	// computedKey reports a lookup in args by a key computed at run time.
	refs        []ArgRef
	computedKey bool
}

// LimitKind says what a limit counts.
type LimitKind uint8

// The kinds of limit.
const (
	// LimitRate is a token bucket: Count per Per, bursts up to Burst.
	LimitRate LimitKind = iota
	// LimitConcurrency caps calls in flight at Count.
	LimitConcurrency
	// LimitQuota allows Count units per calendar window of length Per
	// (an hour, a day or a week, in UTC).
	LimitQuota
)

// String returns "rate", "concurrency" or "quota".
func (k LimitKind) String() string {
	switch k {
	case LimitConcurrency:
		return "concurrency"
	case LimitQuota:
		return "quota"
	}
	return "rate"
}

// Limit is a compiled limit of a policy.
type Limit struct {
	// Name is the limit's name in the policy.
	Name string
	// Kind says what the limit counts.
	Kind LimitKind
	// Count is the rate's events per Per, the concurrency cap, or the
	// quota's units per window.
	Count int
	// Per is the period of a rate, or the window of a quota.
	Per time.Duration
	// Burst is the most events a rate allows at once.
	Burst int
	// KeyExpr is the CEL expression naming the bucket, CostExpr the one
	// giving a call's cost ("" means 1).
	KeyExpr  string
	CostExpr string
}

// Window returns the calendar window of a quota that contains t: its start
// and end, in UTC.
func (l Limit) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	switch l.Per {
	case time.Hour:
		start = t.Truncate(time.Hour)
	case 7 * 24 * time.Hour:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		start = d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
		return start, start.AddDate(0, 0, 7)
	default:
		start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	}
	return start, start.Add(l.Per)
}

// Every returns the interval between events at the sustained rate.
func (l Limit) Every() time.Duration {
	if l.Count <= 0 {
		return 0
	}
	return l.Per / time.Duration(l.Count)
}

// Option configures how a policy is compiled.
type Option func(*options)

type options struct {
	file      string
	costLimit uint64
	pos       map[string]pos
	src       []byte
	schemas   map[string]json.RawMessage
}

// WithCostLimit sets the runtime cost limit of each CEL expression. An
// expression whose estimated minimum cost exceeds it fails to compile; one
// that exceeds it at run time is an evaluation error, which never allows a
// call.
func WithCostLimit(n uint64) Option { return func(o *options) { o.costLimit = n } }

// WithFilename names the policy source in error messages of [Parse].
func WithFilename(name string) Option { return func(o *options) { o.file = name } }

// Revision returns the policy revision: the hex SHA-256 of the canonical JSON
// form of its definition, with defaults filled in. Two policies that differ
// only in layout, comments or key order have the same revision.
func (p *Policy) Revision() string {
	if p == nil {
		return ""
	}
	return p.revision
}

// Def returns a copy of the definition the policy was compiled from, with
// defaults filled in.
func (p *Policy) Def() Def {
	b, _ := json.Marshal(p.def)
	var d Def
	_ = json.Unmarshal(b, &d)
	return d
}

// Limit returns the named limit.
func (p *Policy) Limit(name string) (Limit, bool) {
	if p == nil {
		return Limit{}, false
	}
	l, ok := p.limits[name]
	if !ok {
		return Limit{}, false
	}
	return l.Limit, true
}

// Compile checks and compiles a policy definition. Every expression is
// parsed, type-checked and cost-estimated; all problems are reported together
// as an error joining one [*Error] per problem.
func Compile(def Def, opts ...Option) (*Policy, error) {
	o := options{costLimit: DefaultCostLimit}
	for _, f := range opts {
		f(&o)
	}
	c := compiler{o: &o}
	p := c.compile(def)
	if p != nil && len(o.schemas) > 0 {
		c.checkSchemas(p, o.schemas)
	}
	if len(c.errs) > 0 {
		return nil, joinErrs(c.errs)
	}
	p.opts = o
	p.opts.schemas = nil
	return p, nil
}

// joinErrs joins errors; the result's message lists one problem a line.
func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

type compiler struct {
	o    *options
	env  *cel.Env
	errs []error
}

func (c *compiler) errorf(path, src string, format string, args ...any) {
	e := &Error{File: c.o.file, Path: path, Expr: src, Msg: fmt.Sprintf(format, args...)}
	// The element may not exist in the source (a scalar where a list is
	// allowed, a missing key): use its nearest ancestor that does.
	for p := path; ; {
		if ps, ok := c.o.pos[p]; ok {
			e.Line, e.Column = ps.line, ps.col
			break
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	c.errs = append(c.errs, e)
}

func (c *compiler) compile(def Def) *Policy {
	var err error
	c.env, err = env()
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: building CEL environment: %w", err))
		return nil
	}
	if def.Version != 1 {
		c.errorf("/version", "", "unsupported policy version %d (want 1)", def.Version)
	}
	p := &Policy{
		costLimit:  c.o.costLimit,
		scopes:     map[string]*ScopeDef{},
		limits:     map[string]*limit{},
		principals: map[string][]string{},
		literal:    map[string][]int{},
	}
	norm := Def{Version: def.Version}

	// Limits first: grants refer to them.
	if len(def.Limits) > 0 {
		norm.Limits = map[string]LimitDef{}
	}
	for _, name := range sortedKeys(def.Limits) {
		ld := def.Limits[name]
		path := "/limits/" + escPtr(name)
		if name == "" {
			c.errorf(path, "", "limit name is empty")
			continue
		}
		l := Limit{Name: name}
		kinds := 0
		if ld.Rate != "" {
			kinds++
			l.Kind = LimitRate
			count, per, err := parseRate(ld.Rate)
			if err != nil {
				c.errorf(path+"/rate", "", "%v", err)
				continue
			}
			if ld.Burst < 0 {
				c.errorf(path+"/burst", "", "burst must not be negative")
				continue
			}
			if ld.Burst == 0 {
				ld.Burst = count
			}
			l.Count, l.Per, l.Burst = count, per, ld.Burst
		} else if ld.Burst != 0 {
			c.errorf(path+"/burst", "", "burst applies only to a rate")
		}
		if ld.Concurrency != 0 {
			kinds++
			l.Kind = LimitConcurrency
			if ld.Concurrency < 0 {
				c.errorf(path+"/concurrency", "", "concurrency must be positive")
				continue
			}
			l.Count = ld.Concurrency
		}
		if ld.Quota != "" {
			kinds++
			l.Kind = LimitQuota
			count, window, err := parseQuota(ld.Quota)
			if err != nil {
				c.errorf(path+"/quota", "", "%v", err)
				continue
			}
			l.Count, l.Per = count, window
		}
		if kinds != 1 {
			c.errorf(path, "", "limit %q must have exactly one of rate, concurrency or quota", name)
			continue
		}
		if ld.Key == "" {
			ld.Key = "principal.id"
		}
		l.KeyExpr = ld.Key
		lim := &limit{Limit: l, key: c.expr(path+"/key", ld.Key, cel.StringType)}
		if ld.Cost != "" {
			if l.Kind == LimitConcurrency {
				c.errorf(path+"/cost", "", "cost applies only to a rate or a quota")
				continue
			}
			lim.CostExpr = ld.Cost
			lim.cost = c.expr(path+"/cost", ld.Cost, cel.IntType)
		}
		p.limits[name] = lim
		norm.Limits[name] = ld
	}

	if len(def.Scopes) > 0 {
		norm.Scopes = map[string]ScopeDef{}
	}
	for _, name := range sortedKeys(def.Scopes) {
		sd := def.Scopes[name]
		path := "/scopes/" + escPtr(name)
		if name == "" {
			c.errorf(path, "", "scope name is empty")
			continue
		}
		if len(sd.Grants) == 0 {
			c.errorf(path+"/grants", "", "scope %q has no grants", name)
		}
		ns := ScopeDef{Description: sd.Description}
		for i, gd := range sd.Grants {
			gpath := fmt.Sprintf("%s/grants/%d", path, i)
			g := &grant{scope: name, index: i, tools: slices.Clone(gd.Tools), id: fmt.Sprintf("%s#%d", name, i),
				allowReason: fmt.Sprintf("allowed by scope %q (grant %d)", name, i)}
			c.checkTools(gpath+"/tools", gd.Tools)
			if gd.When != "" {
				g.when = c.expr(gpath+"/when", gd.When, cel.BoolType)
			}
			for j, ln := range gd.Limit {
				l, ok := p.limits[ln]
				if !ok {
					c.errorf(fmt.Sprintf("%s/limit/%d", gpath, j), "", "unknown limit %q (defined: %s)", ln, strings.Join(sortedKeys(def.Limits), ", "))
					continue
				}
				g.limits = append(g.limits, l)
			}
			p.grants = append(p.grants, g)
			ns.Grants = append(ns.Grants, GrantDef{Tools: slices.Clone(gd.Tools), When: gd.When, Limit: slices.Clone(gd.Limit)})
		}
		norm.Scopes[name] = ns
		p.scopes[name] = &ns
	}

	seen := map[string]bool{}
	for i, rd := range def.Rules {
		path := fmt.Sprintf("/rules/%d", i)
		r := &rule{name: rd.Name, tools: slices.Clone(rd.Tools)}
		switch {
		case rd.Name == "":
			c.errorf(path+"/name", "", "rule %d has no name", i)
		case seen[rd.Name]:
			c.errorf(path+"/name", "", "rule name %q is used twice", rd.Name)
		}
		seen[rd.Name] = true
		switch rd.Effect {
		case "deny":
			r.effect = Deny
		case "ask":
			r.effect = Ask
		default:
			c.errorf(path+"/effect", "", "rule %q: effect must be \"deny\" or \"ask\", not %q", rd.Name, rd.Effect)
		}
		switch rd.Mode {
		case "", "enforce":
			rd.Mode = "enforce"
		case "shadow":
			r.shadow = true
		default:
			c.errorf(path+"/mode", "", "rule %q: mode must be \"enforce\" or \"shadow\", not %q", rd.Name, rd.Mode)
		}
		c.checkTools(path+"/tools", rd.Tools)
		if rd.When != "" {
			r.when = c.expr(path+"/when", rd.When, cel.BoolType)
		}
		if rd.Message != "" {
			r.message = c.expr(path+"/message", rd.Message, cel.StringType)
		}
		p.rules = append(p.rules, r)
		rd.Tools = slices.Clone(rd.Tools)
		norm.Rules = append(norm.Rules, rd)
	}

	if len(def.Principals) > 0 {
		norm.Principals = map[string][]string{}
	}
	for _, id := range sortedKeys(def.Principals) {
		path := "/principals/" + escPtr(id)
		for j, s := range def.Principals[id] {
			if _, ok := def.Scopes[s]; !ok {
				c.errorf(fmt.Sprintf("%s/%d", path, j), "", "principal %q: unknown scope %q", id, s)
			}
		}
		p.principals[id] = slices.Clone(def.Principals[id])
		norm.Principals[id] = slices.Clone(def.Principals[id])
	}
	if len(def.Redact) > 0 {
		norm.Redact = map[string][]string{}
	}
	for _, tools := range sortedKeys(def.Redact) {
		path := "/redact/" + escPtr(tools)
		if err := glob.Validate(tools); err != nil || tools == "" {
			c.errorf(path, "", "bad tool pattern %q", tools)
		}
		for j, ptr := range def.Redact[tools] {
			if ptr != "" && !strings.HasPrefix(ptr, "/") {
				c.errorf(fmt.Sprintf("%s/%d", path, j), "", "%q is not a JSON pointer (it must start with /)", ptr)
			}
		}
		p.redact = append(p.redact, redactRule{tools: tools, pointers: slices.Clone(def.Redact[tools])})
		norm.Redact[tools] = slices.Clone(def.Redact[tools])
	}
	if len(c.errs) > 0 {
		return nil
	}

	p.def = norm
	canon, err := json.Marshal(norm)
	if err == nil {
		canon, err = canonjson.Append(nil, json.RawMessage(canon))
	}
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: canonical form: %w", err))
		return nil
	}
	sum := sha256.Sum256(canon)
	p.revision = hex.EncodeToString(sum[:])
	p.index()
	return p
}

func (c *compiler) checkTools(path string, tools []string) {
	if len(tools) == 0 {
		c.errorf(path, "", "no tools named")
	}
	for i, t := range tools {
		if t == "" {
			c.errorf(fmt.Sprintf("%s/%d", path, i), "", "empty tool name")
			continue
		}
		if err := glob.Validate(t); err != nil {
			c.errorf(fmt.Sprintf("%s/%d", path, i), "", "bad tool pattern %q: %v", t, err)
		}
	}
}

// expr compiles one CEL expression that must produce want.
func (c *compiler) expr(path, src string, want *cel.Type) *expr {
	ast, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		for _, e := range iss.Errors() {
			c.celError(path, src, e.Location.Line(), e.Location.Column(), e.Message)
		}
		return nil
	}
	if !ast.OutputType().IsExactType(want) && !ast.OutputType().IsExactType(cel.DynType) {
		c.errorf(path, src, "expression has type %s, want %s", ast.OutputType(), want)
		return nil
	}
	est, err := c.env.EstimateCost(ast, costEstimator{})
	if err != nil {
		c.errorf(path, src, "estimating cost: %v", err)
		return nil
	}
	if est.Min > c.o.costLimit {
		c.errorf(path, src, "expression costs at least %d, over the limit of %d", est.Min, c.o.costLimit)
		return nil
	}
	loops := len(celast.MatchDescendants(celast.NavigateAST(ast.NativeRep()), celast.KindMatcher(celast.ComprehensionKind))) > 0
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Only comprehensions can run long: an expression without one costs
	// time linear in its inputs, which the argument limits bound. So only
	// those are tracked at run time (and can be interrupted); tracking
	// costs allocations on every evaluation, and cel-go's static estimate
	// of simple string functions grows with their literals, so a threshold
	// on the estimate would track rules that cannot run long.
	if loops {
		popts = append(popts, cel.CostLimit(c.o.costLimit), cel.InterruptCheckFrequency(64))
	}
	prg, err := c.env.Program(ast, popts...)
	if err != nil {
		c.errorf(path, src, "%v", err)
		return nil
	}
	refs, computed := exprRefs(ast.NativeRep())
	return &expr{src: src, path: path, prg: prg, cost: est, loops: loops, direct: directField(ast.NativeRep().Expr()),
		refs: refs, computedKey: computed}
}

// directField recognises an expression that is only principal.id,
// tool.name or call.id — the usual limit key — and returns a function
// reading that field without running the program. Any other expression
// returns nil.
func directField(e celast.Expr) func(*activation) string {
	if e.Kind() != celast.SelectKind || e.AsSelect().IsTestOnly() {
		return nil
	}
	sel := e.AsSelect()
	op := sel.Operand()
	if op.Kind() != celast.IdentKind {
		return nil
	}
	switch op.AsIdent() + "." + sel.FieldName() {
	case "principal.id":
		return func(a *activation) string { return a.principal.ID }
	case "tool.name":
		return func(a *activation) string { return a.tool.Name }
	case "call.id":
		return func(a *activation) string { return a.call.ID }
	}
	return nil
}

// celError records an error at a position inside an expression, mapped to
// the policy file when the expression's position there is known.
func (c *compiler) celError(path, src string, line, col int, msg string) {
	e := &Error{File: c.o.file, Path: path, Expr: src, Msg: msg}
	if ps, ok := c.o.pos[path]; ok {
		e.Line, e.Column = ps.at(c.o.src, line, col)
	}
	c.errs = append(c.errs, e)
}

// index groups rules and grants by tool pattern, so that deciding a call looks
// at only the rules and grants that can apply to its tool.
func (p *Policy) index() {
	byPattern := map[string]int{}
	add := func(pat string) *toolPattern {
		i, ok := byPattern[pat]
		if !ok {
			i = len(p.patterns)
			byPattern[pat] = i
			p.patterns = append(p.patterns, toolPattern{pattern: pat})
			if glob.Literal(pat) {
				p.literal[pat] = append(p.literal[pat], i)
			}
		}
		return &p.patterns[i]
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
}

// plan is what applies to one tool name: rules and grants in policy order,
// and the pointers to redact.
type plan struct {
	rules  []*rule
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

const maxCachedReasons = 64

func (p *Policy) planFor(tool string) *plan {
	if v, ok := p.plans.Load(tool); ok {
		return v.(*plan)
	}
	var ri, gi []int
	for i := range p.patterns {
		tp := &p.patterns[i]
		if tp.pattern == tool || (!glob.Literal(tp.pattern) && glob.Match(tp.pattern, tool)) {
			ri = append(ri, tp.rules...)
			gi = append(gi, tp.grants...)
		}
	}
	slices.Sort(ri)
	ri = slices.Compact(ri)
	slices.Sort(gi)
	gi = slices.Compact(gi)
	pl := &plan{}
	for _, i := range ri {
		pl.rules = append(pl.rules, p.rules[i])
	}
	for _, i := range gi {
		pl.grants = append(pl.grants, p.grants[i])
	}
	for _, r := range p.redact {
		if glob.Match(r.tools, tool) {
			pl.redact = append(pl.redact, r.pointers...)
		}
	}
	if p.nplans.Load() < maxCachedPlans {
		if _, loaded := p.plans.LoadOrStore(tool, pl); !loaded {
			p.nplans.Add(1)
		}
	}
	return pl
}

// parseRate parses "N/unit" where unit is s, m, h, d or a Go duration.
func parseRate(s string) (int, time.Duration, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("rate %q: want N/s, N/m, N/h, N/d or N/<duration>", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("rate %q: count must be a positive integer", s)
	}
	var per time.Duration
	switch unit = strings.TrimSpace(unit); unit {
	case "s", "sec", "second":
		per = time.Second
	case "m", "min", "minute":
		per = time.Minute
	case "h", "hour":
		per = time.Hour
	case "d", "day":
		per = 24 * time.Hour
	default:
		per, err = time.ParseDuration(unit)
		if err != nil || per <= 0 {
			return 0, 0, fmt.Errorf("rate %q: unknown period %q", s, unit)
		}
	}
	return n, per, nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare)
	return keys
}

// escPtr escapes a JSON pointer reference token.
func escPtr(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// RedactPointers returns the JSON pointers the policy's redact section
// names for the tool. The result must not be modified.
func (p *Policy) RedactPointers(tool string) []string {
	if p == nil || len(p.redact) == 0 {
		return nil
	}
	return p.planFor(tool).redact
}

// parseQuota parses "N/hour", "N/day" or "N/week".
func parseQuota(s string) (int, time.Duration, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if !ok || err != nil || n <= 0 {
		return 0, 0, fmt.Errorf("quota %q: want N/hour, N/day or N/week with N a positive integer", s)
	}
	switch strings.TrimSpace(unit) {
	case "h", "hour":
		return n, time.Hour, nil
	case "d", "day":
		return n, 24 * time.Hour, nil
	case "w", "week":
		return n, 7 * 24 * time.Hour, nil
	}
	return 0, 0, fmt.Errorf("quota %q: the window must be hour, day or week", s)
}
