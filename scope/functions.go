package scope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/functions"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/agentguard/agentguard/scope/internal/trace"
)

// Defaults of a [Function] whose Cost or Timeout is zero.
const (
	DefaultFunctionCost    = 100
	DefaultFunctionTimeout = time.Second
)

// Limits on the values crossing between CEL and an application function.
const (
	maxFunctionDepth  = 32
	maxFunctionValues = 100_000
)

// Type is the CEL type of an application function's parameter or result.
// The zero Type is invalid. Compare types with [Type.Equal].
type Type struct {
	kind typeKind
	elem *Type // list and map element
}

type typeKind uint8

const (
	kindInvalid typeKind = iota
	kindBool
	kindInt
	kindUint
	kindDouble
	kindString
	kindDyn
	kindList
	kindMap
)

// The scalar types. An int result may be any Go signed or unsigned integer
// that fits an int64, a uint result one that fits a uint64, a double
// result a float32 or float64 (not an integer: a function declared to
// return a double that returns 5 is wrong), a string a string, a bool a
// bool. Dyn accepts any JSON-like value: nil, bool, string, Go numbers,
// json.Number, and slices and string-keyed maps of those.
var (
	BoolType   = Type{kind: kindBool}
	IntType    = Type{kind: kindInt}
	UintType   = Type{kind: kindUint}
	DoubleType = Type{kind: kindDouble}
	StringType = Type{kind: kindString}
	DynType    = Type{kind: kindDyn}
)

// ListOf is the type list(elem): a Go slice whose items are elem.
func ListOf(elem Type) Type { return Type{kind: kindList, elem: &elem} }

// Equal reports whether t and u are the same type. Use it rather than ==,
// which compares list and map types by identity: ListOf(StringType) ==
// ListOf(StringType) is false.
func (t Type) Equal(u Type) bool {
	if t.kind != u.kind || (t.elem == nil) != (u.elem == nil) {
		return false
	}
	return t.elem == nil || t.elem.Equal(*u.elem)
}

// MapOf is the type map(string, elem): a Go map with string keys whose
// values are elem.
func MapOf(elem Type) Type { return Type{kind: kindMap, elem: &elem} }

// String returns the type as CEL writes it, such as list(string).
func (t Type) String() string {
	switch t.kind {
	case kindBool:
		return "bool"
	case kindInt:
		return "int"
	case kindUint:
		return "uint"
	case kindDouble:
		return "double"
	case kindString:
		return "string"
	case kindDyn:
		return "dyn"
	case kindList:
		return "list(" + t.elem.String() + ")"
	case kindMap:
		return "map(string, " + t.elem.String() + ")"
	}
	return "invalid"
}

// maxTypeDepth bounds the nesting of a parsed type: a value nested deeper
// could not cross between CEL and a function anyway.
const maxTypeDepth = maxFunctionDepth

// ParseType parses a type as [Type.String] writes it: bool, int, uint,
// double, string, dyn, list(T) or map(string, T), with any amount of
// spaces around the names, parentheses and comma ("map(string,int)" and
// "list( string )" are accepted). Maps have string keys only. Names are
// lower case, as in CEL. It is the inverse of [Type.String]: for every
// valid Type t, ParseType(t.String()) returns the same type, and the
// String of what ParseType returns is its one canonical spelling.
func ParseType(s string) (Type, error) {
	p := typeParser{s: s}
	t, err := p.parse(0)
	if err == nil {
		p.space()
		if p.i < len(p.s) {
			err = p.errorf("unexpected %q after the type", p.rest())
		}
	}
	if err != nil {
		return Type{}, fmt.Errorf("scope: type %q: %w", s, err)
	}
	return t, nil
}

// typeParser is a recursive-descent parser of ParseType's grammar.
type typeParser struct {
	s string
	i int
}

