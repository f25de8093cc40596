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
// # Tool arguments
//
// DecodeArguments adds two rules for the arguments of a tool call, where
// the guard judges the decoded value and the tool then decodes the same
// bytes with its own parser:
//
//   - keys folding alike: encoding/json (and so every Go handler that
//     decodes into a struct) matches keys to fields ignoring case, with
//     Unicode simple folding ("ſ" U+017F is "s", the Kelvin sign U+212A is
//     "k"), so {"path":"/w/ok","PATH":"/etc/passwd"} may mean either path.
//     No object may hold two keys that AppendFold folds alike
//     (ErrFoldedKey);
//   - inexact numbers: a number must mean the same value to a reader of
//     its exact decimal and to a reader of float64 ([ExactNumber]), or
//     ErrInexactNumber. 100.0000000000000001 is refused: the policy would
//     compare 100, a tool using math/big would use more.
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
