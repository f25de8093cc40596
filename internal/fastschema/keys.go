package fastschema

import (
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/agentguard/agentguard/internal/safejson"
)

// maxKeyLocations bounds the distinct instance locations CompileKeys
// builds; a schema that needs more is checked against all its property
// names at every location instead.
const maxKeyLocations = 1024

// Keys finds the members of an instance whose key is not a property its
// schema declares for that object but folds like one
// ([safejson.AppendFold]): {"PATH":"/etc/passwd"} against a schema that
// declares "path" and allows other members. A handler that decodes the
// instance into a Go struct with encoding/json would read that member as
// the declared property, whose value the schema and the policy never saw.
//
// Keys follows every keyword through which a schema describes the members
// of an object or the elements of an array (properties, patternProperties,
// additionalProperties, items, prefixItems, the in-place applicators such
// as allOf and anyOf, and local $ref), so a key is checked against the
// names declared for its location. Where it cannot tell (a reference it
// cannot resolve, or a schema with very many locations), every property
// name of the schema counts at every location: that may refuse more, never
// less. An object whose schema refuses undeclared members itself
// (additionalProperties false) is not checked again here.
//
// A Keys is immutable and safe for concurrent use. A nil *Keys finds
// nothing.
type Keys struct {
	root *keyNode
}

// A Collision is a member whose key folds like a declared property.
type Collision struct {
	Pointer  string // JSON pointer of the member, e.g. "/opts/PATH"
	Key      string // the member's key
	Property string // the declared property it folds like
}

// keyNode is one instance location.
type keyNode struct {
	props  map[string]*keyNode // declared name → location of its value
	folded map[string]string   // folding of a declared name → the name; nil when nothing to check here
	other  *keyNode            // location of the values of undeclared members
	items  *keyNode            // location of array elements
}

// CompileKeys builds a Keys for a JSON Schema document decoded as JSON. It
// returns nil when no location of the schema needs checking: it declares
// no properties, or only in objects that refuse undeclared members.
func CompileKeys(doc any) *Keys {
	return CompileKeysReading(doc, nil, nil)
}

// CompileKeysReading is [CompileKeys] for instances that something else
// (a policy's expressions) also reads by name: each path in exact names
// members from the instance root down (["opts", "path"] is /opts/path),
// and the names in anywhere are read at a depth not known. Those count as
// declared properties where they are read, whatever the schema says about
// the object there, so {"PATH":...} is found where "path" is read even
// when the schema declares nothing. A name in anywhere counts at every
// location, as every property name of the schema then does.
func CompileKeysReading(doc any, exact [][]string, anywhere []string) *Keys {
	c := &keyCompiler{root: doc, ids: map[any]int{}, locs: map[string]*keyNode{}, all: map[string]bool{}}
	seeds := []any{doc}
	if len(exact) > 0 {
		c.synth = map[any]bool{}
		seeds = append(seeds, readSchema(exact, c.synth))
	}
	root := c.loc(seeds)
	if c.unknown || scopedRefs(doc) || len(c.locs) > maxKeyLocations || len(anywhere) > 0 {
		for _, name := range anywhere {
			c.all[name] = true
		}
		for _, p := range exact {
			for _, name := range p {
				c.all[name] = true
			}
		}
		root = c.everywhere()
	}
	if root = prune(root, c.nodes); root == nil {
		return nil
	}
	return &Keys{root: root}
}

// Check returns a member of instance (decoded JSON) whose key is not a
// declared property of its object but folds like one, or nil. With several
// such members, which one is returned is not specified.
func (k *Keys) Check(instance any) *Collision {
	if k == nil || k.root == nil {
		return nil
	}
	return k.root.check(instance)
}

func (n *keyNode) check(v any) *Collision {
	switch x := v.(type) {
	case map[string]any:
		for key, val := range x {
			child, ok := n.props[key]
			if !ok {
				if n.folded != nil {
					var buf [64]byte
					if p, hit := n.folded[string(safejson.AppendFold(buf[:0], key))]; hit {
						return &Collision{Pointer: "/" + escapeToken(key), Key: key, Property: p}
					}
				}
				child = n.other
			}
			if child != nil {
				if c := child.check(val); c != nil {
					c.Pointer = "/" + escapeToken(key) + c.Pointer
					return c
				}
			}
		}
	case []any:
		if n.items != nil {
			for i, e := range x {
				if c := n.items.check(e); c != nil {
					c.Pointer = "/" + strconv.Itoa(i) + c.Pointer
					return c
				}
			}
		}
	}
	return nil
}

func escapeToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

