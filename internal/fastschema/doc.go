// Package fastschema validates tool arguments against the small part of
// JSON Schema that tool schemas use, quickly and without allocating, as a
// pre-check in front of github.com/santhosh-tekuri/jsonschema/v6.
//
// A guarded call validates its arguments on every call. jsonschema/v6 is
// complete and produces good error reports, but costs microseconds and
// dozens of allocations even on small schemas. Most schemas, such as MCP
// tool schemas and those github.com/google/jsonschema-go derives from Go
// structs, only use types, properties, required, bounds and a few more
// keywords. fastschema compiles exactly those into a tree of checks.
//
// # Using it as a pre-check
//
// Compile the schema with both validators when a tool is registered, and
// on each call ask fastschema first:
//
//	fast, ok := fastschema.Compile(doc) // doc from jsonschema.UnmarshalJSON
//	...
//	if ok && fast.Valid(args) {
//		// valid: jsonschema/v6 would say so too
//	} else if err := full.Validate(args); err != nil {
//		// invalid: report err
//	}
//
// The one promise is soundness: when Valid reports true, jsonschema/v6
// (draft 2020-12, format assertions on) accepts the instance too. The
// reverse is not promised: Valid may report false for an instance the full
// validator accepts, and Compile may refuse a schema, which only costs
// speed. The full validator stays the authority and the source of error
// reports, and still has to compile every schema. Compile holds each
// keyword of the subset to the meta-schema, except the syntax of $id:
// [Validator.MetaValid] reports when jsonschema/v6 is sure to compile the
// same document, so that its compile can wait until an instance needs it.
//
// # The subset
//
// Compile accepts, with their draft 2020-12 meaning: boolean schemas, type
// (a name or an array of names), properties, required,
// additionalProperties, items (a single schema), enum, const, minLength and
// maxLength (counting code points), pattern (Go regexp, unanchored, as
// jsonschema/v6 uses by default), minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minItems, maxItems, minProperties, maxProperties and
// uniqueItems. Numbers are compared by exact decimal value, never through
// float64: 1.0 is an integer equal to 1, and 12345678901234567890123 is not
// 12345678901234567890124.
//
// Annotations are accepted and ignored: title, description, default,
// examples, readOnly, writeOnly, deprecated, $comment and keys starting
// with "x-"; $schema and $id only at the root, $schema only naming draft
// 2020-12; $defs and definitions, whose schemas must be in the subset too
// (with no $ref anywhere they are never applied).
//
// Everything else refuses the whole schema: applicators such as allOf,
// anyOf, not, if, $ref, prefixItems, contains, patternProperties, the
// dependent* and unevaluated* keywords, multipleOf, format, content*,
// unknown keywords, and any keyword whose value has the wrong JSON type.
//
// # Keys a handler would read for a declared property
//
// CompileKeys builds a check of another kind from the same document, for
// any schema, not only the subset: it finds members whose key is not a
// property declared for their object but folds like one, such as
// {"PATH":"/etc/passwd"} against a schema that declares "path" and allows
// other members. A handler decoding into a Go struct would read that member
// as path, whose value nothing validated. See [Keys].
//
// # Where Valid is conservative
//
// Valid reports false, whatever the schema, for values it cannot reason
// about exactly: Go types other than decoded JSON where the schema looks at
// them, NaN and infinite floats, numbers whose decimal exponent is beyond
// ±100000, and arrays longer than 64 items under uniqueItems.
package fastschema
