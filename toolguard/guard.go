package toolguard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/fastschema"
	"github.com/agentguard/agentguard/scope"
)

// Handler runs a tool. args is the exact JSON the guard validated (so the
// tool cannot parse something other than what was checked): no object in it
// has keys that fold alike or a key folding like a property the schema
// declares for it or a member the policy reads by name, and every number means the same value read exactly or
// as a float64, so decoding args with encoding/json gives the values at the
// exact keys the guard validated (see "Arguments" in the package
// documentation). The result is returned by [Guard.Call] unchanged.
type Handler func(ctx context.Context, args json.RawMessage) (any, error)

// Tool is a tool to register with a guard.
type Tool struct {
	// Name is 1 to 128 characters of A-Z a-z 0-9 _ - . / :, and not
	// one of the reserved names ResourceReadName, ResourceSubscribeName,
	// ResourceUnsubscribeName and PromptGetName.
	Name        string
	Title       string
	Description string
	// InputSchema is the JSON Schema of the arguments object. Empty means
	// {"type":"object"}. It must compile (draft 2020-12 by default; $ref to
	// anything outside the schema is refused).
	InputSchema json.RawMessage
	// Annotations are visible to policy as tool.annotations, e.g. MCP's
	// readOnlyHint and destructiveHint.
	Annotations map[string]any
	// Handler runs the tool. Required.
	Handler Handler
}

// Guard guards tool calls: see the package documentation for the pipeline.
// Create one with [New]; the zero value is not usable. A Guard is safe for
// concurrent use.
type Guard struct {
	policy   atomic.Pointer[scope.Policy]
	tools    sync.Map   // name → *tool; a map copied on each Register would make registering n tools cost n²
	regMu    sync.Mutex // serialises Register, Unregister and SetPolicy
	schemas  schemaCache
	sink     audit.Sink
	approver Approver
	limiter  Limiter
	redactor *audit.Redactor
	timeout  time.Duration
	maxRes   int // WithMaxResultBytes (results.go)
	argLim   ArgumentLimits
	logger   *slog.Logger

	sessions        SessionStore
	approvalTimeout time.Duration
	candidate       atomic.Pointer[scope.Policy]
	telemetry       *telemetry
	shadow          shadowState
	now             func() time.Time
	idPrefix        [8]byte
	idSeq           atomic.Uint64
}

type tool struct {
	Tool
	schema *fullSchema
	fast   *fastschema.Validator // nil when the schema is outside its subset
	keys   *schemaKeys           // the key check without the policy's reads
	doc    any                   // the input schema, decoded
	// pkeys is keys with the members the policy in force reads by name.
	pkeys     atomic.Pointer[policyKeys]
	sensitive []string // JSON pointer patterns of writeOnly / x-sensitive values
	info      scope.Tool
}

// Option configures a [Guard].
type Option func(*Guard) error

// WithSink sets where decision records go. Required: use audit.Discard to
// opt out of auditing explicitly.
func WithSink(s audit.Sink) Option {
	return func(g *Guard) error {
		if s == nil {
			return errors.New("toolguard: WithSink(nil)")
		}
		g.sink = s
		return nil
	}
}

// WithApprover sets who answers ask rules. Without one, every call an ask
// rule matches is denied.
func WithApprover(a Approver) Option {
	return func(g *Guard) error { g.approver = a; return nil }
}

// WithApprovalTimeout bounds how long a call waits for its approver; at
// the deadline the approver's context is done and the call is denied.
func WithApprovalTimeout(d time.Duration) Option {
	return func(g *Guard) error { g.approvalTimeout = d; return nil }
}

// WithLimiter replaces the default in-memory [MemoryLimiter].
func WithLimiter(l Limiter) Option {
	return func(g *Guard) error {
		if l == nil {
			return errors.New("toolguard: WithLimiter(nil)")
		}
		g.limiter = l
		return nil
	}
}

// WithToolTimeout bounds each handler's run time. A handler still running
// at the deadline is abandoned with [ErrToolTimeout]; its context is
// cancelled.
func WithToolTimeout(d time.Duration) Option {
	return func(g *Guard) error { g.timeout = d; return nil }
}

// WithArgumentLimits bounds argument decoding.
func WithArgumentLimits(l ArgumentLimits) Option {
	return func(g *Guard) error { g.argLim = l; return nil }
}

// WithRedactionKey sets the HMAC key of the digests that replace sensitive
// argument values in records. With the same key, the same value gives the
// same digest across processes; without one, a random key is used per
// Guard, so digests correlate only within the process.
func WithRedactionKey(key []byte) Option {
	return func(g *Guard) error { g.redactor = audit.NewRedactor(key); return nil }
}

// WithLogger sets where the guard logs warnings: a tool registered (or a
// policy set) such that no scope of the policy can grant the tool, so that
// every call to it will be denied (see [scope.Policy.CanGrant]). The
// default is [slog.Default]; pass slog.New(slog.DiscardHandler) to silence
// them.
func WithLogger(l *slog.Logger) Option {
	return func(g *Guard) error {
		if l == nil {
			return errors.New("toolguard: WithLogger(nil)")
		}
		g.logger = l
		return nil
	}
}

