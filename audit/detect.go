package audit

import (
	"slices"
	"strings"
)

// The built-in secret detectors. Each is a hand-written matcher behind a
// one-byte prefilter: scanning a string costs one table lookup per byte
// until a byte that can start a secret shows up, and no regular expression
// runs at all. They look for
//
//   - AWS access key ids: AKIA, ASIA, ABIA or ACCA and 16 more upper-case
//     letters or digits;
//   - Google API keys: AIza and 35 more letters, digits, '-' or '_';
//   - PEM private keys: "-----BEGIN " ... "PRIVATE KEY-----";
//   - bearer tokens: "Bearer " (any case) and 8 or more token characters;
//   - GitHub tokens: ghp_, gho_, ghu_, ghs_ or ghr_ and 36 or more letters
//     or digits, and github_pat_ and 22 or more;
//   - Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs- or xapp- and 10 or
//     more letters, digits or '-';
//   - JSON Web Tokens: three base64url parts, the first starting "eyJ";
//   - passwords in URLs: scheme://user:password@host.

// startByte marks the bytes at which a detector may match.
var startByte = func() (t [256]bool) {
	for _, c := range "A-Bbgxe:" {
		t[c] = true
	}
	return t
}()

// secretKind names what a detector found.
type secretKind uint8

const (
	noSecret secretKind = iota
	awsKeyID
	googleAPIKey
	pemPrivateKey
	bearerToken
	githubToken
	slackToken
	jsonWebToken
	urlPasswordKind
)

// String returns the kind in words, as an approver is told it.
func (k secretKind) String() string {
	switch k {
	case awsKeyID:
		return "an AWS access key id"
	case googleAPIKey:
		return "a Google API key"
	case pemPrivateKey:
		return "a PEM private key"
	case bearerToken:
		return "a bearer token"
	case githubToken:
		return "a GitHub token"
	case slackToken:
		return "a Slack token"
	case jsonWebToken:
		return "a JSON Web Token"
	case urlPasswordKind:
		return "a password in a URL"
	}
	return "a secret"
}

// containsSecret reports whether s holds a value one of the detectors
// recognises.
func containsSecret(s string) bool {
	var runs runCache
	for i := 0; i < len(s); i++ {
		if !startByte[s[i]] {
			continue
		}
		if _, end, _ := secretAt(s, i, &runs); end > 0 {
			return true
		}
	}
	return false
}

// Slots of a runCache: one per run a detector counts.
const (
	runAWS = iota
	runGoogle
	runBearer
	runGitHub
	runGitHubPAT
	runSlack
	runJWT1
	runJWT2
	runJWT3
	nRuns
)

// runCache remembers, for each run a detector counts, the last run of bytes
// it counted: a detector looked at from every position inside one long run
// then costs one count in all, not one per position, so scanning a string
// stays linear in its length.
type runCache [nRuns]struct{ from, end int }

// count returns how many bytes from s[from] on are in the class ok. A nil
// cache counts every time.
func (c *runCache) count(s string, from, slot int, ok *[256]bool) int {
	if c != nil {
		if r := &c[slot]; from >= r.from && from < r.end {
			// Every byte of s[r.from:r.end] is in the class and s[r.end]
			// is not: a run from inside it ends there too.
			return r.end - from
		}
	}
	n := from
	for n < len(s) && ok[s[n]] {
		n++
	}
	if c != nil {
		c[slot].from, c[slot].end = from, n
	}
	return n - from
}

// span is the part s[start:end] of a string that holds a secret.
type span struct {
	start, end int
	kind       secretKind
}

// secretSpans returns the parts of s that hold secrets, in order, merged
// where they overlap or touch (a merged span keeps the first kind), and
// the set of kinds found (bit k for kind k). Every position is looked at,
// also inside a span already found, so that a secret starting inside
// another and reaching past its end is covered to its own end.
func secretSpans(s string, spans []span) ([]span, uint16) {
	var kinds uint16
	var runs runCache
	unordered := false
	pemEnd := -2 // where the next "-----END " is at or after i; -1 none; -2 not searched
	for i := 0; i < len(s); i++ {
		if !startByte[s[i]] {
			continue
		}
		var start, end int
		var kind secretKind
		if s[i] == '-' {
			start, end, kind = pemAt(s, i, &pemEnd)
		} else {
			start, end, kind = secretAt(s, i, &runs)
		}
		if end == 0 {
			continue
		}
		kinds |= 1 << kind
		if n := len(spans); n > 0 && start >= spans[n-1].start && start <= spans[n-1].end {
			spans[n-1].end = max(spans[n-1].end, end) // the common case: merged at once
			continue
		}
		if n := len(spans); n > 0 && start < spans[n-1].start {
			unordered = true
		}
		spans = append(spans, span{start, end, kind})
	}
	if !unordered {
		return spans, kinds
	}
	// A URL password lies after the "://" it is found at, so a secret
	// found later may start before it.
	slices.SortStableFunc(spans, func(a, b span) int { return a.start - b.start })
	merged := spans[:0]
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged, kinds
}

// pemAt is secretAt for a PEM private key at s[i], with the position of the
// next end marker cached in *next, so that many headers cost one search.
// The span runs to the end of the "-----END ...-----" line after the
// header, or to the end of s when there is none.
func pemAt(s string, i int, next *int) (start, end int, kind secretKind) {
	if _, e, _ := secretAt(s, i, nil); e == 0 {
		return 0, 0, noSecret
	}
	if *next == -2 || (*next >= 0 && *next < i) {
		*next = -1
		if j := strings.Index(s[i:], "-----END "); j >= 0 {
			*next = i + j
		}
	}
	if *next < 0 {
		return i, len(s), pemPrivateKey
	}
	tail := s[*next+9 : min(len(s), *next+9+64)]
	if j := strings.Index(tail, "-----"); j >= 0 {
		return i, *next + 9 + j + 5, pemPrivateKey
	}
	return i, len(s), pemPrivateKey
}

