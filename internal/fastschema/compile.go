package fastschema

import (
	"regexp"
	"strings"
)

// dialect2020 is the only $schema value accepted.
const dialect2020 = "https://json-schema.org/draft/2020-12/schema"

// maxDepth bounds the nesting of schemas Compile follows; deeper schemas
// are refused rather than recursed into.
const maxDepth = 128

// maxUniqueItems bounds the arrays whose uniqueItems is checked here, by
// comparing every pair; longer arrays are reported invalid so that the full
// validator, which hashes, decides.
const maxUniqueItems = 64

// A Validator checks instances against a compiled schema.
//
// A Validator is immutable once Compile returns it and is safe for
// concurrent use by multiple goroutines. The zero Validator (and a nil
// *Validator) reports every instance invalid.
type Validator struct {
	root *node
	// hasID reports a $id, the one keyword of the subset whose value
	// Compile does not check against the meta-schema in full.
	hasID bool
}

// node is one compiled schema.
type node struct {
	// Boolean schemas. An object schema, even {}, is never always: like
	// jsonschema/v6 it rejects values that are not decoded JSON.
	always bool // true: everything is valid
	never  bool // false: nothing is

	types kind // 0: any JSON type

	hasConst bool
	konst    any
	hasEnum  bool
	enum     []any
	enumStr  map[string]struct{} // set of the enum's strings, for long enums

	// Strings.
	minLength int // 0: none
	maxLength int // -1: none
	pattern   *regexp.Regexp

	// Numbers.
	bounds []bound

	// Arrays.
	items    *node // nil: any
	minItems int
	maxItems int // -1: none
	unique   bool

	// Objects.
	props      []prop
	propIndex  map[string]int
	nRequired  int      // props with required set
	required   []string // required names without a properties entry
	additional *node    // nil: any
	minProps   int
	maxProps   int // -1: none
}

type prop struct {
	name     string
	schema   *node
	required bool
}

type boundOp uint8

const (
	opMinimum boundOp = iota
	opMaximum
	opExclusiveMinimum
	opExclusiveMaximum
)

type bound struct {
	op boundOp
	d  decimal
}

// holds reports whether the number n satisfies the bound.
func (b *bound) holds(n *decimal) bool {
	c := cmpDecimal(n, &b.d)
	switch b.op {
	case opMinimum:
		return c >= 0
	case opMaximum:
		return c <= 0
	case opExclusiveMinimum:
		return c > 0
	default:
		return c < 0
	}
}

// Compile builds a validator for a JSON Schema document decoded as JSON
// (map[string]any / []any / string / json.Number / bool / nil — as produced
// by jsonschema.UnmarshalJSON; float64 and Go integers are accepted too).
// ok is false when the schema (anywhere inside it) uses a keyword outside
// the supported subset, or a keyword with a value of the wrong kind; then
// callers must use a full validator.
//
// Compile does not replace the full validator, which reports why an
// instance is invalid; see [Validator.MetaValid] for when the full
// validator's compile is sure to succeed.
func Compile(doc any) (v *Validator, ok bool) {
	n, ok := compileSchema(doc, 0)
	if !ok {
		return nil, false
	}
	root, _ := doc.(map[string]any)
	_, hasID := root["$id"]
	return &Validator{root: n, hasID: hasID}, true
}

// MetaValid reports whether the schema v was compiled from is known to be
// valid against the draft 2020-12 meta-schema, format assertions on, and
// to compile: jsonschema/v6 then compiles the same document (decoded by
// its UnmarshalJSON, with no references to load) without error, so a
// caller may put that compile off until it needs it. It is true for every
// schema Compile accepts except one with $id, whose URI syntax Compile
// does not check; every other keyword of the subset is accepted only with
// a value the meta-schema accepts (see TestMetaValidImpliesCompiles). A nil
// Validator reports false.
func (v *Validator) MetaValid() bool {
	return v != nil && v.root != nil && !v.hasID
}

var (
	alwaysNode = &node{always: true}
	neverNode  = &node{never: true}
)

// compileSchema compiles one schema; depth 0 is the document root.
func compileSchema(doc any, depth int) (*node, bool) {
	if depth > maxDepth {
		return nil, false
	}
	switch s := doc.(type) {
	case bool:
		if s {
			return alwaysNode, true
		}
		return neverNode, true
	case map[string]any:
		return compileObject(s, depth)
	}
	return nil, false
}

// compileObject compiles the object schema s found at depth. It reports
// false if s uses a keyword, or a value, outside the subset.
func compileObject(s map[string]any, depth int) (*node, bool) {
	n := &node{maxLength: -1, maxItems: -1, maxProps: -1}
	var required []string
	for key, val := range s {
		if !n.compileKeyword(key, val, depth, &required) {
			return nil, false
		}
	}
	n.applyRequired(required)
	return n, true
}

