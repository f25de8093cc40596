package audit

import "strings"

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

// containsSecret reports whether s holds a value one of the detectors
// recognises.
func containsSecret(s string) bool {
	for i := 0; i < len(s); i++ {
		if !startByte[s[i]] {
			continue
		}
		if secretAt(s, i) {
			return true
		}
	}
	return false
}

// secretAt reports whether a secret starts at s[i] (or, for URL
// passwords, whether s[i:] begins the "://" of one).
func secretAt(s string, i int) bool {
	rest := s[i:]
	switch s[i] {
	case 'A':
		if len(rest) >= 20 && (strings.HasPrefix(rest, "AKIA") || strings.HasPrefix(rest, "ASIA") ||
			strings.HasPrefix(rest, "ABIA") || strings.HasPrefix(rest, "ACCA")) &&
			countRun(rest[4:], isUpperAlnum) >= 16 && boundary(s, i) {
			return true
		}
		return len(rest) >= 39 && strings.HasPrefix(rest, "AIza") && countRun(rest[4:], isTokenByte) >= 35
	case '-':
		if !strings.HasPrefix(rest, "-----BEGIN ") {
			return false
		}
		end := strings.IndexByte(rest[11:], '\n')
		if end < 0 {
			end = len(rest) - 11
		}
		head := rest[11 : 11+min(end, 64)]
		return strings.Contains(head, "PRIVATE KEY-----")
	case 'B', 'b':
		return len(rest) >= 15 && strings.EqualFold(rest[:7], "bearer ") &&
			countRun(rest[7:], isBearerByte) >= 8
	case 'g':
		if len(rest) >= 40 && rest[0:2] == "gh" && rest[3] == '_' && strings.IndexByte("pousr", rest[2]) >= 0 {
			return countRun(rest[4:], isAlnum) >= 36
		}
		return len(rest) >= 33 && strings.HasPrefix(rest, "github_pat_") && countRun(rest[11:], isTokenByte) >= 22
	case 'x':
		if len(rest) < 15 {
			return false
		}
		p := rest[:5]
		if p == "xoxb-" || p == "xoxp-" || p == "xoxa-" || p == "xoxr-" || p == "xoxs-" || p == "xapp-" {
			return countRun(rest[5:], isSlackByte) >= 10
		}
		return false
	case 'e':
		return isJWT(rest)
	case ':':
		return urlPassword(s, i)
	}
	return false
}

// boundary reports whether s[i] does not continue a run of letters or
// digits, so that AKIA inside a longer word is not taken for a key id.
func boundary(s string, i int) bool {
	return i == 0 || !isAlnum(s[i-1])
}

// isJWT reports whether s starts with header.payload.signature, each part
// base64url, the header starting with "eyJ" (`{"` encoded).
func isJWT(s string) bool {
	if len(s) < 20 || !strings.HasPrefix(s, "eyJ") {
		return false
	}
	n := countRun(s, isBase64URL)
	if n < 10 || n >= len(s) || s[n] != '.' {
		return false
	}
	s = s[n+1:]
	m := countRun(s, isBase64URL)
	if m < 2 || m >= len(s) || s[m] != '.' {
		return false
	}
	return countRun(s[m+1:], isBase64URL) >= 8
}

// urlPassword reports whether the ':' at s[i] starts the "://" of a URL
// whose authority holds user:password@.
func urlPassword(s string, i int) bool {
	if !strings.HasPrefix(s[i:], "://") || i == 0 || !isAlpha(s[i-1]) {
		return false
	}
	auth := s[i+3:]
	if end := strings.IndexAny(auth, "/?# \t\n\"'"); end >= 0 {
		auth = auth[:end]
	}
	at := strings.LastIndexByte(auth, '@')
	if at < 0 {
		return false
	}
	colon := strings.IndexByte(auth[:at], ':')
	return colon >= 0 && colon < at-1
}

func countRun(s string, ok func(byte) bool) int {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return i
		}
	}
	return len(s)
}

func isAlpha(c byte) bool      { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool      { return isAlpha(c) || isDigit(c) }
func isUpperAlnum(c byte) bool { return (c >= 'A' && c <= 'Z') || isDigit(c) }
func isTokenByte(c byte) bool  { return isAlnum(c) || c == '-' || c == '_' }
func isSlackByte(c byte) bool  { return isAlnum(c) || c == '-' }
func isBase64URL(c byte) bool  { return isAlnum(c) || c == '-' || c == '_' }
func isBearerByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}
