package provenance_test

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/agentguard/agentguard/internal/provenance"
)

// shares reports whether a and b have a token in common: what from() asks.
func shares(a, b string) bool {
	tb := provenance.Tokens(b)
	for _, t := range provenance.Tokens(a) {
		if slices.Contains(tb, t) {
			return true
		}
	}
	return false
}

func TestMatches(t *testing.T) {
	for _, c := range []struct{ value, text string }{
		{"DE89370400440532013000", "IBAN: DE89 3704 0044 0532 0130 00."},
		{"DE89370400440532013000", "IBAN:\nDE89\n3704\n0044\n0532\n0130\n00"},
		{"DE89370400440532013000", "DE89  3704  0044  0532  0130  00"},
		{"DE89370400440532013000", "DE89\t3704\t0044\t0532\t0130\t00"},
		{"DE89370400440532013000", "DE89\u00a03704\u00a00044\u00a00532\u00a00130\u00a000"},
		{"DE89370400440532013000", "IBAN-DE89370400440532013000"},
		{"DE89370400440532013000", "pay_DE89 3704 0044 0532 0130 00"},
		{"DE89370400440532013000", "to DE89 3704 0044 0532 0130 00 2024 12"},
		{"DE89370400440532013000", "to DE89 3704 0044 0532 0130 00 GB82 WEST 1234 5698 7654 32"},
		{"de89 3704 0044 0532 0130 00", "DE89370400440532013000"},
		{"ＤＥ８９３７０４００４４０５３２０１３０００", "DE89370400440532013000"},
		{"DЕ89370400440532013000", "DE89370400440532013000"}, // Cyrillic Е
		{"GB82 WEST 1234 5698 7654 32", "gb82west12345698765432"},
		{"attacker@evil.test", "mail ATTACKER@Evil.Test now"},
		{"https://evil.test/x", "see http://EVIL.test:8080/other?q=1"},
		{"evil.test", "https://www.evil.test/"},
		{"bücher.example", "http://xn--bcher-kva.example/"},
		{"+44 20 7946 0958", "call 020 7946 0958"},
		{"(555) 123-4567", "+1 555 123 4567"},
		{"555.123.4567", "5551234567"},
		{"Confidential", "CONFIDENTIAL report"},
		{"straße", "STRASSE"},
		{"1.2.3.4", "connect to 1.2.3.4:22"},
		{"payload-2931-zulu", "the payload-2931-zulu marker"},
	} {
		assert.True(t, shares(c.value, c.text), "%q should match %q (tokens %q / %q)", c.value, c.text, provenance.Tokens(c.value), provenance.Tokens(c.text))
	}
}

func TestDoesNotMatch(t *testing.T) {
	for _, c := range []struct{ value, text string }{
		{"DE8937040044053201300", "DE89370400440532013000"}, // a substring
		{"evil", "evil.test"},
		{"evil.test", "notevil.test"},
		{"evil.te", "evil.test"},
		{"attacker@evil.test", "attacker@evil.test.example"},
		{"a", "a b c a"},
		{"the", "the the"},
		{"2024", "in 2024 we"},
		{"100", "100 dollars"},
		{"abc", "abc"},
		{"0044", "DE89 3704 0044 0532 0130 00"},
		{"3704", "DE89 3704 0044 0532 0130 00"},
		{"2024 100", "2024100"},
		{"", "anything"},
		{"smith", "alice.smith@evil.test"},
		{"collect", "https://evil.test/collect"},
	} {
		assert.False(t, shares(c.value, c.text), "%q must not match %q (tokens %q / %q)", c.value, c.text, provenance.Tokens(c.value), provenance.Tokens(c.text))
	}
}

func TestInvalidIBANIsWords(t *testing.T) {
	// Check digits wrong: not one IBAN token, and its four-digit groups
	// are not tokens of their own.
	toks := provenance.Tokens("DE00 3704 0044 0532 0130 00")
	assert.NotContains(t, toks, "de00370400440532013000")
	assert.NotContains(t, toks, "3704")
	assert.Equal(t, []string{"de00370400440532013000"}, provenance.Tokens("DE00370400440532013000"))
}

func TestLongTokensAreDigested(t *testing.T) {
	long := strings.Repeat("x", 200)
	toks := provenance.Tokens(long)
	assert.Len(t, toks, 1)
	assert.LessOrEqual(t, len(toks[0]), provenance.MaxTokenBytes)
	assert.Equal(t, toks, provenance.Tokens(strings.ToUpper(long)))
	assert.NotEqual(t, toks, provenance.Tokens(long[:199]))
}

