// Package provenance turns values into the tokens that value provenance
// matches on: a rule's x.from("label") is true when a token of x is a
// token of the result of an earlier call of the session that carried the
// label.
//
// # Normalisation
//
// Text is made valid UTF-8, put in NFKC form (fullwidth "ＤＥ８９" is
// "DE89"); common Cyrillic, Greek, Latin and Armenian look-alikes of Latin
// letters are mapped to them ("раураl" is "paypal") before and after
// case folding (capital "В" folds to "в", which looks like no Latin
// letter; "Һ" folds to "һ", which is "h"), invisible format characters
// (zero width space, soft hyphen) are dropped, and marks are composed
// again. The steps repeat until the text no longer changes, so the normal
// form of a normal form is itself.
//
// A result's text ([Set.Add]) is also tokenised with its escapes undone —
// JSON and backslash escapes, percent-encoding, HTML character references,
// two layers deep — and defanged dots ("evil[.]test") restored.
//
// # Tokens
//
// Matching is by whole token, never by substring. In order of precedence
// at each word start:
//
//   - a URL (scheme://… or www.…): its host, lower-case, without port,
//     user information, trailing dot or leading "www.", internationalised
//     names in punycode (punycode of look-alikes read as what they spell);
//     and host/path without the query, fragment or trailing slash. The
//     query and fragment, user information, and a path that holds another
//     URL are read on as text;
//   - an e-mail address: local@host, the host as above;
//   - an IBAN whose check digits are right, whole or in groups parted by
//     up to four white space characters or one hyphen or dot, also right
//     after a label ("IBAN-DE89…"): its characters without separators;
//   - a host name (two or more labels, the last of two or more letters)
//     or an IPv4 address;
//   - a phone number (7 to 15 digits, optionally after +, in groups
//     separated by spaces, hyphens, dots or parentheses): its digits, and
//     "tel:" with its last nine digits, so that +44 20 7946 0958 and
//     020 7946 0958 match;
//   - otherwise a word: a run of letters, digits and marks, kept when it
//     has at least [MinWord] runes and a letter, or at least [MinNumber]
//     digits. "a", "the", 2024 and 100 are never tokens.
//
// A URL, address, IBAN, host or phone number is one token: the words
// inside it are not tokens of their own, so "evil" does not match
// "evil.com". Tokens longer than [MaxTokenBytes] are replaced by a digest
// of themselves.
package provenance
