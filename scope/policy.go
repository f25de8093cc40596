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
	"sync/atomic"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"

	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/glob"
	"github.com/agentguard/agentguard/internal/safejson"
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
	labels     []*labelRule
	noIndex    bool                      // evaluate every condition (for differential tests)
	fns        map[string]*boundFunction // application functions (functions.go)
	results    *resultPolicy             // the results section (results.go)
	data       dataPolicy                // resource and prompt grants and rules (resources.go)
	subs       subCache                  // substring indexes shared by plans (prefilter.go)
	rulePlans  rulePlans                 // rule parts shared by plans (index.go)

	ix    toolIndex
	check checkCache // schema type-checking, see CheckTools
}

type redactRule struct {
	tools    string
	pointers []string
}

type rule struct {
	index   int // in the policy's rules, which also hold rules over resources and prompts
	name    string
	effect  Effect
	shadow  bool
	tools   []string
	when    *expr
	message *expr
	// remember is an ask rule's remember key; memID the identity its
	// approvals are remembered under (see RememberID).
	remember *expr
	memID    string
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

// expr is one compiled CEL expression with its location in the policy.
// Expressions of the same source and type share their compiled core.
type expr struct {
	*exprCore
	path string
}

// exprCore is a compiled CEL expression with its source.
type exprCore struct {
	src string
	prg cel.Program
	// parsed is the expression parsed, kept to type-check it against each
	// schema without parsing it again (schema.go).
	parsed *parsedExpr
	cost   cost.Estimate
	// loops reports a comprehension (all, exists, map, filter...): only
	// those can run long enough to need interrupting, so only they are
	// evaluated with the context.
	loops bool
	// direct, when set, computes the expression's value without the
	// program (see directField).
	direct func(*activation) string
	// clauses are the conjuncts that can decide the condition without
	// the program, complete when they are all of it (see prefilter.go);
	// has names the fields it tests with has().
	clauses  []clause
	complete bool
	has      map[string]bool
	// argFields are the fields of args the expression selects by name
	// (args.f, has(args.f)), and fieldsOnly reports that it uses args in
	// no other way, so that its type-check depends on the types of those
	// fields alone (see argFields).
	argFields  []string
	fieldsOnly bool
	// refs are the argument members the expression reads by name;
	// computedKey reports a lookup in args by a key computed at run time.
	refs        []ArgRef
	computedKey bool
	// session reports that the expression reads the session; sessLabels
	// that it reads session.labels, and literals are its string constants
	// (the labels a flow rule names).
	session    bool
	sessLabels bool
	literals   []string
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
	maxBytes  int
	noIndex   bool
	pos       map[string]pos
	src       []byte
	schemas   map[string]json.RawMessage
	functions []Function // application functions (functions.go)
}

func newOptions(opts []Option) options {
	o := options{costLimit: DefaultCostLimit, maxBytes: MaxPolicyBytes}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithCostLimit sets the runtime cost limit of each CEL expression. An
// expression whose estimated minimum cost exceeds it fails to compile; one
// that exceeds it at run time is an evaluation error, which never allows a
// call.
func WithCostLimit(n uint64) Option { return func(o *options) { o.costLimit = n } }

// WithMaxPolicyBytes sets the largest policy [Parse] and [Load] accept, in
// bytes of source, and [Compile] accepts, in bytes of the canonical JSON
// form the revision is computed from. The default is [MaxPolicyBytes]; a
// policy over the limit is an error saying so. n <= 0 means the default.
func WithMaxPolicyBytes(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBytes = n
		}
	}
}

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
	o := newOptions(opts)
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
	// done holds the expressions compiled so far by type and source: a
	// policy repeating a condition over many grants compiles it once.
	done map[string]*expr
	// fields interns the argument names conditions test.
	fields map[string]string
	fns    map[string]*boundFunction // application functions (functions.go)
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
	c.done, c.fields = map[string]*expr{}, map[string]string{}
	var fnDecls []cel.EnvOption
	c.env, c.fns, fnDecls = c.withFunctions(c.env)
	if def.Version != 1 {
		c.errorf("/version", "", "unsupported policy version %d (want 1)", def.Version)
	}
	p := &Policy{
		costLimit:  c.o.costLimit,
		noIndex:    c.o.noIndex,
		scopes:     map[string]*ScopeDef{},
		limits:     map[string]*limit{},
		principals: map[string][]string{},
		fns:        c.fns,
	}
	p.check.fnDecls = fnDecls
	norm := Def{Version: def.Version}
	// Limits first: grants refer to them.
	norm.Limits = c.limits(p, def.Limits)
	norm.Scopes = c.scopes(p, def)
	norm.Rules = c.rules(p, def.Rules)
	norm.Principals = c.principals(p, def)
	norm.Redact = c.redacts(p, def.Redact)
	norm.Results = c.results(p, def.Results)
	norm.Labels = c.labels(p, def.Labels)
	if len(c.errs) > 0 {
		return nil
	}
	p.def = norm
	if !c.revision(p) {
		return nil
	}
	p.index()
	return p
}

// limits compiles the limits section and returns its normal form.
func (c *compiler) limits(p *Policy, defs map[string]LimitDef) map[string]LimitDef {
	if len(defs) == 0 {
		return nil
	}
	norm := map[string]LimitDef{}
	for _, name := range sortedKeys(defs) {
		ld := defs[name]
		path := "/limits/" + escPtr(name)
		if name == "" {
			c.errorf(path, "", "limit name is empty")
			continue
		}
		l, ok := c.limitKind(path, name, &ld)
		if !ok {
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
		norm[name] = ld
	}
	return norm
}

// limitKind checks that a limit is exactly one of a rate, a concurrency
// cap or a quota, and fills in its counts; it sets a rate's default burst
// in ld.
func (c *compiler) limitKind(path, name string, ld *LimitDef) (Limit, bool) {
	l := Limit{Name: name}
	kinds := 0
	if ld.Rate != "" {
		kinds++
		l.Kind = LimitRate
		count, per, err := parseRate(ld.Rate)
		if err != nil {
			c.errorf(path+"/rate", "", "%v", err)
			return l, false
		}
		if ld.Burst < 0 {
			c.errorf(path+"/burst", "", "burst must not be negative")
			return l, false
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
			return l, false
		}
		l.Count = ld.Concurrency
	}
	if ld.Quota != "" {
		kinds++
		l.Kind = LimitQuota
		count, window, err := parseQuota(ld.Quota)
		if err != nil {
			c.errorf(path+"/quota", "", "%v", err)
			return l, false
		}
		l.Count, l.Per = count, window
	}
	if kinds != 1 {
		c.errorf(path, "", "limit %q must have exactly one of rate, concurrency or quota", name)
		return l, false
	}
	return l, true
}

// scopes compiles the scopes section and returns its normal form.
func (c *compiler) scopes(p *Policy, def Def) map[string]ScopeDef {
	if len(def.Scopes) == 0 {
		return nil
	}
	norm := map[string]ScopeDef{}
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
			if c.dataGrant(p, name, i, gd) {
				ns.Grants = append(ns.Grants, normDataGrant(gd))
				continue
			}
			p.grants = append(p.grants, c.grant(p, def, name, i, gd))
			ns.Grants = append(ns.Grants, GrantDef{Tools: slices.Clone(gd.Tools), When: gd.When, Limit: slices.Clone(gd.Limit)})
		}
		norm[name] = ns
		p.scopes[name] = &ns
	}
	return norm
}