func TestSetAddValue(t *testing.T) {
	var s provenance.Set
	s.AddValue(map[string]any{"accounts": []any{"DE89 3704 0044 0532 0130 00", 12345678.0}, "note": nil, "ok": true})
	assert.ElementsMatch(t, []string{"accounts", "note", "de89370400440532013000", "12345678", "tel:12345678"}, s.Tokens())
}

// TestLookalikesMadeByFolding: a letter that case folding turns into a
// look-alike is mapped like the look-alike, so a value copied from a result
// in such a spelling still carries the result's tokens.
func TestLookalikesMadeByFolding(t *testing.T) {
	for _, c := range []struct{ spelled, plain string }{
		{"\u04baello", "hello"},         // Cyrillic capital shha folds to һ, a look-alike of h
		{"\u04c0ogin", "login"},         // Cyrillic palochka folds to ӏ, a look-alike of l
		{"ab\u0345cd", "abicd"},         // the combining ypogegrammeni folds to ι, a look-alike of i
		{"x\u0390yz", "xḯyz"},           // ΐ folds to ι and two marks; the i and its marks compose
		{"ＨＥＬＬＯ", "hello"},              // fullwidth
		{"\u0421\u041e\u0420E", "cope"}, // Cyrillic capitals, mapped after folding
	} {
		assert.Equal(t, provenance.Normalize(c.plain), provenance.Normalize(c.spelled), "%q", c.spelled)
		assert.Equal(t, provenance.Tokens(c.plain), provenance.Tokens(c.spelled), "%q", c.spelled)
	}
}

func FuzzTokens(f *testing.F) {
	for _, s := range []string{"DE89 3704 0044 0532 0130 00", "a@b.cd", "https://x.y/z", "+1 (555) 123-4567", "ＡＢＣＤ", "\xff\xfe", "www.", "@@..", "(((", "+", "1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := provenance.Tokens(s)
		seen := map[string]bool{}
		for _, tok := range toks {
			if tok == "" || len(tok) > provenance.MaxTokenBytes+8 || !utf8.ValidString(tok) {
				t.Fatalf("bad token %q from %q", tok, s)
			}
			if seen[tok] {
				t.Fatalf("duplicate token %q from %q", tok, s)
			}
			seen[tok] = true
		}
		if n := provenance.Normalize(s); provenance.Normalize(n) != n {
			t.Fatalf("Normalize is not idempotent on %q: %q, then %q", s, n, provenance.Normalize(n))
		}
		// Tokenising is a function of the normalised text.
		again := provenance.Tokens(provenance.Normalize(s))
		if !slices.Equal(toks, again) {
			t.Fatalf("tokens of %q (%q) differ from those of its normal form (%q)", s, toks, again)
		}
		// A value's tokens are tokens of any text that quotes it between
		// spaces: it matches the result it came from.
		quoted := map[string]bool{}
		for _, tok := range provenance.Tokens("zz. " + s + " .zz") {
			quoted[tok] = true
		}
		for _, tok := range toks {
			if !quoted[tok] {
				t.Fatalf("token %q of %q is not a token of a text quoting it", tok, s)
			}
		}
	})
}

// Tokenising takes time linear in the text, whatever its shape.
func TestLinearTime(t *testing.T) {
	fastest := func(s string) time.Duration {
		best := time.Duration(1 << 62)
		for range 5 {
			start := time.Now()
			var set provenance.Set
			set.Add(s) // Tokens, and again for each decoding
			best = min(best, time.Since(start))
		}
		return best
	}
	for _, unit := range []string{"a-", "a.", "a@", "1-", "de89 ", "http://", "a+", "0 ", "(1)", "a%", "(", "()", "a:///", "a://@/", "a://:/", "a://?", "www./", "de89-", "de89\n", "a%2e", "a&#46;", `a\.`, `\u0065`, "a[.]", "_a.b", "https://a.b/?", "a://b/", "https://a/x"} {
		small := fastest(strings.Repeat(unit, 500))
		big := fastest(strings.Repeat(unit, 32000))
		ratio := float64(big) / float64(small)
		// Quadratic work would take 4096×; allow for caches and the collector.
		assert.Less(t, ratio, 64*12.0, "unit %q: 64× the text took %.0f× the time", unit, ratio)
	}
}

