package audit

import (
	"net/url"
	"slices"
	"strings"
)

// maxSchemaVisits bounds the work of SensitivePaths on a hostile or
// pathological schema.
const maxSchemaVisits = 100_000

// SensitivePaths walks a JSON Schema document (decoded JSON) and returns the
// locations of the values it marks sensitive — "writeOnly": true or
// "x-sensitive": true — as sorted JSON pointers for [Redactor.Redact], where a
// "*" segment stands for any array item (items, prefixItems, contains, ...)
// or any object member (additionalProperties, patternProperties, ...).
//
// It follows allOf, anyOf, oneOf, if, then, else and dependentSchemas at the
// same location, and local references: "#", JSON pointers such as
// "#/$defs/name" or "#/definitions/name", and "#name" anchors, all resolved
// against the document root. References to other documents are not
// followed: bundle such schemas first.
//
// The walk is bounded and fails safe. When a reference comes back to a schema
// it is already expanding and that schema marks anything sensitive, the value
// at that point is reported whole: for the tree
//
//	{"properties": {"secret": {"writeOnly": true}, "children": {"items": {"$ref": "#"}}}}
//
// the paths are "/children/*/children/*", "/children/*/secret" and "/secret".
// A schema too complex to walk within a fixed budget gives [""]: redact all
// arguments.
func SensitivePaths(schema map[string]any) []string {
	w := &schemaWalker{
		root:   schema,
		found:  map[string]bool{},
		active: map[string]bool{},
		done:   map[string]bool{},
		marks:  map[string]bool{},
		budget: maxSchemaVisits,
	}
	w.walk(schema, "")
	if w.budget < 0 {
		return []string{""}
	}
	paths := make([]string, 0, len(w.found))
	for p := range w.found {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	// Drop paths inside another one: redacting the outer value covers them.
	out := paths[:0]
	for _, p := range paths {
		if n := len(out); n > 0 && (out[n-1] == "" || strings.HasPrefix(p, out[n-1]+"/")) {
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

type schemaWalker struct {
	root    map[string]any
	found   map[string]bool // sensitive locations
	active  map[string]bool // references being expanded (cycle guard)
	done    map[string]bool // reference+location pairs already expanded
	marks   map[string]bool // does a reference lead to a sensitive mark (exact results only)
	anchors map[string]any  // "$anchor" and "$dynamicAnchor" names, built on demand
	budget  int
}

// applicators are keywords whose subschemas apply at the same location.
var applicators = [...]string{"allOf", "anyOf", "oneOf"}
var sameLocation = [...]string{"if", "then", "else"}

// anyMember and anyItem keywords apply their subschemas to members/items.
var anyMember = [...]string{"additionalProperties", "unevaluatedProperties"}
var anyItem = [...]string{"items", "prefixItems", "additionalItems", "unevaluatedItems", "contains"}

func (w *schemaWalker) walk(node any, path string) {
	w.budget--
	if w.budget < 0 {
		return
	}
	m, ok := node.(map[string]any)
	if !ok {
		return // true, false, or not a schema
	}
	if m["writeOnly"] == true || m["x-sensitive"] == true {
		w.found[path] = true
		return
	}
	for _, kw := range [...]string{"$ref", "$dynamicRef", "$recursiveRef"} {
		if ref, ok := m[kw].(string); ok {
			w.ref(ref, path)
		}
	}
	for _, kw := range applicators {
		if arr, ok := m[kw].([]any); ok {
			for _, s := range arr {
				w.walk(s, path)
			}
		}
	}
	for _, kw := range sameLocation {
		w.walk(m[kw], path)
	}
	for _, kw := range [...]string{"dependentSchemas", "dependencies"} {
		if deps, ok := m[kw].(map[string]any); ok {
			for _, s := range sortedValues(deps) {
				w.walk(s, path)
			}
		}
	}
	if props, ok := m["properties"].(map[string]any); ok {
		for _, k := range sortedKeys(props) {
			w.walk(props[k], path+"/"+escapeSeg(k))
		}
	}
	if pp, ok := m["patternProperties"].(map[string]any); ok {
		for _, s := range sortedValues(pp) {
			w.walk(s, path+"/*")
		}
	}
	for _, kw := range anyMember {
		w.walk(m[kw], path+"/*")
	}
	for _, kw := range anyItem {
		switch s := m[kw].(type) {
		case []any: // prefixItems, or items as an array in older drafts
			for _, item := range s {
				w.walk(item, path+"/*")
			}
		default:
			w.walk(s, path+"/*")
		}
	}
}

// ref expands a reference at path, once per (reference, location), cutting
// cycles.
func (w *schemaWalker) ref(ref, path string) {
	target, ok := w.resolve(ref)
	if !ok {
		return
	}
	if w.active[ref] {
		// A cycle: report the value here whole if anything below can be
		// sensitive, instead of unrolling forever.
		if w.marked(ref, target) {
			w.found[path] = true
		}
		return
	}
	key := ref + "\x00" + path
	if w.done[key] {
		return
	}
	w.done[key] = true
	w.active[ref] = true
	w.walk(target, path)
	delete(w.active, ref)
}

// marked reports whether the schema a reference leads to marks any value
// sensitive, at any depth, following further references: a depth-first
// search that expands each reference once.
func (w *schemaWalker) marked(ref string, target any) bool {
	if v, ok := w.marks[ref]; ok {
		return v
	}
	v := w.hasMark(target, map[string]bool{ref: true})
	w.marks[ref] = v
	return v
}

func (w *schemaWalker) hasMark(node any, seen map[string]bool) bool {
	w.budget--
	if w.budget < 0 {
		return false
	}
	switch n := node.(type) {
	case map[string]any:
		if n["writeOnly"] == true || n["x-sensitive"] == true {
			return true
		}
		for _, k := range sortedKeys(n) {
			switch k {
			case "$ref", "$dynamicRef", "$recursiveRef":
				ref, ok := n[k].(string)
				if !ok || seen[ref] {
					continue
				}
				seen[ref] = true
				if v, ok := w.marks[ref]; ok {
					if v {
						return true
					}
					continue
				}
				if t, ok := w.resolve(ref); ok && w.hasMark(t, seen) {
					return true
				}
			case "const", "enum", "default", "examples", "not":
				// Values, not schemas (or, for not, nothing to record).
			default:
				if w.hasMark(n[k], seen) {
					return true
				}
			}
		}
	case []any:
		for _, s := range n {
			if w.hasMark(s, seen) {
				return true
			}
		}
	}
	return false
}

// resolve finds the local schema a reference names.
func (w *schemaWalker) resolve(ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#") {
		return nil, false
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return nil, false
	}
	if frag == "" {
		return w.root, true
	}
	if frag[0] != '/' {
		if w.anchors == nil {
			w.anchors = map[string]any{}
			w.collectAnchors(w.root)
		}
		s, ok := w.anchors[frag]
		return s, ok
	}
	var cur any = w.root
	for _, seg := range strings.Split(frag[1:], "/") {
		seg = unescapeSeg(seg)
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, ok := arrayIndex(seg)
			if !ok || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func (w *schemaWalker) collectAnchors(node any) {
	w.budget--
	if w.budget < 0 {
		return
	}
	switch n := node.(type) {
	case map[string]any:
		for _, kw := range [...]string{"$anchor", "$dynamicAnchor"} {
			if a, ok := n[kw].(string); ok {
				if _, dup := w.anchors[a]; !dup {
					w.anchors[a] = n
				}
			}
		}
		for _, k := range sortedKeys(n) {
			if k != "const" && k != "enum" && k != "default" && k != "examples" {
				w.collectAnchors(n[k])
			}
		}
	case []any:
		for _, s := range n {
			w.collectAnchors(s)
		}
	}
}

func escapeSeg(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return string(appendEscapedSeg(nil, k))
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedValues(m map[string]any) []any {
	vals := make([]any, 0, len(m))
	for _, k := range sortedKeys(m) {
		vals = append(vals, m[k])
	}
	return vals
}