// grant compiles grant i of scope name.
func (c *compiler) grant(p *Policy, def Def, name string, i int, gd GrantDef) *grant {
	gpath := "/scopes/" + escPtr(name) + "/grants/" + strconv.Itoa(i)
	g := &grant{scope: name, index: i, tools: slices.Clone(gd.Tools), id: name + "#" + strconv.Itoa(i),
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
	return g
}

// rules compiles the rules section and returns its normal form.
func (c *compiler) rules(p *Policy, defs []RuleDef) []RuleDef {
	var norm []RuleDef
	seen := map[string]bool{}
	for i, rd := range defs {
		path := "/rules/" + strconv.Itoa(i)
		r := &rule{index: i, name: rd.Name, tools: slices.Clone(rd.Tools)}
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
		if c.dataRule(p, path, r, rd) {
			norm = append(norm, normDataRule(rd))
			continue
		}
		c.checkTools(path+"/tools", rd.Tools)
		if rd.When != "" {
			r.when = c.expr(path+"/when", rd.When, cel.BoolType)
		}
		if rd.Message != "" {
			r.message = c.expr(path+"/message", rd.Message, cel.StringType)
		}
		c.rememberExpr(path, rd, r)
		p.rules = append(p.rules, r)
		rd.Tools = slices.Clone(rd.Tools)
		norm = append(norm, rd)
	}
	return norm
}

// principals checks the principals section and returns its normal form.
func (c *compiler) principals(p *Policy, def Def) map[string][]string {
	if len(def.Principals) == 0 {
		return nil
	}
	norm := map[string][]string{}
	for _, id := range sortedKeys(def.Principals) {
		path := "/principals/" + escPtr(id)
		for j, s := range def.Principals[id] {
			if _, ok := def.Scopes[s]; !ok {
				c.errorf(fmt.Sprintf("%s/%d", path, j), "", "principal %q: unknown scope %q", id, s)
			}
		}
		p.principals[id] = slices.Clone(def.Principals[id])
		norm[id] = slices.Clone(def.Principals[id])
	}
	return norm
}

// redacts checks the redact section and returns its normal form.
func (c *compiler) redacts(p *Policy, defs map[string][]string) map[string][]string {
	if len(defs) == 0 {
		return nil
	}
	norm := map[string][]string{}
	for _, tools := range sortedKeys(defs) {
		path := "/redact/" + escPtr(tools)
		if err := glob.Validate(tools); err != nil || tools == "" {
			c.errorf(path, "", "bad tool pattern %q", tools)
		}
		for j, ptr := range defs[tools] {
			if ptr != "" && !strings.HasPrefix(ptr, "/") {
				c.errorf(fmt.Sprintf("%s/%d", path, j), "", "%q is not a JSON pointer (it must start with /)", ptr)
			}
		}
		p.redact = append(p.redact, redactRule{tools: tools, pointers: slices.Clone(defs[tools])})
		norm[tools] = slices.Clone(defs[tools])
	}
	return norm
}

// revision computes the policy's revision from the canonical JSON form of
// its normal definition, which must fit the size limit.
func (c *compiler) revision(p *Policy) bool {
	canon, err := json.Marshal(p.def)
	if err == nil && len(canon) > c.o.maxBytes {
		c.errs = append(c.errs, &Error{File: c.o.file, Msg: fmt.Sprintf(
			"policy is too large: its canonical form is %d bytes, over the limit of %d (raise it with WithMaxPolicyBytes)",
			len(canon), c.o.maxBytes)})
		return false
	}
	var v any
	if err == nil {
		// Every value takes at least a byte, so the byte limit bounds the
		// count of values too.
		v, err = safejson.Decode(canon, safejson.Limits{MaxBytes: c.o.maxBytes, MaxDepth: 16, MaxElements: c.o.maxBytes})
	}
	if err == nil {
		canon, err = canonjson.Append(nil, v)
	}
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: canonical form: %w", err))
		return false
	}
	sum := sha256.Sum256(canon)
	p.revision = hex.EncodeToString(sum[:])
	return true
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

// expr compiles one CEL expression that must produce want. An expression
// compiled before is reused with its new path.
func (c *compiler) expr(path, src string, want *cel.Type) *expr {
	key := want.String() + "\x00" + src
	if e, ok := c.done[key]; ok {
		return &expr{exprCore: e.exprCore, path: path}
	}
	e := c.compileExpr(path, src, want)
	if e != nil {
		c.done[key] = e
	}
	return e
}

// parsedExpr holds an expression's parse once it is made; copies of an
// expr share it.
type parsedExpr struct {
	atomic.Pointer[exprpb.ParsedExpr]
}

func (c *compiler) compileExpr(path, src string, want *cel.Type) *expr {
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
	if !loops && !c.checkFunctionCost(path, src, ast.NativeRep()) {
		return nil
	}
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
	e := &expr{path: path, exprCore: &exprCore{src: src, prg: prg, parsed: new(parsedExpr), cost: est, loops: loops, direct: directField(ast.NativeRep().Expr()),
		has: presenceTests(ast.NativeRep()), refs: refs, computedKey: computed}}
	e.argFields, e.fieldsOnly = argFields(ast.NativeRep())
	if !loops && want == cel.BoolType {
		e.clauses, e.complete = clausesOf(ast.NativeRep().Expr(), c.fields)
	}
	if e.session = readsSession(ast.NativeRep()); e.session {
		e.sessLabels, e.literals = readsSessionLabels(ast.NativeRep()), stringLiterals(ast.NativeRep())
	}
	return e
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