// ArgumentLimits bound the decoding of a call's arguments. Zero fields mean
// the defaults.
type ArgumentLimits struct {
	MaxBytes    int // default 1 MiB
	MaxDepth    int // default 64
	MaxElements int // default 100,000 values in total
}

// New returns a guard enforcing policy p. A sink (WithSink) is required.
func New(p *scope.Policy, opts ...Option) (*Guard, error) {
	if p == nil {
		return nil, errors.New("toolguard: nil policy")
	}
	g := &Guard{now: time.Now}
	g.policy.Store(p)
	for _, o := range opts {
		if err := o(g); err != nil {
			return nil, err
		}
	}
	if g.sink == nil {
		return nil, errors.New("toolguard: no audit sink: use WithSink (audit.Discard to opt out explicitly)")
	}
	if g.limiter == nil {
		g.limiter = &MemoryLimiter{}
	}
	if g.sessions == nil {
		g.sessions = NewMemorySessions(MemorySessionOptions{})
	}
	if g.logger == nil {
		g.logger = slog.Default()
	}
	if g.redactor == nil {
		g.redactor = audit.NewRedactor(nil)
	}
	if _, err := rand.Read(g.idPrefix[:]); err != nil {
		return nil, fmt.Errorf("toolguard: %w", err)
	}
	return g, nil
}

// Policy returns the policy in force.
func (g *Guard) Policy() *scope.Policy { return g.policy.Load() }

// SetPolicy replaces the policy atomically: every call is decided wholly by
// one policy, and its record names that policy's revision.
//
// The new policy is type-checked against the registered tools' schemas
// first; if it does not fit, the old policy stays and the error says why.
// Registered tools that no scope of the new policy can grant are logged as
// warnings (see [WithLogger]).
func (g *Guard) SetPolicy(p *scope.Policy) error {
	if p == nil {
		return errors.New("toolguard: nil policy")
	}
	g.regMu.Lock()
	defer g.regMu.Unlock()
	schemas := map[string]json.RawMessage{}
	g.tools.Range(func(_, v any) bool {
		t := v.(*tool)
		schemas[t.Name] = t.InputSchema
		return true
	})
	if err := p.CheckTools(schemas); err != nil {
		return fmt.Errorf("toolguard: the policy does not fit the registered tools: %w", err)
	}
	g.policy.Store(p)
	for _, name := range slices.Sorted(maps.Keys(schemas)) {
		g.warnUngranted(p, name)
	}
	return nil
}

// warnUngranted logs a warning if no scope of p can grant the tool.
func (g *Guard) warnUngranted(p *scope.Policy, name string) {
	if !p.CanGrant(name) {
		g.logger.Warn("toolguard: no scope of the policy grants this tool, so every call to it will be denied", "tool", name, "policy", p.Revision())
	}
}

// Register adds a tool. The input schema is checked now; a schema that
// does not compile, a bad or duplicate name, or a missing handler is an
// error. (A schema that the fast validator holds to the meta-schema has
// its full validator compiled by the first call that needs it.) A tool
// that no scope of the policy can grant (a misspelt name, a grant that was
// forgotten) is registered, and logged as a warning (see
// [WithLogger]): every call to it will be denied until a policy grants it.
func (g *Guard) Register(t Tool) error {
	if err := validName(t.Name); err != nil {
		return err
	}
	if t.Handler == nil {
		return fmt.Errorf("toolguard: tool %q has no handler", t.Name)
	}
	if len(t.InputSchema) == 0 {
		t.InputSchema = json.RawMessage(`{"type":"object"}`)
	} else {
		t.InputSchema = slices.Clone(t.InputSchema)
	}
	cs, err := g.schemas.compile(t.Name, t.InputSchema)
	if err != nil {
		return err
	}
	nt := &tool{Tool: t, schema: cs.full, fast: cs.fast, keys: cs.keys, doc: cs.doc, sensitive: cs.sensitive,
		info: scope.Tool{Name: t.Name, Annotations: t.Annotations}}

	g.regMu.Lock()
	defer g.regMu.Unlock()
	// The policy's expressions are type-checked against the schema, so a
	// misspelt argument is an error now, not a condition that never holds.
	// Under the lock, so that a SetPolicy cannot slip in between and
	// install a policy the tool was not checked against.
	if err := g.policy.Load().CheckTools(map[string]json.RawMessage{t.Name: t.InputSchema}); err != nil {
		return fmt.Errorf("toolguard: tool %q does not fit the policy: %w", t.Name, err)
	}
	if _, dup := g.tools.Load(t.Name); dup {
		return fmt.Errorf("toolguard: tool %q is already registered", t.Name)
	}
	g.tools.Store(t.Name, nt)
	g.warnUngranted(g.policy.Load(), t.Name)
	return nil
}

