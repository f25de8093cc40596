package scope

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"

	"github.com/agentguard/agentguard/internal/glob"
	"github.com/agentguard/agentguard/internal/hostname"
	"github.com/agentguard/agentguard/internal/safejson"
	"github.com/agentguard/agentguard/scope/internal/trace"
)

// Limits on expressions, enforced when a policy is compiled.
const (
	maxExprBytes = 16 << 10 // source length of one expression
	maxExprNodes = 2000     // AST nodes of one expression
)

var (
	baseEnvOnce sync.Once
	baseEnv     *cel.Env
	baseEnvErr  error
)

// env returns the CEL environment shared by all policies, in which args is
// a map of dynamic values. It is immutable and safe for concurrent use.
func env() (*cel.Env, error) {
	baseEnvOnce.Do(func() {
		baseEnv, baseEnvErr = cel.NewEnv(envOptions(nil)...)
	})
	return baseEnv, baseEnvErr
}

// envOptions returns the options of the policy environment. With a schema
// provider, args is typed from a tool's input schema (for type-checking
// only; programs always run in the untyped environment).
func envOptions(sp *schemaProvider) []cel.EnvOption {
	argsType := cel.MapType(cel.StringType, cel.DynType)
	native := []any{reflect.TypeFor[Principal](), reflect.TypeFor[Tool](), reflect.TypeFor[Call]()}
	native = append(native, nativeSessionTypes()...)
	opts := []cel.EnvOption{ext.NativeTypes(append(native, ext.ParseStructTags(true))...)}
	if sp != nil {
		argsType = sp.root
	}
	opts = append(opts,
		cel.Variable("principal", cel.ObjectType("scope.Principal")),
		cel.Variable("tool", cel.ObjectType("scope.Tool")),
		cel.Variable("call", cel.ObjectType("scope.Call")),
		cel.Variable("args", argsType),
	)
	opts = append(opts, sessionOptions()...)
	opts = append(opts,
		ext.Strings(),
		ext.Lists(),
		ext.Sets(),
		ext.Network(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserExpressionSizeLimit(maxExprBytes),
		cel.ExpressionNodeLimit(maxExprNodes),
		cel.Function("isUnder",
			cel.MemberOverload("string_isUnder_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(celIsUnder))),
		resolvesUnderFunction(),
		cel.Function("glob",
			cel.MemberOverload("string_glob_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(celGlob))),
		jsonAdapter(),
		exactDoubleFunction(),
	)
	opts = append(opts, hostFunctions()...)
	if sp != nil {
		// Last: libraries above register types, which needs cel-go's own
		// registry as the provider.
		opts = append(opts, func(e *cel.Env) (*cel.Env, error) {
			sp.base = e.CELTypeProvider()
			return cel.CustomTypeProvider(sp)(e)
		})
	}
	return opts
}

// IsUnder reports whether p names base itself or a path below it, after both
// are cleaned lexically (so "..", "." and repeated slashes cannot escape).
// "/w2" is not under "/w". An absolute path is never under a relative base
// and vice versa. Paths containing NUL or a backslash are rejected with an
// error, because their meaning depends on the system that finally opens them;
// in a policy an error never allows a call.
//
// It is the function behind the CEL member function path.isUnder(base).
func IsUnder(p, base string) (bool, error) {
	for _, s := range [2]string{p, base} {
		if s == "" {
			return false, errors.New("isUnder: empty path")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return false, fmt.Errorf("isUnder: path %q contains a NUL byte", s)
		}
		if strings.IndexByte(s, '\\') >= 0 {
			return false, fmt.Errorf("isUnder: path %q contains a backslash", s)
		}
	}
	if path.IsAbs(p) != path.IsAbs(base) {
		return false, nil
	}
	p, base = path.Clean(p), path.Clean(base)
	if !path.IsAbs(p) && (p == ".." || strings.HasPrefix(p, "../")) {
		return false, nil
	}
	switch {
	case p == base:
		return true, nil
	case base == "/":
		return true, nil
	case base == ".":
		return true, nil
	}
	return strings.HasPrefix(p, base) && p[len(base)] == '/', nil
}

// URLHost returns the canonical host of an absolute URL (see
// CanonicalHost), without port or brackets: the host a client connects
// to, however the URL spells it. It returns an error, and so never allows
// in a policy, for
//   - a URL without a scheme or host: "www.example.com/path" is a relative
//     reference whose host depends on the base URL a tool resolves it
//     against, so it is refused rather than guessed (write
//     "https://www.example.com/path");
//   - user information ("https://good@evil/"), a classic disguise;
//   - a backslash in the authority, which browsers read as "/" and curl
//     as part of the user name ("http://evil\@good/");
//   - a port above 65535, anything net/url rejects, and every host
//     CanonicalHost rejects (an IPv6 zone, "1.2.3.4.5", ...).
//
// It is the function behind the CEL functions url.urlHost() and
// urlHost(url).
func URLHost(raw string) (string, error) {
	h, err := hostname.FromURL(raw)
	if err != nil {
		return "", hostErr("urlHost", err)
	}
	return h, nil
}

func celIsUnder(lhs, rhs ref.Val) ref.Val {
	p, ok1 := lhs.(types.String)
	b, ok2 := rhs.(types.String)
	if !ok1 || !ok2 {
		return types.MaybeNoSuchOverloadErr(lhs)
	}
	ok, err := IsUnder(string(p), string(b))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.Bool(ok)
}

func celGlob(lhs, rhs ref.Val) ref.Val {
	s, ok1 := lhs.(types.String)
	pat, ok2 := rhs.(types.String)
	if !ok1 || !ok2 {
		return types.MaybeNoSuchOverloadErr(lhs)
	}
	if err := glob.Validate(string(pat)); err != nil {
		return types.WrapErr(err)
	}
	return matchGlob(string(s), string(pat))
}

func celURLHost(v ref.Val) ref.Val {
	s, ok := v.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(v)
	}
	h, err := URLHost(string(s))
	if err != nil {
		return types.WrapErr(err)
	}
	return types.String(h)
}

// jsonAdapter installs a type adapter that understands the values produced by
// decoding JSON exactly: json.Number becomes int, uint or double, and nested
// maps and lists are adapted lazily by the same adapter.
func jsonAdapter() cel.EnvOption {
	return func(e *cel.Env) (*cel.Env, error) {
		return cel.CustomTypeAdapter(&adapter{base: e.CELTypeAdapter()})(e)
	}
}

type adapter struct{ base types.Adapter }

func (a *adapter) NativeToValue(v any) ref.Val {
	switch x := v.(type) {
	// The common leaves of decoded arguments and principal attributes first,
	// with the same results as cel-go's registry, which is three adapters
	// further down.
	case string:
		return types.String(x)
	case bool:
		return types.Bool(x)
	case float64:
		return types.Double(x)
	case int64:
		return types.Int(x)
	case int:
		return types.Int(x)
	case nil:
		return types.NullValue
	case *argsView:
		return x
	case json.Number:
		return numberVal(x)
	case map[string]any:
		return types.NewStringInterfaceMap(a, x)
	case []any:
		return types.NewList(a, x)
	}
	return a.base.NativeToValue(v)
}

// numberVal converts an exact JSON number to the closest CEL value: an int
// when it is integral and fits, else a uint, else a double.
func numberVal(n json.Number) ref.Val {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := n.Int64(); err == nil {
			return types.Int(i)
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return types.Uint(u)
		}
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return types.NewErr("number %s is out of range", s)
	}
	return types.Double(f)
}

// activation resolves the four CEL variables of a decision without building
// maps or CEL values: principal, tool and call are pointers to native
// structs, whose fields the checked programs read by offset (cel-go's
// native-type field getters), and args is the decoded JSON, read through
// the adapter above. Only a value used whole (principal == x) is converted.
// Activations are pooled.
type activation struct {
	principal Principal
	tool      Tool
	call      Call
	args      argsView
	sess      sessionVars
	task      Task
	trace     *trace.Recorder
	app       appCalls // application functions (functions.go)
	// frame is cel-go's evaluation frame over this activation, made on
	// first use and shared by every loop-free program of the decision.
	frame *interpreter.ExecutionFrame
	// hits is scratch space for a phase's cursor (prefilter.go).
	hits []int32
}

// argsView is the args variable: the decoded arguments, read field by
// field, with each scalar field converted to its CEL value once per
// decision however many expressions read it (a policy typically reads
// args.path in several rules and a grant). Maps and lists are returned as
// they are and adapted lazily, as before.
//
// It is also the CEL map value of args, so that a key it lacks (has(args.x)
// on a call without x) or a whole-map use (size(args), "x" in args) costs
// no conversion; the less common map operations go to a map value built
// on first use.
type argsView struct {
	m     map[string]any
	full  traits.Mapper
	cache []argsEntry
}

type argsEntry struct {
	key string
	val ref.Val
}

// value returns the CEL value of field k, converting a scalar once.
func (v *argsView) value(k string) (ref.Val, bool) {
	x, ok := v.FindStringKey(k)
	if !ok {
		return nil, false
	}
	if r, ok := x.(ref.Val); ok {
		return r, true
	}
	return v.mapper().Get(types.String(k)), true
}

// mapper returns cel-go's own map value of the arguments, built on first
// use.
func (v *argsView) mapper() traits.Mapper {
	if v.full == nil {
		v.full = types.NewStringInterfaceMap(baseEnv.CELTypeAdapter(), v.m)
	}
	return v.full
}

// Find implements traits.Mapper.
func (v *argsView) Find(key ref.Val) (ref.Val, bool) {
	if k, ok := key.(types.String); ok {
		return v.value(string(k))
	}
	return v.mapper().Find(key)
}

// Get implements traits.Indexer.
func (v *argsView) Get(key ref.Val) ref.Val {
	if k, ok := key.(types.String); ok {
		if r, ok := v.value(string(k)); ok {
			return r
		}
	}
	return v.mapper().Get(key)
}

// Contains implements traits.Container.
func (v *argsView) Contains(key ref.Val) ref.Val {
	if k, ok := key.(types.String); ok {
		_, found := v.m[string(k)]
		return types.Bool(found)
	}
	return v.mapper().Contains(key)
}

// Size implements traits.Sizer.
func (v *argsView) Size() ref.Val { return types.Int(len(v.m)) }

// Iterator implements traits.Iterable.
func (v *argsView) Iterator() traits.Iterator { return v.mapper().Iterator() }

// ConvertToNative implements ref.Val.
func (v *argsView) ConvertToNative(t reflect.Type) (any, error) {
	return v.mapper().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (v *argsView) ConvertToType(t ref.Type) ref.Val { return v.mapper().ConvertToType(t) }

// Equal implements ref.Val.
func (v *argsView) Equal(other ref.Val) ref.Val { return v.mapper().Equal(other) }

// Type implements ref.Val.
func (v *argsView) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (v *argsView) Value() any { return v.m }

// maxArgsCache bounds the per-decision cache; fields beyond it are
// converted on each read.
const maxArgsCache = 16

// FindStringKey is how cel-go's field selection (args.x, has(args.x))
// reads a value that is not one of its known map types.
func (v *argsView) FindStringKey(k string) (any, bool) {
	for i := range v.cache {
		if v.cache[i].key == k {
			return v.cache[i].val, true
		}
	}
	x, ok := v.m[k]
	if !ok {
		return nil, false
	}
	var val ref.Val
	switch t := x.(type) {
	case string:
		val = types.String(t)
	case json.Number:
		val = numberVal(t)
	case bool:
		val = types.Bool(t)
	case float64:
		val = types.Double(t)
	default:
		return x, true
	}
	if len(v.cache) < maxArgsCache {
		v.cache = append(v.cache, argsEntry{key: k, val: val})
	}
	return val, true
}

var activations = sync.Pool{New: func() any { return new(activation) }}

func getActivation(in *Input) *activation {
	a := activations.Get().(*activation)
	a.principal, a.tool, a.call, a.args.m = in.Principal, in.Tool, in.Call, in.Args
	if a.args.m == nil {
		a.args.m = emptyArgs
	}
	a.sess.reset(in.Session)
	if in.Task != nil {
		a.task = *in.Task
	}
	return a
}

func putActivation(a *activation) {
	if a.frame != nil {
		a.frame.Close()
	}
	clear(a.args.cache) // keep no argument values alive in the pool
	a.sess.reset(nil)
	*a = activation{args: argsView{cache: a.args.cache[:0]}, sess: a.sess, hits: a.hits[:0]}
	activations.Put(a)
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "principal":
		return &a.principal, true
	case "tool":
		return &a.tool, true
	case "call":
		return &a.call, true
	case "args":
		return &a.args, true
	case "session":
		a.sess.fill()
		return &a.sess, true
	case "task":
		return &a.task, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

var emptyArgs = map[string]any{}

// exactDoubleFunction replaces cel-go's double(string): a number sent as a
// string ({"amount":"100.0000000000000001"}, which a handler field tagged
// `json:"amount,string"` reads as the exact decimal) converts only if the
// double holds the decimal exactly ([safejson.ExactNumber]); otherwise,
// and for a string that is not a JSON number, double() is an error, which
// never allows a call. Rounding would let the policy judge 100 while the
// tool reads more.
func exactDoubleFunction() cel.EnvOption {
	return cel.Function("double",
		cel.Overload("string_to_double", []*cel.Type{cel.StringType}, cel.DoubleType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				s, ok := v.(types.String)
				if !ok {
					return types.NoSuchOverloadErr()
				}
				if !safejson.ExactNumber(string(s)) {
					return types.NewErr("double: %s is not a number a double holds exactly", quoteShort(string(s)))
				}
				f, err := strconv.ParseFloat(string(s), 64)
				if err != nil {
					return types.NewErr("double: %s is not a number a double holds exactly", quoteShort(string(s)))
				}
				return types.Double(f)
			})))
}

// quoteShort quotes s, cut to 40 bytes.
func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}