type keyCompiler struct {
	root    any
	ids     map[any]int // schema object identity → index in schemas
	schemas []map[string]any
	locs    map[string]*keyNode // by the set of schemas that apply there
	nodes   []*keyNode
	all     map[string]bool // every property name of the schema
	unknown bool            // a reference could not be resolved
	synth   map[any]bool    // identities of the schema objects readSchema made
}

// id returns the index of schema object s.
func (c *keyCompiler) id(s map[string]any) int {
	p := reflect.ValueOf(s).UnsafePointer()
	if i, ok := c.ids[p]; ok {
		return i
	}
	c.ids[p] = len(c.schemas)
	c.schemas = append(c.schemas, s)
	return len(c.schemas) - 1
}

// closure returns the schema objects that apply at one location, given
// some that do: with them everything they apply in place.
func (c *keyCompiler) closure(seeds []any) []int {
	var set []int
	seen := map[int]bool{}
	stack := slices.Clone(seeds)
	for len(stack) > 0 {
		s, ok := stack[len(stack)-1].(map[string]any)
		stack = stack[:len(stack)-1]
		if !ok {
			continue // true, false
		}
		i := c.id(s)
		if seen[i] {
			continue
		}
		seen[i] = true
		set = append(set, i)
		for _, kw := range []string{"allOf", "anyOf", "oneOf"} {
			if arr, ok := s[kw].([]any); ok {
				stack = append(stack, arr...)
			}
		}
		for _, kw := range []string{"not", "if", "then", "else"} {
			if sub, ok := s[kw]; ok {
				stack = append(stack, sub)
			}
		}
		for _, kw := range []string{"dependentSchemas", "dependencies"} {
			if m, ok := s[kw].(map[string]any); ok {
				for _, sub := range m {
					stack = append(stack, sub)
				}
			}
		}
		for _, kw := range []string{"$ref", "$dynamicRef", "$recursiveRef"} {
			if ref, ok := s[kw].(string); ok {
				if target, ok := c.resolve(ref); ok {
					stack = append(stack, target)
				} else {
					c.unknown = true
				}
			}
		}
	}
	slices.Sort(set)
	return set
}