func (p *typeParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// rest is the unparsed input, shortened for messages.
func (p *typeParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 20 {
		r = r[:20] + "…"
	}
	return r
}

func (p *typeParser) errorf(format string, args ...any) error {
	return fmt.Errorf("at offset %d: "+format, append([]any{p.i}, args...)...)
}

// expect consumes c, after optional spaces.
func (p *typeParser) expect(c byte) error {
	p.space()
	if p.i >= len(p.s) {
		return p.errorf("want %q, found the end", c)
	}
	if p.s[p.i] != c {
		return p.errorf("want %q, found %q", c, p.rest())
	}
	p.i++
	return nil
}

func (p *typeParser) parse(depth int) (Type, error) {
	if depth > maxTypeDepth {
		return Type{}, p.errorf("types nest more than %d deep", maxTypeDepth)
	}
	p.space()
	start := p.i
	for p.i < len(p.s) && (p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z' || p.s[p.i] >= '0' && p.s[p.i] <= '9' || p.s[p.i] == '_') {
		p.i++
	}
	name := p.s[start:p.i]
	switch name {
	case "bool":
		return BoolType, nil
	case "int":
		return IntType, nil
	case "uint":
		return UintType, nil
	case "double":
		return DoubleType, nil
	case "string":
		return StringType, nil
	case "dyn":
		return DynType, nil
	case "list", "map":
		if err := p.expect('('); err != nil {
			return Type{}, err
		}
		if name == "map" {
			key, err := p.parse(depth + 1)
			if err != nil {
				return Type{}, err
			}
			if key != StringType {
				return Type{}, fmt.Errorf("map keys must be string, not %s", key)
			}
			if err := p.expect(','); err != nil {
				return Type{}, err
			}
		}
		elem, err := p.parse(depth + 1)
		if err != nil {
			return Type{}, err
		}
		if err := p.expect(')'); err != nil {
			return Type{}, err
		}
		if name == "map" {
			return MapOf(elem), nil
		}
		return ListOf(elem), nil
	case "":
		if p.i >= len(p.s) {
			return Type{}, p.errorf("want a type, found the end")
		}
		return Type{}, p.errorf("want a type, found %q", p.rest())
	}
	p.i = start
	return Type{}, p.errorf("unknown type %q (want bool, int, uint, double, string, dyn, list(T) or map(string, T))", name)
}

func (t Type) valid() bool {
	switch t.kind {
	case kindInvalid:
		return false
	case kindList, kindMap:
		return t.elem != nil && t.elem.valid()
	}
	return true
}

func (t Type) cel() *cel.Type {
	switch t.kind {
	case kindBool:
		return cel.BoolType
	case kindInt:
		return cel.IntType
	case kindUint:
		return cel.UintType
	case kindDouble:
		return cel.DoubleType
	case kindString:
		return cel.StringType
	case kindList:
		return cel.ListType(t.elem.cel())
	case kindMap:
		return cel.MapType(cel.StringType, t.elem.cel())
	}
	return cel.DynType
}

// Function is a function the application adds to the policy language,
// backed by Go code: live data a policy file cannot hold, such as an
// account's balance, the user's current contacts, or whether a file id
// belongs to the user. Register it with [WithFunction] when the policy is
// loaded; rules then call it like any CEL function:
//
//	balance(principal.id) >= double(args.amount)
//
// The declared signature is type-checked at load: an expression that calls
// an undeclared function, or passes or expects the wrong types, fails to
// load. A call's Cost counts against the expression's cost limit
// ([WithCostLimit]), statically at load and at run time inside
// comprehensions. Each call gets a deadline (Timeout).
//
// A call fails, and so never allows (a deny rule that fails denies, a
// grant that fails does not match), when Impl returns an error, does not
// return within Timeout (or before the decision's context ends), panics,
// or returns a value that is not of the declared Result type. The
// decision's reason then says which function failed and how, without the
// error's text; the error itself is in [Decision.Errors] (errors.As finds
// a *[FunctionError]) and in the decision's trace.
//
// Impl may be called concurrently, from several decisions at once. It
// receives the decision's context with the deadline, and the arguments as
// Go values: string, int64, uint64, float64, bool, nil, []any and
// map[string]any (copies: Impl may keep them). Impl should return when
// ctx is done; one that does not is abandoned (its goroutine runs on until
// it returns) and the call fails.
type Function struct {
	// Name is how expressions call it: an identifier, optionally
	// qualified with dots ("bank.balance"). It must not be a function the
	// policy language already has.
	Name string
	// Params are the parameter types, in order.
	Params []Type
	// Result is the type of the value Impl returns.
	Result Type
	// Cost is what one call counts against the cost limit, in cel-go cost
	// units (roughly one per operation); 0 means [DefaultFunctionCost].
	Cost uint64
	// Timeout bounds one call; 0 means [DefaultFunctionTimeout].
	Timeout time.Duration
	// Impl computes the result.
	Impl func(ctx context.Context, args ...any) (any, error)
}

// FunctionError is the error of a failed call of an application
// [Function]. Its text names the function and how it failed, but not the
// error Impl returned, which the text of a denial should not carry (it may
// hold anything); Unwrap returns that error.
type FunctionError struct {
	// Name is the function's name.
	Name string
	// What says how the call failed: "failed", "did not answer within
	// 50ms", "panicked", "returned int, not the declared double", ...
	What string
	// Err is the underlying error, if any: Impl's error, the context's
	// error, or the panic value as an error.
	Err error
}

// Error returns "function NAME WHAT".
func (e *FunctionError) Error() string { return "function " + e.Name + " " + e.What }

// Unwrap returns the underlying error.
func (e *FunctionError) Unwrap() error { return e.Err }

// WithFunction adds an application function to the policy language. A
// policy that calls a function must be loaded with it: calls are
// type-checked and bound at load, never later, so a policy never runs with
// a function missing. Loading fails if two functions share a name, a name
// is taken by the policy language, or the declaration is incomplete.
// Functions are not part of the policy's revision: a policy means what its
// source says together with the functions the application gives it.
func WithFunction(f Function) Option {
	return func(o *options) { o.functions = append(o.functions, f) }
}

// boundFunction is a declared, validated Function.
type boundFunction struct {
	Function
	overload string
}

var funcName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// reservedNames are identifiers CEL or the policy's variables use, which
// a function may not take even where CEL would allow it.
var reservedNames = map[string]bool{
	"principal": true, "tool": true, "call": true, "args": true, "session": true, "task": true,
	"result": true, "findings": true, "in": true, "true": true, "false": true, "null": true,
	"has": true, "all": true, "exists": true, "exists_one": true, "map": true, "filter": true,
}

// withFunctions validates the options' functions and returns base
// extended with their declarations, or base itself when there are none.
func (c *compiler) withFunctions(base *cel.Env) (*cel.Env, map[string]*boundFunction, []cel.EnvOption) {
	if len(c.o.functions) == 0 {
		return base, nil, nil
	}
	fns := map[string]*boundFunction{}
	var opts []cel.EnvOption
	var models []cost.OverloadModel
	for i, f := range c.o.functions {
		if msg := c.checkFunction(base, fns, f); msg != "" {
			c.errs = append(c.errs, &Error{File: c.o.file, Msg: fmt.Sprintf("application function %d (%q): %s", i, f.Name, msg)})
			continue
		}
		if f.Cost == 0 {
			f.Cost = DefaultFunctionCost
		}
		if f.Timeout <= 0 {
			f.Timeout = DefaultFunctionTimeout
		}
		bf := &boundFunction{Function: f, overload: "app_" + strings.ReplaceAll(f.Name, ".", "_") + "_" + strconv.Itoa(i)}
		bf.Params = append([]Type(nil), f.Params...)
		fns[f.Name] = bf
		params := make([]*cel.Type, len(f.Params))
		for j, p := range f.Params {
			params[j] = p.cel()
		}
		opts = append(opts, cel.Function(f.Name,
			cel.Overload(bf.overload, params, f.Result.cel(), cel.LateFunctionBinding())))
		models = append(models, cost.Overload(bf.overload, cost.EvalCost(cost.Const(f.Cost))))
	}
	if len(c.errs) > 0 {
		return base, nil, nil
	}
	opts = append(opts, cel.CostModel(models...))
	e, err := base.Extend(opts...)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("scope: declaring application functions: %w", err))
		return base, nil, nil
	}
	return e, fns, opts
}

