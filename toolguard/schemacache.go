package toolguard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/fastschema"
)

// maxCachedSchemas bounds the distinct input schemas a Guard keeps compiled
// for reuse; tools beyond it compile their own.
const maxCachedSchemas = 10_000

// compiledSchema is everything Register derives from an input schema's
// bytes alone. It is read-only once built (but for full's compile on first
// use), so tools with byte-identical schemas share it.
type compiledSchema struct {
	full      *fullSchema
	fast      *fastschema.Validator // nil when the schema is outside its subset
	keys      *schemaKeys
	doc       any
	sensitive []string
}

// fullSchema is an input schema compiled by jsonschema/v6: the validator
// of the arguments fastschema does not accept, and the source of the
// reports on invalid ones. A schema that fastschema holds to the
// meta-schema ([fastschema.Validator.MetaValid]) is sure to compile, so it
// is compiled when a call first needs it, which a call with valid
// arguments never does; any other schema is compiled at registration,
// which fails if it does not compile.
type fullSchema struct {
	name string // of the tool that brought the schema first, for its location
	doc  any
	once sync.Once
	s    *sjs.Schema
	err  error
}

// get returns the compiled schema, compiling it on the first call. It is
// safe for concurrent use.
func (f *fullSchema) get() (*sjs.Schema, error) {
	f.once.Do(func() {
		f.s, f.err = compileFull(f.name, f.doc)
		f.doc = nil
	})
	return f.s, f.err
}

// schemaKeys is the key check of a schema alone ([fastschema.CompileKeys]),
// built by the first call that needs it: under a policy that reads none of
// the tool's arguments by name (see tool.keysFor).
type schemaKeys struct {
	once sync.Once
	doc  any
	k    *fastschema.Keys
}

// get returns the key check, building it on the first call. It is safe
// for concurrent use.
func (s *schemaKeys) get() *fastschema.Keys {
	s.once.Do(func() { s.k = fastschema.CompileKeys(s.doc) })
	return s.k
}

// schemaCache holds the compiled input schemas of registered tools by
// their bytes without annotations ([schemaKey]): servers that expose many
// tools often give many of them the same schema, or schemas that differ
// only in their descriptions, and compiling one is most of what
// registering a tool costs.
// Only schemas that compiled are kept; a schema that fails is compiled, and
// fails, again for each tool that brings it.
type schemaCache struct {
	mu sync.Mutex
	m  map[string]*compiledSchema
}

// compile returns the compiled schema of raw for the tool name, from the
// cache when a tool registered before had the same bytes.
func (c *schemaCache) compile(name string, raw json.RawMessage) (*compiledSchema, error) {
	if len(raw) == 0 {
		raw = json.RawMessage(`{"type":"object"}`)
	}
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("toolguard: tool %q: input schema is not JSON: %w", name, err)
	}
	key := docKey(raw, doc)
	c.mu.Lock()
	cs, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return cs, nil
	}
	cs, err = compileSchema(name, doc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[key]; ok {
		return old, nil
	}
	if len(c.m) < maxCachedSchemas {
		if c.m == nil {
			c.m = map[string]*compiledSchema{}
		}
		c.m[key] = cs
	}
	return cs, nil
}

// compileSchema compiles a tool's input schema, decoded, and finds its
// sensitive locations. Schemas within fastschema's subset get a fast
// validator: it decides valid arguments without allocating, and anything
// it does not accept goes to the full validator, compiled now or, when
// fastschema has held the schema to the meta-schema, on first use (see
// fullSchema). Either way a schema that does not compile is refused here.
func compileSchema(name string, doc any) (*compiledSchema, error) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("toolguard: tool %q: input schema must be a JSON object", name)
	}
	if t, ok := obj["type"]; ok && t != "object" {
		return nil, fmt.Errorf("toolguard: tool %q: input schema type must be \"object\", not %v", name, t)
	}
	fast, _ := fastschema.Compile(doc)
	full := &fullSchema{name: name, doc: doc}
	if !fast.MetaValid() {
		if _, err := full.get(); err != nil {
			return nil, err
		}
	}
	return &compiledSchema{full: full, fast: fast, keys: &schemaKeys{doc: doc}, doc: doc,
		sensitive: audit.SensitivePaths(obj)}, nil
}

// compileFull compiles a tool's input schema with jsonschema/v6, refusing
// external references.
func compileFull(name string, doc any) (*sjs.Schema, error) {
	c := sjs.NewCompiler()
	c.UseLoader(noLoader{})
	c.AssertFormat()
	loc := "mem:///tools/" + url.PathEscape(name) + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("toolguard: tool %q: input schema: %w", name, err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("toolguard: tool %q: input schema does not compile: %w", name, err)
	}
	return s, nil
}

type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("toolguard: schema reference %q is outside the schema; external references are not loaded", u)
}