// compileKeyword compiles one keyword of an object schema at depth into n,
// storing the names of a "required" keyword in *required. It reports false
// for a keyword, or a value, outside the subset.
func (n *node) compileKeyword(key string, val any, depth int, required *[]string) bool {
	ok := true
	switch key {
	case "type":
		n.types, ok = typeSet(val)
	case "properties":
		ok = compileProperties(n, val, depth)
	case "required":
		*required, ok = stringSet(val)
	case "additionalProperties":
		var a *node
		if a, ok = compileSchema(val, depth+1); ok && !a.always {
			n.additional = a
		}
	case "items":
		if _, isArr := val.([]any); isArr {
			return false // the pre-2020 tuple form
		}
		var it *node
		if it, ok = compileSchema(val, depth+1); ok && !it.always {
			n.items = it
		}
	case "enum":
		var arr []any
		if arr, ok = val.([]any); ok {
			for _, e := range arr {
				ok = ok && plain(e)
			}
			n.hasEnum, n.enum = true, arr
			n.enumStr = stringIndex(arr)
		}
	case "const":
		ok = plain(val)
		n.hasConst, n.konst = true, val
	case "pattern":
		var p string
		if p, ok = val.(string); ok {
			// jsonschema/v6 compiles patterns with regexp.Compile and
			// matches them unanchored with MatchString, as here.
			re, err := regexp.Compile(p)
			ok = err == nil
			n.pattern = re
		}
	default:
		ok = n.compileLimit(key, val, depth)
	}
	return ok
}

// compileLimit compiles a numeric or size limit keyword into n; any other
// keyword of a schema at depth goes on to checkAnnotation. It reports false
// for a keyword, or a value, outside the subset.
func (n *node) compileLimit(key string, val any, depth int) bool {
	ok := true
	switch key {
	case "minLength":
		n.minLength, ok = toInt(val)
	case "maxLength":
		n.maxLength, ok = toInt(val)
	case "minimum":
		ok = n.addBound(opMinimum, val)
	case "maximum":
		ok = n.addBound(opMaximum, val)
	case "exclusiveMinimum":
		ok = n.addBound(opExclusiveMinimum, val)
	case "exclusiveMaximum":
		ok = n.addBound(opExclusiveMaximum, val)
	case "minItems":
		n.minItems, ok = toInt(val)
	case "maxItems":
		n.maxItems, ok = toInt(val)
	case "uniqueItems":
		n.unique, ok = val.(bool)
	case "minProperties":
		n.minProps, ok = toInt(val)
	case "maxProperties":
		n.maxProps, ok = toInt(val)
	default:
		ok = checkAnnotation(key, val, depth)
	}
	return ok
}

// checkAnnotation checks a keyword without effect on validity (an
// annotation, a dialect or identifier, definitions or an "x-" extension)
// in a schema at depth. It reports false for any other keyword and for a
// value outside the subset.
func checkAnnotation(key string, val any, depth int) bool {
	ok := true
	switch key {
	case "title", "description", "$comment":
		_, ok = val.(string)
	case "readOnly", "writeOnly", "deprecated":
		_, ok = val.(bool)
	case "examples":
		_, ok = val.([]any)
	case "default":
	case "$schema":
		ok = depth == 0 && val == dialect2020
	case "$id":
		var id string
		id, ok = val.(string)
		ok = ok && depth == 0 && !strings.Contains(strings.TrimSuffix(id, "#"), "#")
	case "$defs", "definitions":
		// Without $ref (refused everywhere) definitions are never
		// applied; they are still held to the subset.
		var defs map[string]any
		if defs, ok = val.(map[string]any); ok {
			for _, d := range defs {
				if _, ok = compileSchema(d, depth+1); !ok {
					break
				}
			}
		}
	default:
		ok = strings.HasPrefix(key, "x-")
	}
	return ok
}

// applyRequired marks the properties of n named in required as required
// and keeps the other names in n.required.
func (n *node) applyRequired(required []string) {
	for _, r := range required {
		if i, ok := n.propIndex[r]; ok {
			n.props[i].required = true
			n.nRequired++
		} else {
			n.required = append(n.required, r)
		}
	}
}

func compileProperties(n *node, val any, depth int) bool {
	m, ok := val.(map[string]any)
	if !ok {
		return false
	}
	n.props = make([]prop, 0, len(m))
	n.propIndex = make(map[string]int, len(m))
	for name, sub := range m {
		p, ok := compileSchema(sub, depth+1)
		if !ok {
			return false
		}
		n.propIndex[name] = len(n.props)
		n.props = append(n.props, prop{name: name, schema: p})
	}
	return true
}

func (n *node) addBound(op boundOp, val any) bool {
	if kindOf(val) != kindNumber {
		return false
	}
	d, ok := toDecimal(val)
	if !ok {
		return false
	}
	n.bounds = append(n.bounds, bound{op: op, d: d})
	return true
}

// typeSet reads "type": a type name or a non-empty array of distinct names.
func typeSet(val any) (kind, bool) {
	switch t := val.(type) {
	case string:
		k := typeName(t)
		return k, k != 0
	case []any:
		if len(t) == 0 {
			return 0, false
		}
		var set kind
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return 0, false
			}
			k := typeName(s)
			if k == 0 || set&k != 0 {
				return 0, false
			}
			set |= k
		}
		return set, true
	}
	return 0, false
}

func typeName(s string) kind {
	switch s {
	case "null":
		return kindNull
	case "boolean":
		return kindBoolean
	case "number":
		return kindNumber
	case "integer":
		return kindInteger
	case "string":
		return kindString
	case "array":
		return kindArray
	case "object":
		return kindObject
	}
	return 0
}

// stringSet reads an array of distinct strings.
func stringSet(val any) ([]string, bool) {
	arr, ok := val.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	seen := make(map[string]bool, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok || seen[s] {
			return nil, false
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, true
}

// stringIndex returns the set of an enum's strings when the enum is long
// enough for a map to beat a scan.
func stringIndex(arr []any) map[string]struct{} {
	if len(arr) < 8 {
		return nil
	}
	set := make(map[string]struct{}, len(arr))
	for _, e := range arr {
		if s, ok := e.(string); ok {
			set[s] = struct{}{}
		}
	}
	return set
}
