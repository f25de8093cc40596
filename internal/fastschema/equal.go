package fastschema

import (
	"encoding/json"
	"math"
)

// kind is the JSON type of a decoded value, as a bit so that a set of
// types is a mask.
type kind uint8

const (
	kindNull kind = 1 << iota
	kindBoolean
	kindNumber
	kindInteger // only in type sets: "integer"; values are kindNumber
	kindString
	kindArray
	kindObject

	kindInvalid kind = 0
)

// kindOf classifies v the way jsonschema/v6 does. Values that are not
// decoded JSON (other Go types, NaN, infinities) are kindInvalid.
func kindOf(v any) kind {
	switch n := v.(type) {
	case nil:
		return kindNull
	case bool:
		return kindBoolean
	case string:
		return kindString
	case json.Number:
		return kindNumber
	case map[string]any:
		return kindObject
	case []any:
		return kindArray
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return kindInvalid
		}
		return kindNumber
	case float32:
		if math.IsNaN(float64(n)) || math.IsInf(float64(n), 0) {
			return kindInvalid
		}
		return kindNumber
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return kindNumber
	}
	return kindInvalid
}

// equal reports whether a and b are equal JSON values: numbers by exact
// value (1 == 1.0 == 1e0), objects by members regardless of order, arrays
// element by element. A value that is not decoded JSON, or a number
// parseNumber refuses, is equal to nothing, so a true result means both
// sides were compared in full and are plain JSON.
func equal(a, b any) bool { return equalDepth(a, b, 0) }

// maxValueDepth bounds the recursion of equal and plain: deeper values
// (only possible in trees built by hand, possibly cyclic) are treated as
// unequal and not plain.
const maxValueDepth = 1000

func equalDepth(a, b any, depth int) bool {
	if depth > maxValueDepth {
		return false
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok || !equalDepth(av, bv, depth+1) {
				return false
			}
		}
		return true
	case []any:
		ba, ok := b.([]any)
		if !ok || len(a) != len(ba) {
			return false
		}
		for i := range a {
			if !equalDepth(a[i], ba[i], depth+1) {
				return false
			}
		}
		return true
	}
	if kindOf(a) != kindNumber || kindOf(b) != kindNumber {
		return false
	}
	if an, ok := a.(json.Number); ok {
		if bn, ok := b.(json.Number); ok && an == bn {
			return validNumber(an)
		}
	}
	da, ok := toDecimal(a)
	if !ok {
		return false
	}
	db, ok := toDecimal(b)
	if !ok {
		return false
	}
	return cmpDecimal(&da, &db) == 0
}

func validNumber(n json.Number) bool {
	_, ok := parseNumber(string(n))
	return ok
}

// plain reports whether v is decoded JSON all the way down, with every
// number one parseNumber accepts. Only such values compare
// deterministically; see uniqueItems.
func plain(v any) bool { return plainDepth(v, 0) }

func plainDepth(v any, depth int) bool {
	if depth > maxValueDepth {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if !plainDepth(e, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range v {
			if !plainDepth(e, depth+1) {
				return false
			}
		}
		return true
	}
	switch kindOf(v) {
	case kindInvalid:
		return false
	case kindNumber:
		_, ok := toDecimal(v)
		return ok
	}
	return true
}
