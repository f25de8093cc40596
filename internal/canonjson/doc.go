// Package canonjson writes canonical JSON: one byte sequence per JSON value,
// so that values can be hashed and compared as bytes. The audit log hashes
// tool arguments with it, and policy revisions are identified by it.
//
// # Encoding
//
// Marshal and Append accept the values safejson decodes (map[string]any,
// []any, string, json.Number, bool, nil) plus Go numbers, json.RawMessage,
// []string and map[string]string:
//
//	b, err := canonjson.Marshal(map[string]any{"b": 1.0, "a": json.Number("1e2")})
//	// b is {"a":100,"b":1}
//
// Append writes into a caller's buffer and allocates nothing for the usual
// argument shapes, so a buffer can be reused across calls.
//
// # The canonical form
//
// Structure and strings follow RFC 8785 (JCS): no whitespace, object keys
// sorted by their UTF-16 code units, strings escaped minimally (\" \\ \b \f
// \n \r \t, other control characters as \u00xx, everything else literal
// UTF-8). A string that is not valid UTF-8 is an error, since it has no
// unambiguous encoding.
//
// Numbers deliberately differ from JCS, which rounds every number to a
// float64: two different large integers must never hash alike. canonjson
// normalises the exact decimal value instead. "1.0", "1", "10e-1" and
// float64(1) all become 1; "1.50" becomes 1.5, "1E-7" becomes 1e-7, "1e400"
// becomes 1e+400, and an integer such as 12345678901234567890123 keeps all
// its digits. Floats are formatted with their shortest round-trip digits
// first, so for every float64 the result equals JCS's. NaN and infinities
// are errors.
//
// # Strings outside values
//
// AppendString writes a single string literal, for building canonical text
// by hand. It cannot fail, so it writes invalid UTF-8 as U+FFFD; use Append
// where the bytes are hashed.
package canonjson
