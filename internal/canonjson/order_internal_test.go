package canonjson

import (
	"slices"
	"testing"
	"unicode/utf16"
)

// utf16Order is the reference order of RFC 8785 §3.2.3: the keys as
// sequences of UTF-16 code units, compared unit by unit.
func utf16Order(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// orderKeys cover every boundary where UTF-8 byte order and UTF-16 order
// could part: each UTF-8 length, the surrogate range (characters from
// U+10000) against U+E000–U+FFFF, which UTF-16 puts above them, and
// prefixes.
var orderKeys = []string{
	"", "\x00", "\r", "1", "A", "a", "ab", "abc", "b", "\x7f",
	"\u0080", "ö", "\u07ff", "\u0800", "€", "\ud7ff", "\ue000", "\uf8ff", "דּ", "\ufb00", "\ufeff", "\ufffd", "\uffff",
	"\U00010000", "\U000103ff", "\U00010400", "😀", "😀\r", "😀a", "\U0010ffff",
	"a\ue000", "a\U00010000", "a\uffff", "a😀", "é", "é\U00010000", "é\ue000",
}

// The comparator agrees with UTF-16 code unit order on every pair of keys,
// in both directions: no map iteration order is involved, so a wrong
// comparator fails this test every time.
func TestCompareUTF16AgreesWithUTF16Order(t *testing.T) {
	for _, a := range orderKeys {
		for _, b := range orderKeys {
			want := sign(utf16Order(a, b))
			if got := sign(compareUTF16(a, b)); got != want {
				t.Errorf("compareUTF16(%+q, %+q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// sortMembers puts members in UTF-16 order from every starting order of a
// set that straddles the surrogate boundary (insertion sort, up to 12
// members), and from fixed adversarial orders of a larger set (the
// library sort above 12).
func TestSortMembersFromEveryOrder(t *testing.T) {
	small := []string{"\uffff", "😀", "\ue000", "a", "€", "\U00010000", "ab"}
	want := slices.Clone(small)
	slices.SortFunc(want, utf16Order)
	require := func(ms []member[int], what string) {
		t.Helper()
		got := make([]string, len(ms))
		for i, m := range ms {
			got[i] = m.k
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: sorted to %+q, want %+q", what, got, want)
		}
	}
	n := 0
	permute(small, func(p []string) {
		ms := make([]member[int], len(p))
		for i, k := range p {
			ms[i] = member[int]{k, i}
		}
		sortMembers(ms)
		require(ms, "permutation")
		n++
	})
	if n != 5040 {
		t.Fatalf("%d permutations, want 5040", n)
	}

	want = slices.Clone(orderKeys)
	slices.SortFunc(want, utf16Order)
	orders := map[string][]string{
		"as listed": slices.Clone(orderKeys),
		"sorted":    slices.Clone(want),
		"reversed":  slices.Clone(want),
		"byte order": func() []string {
			s := slices.Clone(orderKeys)
			slices.Sort(s)
			return s
		}(),
	}
	slices.Reverse(orders["reversed"])
	for name, keys := range orders {
		ms := make([]member[int], len(keys))
		for i, k := range keys {
			ms[i] = member[int]{k, i}
		}
		sortMembers(ms)
		require(ms, name)
	}
}

// An object's members come out in UTF-16 order whatever order they are
// added in: here through map[string]string and map[string]any with keys
// on both sides of the surrogate boundary.
func TestObjectKeysInUTF16Order(t *testing.T) {
	m := map[string]any{}
	sm := map[string]string{}
	for _, k := range orderKeys {
		m[k] = 1
		sm[k] = ""
	}
	keys := slices.Clone(orderKeys)
	slices.SortFunc(keys, utf16Order)
	wantAny, wantStr := []byte{'{'}, []byte{'{'}
	for i, k := range keys {
		if i > 0 {
			wantAny, wantStr = append(wantAny, ','), append(wantStr, ',')
		}
		wantAny = append(appendLenient(wantAny, k), ":1"...)
		wantStr = append(appendLenient(wantStr, k), `:""`...)
	}
	wantAny, wantStr = append(wantAny, '}'), append(wantStr, '}')
	for range 20 {
		got, err := Marshal(m)
		if err != nil || string(got) != string(wantAny) {
			t.Fatalf("Marshal(map[string]any) = %s, %v\nwant %s", got, err, wantAny)
		}
		got, err = Marshal(sm)
		if err != nil || string(got) != string(wantStr) {
			t.Fatalf("Marshal(map[string]string) = %s, %v\nwant %s", got, err, wantStr)
		}
	}
}

// permute calls f with every permutation of s (Heap's algorithm).
func permute(s []string, f func([]string)) {
	s = slices.Clone(s)
	c := make([]int, len(s))
	f(s)
	for i := 0; i < len(s); {
		if c[i] < i {
			if i%2 == 0 {
				s[0], s[i] = s[i], s[0]
			} else {
				s[c[i]], s[i] = s[i], s[c[i]]
			}
			f(s)
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
}