// Register registers a tool whose input schema is derived from the Go type
// In (with github.com/google/jsonschema-go, as mcp-go does) and whose
// arguments are decoded into In, rejecting unknown fields. A key that names
// a field in other letter case (encoding/json would match it) is denied
// before the handler runs, like any key that folds like another.
func Register[In, Out any](g *Guard, name, description string, fn func(ctx context.Context, in In) (Out, error)) error {
	s, err := jsonschema.For[In](nil)
	if err != nil {
		return fmt.Errorf("toolguard: tool %q: deriving schema: %w", name, err)
	}
	schema, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("toolguard: tool %q: %w", name, err)
	}
	return g.Register(Tool{
		Name:        name,
		Description: description,
		InputSchema: schema,
		Handler: func(ctx context.Context, args json.RawMessage) (any, error) {
			var in In
			dec := json.NewDecoder(bytes.NewReader(args))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return nil, fmt.Errorf("toolguard: tool %q: decoding arguments: %w", name, err)
			}
			return fn(ctx, in)
		},
	})
}

// ToolInfo describes a registered tool.
type ToolInfo struct {
	Name        string
	Title       string
	Description string
	InputSchema json.RawMessage
	Annotations map[string]any
}

// Tools returns the registered tools, sorted by name.
func (g *Guard) Tools() []ToolInfo {
	out := []ToolInfo{}
	g.tools.Range(func(_, v any) bool {
		t := v.(*tool)
		out = append(out, ToolInfo{Name: t.Name, Title: t.Title, Description: t.Description,
			InputSchema: slices.Clone(t.InputSchema), Annotations: t.Annotations})
		return true
	})
	slices.SortFunc(out, func(a, b ToolInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

func validName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("toolguard: tool name %s must be 1 to 128 characters", quote(name))
	}
	if reservedName(name) {
		return fmt.Errorf("toolguard: tool name %s is reserved for the records of resource reads, subscriptions and prompt gets", quote(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '_' || c == '-' || c == '.' || c == '/' || c == ':'
		if !ok {
			return fmt.Errorf("toolguard: tool name %s: character %q is not allowed (use A-Z a-z 0-9 _ - . / :)", quote(name), c)
		}
	}
	return nil
}

// policyKeys is a tool's key check under one policy.
type policyKeys struct {
	pol  *scope.Policy
	keys *fastschema.Keys
}

// keysFor returns the tool's key check under pol: keys folding like a
// property the schema declares, or like a member pol's expressions read
// by name ([scope.Policy.ArgRefs]) — a free-form object ({"type":"object"})
// declares nothing, yet a rule reading args.path must not be walked around
// with {"PATH":...}, which a handler decoding into a struct reads as path.
// It is built on the first call under each policy; nil when no key needs
// checking.
func (t *tool) keysFor(pol *scope.Policy) *fastschema.Keys {
	if pk := t.pkeys.Load(); pk != nil && pk.pol == pol {
		return pk.keys
	}
	var keys *fastschema.Keys
	if refs := pol.ArgRefs(t.Name); len(refs) == 0 {
		keys = t.keys.get()
	} else {
		var exact [][]string
		var anywhere []string
		for _, r := range refs {
			if r.Anywhere {
				anywhere = append(anywhere, r.Path...)
			} else {
				exact = append(exact, r.Path)
			}
		}
		keys = fastschema.CompileKeysReading(t.doc, exact, anywhere)
	}
	t.pkeys.Store(&policyKeys{pol: pol, keys: keys})
	return keys
}

// newID returns a call id unique to this guard: a random per-guard prefix
// and a counter, in hex.
func (g *Guard) newID() string {
	var b [16]byte
	copy(b[:8], g.idPrefix[:])
	n := g.idSeq.Add(1)
	for i := 15; i >= 8; i-- {
		b[i] = byte(n)
		n >>= 8
	}
	var hx [32]byte
	hex.Encode(hx[:], b[:])
	return string(hx[:])
}

// Visible reports whether the principal in ctx may see the named tool in a
// tool list: the tool is registered and the policy's [scope.Policy.Visible]
// says so. Without a principal nothing is visible.
func (g *Guard) Visible(ctx context.Context, name string) bool {
	if _, ok := g.lookup(name); !ok {
		return false
	}
	pr := principalFrom(ctx)
	if pr == nil {
		return false
	}
	return g.policy.Load().Visible(*pr, name)
}

// Tool returns the registered tool with that name.
func (g *Guard) Tool(name string) (ToolInfo, bool) {
	t, ok := g.lookup(name)
	if !ok {
		return ToolInfo{}, false
	}
	return ToolInfo{Name: t.Name, Title: t.Title, Description: t.Description,
		InputSchema: slices.Clone(t.InputSchema), Annotations: t.Annotations}, true
}

// Unregister removes a tool; later calls to it are denied as unknown. It
// reports whether the tool was registered. A proxy uses it when an upstream
// tool changes or disappears.
func (g *Guard) Unregister(name string) bool {
	g.regMu.Lock()
	defer g.regMu.Unlock()
	_, ok := g.tools.LoadAndDelete(name)
	return ok
}

// lookup returns the registered tool with that name.
func (g *Guard) lookup(name string) (*tool, bool) {
	v, ok := g.tools.Load(name)
	if !ok {
		return nil, false
	}
	return v.(*tool), true
}