// checkFunction returns what is wrong with a declaration, or "".
func (c *compiler) checkFunction(base *cel.Env, seen map[string]*boundFunction, f Function) string {
	switch {
	case !funcName.MatchString(f.Name):
		return "the name must be an identifier, optionally qualified with dots"
	case reservedNames[f.Name]:
		return "the name is reserved"
	case seen[f.Name] != nil:
		return "another function has this name"
	case base.HasFunction(f.Name):
		return "the policy language already has a function of this name"
	case f.Impl == nil:
		return "Impl is nil"
	case !f.Result.valid():
		return "the result type is missing or invalid"
	}
	for j, p := range f.Params {
		if !p.valid() {
			return fmt.Sprintf("parameter %d has a missing or invalid type", j)
		}
	}
	return ""
}

// checkFunctionCost refuses an expression without comprehensions whose
// application function calls, each made at most once, could together
// exceed the cost limit. (In a comprehension, calls are counted at run
// time against the same limit.)
func (c *compiler) checkFunctionCost(path, src string, a *celast.AST) bool {
	if len(c.fns) == 0 {
		return true
	}
	var total uint64
	for _, n := range celast.MatchDescendants(celast.NavigateAST(a), celast.KindMatcher(celast.CallKind)) {
		if f := c.fns[n.AsCall().FunctionName()]; f != nil {
			total += f.Cost
		}
	}
	if total > c.o.costLimit {
		c.errorf(path, src, "the application functions it calls cost up to %d, over the limit of %d", total, c.o.costLimit)
		return false
	}
	return true
}