// secretAt reports the secret a detector finds starting at s[i] (for URL
// passwords, whose "://" starts at s[i]): the span s[start:end] that holds
// it and its kind; end is 0 when there is none. A PEM private key is
// reported from its header to the end of s (see pemAt for its real end).
// runs may be nil for a detector that counts no run (PEM).
func secretAt(s string, i int, runs *runCache) (start, end int, kind secretKind) {
	rest := s[i:]
	switch s[i] {
	case 'A':
		if len(rest) >= 20 && (strings.HasPrefix(rest, "AKIA") || strings.HasPrefix(rest, "ASIA") ||
			strings.HasPrefix(rest, "ABIA") || strings.HasPrefix(rest, "ACCA")) && boundary(s, i) {
			if n := runs.count(s, i+4, runAWS, &upperAlnum); n >= 16 {
				return i, i + 4 + n, awsKeyID
			}
		}
		if len(rest) >= 39 && strings.HasPrefix(rest, "AIza") {
			if n := runs.count(s, i+4, runGoogle, &tokenByte); n >= 35 {
				return i, i + 4 + n, googleAPIKey
			}
		}
	case '-':
		if !strings.HasPrefix(rest, "-----BEGIN ") {
			break
		}
		head := rest[11:min(len(rest), 11+64)]
		if nl := strings.IndexByte(head, '\n'); nl >= 0 {
			head = head[:nl]
		}
		if strings.Contains(head, "PRIVATE KEY-----") {
			return i, len(s), pemPrivateKey
		}
	case 'B', 'b':
		if len(rest) >= 15 && strings.EqualFold(rest[:7], "bearer ") {
			if n := runs.count(s, i+7, runBearer, &bearerByte); n >= 8 {
				return i, i + 7 + n, bearerToken
			}
		}
	case 'g':
		if len(rest) >= 40 && rest[0:2] == "gh" && rest[3] == '_' && strings.IndexByte("pousr", rest[2]) >= 0 {
			if n := runs.count(s, i+4, runGitHub, &alnum); n >= 36 {
				return i, i + 4 + n, githubToken
			}
			break
		}
		if len(rest) >= 33 && strings.HasPrefix(rest, "github_pat_") {
			if n := runs.count(s, i+11, runGitHubPAT, &tokenByte); n >= 22 {
				return i, i + 11 + n, githubToken
			}
		}
	case 'x':
		if len(rest) < 15 {
			break
		}
		p := rest[:5]
		if p == "xoxb-" || p == "xoxp-" || p == "xoxa-" || p == "xoxr-" || p == "xoxs-" || p == "xapp-" {
			if n := runs.count(s, i+5, runSlack, &slackByte); n >= 10 {
				return i, i + 5 + n, slackToken
			}
		}
	case 'e':
		if n := jwtLen(s, i, runs); n > 0 {
			return i, i + n, jsonWebToken
		}
	case ':':
		if a, b := urlPassword(s, i); b > 0 {
			return a, b, urlPasswordKind
		}
	}
	return 0, 0, noSecret
}

// boundary reports whether s[i] does not continue a run of letters or
// digits, so that AKIA inside a longer word is not taken for a key id.
func boundary(s string, i int) bool {
	return i == 0 || !isAlnum(s[i-1])
}

// jwtLen returns the length of the header.payload.signature at s[i], each
// part base64url and the header starting with "eyJ" (`{"` encoded), or 0
// when there is none.
func jwtLen(s string, i int, runs *runCache) int {
	if len(s)-i < 20 || !strings.HasPrefix(s[i:], "eyJ") {
		return 0
	}
	n := runs.count(s, i, runJWT1, &base64URL)
	if n < 10 || i+n >= len(s) || s[i+n] != '.' {
		return 0
	}
	j := i + n + 1
	m := runs.count(s, j, runJWT2, &base64URL)
	if m < 2 || j+m >= len(s) || s[j+m] != '.' {
		return 0
	}
	k := runs.count(s, j+m+1, runJWT3, &base64URL)
	if k < 8 {
		return 0
	}
	return j + m + 1 + k - i
}

// urlPassword finds the password of a URL whose "://" is at s[i] and
// whose authority holds user:password@: it returns the span of the
// password, or end 0 when there is none.
func urlPassword(s string, i int) (start, end int) {
	if !strings.HasPrefix(s[i:], "://") || i == 0 || !isAlpha(s[i-1]) {
		return 0, 0
	}
	from := i + 3
	auth := s[from:]
	if e := strings.IndexAny(auth, "/?# \t\n\"'"); e >= 0 {
		auth = auth[:e]
	}
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return 0, 0
	}
	colon := strings.IndexByte(auth[:at], ':')
	if colon < 0 || colon >= at-1 {
		return 0, 0
	}
	return from + colon + 1, from + at
}

// Byte classes of the detectors.
var (
	alnum      = class(func(c byte) bool { return isAlnum(c) })
	upperAlnum = class(func(c byte) bool { return (c >= 'A' && c <= 'Z') || isDigit(c) })
	tokenByte  = class(func(c byte) bool { return isAlnum(c) || c == '-' || c == '_' })
	slackByte  = class(func(c byte) bool { return isAlnum(c) || c == '-' })
	base64URL  = tokenByte
	bearerByte = class(func(c byte) bool {
		return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
	})
)

func class(ok func(byte) bool) (t [256]bool) {
	for c := range 256 {
		t[c] = ok(byte(c))
	}
	return t
}

func isAlpha(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }
