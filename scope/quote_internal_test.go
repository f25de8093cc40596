package scope

import (
	"strconv"
	"testing"
	"testing/quick"
)

// TestAppendQuoted: the fast path quotes exactly as strconv.Quote does.
func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{"", "read_file", "a b", `say "hi"`, `back\slash`, "tab\t", "nul\x00", "del\x7f", "é", "\xff", "~!@#$%^&*()"} {
		if got, want := string(appendQuoted(nil, s)), strconv.Quote(s); got != want {
			t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
		}
	}
	same := func(s string) bool { return string(appendQuoted([]byte("x"), s)) == "x"+strconv.Quote(s) }
	if err := quick.Check(same, &quick.Config{MaxCount: 10000}); err != nil {
		t.Error(err)
	}
}