// appCalls is what an activation needs to call application functions: the
// policy's functions and the decision's context.
type appCalls struct {
	fns map[string]*boundFunction
	ctx context.Context
}

// ResolveFunction implements cel-go's FunctionActivation: it supplies the
// late-bound application functions, bound to the decision's context and
// trace.
func (a *activation) ResolveFunction(name string) (functions.LateBoundOp, bool) {
	f, ok := a.app.fns[name]
	if !ok {
		return nil, false
	}
	return func(_ string, args ...ref.Val) ref.Val {
		ctx := a.app.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		return f.call(ctx, a.trace, args)
	}, true
}

type fnResult struct {
	v   any
	err error
}

// call runs the function with a deadline and checks its result.
func (f *boundFunction) call(ctx context.Context, rec *trace.Recorder, args []ref.Val) ref.Val {
	start := time.Now()
	native := make([]any, len(args))
	budget := maxFunctionValues
	var err error
	for i, a := range args {
		if native[i], err = toNative(a, 0, &budget); err != nil {
			break
		}
	}
	var out ref.Val
	var ferr *FunctionError
	if err != nil {
		ferr = &FunctionError{Name: f.Name, What: "could not be given its arguments", Err: err}
	} else {
		var v any
		v, ferr = f.run(ctx, native)
		if ferr == nil {
			budget = maxFunctionValues
			if out, err = conform(f.Result, v, 0, &budget); err != nil {
				ferr = &FunctionError{Name: f.Name, What: "returned a wrong value: " + err.Error(), Err: err}
			}
		}
	}
	if rec != nil {
		rec.Add(f.event(args, out, ferr, time.Since(start)))
	}
	if ferr != nil {
		return types.WrapErr(ferr)
	}
	return out
}

// run calls Impl in its own goroutine, so that a deadline holds even if
// Impl ignores its context, and so that a panic is caught.
func (f *boundFunction) run(ctx context.Context, args []any) (any, *FunctionError) {
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	done := make(chan fnResult, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fnResult{err: &panicError{r}}
			}
		}()
		v, err := f.Impl(ctx, args...)
		done <- fnResult{v, err}
	}()
	select {
	case r := <-done:
		var pe *panicError
		switch {
		case errors.As(r.err, &pe) && r.err == error(pe):
			return nil, &FunctionError{Name: f.Name, What: "panicked", Err: pe}
		case r.err != nil:
			return nil, &FunctionError{Name: f.Name, What: "failed", Err: r.err}
		}
		return r.v, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &FunctionError{Name: f.Name, What: "did not answer within " + f.Timeout.String(), Err: ctx.Err()}
		}
		return nil, &FunctionError{Name: f.Name, What: "was cancelled", Err: ctx.Err()}
	}
}

type panicError struct{ v any }

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }

// event describes a call for the decision's trace: the arguments' shape
// (types and sizes, not values), the result and the duration.
func (f *boundFunction) event(args []ref.Val, out ref.Val, err *FunctionError, d time.Duration) trace.Event {
	var b strings.Builder
	b.WriteString(f.Name)
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(shape(a))
	}
	b.WriteByte(')')
	ev := trace.Event{Kind: "function", ID: f.Name, Expr: b.String(), Duration: d}
	if err != nil {
		ev.Result, ev.Err = "error", err
		return ev
	}
	ev.Result = resultText(out)
	return ev
}

// shape describes a value by its type and size.
func shape(v ref.Val) string {
	switch x := v.(type) {
	case types.String:
		return "string[" + strconv.Itoa(len(x)) + "]"
	case traits.Lister:
		if n, ok := x.Size().(types.Int); ok {
			return "list[" + strconv.Itoa(int(n)) + "]"
		}
		return "list"
	case traits.Mapper:
		if n, ok := x.Size().(types.Int); ok {
			return "map[" + strconv.Itoa(int(n)) + "]"
		}
		return "map"
	}
	return v.Type().TypeName()
}

// resultText shows scalars by value and the rest by shape.
func resultText(v ref.Val) string {
	switch x := v.(type) {
	case types.Bool, types.Int, types.Uint, types.Double:
		return fmt.Sprint(x.Value())
	}
	return shape(v)
}

// toNative converts a CEL argument to a fresh Go value.
func toNative(v ref.Val, depth int, budget *int) (any, error) {
	if *budget--; *budget < 0 {
		return nil, errors.New("the value is too large")
	}
	if depth > maxFunctionDepth {
		return nil, errors.New("the value is nested too deeply")
	}
	switch x := v.(type) {
	case types.String, types.Int, types.Uint, types.Double, types.Bool:
		return x.Value(), nil
	case types.Null:
		return nil, nil
	case traits.Lister:
		n, _ := x.Size().(types.Int)
		out := make([]any, 0, int(n))
		for it := x.Iterator(); it.HasNext() == types.True; {
			e, err := toNative(it.Next(), depth+1, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	case traits.Mapper:
		out := map[string]any{}
		for it := x.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("a map key is %s, not string", k.Type().TypeName())
			}
			e, err := toNative(x.Get(k), depth+1, budget)
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("a value of type %s cannot be passed", v.Type().TypeName())
}

// conform checks that a Go value is of type t and converts it to a CEL
// value.
func conform(t Type, v any, depth int, budget *int) (ref.Val, error) {
	if *budget--; *budget < 0 {
		return nil, errors.New("the value is too large")
	}
	if depth > maxFunctionDepth {
		return nil, errors.New("the value is nested too deeply")
	}
	if t.kind == kindDyn {
		return conformDyn(v, depth, budget)
	}
	rv := reflect.ValueOf(v)
	switch t.kind {
	case kindBool:
		if b, ok := v.(bool); ok {
			return types.Bool(b), nil
		}
	case kindString:
		if s, ok := v.(string); ok {
			return types.String(s), nil
		}
	case kindDouble:
		if rv.IsValid() && (rv.Kind() == reflect.Float64 || rv.Kind() == reflect.Float32) {
			return types.Double(rv.Float()), nil
		}
	case kindInt, kindUint:
		if n, ok := conformInt(t, rv); ok {
			return n, nil
		}
	case kindList:
		if rv.IsValid() && rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() != reflect.Uint8 {
			vals := make([]ref.Val, rv.Len())
			for i := range vals {
				e, err := conform(*t.elem, rv.Index(i).Interface(), depth+1, budget)
				if err != nil {
					return nil, fmt.Errorf("item %d: %w", i, err)
				}
				vals[i] = e
			}
			return types.NewRefValList(types.DefaultTypeAdapter, vals), nil
		}
	case kindMap:
		if rv.IsValid() && rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
			m := make(map[ref.Val]ref.Val, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				e, err := conform(*t.elem, it.Value().Interface(), depth+1, budget)
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", it.Key().String(), err)
				}
				m[types.String(it.Key().String())] = e
			}
			return types.NewRefValMap(types.DefaultTypeAdapter, m), nil
		}
	}
	return nil, fmt.Errorf("%s, not the declared %s", goTypeName(v), t)
}

func conformInt(t Type, rv reflect.Value) (ref.Val, bool) {
	if !rv.IsValid() {
		return nil, false
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := rv.Int()
		if t.kind == kindInt {
			return types.Int(n), true
		}
		if n >= 0 {
			return types.Uint(uint64(n)), true
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n := rv.Uint()
		if t.kind == kindUint {
			return types.Uint(n), true
		}
		if n <= 1<<63-1 {
			return types.Int(int64(n)), true
		}
	}
	return nil, false
}

// conformDyn accepts JSON-like values.
func conformDyn(v any, depth int, budget *int) (ref.Val, error) {
	switch x := v.(type) {
	case nil:
		return types.NullValue, nil
	case string:
		return types.String(x), nil
	case bool:
		return types.Bool(x), nil
	case float64, float32:
		return conform(DoubleType, v, depth, budget)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return types.Int(rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return conform(IntType, v, depth, budget)
	case reflect.String:
		if n, ok := v.(json.Number); ok {
			if val := numberVal(n); !types.IsError(val) {
				return val, nil
			}
			return nil, fmt.Errorf("number %s is out of range", n)
		}
		return types.String(rv.String()), nil
	case reflect.Slice:
		if rv.Type().Elem().Kind() != reflect.Uint8 {
			return conform(ListOf(DynType), v, depth, budget)
		}
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			return conform(MapOf(DynType), v, depth, budget)
		}
	}
	return nil, fmt.Errorf("%s, which is not a JSON-like value", goTypeName(v))
}

func goTypeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
