// Package safejson decodes untrusted JSON, such as the arguments a model
// sends to a tool, strictly and within fixed bounds.
//
// A guard that validates arguments with one JSON parser and hands them to a
// tool that reads them with another is only as strong as the two parsers'
// agreement. Duplicate keys, invalid UTF-8, lone surrogates and huge numbers
// are where parsers disagree, so safejson rejects them all: whatever it
// accepts means the same thing to every conforming parser.
//
// # Decoding
//
// Decode returns the same shapes as encoding/json with UseNumber:
// map[string]any, []any, string, json.Number, bool and nil. Numbers keep
// their exact text ("1.0" stays "1.0", a 30-digit integer keeps all its
// digits):
//
//	v, err := safejson.Decode([]byte(`{"path":"/w/a.txt","mode":420}`), safejson.Limits{})
//
// DecodeObject additionally requires an object at the top level, which is
// what tool arguments always are.
//
// # Limits
//
// Limits bound the input size (checked before parsing), the nesting depth and
// the total number of values. The zero Limits means 1 MiB, 64 levels and
// 100 000 values. Decoding uses an explicit stack, so a deep document costs
// no Go stack, and the work is linear in the input.
//
// # Errors
//
// Every failure is an *Error carrying the byte offset, the JSON pointer of
// the value being decoded and a short detail, meant to be read by a person or
// a model:
//
//	safejson: duplicate object key at /a (offset 17): key "path" appears twice
//
// Use errors.Is with the sentinels (ErrSyntax, ErrDuplicateKey, ...) to tell
// the kinds apart.
package safejson
