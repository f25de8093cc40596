package scope_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/scope"
)

func TestParseType(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"bool", "bool"},
		{"int", "int"},
		{"uint", "uint"},
		{"double", "double"},
		{"string", "string"},
		{"dyn", "dyn"},
		{" int ", "int"},
		{"list(string)", "list(string)"},
		{"list( string )", "list(string)"},
		{"map(string,int)", "map(string, int)"},
		{"map( string ,\tint )", "map(string, int)"},
		{"list(map(string, list(dyn)))", "list(map(string, list(dyn)))"},
		{"map(string, map(string, double))", "map(string, map(string, double))"},
	} {
		got, err := scope.ParseType(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got.String(), tt.in)
	}
}

func TestParseTypeErrors(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"", "want a type, found the end"},
		{"   ", "want a type, found the end"},
		{"float", `unknown type "float" (want bool, int, uint, double, string, dyn, list(T) or map(string, T))`},
		{"Int", `unknown type "Int"`},
		{"bytes", `unknown type "bytes"`},
		{"list", `want '(', found the end`},
		{"list()", `want a type, found ")"`},
		{"list(int", `want ')', found the end`},
		{"list(int))", `unexpected ")" after the type`},
		{"list<int>", `want '(', found "<int>"`},
		{"map(int, string)", "map keys must be string, not int"},
		{"map(string)", `want ',', found ")"`},
		{"map(string, int, int)", `want ')', found ", int)"`},
		{"int int", `unexpected "int" after the type`},
		{"list(int)\n", `unexpected "\n" after the type`},
		{"(int)", `want a type, found "(int)"`},
		{strings.Repeat("list(", 40) + "int" + strings.Repeat(")", 40), "types nest more than 32 deep"},
	} {
		got, err := scope.ParseType(tt.in)
		require.Error(t, err, tt.in)
		assert.Contains(t, err.Error(), tt.want, tt.in)
		assert.True(t, strings.HasPrefix(err.Error(), fmt.Sprintf("scope: type %q: ", tt.in)), err.Error())
		assert.Equal(t, "invalid", got.String(), "the zero Type on error")
	}
}

// allTypes returns every type nested at most depth deep.
func allTypes(depth int) []scope.Type {
	out := []scope.Type{scope.BoolType, scope.IntType, scope.UintType, scope.DoubleType, scope.StringType, scope.DynType}
	if depth == 0 {
		return out
	}
	for _, e := range allTypes(depth - 1) {
		out = append(out, scope.ListOf(e), scope.MapOf(e))
	}
	return out
}

// TestParseTypeRoundTrip: ParseType reads back what String writes, for
// every type up to three levels deep, with and without extra spaces.
func TestParseTypeRoundTrip(t *testing.T) {
	types := allTypes(3)
	require.Len(t, types, 6+2*(6+2*(6+2*6)))
	for _, typ := range types {
		s := typ.String()
		got, err := scope.ParseType(s)
		require.NoError(t, err, s)
		assert.Equal(t, s, got.String())
		assert.True(t, got.Equal(typ), s)
		spaced := strings.NewReplacer("(", " ( ", ")", " ) ", ",", " , ").Replace(" " + s + " ")
		got, err = scope.ParseType(spaced)
		require.NoError(t, err, spaced)
		assert.Equal(t, s, got.String())
	}
}

// TestTypeEqual: Equal compares types by structure; every pair of
// distinct types up to two levels deep differs.
func TestTypeEqual(t *testing.T) {
	assert.True(t, scope.ListOf(scope.StringType).Equal(scope.ListOf(scope.StringType)))
	assert.True(t, scope.MapOf(scope.ListOf(scope.DynType)).Equal(scope.MapOf(scope.ListOf(scope.DynType))))
	types := allTypes(2)
	for i, a := range types {
		for j, b := range types {
			assert.Equal(t, i == j, a.Equal(b), "%s vs %s", a, b)
		}
	}
	assert.False(t, scope.Type{}.Equal(scope.StringType))
}

// FuzzParseType: ParseType never panics, and a type it accepts prints
// as a canonical string that parses back to itself.
func FuzzParseType(f *testing.F) {
	for _, s := range []string{"int", "list( string )", "map(string,list(dyn))", "map(int, int)", "list(", "", strings.Repeat("list(", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		typ, err := scope.ParseType(s)
		if err != nil {
			return
		}
		canon := typ.String()
		again, err := scope.ParseType(canon)
		if err != nil {
			t.Fatalf("ParseType(%q) = %s, which does not parse: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("ParseType(%q) = %s, which parses as %s", s, canon, again)
		}
		if strings.TrimSpace(strings.NewReplacer(" ", "", "\t", "").Replace(s)) != strings.ReplaceAll(canon, " ", "") {
			t.Fatalf("ParseType(%q) = %s: not the same type without spaces", s, canon)
		}
	})
}

func ExampleParseType() {
	for _, s := range []string{"list( string )", "map(string,double)", "map(int, string)"} {
		t, err := scope.ParseType(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(t)
	}
	// Output:
	// list(string)
	// map(string, double)
	// scope: type "map(int, string)": map keys must be string, not int
}
