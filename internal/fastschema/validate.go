package fastschema

import "unicode/utf8"

// Valid reports whether instance is valid against the schema.
//
// instance is decoded JSON: map[string]any, []any, string, json.Number
// (the exact literal), bool or nil; float32, float64 and Go integer types
// are read as jsonschema/v6 reads them. Any other Go type where the schema
// looks at a value, a NaN or infinite float, or a number with a decimal
// exponent beyond ±100000 makes the instance invalid here, leaving the
// verdict to the full validator.
//
// Valid allocates nothing for json.Number, string, bool and nil values in
// objects and arrays; float and Go integer values may allocate.
func (v *Validator) Valid(instance any) bool {
	if v == nil || v.root == nil {
		return false
	}
	return v.root.valid(instance)
}

func (n *node) valid(v any) bool {
	if n.always {
		return true
	}
	if n.never {
		return false
	}
	k := kindOf(v)
	if k == kindInvalid {
		return false
	}

	var num decimal
	if k == kindNumber && (len(n.bounds) > 0 || n.types&(kindNumber|kindInteger) == kindInteger) {
		var ok bool
		if num, ok = toDecimal(v); !ok {
			return false
		}
	}
	if n.types != 0 && n.types&k == 0 {
		// "integer" admits numbers with a zero fractional part: 1.0, 1e2.
		if k != kindNumber || n.types&kindInteger == 0 || !num.isInt() {
			return false
		}
	}

	if n.hasConst && !equal(v, n.konst) {
		return false
	}
	if n.hasEnum && !n.inEnum(v) {
		return false
	}

	switch k {
	case kindString:
		return n.validString(v.(string))
	case kindNumber:
		for i := range n.bounds {
			if !n.bounds[i].holds(&num) {
				return false
			}
		}
	case kindArray:
		return n.validArray(v.([]any))
	case kindObject:
		return n.validObject(v.(map[string]any))
	}
	return true
}

func (n *node) inEnum(v any) bool {
	if s, ok := v.(string); ok && n.enumStr != nil {
		_, found := n.enumStr[s]
		return found
	}
	for _, e := range n.enum {
		if equal(v, e) {
			return true
		}
	}
	return false
}

func (n *node) validString(s string) bool {
	if n.minLength > 0 || n.maxLength >= 0 {
		// Lengths count code points (an invalid byte counts as one). A code
		// point takes one to four bytes, so the byte length often decides
		// without counting.
		l := len(s)
		if l < n.minLength {
			return false
		}
		if (n.maxLength >= 0 && l > n.maxLength) || (l+3)/4 < n.minLength {
			c := utf8.RuneCountInString(s)
			if c < n.minLength || (n.maxLength >= 0 && c > n.maxLength) {
				return false
			}
		}
	}
	return n.pattern == nil || n.pattern.MatchString(s)
}

func (n *node) validArray(arr []any) bool {
	if len(arr) < n.minItems || (n.maxItems >= 0 && len(arr) > n.maxItems) {
		return false
	}
	if n.unique && len(arr) > 1 {
		if len(arr) > maxUniqueItems {
			return false
		}
		// Only plain JSON compares the same here and in jsonschema/v6,
		// whose comparison of other values can fail midway.
		for _, e := range arr {
			if !plain(e) {
				return false
			}
		}
		for i := 1; i < len(arr); i++ {
			for j := range i {
				if equal(arr[i], arr[j]) {
					return false
				}
			}
		}
	}
	if n.items != nil {
		for _, e := range arr {
			if !n.items.valid(e) {
				return false
			}
		}
	}
	return true
}

func (n *node) validObject(obj map[string]any) bool {
	if len(obj) < n.minProps || (n.maxProps >= 0 && len(obj) > n.maxProps) {
		return false
	}
	for _, r := range n.required {
		if _, ok := obj[r]; !ok {
			return false
		}
	}
	if len(obj) < len(n.props)/2 {
		// Few members, many properties: look each member up.
		reqFound := 0
		for name, val := range obj {
			if i, ok := n.propIndex[name]; ok {
				p := &n.props[i]
				if p.required {
					reqFound++
				}
				if !p.schema.valid(val) {
					return false
				}
			} else if n.additional != nil && !n.additional.valid(val) {
				return false
			}
		}
		return reqFound == n.nRequired
	}

	found := 0
	for i := range n.props {
		p := &n.props[i]
		val, ok := obj[p.name]
		if !ok {
			if p.required {
				return false
			}
			continue
		}
		found++
		if !p.schema.valid(val) {
			return false
		}
	}
	if found == len(obj) || n.additional == nil {
		return true
	}
	if n.additional.never {
		return false
	}
	for name, val := range obj {
		if _, ok := n.propIndex[name]; !ok && !n.additional.valid(val) {
			return false
		}
	}
	return true
}
