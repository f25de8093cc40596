package toolguard

import (
	"encoding/json"
	"sync"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agentguard/agentguard/internal/fastschema"
)

// maxCachedSchemas bounds the distinct input schemas a Guard keeps compiled
// for reuse; tools beyond it compile their own.
const maxCachedSchemas = 10_000

// compiledSchema is everything Register derives from an input schema's
// bytes alone. It is read-only once built, so tools with byte-identical
// schemas share it.
type compiledSchema struct {
	schema    *sjs.Schema
	fast      *fastschema.Validator
	keys      *fastschema.Keys
	doc       any
	sensitive []string
}

// schemaCache holds the compiled input schemas of registered tools by
// their bytes without annotations ([schemaKey]): servers that expose many
// tools often give many of them the same schema, or schemas that differ
// only in their descriptions, and compiling one (a check against the JSON
// Schema meta-schema, then the compile) is most of what registering a tool
// costs.
// Only schemas that compiled are kept; a schema that fails is compiled, and
// fails, again for each tool that brings it.
type schemaCache struct {
	mu sync.Mutex
	m  map[string]*compiledSchema
}

// compile returns the compiled schema of raw for the tool name, from the
// cache when a tool registered before had the same bytes.
func (c *schemaCache) compile(name string, raw json.RawMessage) (*compiledSchema, error) {
	key := schemaKey(raw)
	c.mu.Lock()
	cs, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return cs, nil
	}
	s, fast, doc, sensitive, err := compileSchema(name, raw)
	if err != nil {
		return nil, err
	}
	cs = &compiledSchema{schema: s, fast: fast, keys: fastschema.CompileKeys(doc), doc: doc, sensitive: sensitive}
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
