package guardmcp

import (
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// invisibleKind names the kind of an invisible or control character, or
// returns "" for any other rune.
func invisibleKind(r rune) string {
	switch {
	case r >= 0xE0000 && r <= 0xE007F:
		return "tag"
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F, r == 0x061C:
		return "bidi"
	case r >= 0x200B && r <= 0x200D, r >= 0x2060 && r <= 0x2064, r == 0xFEFF, r == 0x180E, r == 0x034F,
		r == 0x115F, r == 0x1160, r == 0x3164, r == 0xFFA0, r == 0x17B4, r == 0x17B5, r == 0x00AD,
		r >= 0xFFF9 && r <= 0xFFFB:
		return "zero-width"
	case r >= 0xE0100 && r <= 0xE01EF:
		return "variation-selector"
	case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r >= 0x7F && r <= 0x9F:
		return "control"
	}
	return ""
}

// excused says whether the invisible rune at runes[i] has an ordinary use
// there: a joiner between two non-ASCII characters (emoji sequences, Indic
// and Arabic scripts), or a direction mark in text with right-to-left
// letters.
func excused(runes []rune, i int, rtl bool) bool {
	switch runes[i] {
	case 0x200C, 0x200D:
		return i > 0 && i+1 < len(runes) && runes[i-1] > 0x7F && runes[i+1] > 0x7F &&
			invisibleKind(runes[i-1]) == "" && invisibleKind(runes[i+1]) == ""
	case 0x200E, 0x200F, 0x061C:
		return rtl
	}
	return false
}

func hasRTL(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Hebrew, unicode.Arabic, unicode.Syriac, unicode.Thaana, unicode.Nko) {
			return true
		}
	}
	return false
}

// invisible flags invisible and control characters in s.
func (ts *toolScan) invisible(ptr, s string) {
	runes := []rune(s)
	rtl := hasRTL(s)
	kinds := map[string]int{}
	first := -1
	for i, r := range runes {
		k := invisibleKind(r)
		if k == "" || excused(runes, i, rtl) {
			continue
		}
		kinds[k]++
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return
	}
	var parts []string
	for _, k := range []string{"tag", "bidi", "zero-width", "variation-selector", "control"} {
		if n := kinds[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	off := len(string(runes[:first]))
	ex := strings.Join(parts, ", ") + ": " + excerpt(s, off, off+utf8.RuneLen(runes[first]))
	if hidden := decodeTags(s); hidden != "" {
		ex += "; hidden text: " + strconvQuote(hidden, 120)
	}
	ts.add(RuleInvisibleUnicode, SeverityHigh, ptr, ex)
}

// strconvQuote quotes the first n characters of s.
func strconvQuote(s string, n int) string {
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

// decodeTags returns the ASCII text spelled with tag characters in s.
func decodeTags(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if r >= 0xE0020 && r <= 0xE007E {
			sb.WriteRune(r - 0xE0000)
		}
	}
	return sb.String()
}

// dropInvisible removes invisible characters (control characters become
// spaces, so that words stay apart).
func dropInvisible(s string) string {
	return strings.Map(func(r rune) rune {
		switch invisibleKind(r) {
		case "":
			return r
		case "control":
			return ' '
		}
		return -1
	}, s)
}

// escapeRE matches \uXXXX and \xXX escapes written out in text.
var escapeRE = regexp.MustCompile(`\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}`)

// spacedRE matches words spelled with spaces between their letters.
var spacedRE = regexp.MustCompile(`\b(?:\pL ){3,}\pL\b`)

// normalize returns s as the phrase rules read it: HTML entities and
// written-out \u and \x escapes decoded, invisible characters removed,
// NFKC (fullwidth and mathematical letters become ASCII), and Cyrillic
// and Greek look-alikes folded to Latin.
func normalize(s string) string {
	for range 2 {
		if !strings.Contains(s, "&") {
			break
		}
		s = html.UnescapeString(s)
	}
	if strings.Contains(s, "\\") {
		s = escapeRE.ReplaceAllStringFunc(s, func(e string) string {
			n, err := strconv.ParseUint(e[2:], 16, 32)
			if err != nil {
				return e
			}
			return string(rune(n))
		})
	}
	s = dropInvisible(s)
	s = norm.NFKC.String(s)
	s = dropInvisible(s)
	return strings.Map(func(r rune) rune {
		if l, ok := confusables[r]; ok {
			return l
		}
		return r
	}, s)
}

// confusables maps Cyrillic and Greek letters to the Latin letters they
// look like.
var confusables = map[rune]rune{
	'а': 'a', 'е': 'e', 'о': 'o', 'р': 'p', 'с': 'c', 'у': 'y', 'х': 'x', 'і': 'i', 'ј': 'j', 'ѕ': 's',
	'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'һ': 'h', 'ӏ': 'l', 'ɡ': 'g',
	'А': 'A', 'В': 'B', 'Е': 'E', 'К': 'K', 'М': 'M', 'Н': 'H', 'О': 'O', 'Р': 'P', 'С': 'C', 'Т': 'T',
	'Х': 'X', 'У': 'Y', 'І': 'I', 'Ј': 'J', 'Ѕ': 'S', 'Ԛ': 'Q', 'Ԝ': 'W',
	'ο': 'o', 'ν': 'v', 'ρ': 'p', 'ι': 'i', 'κ': 'k', 'α': 'a',
	'Α': 'A', 'Β': 'B', 'Ε': 'E', 'Ζ': 'Z', 'Η': 'H', 'Ι': 'I', 'Κ': 'K', 'Μ': 'M', 'Ν': 'N', 'Ο': 'O',
	'Ρ': 'P', 'Τ': 'T', 'Υ': 'Y', 'Χ': 'X',
}

// mixedScript flags a word that mixes Latin with Cyrillic or Greek letters.
func (ts *toolScan) mixedScript(ptr, s string) {
	s = norm.NFKC.String(dropInvisible(s))
	start := -1
	var latin, other bool
	for i, r := range s + " " {
		if unicode.IsLetter(r) || unicode.IsMark(r) {
			if start < 0 {
				start, latin, other = i, false, false
			}
			latin = latin || unicode.Is(unicode.Latin, r)
			other = other || unicode.In(r, unicode.Cyrillic, unicode.Greek)
			continue
		}
		if start >= 0 && latin && other {
			ts.add(RuleMixedScript, SeverityMedium, ptr, excerpt(s, start, i))
			return
		}
		start = -1
	}
}

// unspaced joins words spelled with spaces between their letters
// ("I G N O R E"), or returns "" if there are none.
func unspaced(s string) string {
	if !spacedRE.MatchString(s) {
		return ""
	}
	return spacedRE.ReplaceAllStringFunc(s, func(w string) string { return strings.ReplaceAll(w, " ", "") })
}