// TestEveryLookalikeInEveryCase: each look-alike in the table, capital or
// small, normalises like the Latin letter it imitates — folding must not
// first turn a capital into a small letter the table does not hold.
func TestEveryLookalikeInEveryCase(t *testing.T) {
	for k, v := range provenance.Lookalikes() {
		assert.Equal(t, provenance.Normalize(string(v)), provenance.Normalize(string(k)), "%q (U+%04X) should read as %q", k, k, v)
		word := "pay" + string(k) + "load"
		assert.Equal(t, provenance.Tokens("pay"+string(v)+"load"), provenance.Tokens(word), "%q", word)
	}
	for _, c := range []struct{ spelled, plain string }{
		{"\u0412\u041a\u041c\u041d\u0422", "bkmht"}, // Cyrillic capitals В К М Н Т
		{"\u0392\u0395\u0396\u0397\u039c\u03a4", "bezhmt"},
		{"\u039d", "n"}, // Greek capital nu reads as N, not as ν's v
		{"\u03a5", "y"}, // Greek capital upsilon reads as Y, not as υ's u
	} {
		assert.Equal(t, provenance.Normalize(c.plain), provenance.Normalize(c.spelled), "%q", c.spelled)
	}
}

// resultShares reports whether value shares a token with a result whose
// text is text, read as a result is: by Set.Add, escapes undone too.
func resultShares(value, text string) bool {
	var set provenance.Set
	set.Add(text)
	for _, t := range provenance.Tokens(value) {
		if slices.Contains(set.Tokens(), t) {
			return true
		}
	}
	return false
}

// TestResultSpellings: a value copied from a result shares a token with
// it however the result hid it — in a URL's query or fragment, glued to
// leading punctuation, behind escapes, invisible characters, look-alikes
// or punycode, or in an IBAN grouped by hyphens, dots or wide gaps.
func TestResultSpellings(t *testing.T) {
	for _, c := range []struct{ value, text string }{
		{"https://evil.test/p", "docs: https://ok.test/?next=https://evil.test/p"},
		{"attacker@evil.test", "docs: https://ok.test/#mail=attacker@evil.test"},
		{"DE89370400440532013000", "see https://ok.test/?acct=DE89370400440532013000"},
		{"+15550100123", "see https://ok.test/?tel=+15550100123"},
		{"evil.test", "send it to _evil.test_"},
		{"attacker@evil.test", "mail _attacker@evil.test_"},
		{"attacker@evil.test", "--to -attacker@evil.test"},
		{"evil.test", "%evil.test"},
		{"DE89370400440532013000", "DE89    3704 0044 0532 0130 00"},
		{"DE89370400440532013000", "DE89-3704-0044-0532-0130-00"},
		{"DE89370400440532013000", "DE89.3704.0044.0532.0130.00"},
		{"https://evil.test/payload", "https%3A%2F%2Fevil.test%2Fpayload"},
		{"evil.test", `see evil\.test`},
		{"evil.test", `{"a":"\\u0065vil.test"}`},
		{"evil.test", `\x65vil.test`},
		{"evil.test", "evil&#46;test"},
		{"evil.test", "evil[.]test"},
		{"evil.test", "evi\u2060l.test"},
		{"evil.test", "evi\u200bl.test"},
		{"evil.test", "\ufeffevil.test"},
		{"evil.test", "evi\u00adl.test"},
		{"evil.test", "evıl.test"},
		{"https://epic.com/p", "https://xn--e1awd7f.com/p"},
		{"https://evil.test/x", "https://ok.test/r/https://evil.test/x"},
		{"evil.test", "https://ok.test/r/-https://evil.test/x"},
		{"evil.test", "https://ok.test/r/1http://evil.test/x"},
		{"evil.test", "https://ok.test/r/.https://evil.test/x"},
		{"evil.test", "https://ok.test/r/+https://evil.test/x"},
		{"evil.test", "https://ok.test/r/-http://user@evil.test/x"},
		{"evil.test", "https://evil.test@ok.test/"},
		{"evil.test", "evil%252Etest"},
		{"evil.test", "https%253A%252F%252Fevil.test"},
		{"evil.test", "evil&amp;#46;test"},
		{"evil.test", "evil&#37;2Etest"},
		{"evil.test", `\xd0\xb5vil.test`},
		{"evil.test", "evil(dot)test"},
		{"evil.test", "evil{.}test"},
		{"明日は雨です", "今日は晴れです。明日は雨です。"},
		{"evil.test", "see_evil.test"},
		{"DE89370400440532013000", "DE89 - 3704 - 0044 - 0532 - 0130 - 00"},
		{"DE89370400440532013000", "DE89/3704/0044/0532/0130/00"},
		{"evil.test", "evil％2Etest"},
	} {
		assert.True(t, resultShares(c.value, c.text), "%q should match %q", c.value, c.text)
	}
	// Words of a URL's own path are still not values.
	assert.False(t, resultShares("collect", "https://evil.test/collect"))
}