// resolve finds a reference within the document: a JSON pointer fragment
// or a plain-name fragment ($anchor, $dynamicAnchor).
func (c *keyCompiler) resolve(ref string) (any, bool) {
	frag, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	frag, err := url.PathUnescape(frag)
	if err != nil {
		return nil, false
	}
	if frag != "" && frag[0] != '/' {
		return findAnchor(c.root, frag, 0)
	}
	v := c.root
	for _, tok := range strings.Split(frag, "/")[1:] {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch x := v.(type) {
		case map[string]any:
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// scopedRefs reports whether doc has a schema below its root with an $id,
// or an anchor name used twice. resolve reads every "#..." reference
// against the root; a validator reads one inside a schema with its own
// $id against that schema, and an anchor in the resource that holds the
// reference. The keys are then checked everywhere rather than where
// resolve would wrongly place them.
func scopedRefs(doc any) bool {
	anchors := map[string]bool{}
	var walk func(v any, depth int) bool
	walk = func(v any, depth int) bool {
		if depth > maxDepth {
			return true
		}
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["$id"]; ok && depth > 0 {
				return true
			}
			for _, kw := range []string{"$anchor", "$dynamicAnchor"} {
				if a, ok := x[kw].(string); ok {
					if anchors[a] {
						return true
					}
					anchors[a] = true
				}
			}
			for _, sub := range x {
				if walk(sub, depth+1) {
					return true
				}
			}
		case []any:
			for _, sub := range x {
				if walk(sub, depth+1) {
					return true
				}
			}
		}
		return false
	}
	return walk(doc, 0)
}

// findAnchor finds the schema with $anchor or $dynamicAnchor name.
func findAnchor(v any, name string, depth int) (any, bool) {
	if depth > maxDepth {
		return nil, false
	}
	switch x := v.(type) {
	case map[string]any:
		if x["$anchor"] == name || x["$dynamicAnchor"] == name {
			return x, true
		}
		for _, sub := range x {
			if s, ok := findAnchor(sub, name, depth+1); ok {
				return s, true
			}
		}
	case []any:
		for _, sub := range x {
			if s, ok := findAnchor(sub, name, depth+1); ok {
				return s, true
			}
		}
	}
	return nil, false
}

// loc returns the location where the schemas seeds (and what they apply
// in place) apply.
func (c *keyCompiler) loc(seeds []any) *keyNode {
	set := c.closure(seeds)
	if len(set) == 0 {
		return nil
	}
	var kb strings.Builder
	for _, i := range set {
		kb.WriteString(strconv.Itoa(i))
		kb.WriteByte(',')
	}
	if n, ok := c.locs[kb.String()]; ok {
		return n
	}
	if len(c.locs) > maxKeyLocations {
		return nil // CompileKeys falls back to everywhere
	}
	n := &keyNode{}
	c.locs[kb.String()] = n
	c.nodes = append(c.nodes, n)

	props := map[string][]any{}
	var other, items []any
	for _, i := range set {
		s := c.schemas[i]
		if m, ok := s["properties"].(map[string]any); ok {
			for name, sub := range m {
				props[name] = append(props[name], sub)
				c.all[name] = true
			}
		}
		if m, ok := s["patternProperties"].(map[string]any); ok {
			for _, sub := range m {
				other = append(other, sub)
			}
		}
		for _, kw := range []string{"additionalProperties", "unevaluatedProperties"} {
			if sub, ok := s[kw]; ok {
				other = append(other, sub)
			}
		}
		for _, kw := range []string{"items", "prefixItems", "additionalItems", "contains", "unevaluatedItems"} {
			switch sub := s[kw].(type) {
			case []any:
				items = append(items, sub...)
			case nil:
			default:
				items = append(items, sub)
			}
		}
	}
	// Where the schema itself refuses undeclared members, a key folding
	// like a name read there is refused by the schema already: the names
	// readSchema adds do not open the object.
	var real []int
	for _, i := range set {
		if !c.synth[reflect.ValueOf(c.schemas[i]).UnsafePointer()] {
			real = append(real, i)
		}
	}
	closed := len(real) == 1 && c.schemas[real[0]]["additionalProperties"] == false &&
		c.schemas[real[0]]["patternProperties"] == nil && c.schemas[real[0]]["unevaluatedProperties"] == nil
	if len(props) > 0 {
		n.props = make(map[string]*keyNode, len(props))
		if !closed {
			n.folded = make(map[string]string, len(props))
		}
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	slices.Sort(names) // the smallest name wins a folding shared by several
	for i := len(names) - 1; i >= 0; i-- {
		name := names[i]
		// patternProperties and others' additionalProperties may apply
		// to a declared member too.
		n.props[name] = c.loc(append(props[name], other...))
		if n.folded != nil {
			n.folded[string(safejson.AppendFold(nil, name))] = name
		}
	}
	n.other = c.loc(other)
	n.items = c.loc(items)
	return n
}

// readSchema returns a schema declaring the members at paths, and adds
// the identity of each schema object it makes to synth.
func readSchema(paths [][]string, synth map[any]bool) map[string]any {
	root := map[string]any{}
	synth[reflect.ValueOf(root).UnsafePointer()] = true
	for _, p := range paths {
		s := root
		for _, name := range p {
			props, _ := s["properties"].(map[string]any)
			if props == nil {
				props = map[string]any{}
				s["properties"] = props
			}
			sub, _ := props[name].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				synth[reflect.ValueOf(sub).UnsafePointer()] = true
				props[name] = sub
			}
			s = sub
		}
	}
	return root
}

// everywhere returns one location that stands for all: every property name
// of the schema is declared there, and it is its own members and items.
func (c *keyCompiler) everywhere() *keyNode {
	c.collectNames(c.root, 0)
	n := &keyNode{props: map[string]*keyNode{}, folded: map[string]string{}}
	for name := range c.all {
		n.props[name] = n
		f := string(safejson.AppendFold(nil, name))
		if p, ok := n.folded[f]; !ok || name < p {
			n.folded[f] = name
		}
	}
	n.other, n.items = n, n
	c.nodes = []*keyNode{n}
	return n
}

// collectNames adds every name under a "properties" keyword to c.all.
func (c *keyCompiler) collectNames(v any, depth int) {
	if depth > maxDepth {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		if m, ok := x["properties"].(map[string]any); ok {
			for name := range m {
				c.all[name] = true
			}
		}
		for _, sub := range x {
			c.collectNames(sub, depth+1)
		}
	case []any:
		for _, sub := range x {
			c.collectNames(sub, depth+1)
		}
	}
}

// prune drops the locations below which nothing is checked and returns
// root, or nil if nothing is checked at all.
func prune(root *keyNode, nodes []*keyNode) *keyNode {
	useful := map[*keyNode]bool{}
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			if useful[n] {
				continue
			}
			u := len(n.folded) > 0 || useful[n.other] || useful[n.items]
			for _, ch := range n.props {
				u = u || useful[ch]
			}
			if u {
				useful[n] = true
				changed = true
			}
		}
	}
	for _, n := range nodes {
		for name, ch := range n.props {
			if !useful[ch] {
				n.props[name] = nil
			}
		}
		if !useful[n.other] {
			n.other = nil
		}
		if !useful[n.items] {
			n.items = nil
		}
	}
	if !useful[root] {
		return nil
	}
	return root
}
