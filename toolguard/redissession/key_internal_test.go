package redissession

import (
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

var keyPattern = regexp.MustCompile(`^\{p:[0-9a-f]{64}\}:[mltpagv]$`)

// Distinct sessions never share a key; the keys of one session share one
// hash tag and hold nothing of the ids.
func FuzzSessionKeys(f *testing.F) {
	f.Add("a:b", "c", "a", "b:c")
	f.Add("alice", "s", "mallory", "s")
	f.Add("{x}", "}", "", "{x}}")
	f.Add("1:a", "", "1", ":a")
	f.Add("a\n", "b", "a", "\nb")
	s, err := New(redis.NewClient(&redis.Options{}), Options{Prefix: "p"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p1, s1, p2, s2 string) {
		a := s.keys(toolguard.SessionKey{Principal: p1, Session: s1})
		b := s.keys(toolguard.SessionKey{Principal: p2, Session: s2})
		same := p1 == p2 && s1 == s2
		for i := range a {
			if !keyPattern.MatchString(a[i]) {
				t.Fatalf("key %q", a[i])
			}
			if (a[i] == b[i]) != same {
				t.Fatalf("(%q, %q) -> %q, (%q, %q) -> %q", p1, s1, a[i], p2, s2, b[i])
			}
			if a[i][:strings.IndexByte(a[i], '}')] != a[0][:strings.IndexByte(a[0], '}')] {
				t.Fatalf("keys %q do not share one hash tag", a)
			}
		}
	})
}

// Stored origins read back exactly; decoding never panics and refuses what
// it cannot read.
func FuzzOrigin(f *testing.F) {
	f.Add("read_email", "rec-1", uint64(1), "1:10:read_emailrec-1")
	f.Add("12:a", ":", uint64(1<<40), "")
	f.Add("", "", uint64(0), "9:99:x")
	f.Add("é", "\x00", uint64(7), "1:-1:")
	f.Fuzz(func(t *testing.T, tool, callID string, seq uint64, raw string) {
		o := scope.Origin{Tool: tool, CallID: callID, Seq: seq}
		got, err := decodeOrigin(encodeOrigin(o))
		if err != nil || got != o {
			t.Fatalf("%+v -> %q -> %+v, %v", o, encodeOrigin(o), got, err)
		}
		if d, err := decodeOrigin(raw); err == nil && encodeOrigin(d) != raw {
			// Several spellings of one origin (leading zeros) may decode;
			// they must decode to what they say.
			if !strings.HasSuffix(raw, d.Tool+d.CallID) {
				t.Fatalf("%q decoded to %+v", raw, d)
			}
		}
	})
}

func TestDecodeOriginRefuses(t *testing.T) {
	for _, raw := range []any{"", "1", "1:", "x:1:a", "1:x:a", "1:5:abc", "1:-1:a", "-1:0:", int64(3), nil} {
		if o, err := decodeOrigin(raw); err == nil {
			t.Errorf("decodeOrigin(%#v) = %+v, want an error", raw, o)
		}
	}
}

func TestDecodeStateRefuses(t *testing.T) {
	for _, v := range [][]any{
		{int64(1)},
		{int64(1), int64(1), int64(0), []any{"l"}, []any{}},
		{int64(1), int64(1), int64(0), []any{}, []any{"t", "x"}},
		{int64(1), int64(-1), int64(0), []any{}, []any{}},
		{int64(1), int64(1), int64(0), []any{"l", "bad"}, []any{}},
		{int64(1), "1", int64(0), []any{}, []any{}},
	} {
		if st, err := decodeState(v); err == nil {
			t.Errorf("decodeState(%#v) = %+v, want an error", v, st)
		}
	}
}
