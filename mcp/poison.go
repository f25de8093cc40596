package guardmcp

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agentguard/agentguard/internal/safejson"
)

// Severity ranks a [Finding]: SeverityHigh, SeverityMedium or SeverityLow.
type Severity string

// Severities of findings, from the most to the least severe.
const (
	// SeverityHigh: the definition carries something that, read by a
	// model, acts as an instruction the user did not give (hidden tags and
	// phrasing, invisible characters, instructions about other tools,
	// exfiltration, secret file paths).
	SeverityHigh Severity = "high"
	// SeverityMedium: the definition could hide such content (encoded
	// blobs, mixed scripts, overly long text).
	SeverityMedium Severity = "medium"
	// SeverityLow is not produced by the built-in rules; it exists so that
	// a threshold can be set below medium.
	SeverityLow Severity = "low"
)

// rank orders severities; an unknown severity ranks 0.
func (s Severity) rank() int {
	switch s {
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// ParseSeverity parses a hiding threshold: "high", "medium", "low", or
// "none" (or "") for no threshold, returned as "".
func ParseSeverity(s string) (Severity, error) {
	switch v := Severity(strings.ToLower(strings.TrimSpace(s))); v {
	case SeverityHigh, SeverityMedium, SeverityLow:
		return v, nil
	case "", "none":
		return "", nil
	}
	return "", fmt.Errorf("guardmcp: severity %q is not one of high, medium, low, none", s)
}

// Rule ids of findings.
const (
	// RuleHiddenInstructions: tags such as <IMPORTANT> or <SYSTEM>, HTML
	// comments, and phrasing such as "ignore previous instructions", "do
	// not tell the user", "before using this tool, read …" or "include the
	// conversation history".
	RuleHiddenInstructions = "hidden-instructions"
	// RuleSensitivePath: paths of secrets and credentials (~/.ssh/id_rsa,
	// .aws/credentials, .env, mcp.json, …) or a PEM private key header.
	RuleSensitivePath = "sensitive-path"
	// RuleInvisibleUnicode: zero-width characters, tag characters
	// (U+E0000–U+E007F), bidirectional overrides and isolates, variation
	// selectors of the supplementary plane, and control characters.
	RuleInvisibleUnicode = "invisible-unicode"
	// RuleToolShadowing: text that names another tool (of the same
	// server, or "the X tool", or "other tools") and tells the model how
	// to call or change it.
	RuleToolShadowing = "tool-shadowing"
	// RuleExfiltration: an instruction to send data to a URL or an e-mail
	// address, a URL with a data placeholder, or a Markdown image.
	RuleExfiltration = "exfiltration"
	// RuleEncodedBlob: a long base64-looking run of characters.
	RuleEncodedBlob = "encoded-blob"
	// RuleMixedScript: a word mixing Latin with Cyrillic or Greek letters
	// (look-alike letters that hide words from readers and filters).
	RuleMixedScript = "mixed-script"
	// RuleLongDescription: a description longer than the scan's bound.
	RuleLongDescription = "long-description"
)

// Finding is a sign of tool poisoning in an upstream tool's definition:
// text a model reads (descriptions, titles, schema defaults, enums,
// examples, property names) that looks like instructions to the model
// rather than documentation for it.
type Finding struct {
	// Rule is one of the Rule… ids.
	Rule string `json:"rule"`
	// Severity is high or medium.
	Severity Severity `json:"severity"`
	// Tool is the tool's name.
	Tool string `json:"tool"`
	// Pointer is the JSON pointer (RFC 6901) of the string in the tool
	// definition, such as /inputSchema/properties/notes/description. For
	// a property name it points at the property.
	Pointer string `json:"pointer"`
	// Excerpt is the normalised text around what matched (a few hundred
	// characters at most), with invisible and control characters written
	// as \u escapes and line breaks as spaces.
	Excerpt string `json:"excerpt"`
}

// ScanOptions tune [ScanTools]. The zero value uses the defaults.
type ScanOptions struct {
	// OtherTools are names of tools of other servers, whose mention with
	// an instruction is shadowing too. The scanned tools' own names are
	// always included.
	OtherTools []string
	// MaxDescription bounds the length in characters of a tool's
	// description (DefaultMaxDescription if zero); a property's
	// description may be a quarter of it.
	MaxDescription int
}

// DefaultMaxDescription is the longest tool description, in characters,
// not flagged as overly long. The reference servers' longest is under 500.
const DefaultMaxDescription = 4096

// maxFindingsPerTool bounds the findings reported for one tool.
const maxFindingsPerTool = 32

// ScanTools scans tool definitions as an upstream lists them (JSON objects
// of tools/list) for signs of tool poisoning; see the Rule… constants for
// what is looked for. Every string of the definition except the tool's name
// is scanned — description, title, annotations, and in the input and
// output schemas descriptions, titles, defaults, enums, consts and
// examples — and property names; the tool's name and property names are
// also read with underscores, hyphens and dots as spaces, for hidden
// instructions only. Text is compared after removing invisible
// characters, decoding HTML entities, NFKC normalisation and folding
// Cyrillic and Greek look-alikes to Latin, so that those spellings do not
// hide a phrase. The content of base64 blobs is scanned too.
//
// Findings are sorted by tool, pointer and rule; each rule is reported at
// most once per string and a tool has at most 32 findings. A definition that
// is not a JSON object is skipped and reported in the error; the findings of
// the others are still returned. A clean definition has no finding; a
// finding is a reason for review, not proof of intent.
func ScanTools(tools []json.RawMessage, opts ScanOptions) ([]Finding, error) {
	type decoded struct {
		name string
		obj  map[string]any
	}
	var defs []decoded
	var errs []error
	names := slices.Clone(opts.OtherTools)
	for i, raw := range tools {
		v, err := safejson.Decode(raw, safejson.Limits{})
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			errs = append(errs, fmt.Errorf("guardmcp: scan: tool %d is not a JSON object", i))
			continue
		}
		name, _ := obj["name"].(string)
		defs = append(defs, decoded{name, obj})
		names = append(names, name)
	}
	sc := newScanner(names, opts)
	var out []Finding
	for _, d := range defs {
		out = append(out, sc.tool(d.name, d.obj)...)
	}
	return out, errors.Join(errs...)
}

// scanner holds what one scan compares against.
type scanner struct {
	names   map[string]bool // every tool name known
	nameRE  *regexp.Regexp  // matches any known name as a word; nil if none
	maxDesc int
}

func newScanner(names []string, opts ScanOptions) *scanner {
	sc := &scanner{names: map[string]bool{}, maxDesc: opts.MaxDescription}
	if sc.maxDesc <= 0 {
		sc.maxDesc = DefaultMaxDescription
	}
	var alts []string
	for _, n := range names {
		n = strings.ToLower(n)
		// Names of one or two letters match ordinary words.
		if utf8.RuneCountInString(n) < 3 || sc.names[n] {
			continue
		}
		sc.names[n] = true
		alts = append(alts, regexp.QuoteMeta(n))
	}
	if len(alts) > 0 {
		// Longest first, so that read_text_file wins over read_text.
		slices.SortFunc(alts, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
		sc.nameRE = regexp.MustCompile(`(?i)(?:^|[^\w-])(` + strings.Join(alts, "|") + `)(?:$|[^\w-])`)
	}
	return sc
}

// tool scans one definition.
func (sc *scanner) tool(name string, def map[string]any) []Finding {
	ts := toolScan{sc: sc, name: name, seen: map[string]bool{}}
	ts.nameText("/name", name)
	for k, v := range def {
		if k == "name" {
			continue
		}
		ts.walk("/"+escapePointer(k), k, v, 0)
	}
	slices.SortFunc(ts.out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Pointer, b.Pointer), cmp.Compare(a.Rule, b.Rule))
	})
	if len(ts.out) > maxFindingsPerTool {
		ts.out = ts.out[:maxFindingsPerTool]
	}
	return ts.out
}

// toolScan collects the findings of one tool.
type toolScan struct {
	sc   *scanner
	name string
	seen map[string]bool // rule + pointer already reported
	out  []Finding
}

func (ts *toolScan) add(rule string, sev Severity, ptr, excerpt string) {
	key := rule + "\x00" + ptr
	if ts.seen[key] || len(ts.out) >= 4*maxFindingsPerTool {
		return
	}
	ts.seen[key] = true
	ts.out = append(ts.out, Finding{Rule: rule, Severity: sev, Tool: ts.name, Pointer: ptr, Excerpt: excerpt})
}

// walk scans v, found under key at pointer ptr.
func (ts *toolScan) walk(ptr, key string, v any, depth int) {
	if depth > 64 {
		return
	}
	switch x := v.(type) {
	case string:
		ts.text(ptr, key, x)
	case []any:
		for i, e := range x {
			ts.walk(ptr+"/"+strconv.Itoa(i), key, e, depth+1)
		}
	case map[string]any:
		for k, e := range x {
			p := ptr + "/" + escapePointer(k)
			if key == "properties" || key == "patternProperties" || key == "$defs" || key == "definitions" {
				// A property name is text a model reads too.
				ts.text(p, "", k)
				ts.nameText(p, k)
			}
			ts.walk(p, k, e, depth+1)
		}
	}
}

// text scans one string; key is the member it is the value of.
func (ts *toolScan) text(ptr, key, s string) {
	if s == "" {
		return
	}
	ts.invisible(ptr, s)
	if key == "description" {
		limit := ts.sc.maxDesc
		if ptr != "/description" {
			limit = max(limit/4, 256)
		}
		if n := utf8.RuneCountInString(s); n > limit {
			ts.add(RuleLongDescription, SeverityMedium, ptr, fmt.Sprintf("%d characters, over the bound of %d", n, limit))
		}
	}
	norm := normalize(s)
	ts.mixedScript(ptr, s)
	ts.patterns(ptr, norm, "")
	if joined := unspaced(norm); joined != "" {
		ts.patterns(ptr, joined, "letters spaced out: ")
	}
	if hidden := decodeTags(s); hidden != "" {
		ts.patterns(ptr, normalize(hidden), "tag characters spell: ")
	}
	ts.blobs(ptr, norm)
}

// nameText runs the hidden-instruction rules over a name with its
// underscores and hyphens read as spaces ("ignore_previous_instructions").
func (ts *toolScan) nameText(ptr, name string) {
	s := normalize(strings.NewReplacer("_", " ", "-", " ", ".", " ").Replace(name))
	for _, r := range phraseRules {
		if r.rule != RuleHiddenInstructions {
			continue
		}
		if loc := r.re.FindStringIndex(s); loc != nil {
			ts.add(r.rule, r.sev, ptr, excerpt(s, loc[0], loc[1]))
		}
	}
}

// patterns runs the phrase rules over normalised text; prefix says where
// the text came from, if not from the string itself.
func (ts *toolScan) patterns(ptr, s, prefix string) {
	for _, r := range phraseRules {
		if loc := r.re.FindStringIndex(s); loc != nil {
			ts.add(r.rule, r.sev, ptr, prefix+excerpt(s, loc[0], loc[1]))
		}
	}
	ts.exfiltration(ptr, s, prefix)
	ts.shadowing(ptr, s, prefix)
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// phraseRule is a rule that one regular expression decides.
type phraseRule struct {
	rule string
	sev  Severity
	re   *regexp.Regexp
}

// words matches up to n words (and the space after them) lazily.
func words(n int) string {
	return `(?:[\w'’-]+[\s,:;"'()*_` + "`" + `]+){0,` + strconv.Itoa(n) + `}?`
}

var phraseRules = []phraseRule{
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|critical|urgent|override|sudo|assistant|context|(?:user|ai|llm|model)[ _-]?instructions?|note[ _-]?to[ _-]?(?:ai|assistant|model|llm|agent))\b[^<>]{0,40}>`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\[/?\s*(?:INST|SYSTEM)\s*\]|<\|\s*(?:im_start|im_end|system|endoftext)\s*\|>|<<\s*/?\s*SYS\s*>>`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\b(?:ignore|disregard|forget|override|bypass|skip)\s+` + words(3) + `(?:previous|prior|above|earlier|preceding|all|any|other|your|system|existing)\s+` + words(2) + `(?:instructions?|rules?|prompts?|guidelines|directives?|policies|policy|constraints|guardrails)\b`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\b(?:do\s*not|don'?t|never|must\s*not|mustn'?t|should\s*not|shouldn'?t|without|avoid)\s+` + words(3) + `(?:tell|telling|mention|mentioning|inform|informing|notify|notifying|reveal|revealing|show|showing|alert|alerting|disclose|disclosing|warn|warning|let)\s+` + words(3) + `(?:user|users|human|operator|person)\b`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\b(?:the\s+)?(?:user|human)\s+(?:must|should|need|needs|may)\s*(?:not|n't|never)\s+` + words(2) + `(?:know|see|notice|learn|find\s+out|be\s+told|be\s+aware|be\s+informed)\b`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\bbefore\s+(?:using|calling|invoking|running|executing|you\s+(?:use|call|invoke|run))\s+(?:this|the|any)\b[^.!?\n]*?\b(?:read|cat|open|load|fetch|send|include|pass|call|provide|upload|attach|copy|extract|collect)\b`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\b(?:secretly|covertly|surreptitiously|stealthily|behind\s+the\s+user'?s\s+back)\b`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`(?i)\b(?:include|pass|send|add|append|attach|provide|copy|forward|collect|extract|put|insert|embed|leak)\b[^.!?\n]*?\b(?:system\s+prompt|conversation\s+(?:history|log|transcript)|chat\s+(?:history|log|transcript)|(?:previous|prior|earlier|all)\s+(?:user\s+)?messages|(?:any|all|every|your|other|stored|saved|cached|the\s+user'?s|user'?s)\s+(?:[\w-]+\s+)?(?:api[\s_-]?keys?|access[\s_-]?tokens?|bearer\s+tokens?|tokens|passwords?|credentials|secrets?|session\s+cookies?))\b`)},
	{RuleHiddenInstructions, SeverityHigh, regexp.MustCompile(`<!--[\s\S]*?\w[\s\S]*?-->`)},
	{RuleSensitivePath, SeverityHigh, regexp.MustCompile(`(?i)(?:~|\$home|%userprofile%)?/?\.ssh\b|id_(?:rsa|dsa|ecdsa|ed25519)|\.aws/(?:credentials|config)|(?:^|[\s'"` + "`" + `(/~])\.env(?:\.[\w-]+)?\b|/etc/(?:passwd|shadow|sudoers)\b|\.netrc\b|\.git-credentials\b|\.kube/config\b|\.docker/config\.json|\.npmrc\b|\.pypirc\b|\.pgpass\b|\.gnupg\b|\bmcp\.json\b|claude_desktop_config\.json|\.config/gcloud|\bcredentials\.json\b|\bwallet\.dat\b|\.(?:bash|zsh)_history\b|\bauthorized_keys\b|\.kdbx\b|-----BEGIN [A-Z ]*PRIVATE KEY-----`)},
	{RuleExfiltration, SeverityHigh, regexp.MustCompile(`(?i)https?://\S*[?&][\w.-]+=(?:\{|\$\{|<|%7b|\[)|!\[[^\]]*\]\(\s*https?://`)},
}

var (
	urlRE       = regexp.MustCompile(`(?i)\b(?:https?|ftp|wss?)://[^\s'"<>)\]]+|\b[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b`)
	sendVerbRE  = regexp.MustCompile(`(?i)\b(?:send|sends|sent|post|posts|upload|uploads|forward|forwards|transmit|exfiltrate|report|submit|copy|bcc|cc|e-?mail|mail|deliver|beacon|webhook|curl|wget)\b`)
	sentenceRE  = regexp.MustCompile(`[.!?;]\s+|\n`)
	shadowCueRE = regexp.MustCompile(`(?i)\b(?:when(?:ever)?|before|after|must|always|never|instead\s+of|in\s+place\s+of|override|overrides|change|modify|replace|redirect|do\s*not|don'?t|important)\b`)
	theToolRE   = regexp.MustCompile("(?i)\\bthe\\s+[`'\"]?([\\w.-]+)[`'\"]?\\s+tool\\b|\\b(?:all|any|every)\\s+(?:other\\s+)?tools?\\b|\\bother\\s+tools\\b")
	blobRE      = regexp.MustCompile(`[A-Za-z0-9+/_-]{40,}={0,2}`)
)

// sentenceAt returns the bounds of the sentence around [i, j) in s.
func sentenceAt(s string, i, j int) (int, int) {
	start, end := 0, len(s)
	for _, loc := range sentenceRE.FindAllStringIndex(s, -1) {
		if loc[1] <= i {
			start = loc[1]
		} else if loc[0] >= j {
			end = loc[0]
			break
		}
	}
	return start, end
}

// exfiltration flags a URL or e-mail address in a sentence that tells
// to send something.
func (ts *toolScan) exfiltration(ptr, s, prefix string) {
	for _, loc := range urlRE.FindAllStringIndex(s, 16) {
		a, b := sentenceAt(s, loc[0], loc[1])
		sentence := s[a:loc[0]] + " " + s[loc[1]:b]
		if sendVerbRE.MatchString(sentence) {
			ts.add(RuleExfiltration, SeverityHigh, ptr, prefix+excerpt(s, loc[0], loc[1]))
			return
		}
	}
}

// shadowing flags a sentence that names another tool and tells the model
// what to do with it.
func (ts *toolScan) shadowing(ptr, s, prefix string) {
	own := strings.ToLower(ts.name)
	check := func(i, j int, named string) bool {
		if named == own {
			return false
		}
		a, b := sentenceAt(s, i, j)
		if shadowCueRE.MatchString(s[a:i] + " " + s[j:b]) {
			ts.add(RuleToolShadowing, SeverityHigh, ptr, prefix+excerpt(s, i, j))
			return true
		}
		return false
	}
	if re := ts.sc.nameRE; re != nil {
		for _, m := range re.FindAllStringSubmatchIndex(s, 16) {
			if check(m[2], m[3], strings.ToLower(s[m[2]:m[3]])) {
				return
			}
		}
	}
	for _, m := range theToolRE.FindAllStringSubmatchIndex(s, 16) {
		named := ""
		if m[2] >= 0 {
			named = strings.ToLower(s[m[2]:m[3]])
			if named == "this" || named == "that" || named == "same" || named == "following" || named == "above" || named == "current" {
				continue
			}
		}
		if check(m[0], m[1], named) {
			return
		}
	}
}

// blobs flags base64-looking runs and scans what they decode to.
func (ts *toolScan) blobs(ptr, s string) {
	masked := urlRE.ReplaceAllStringFunc(s, func(u string) string { return strings.Repeat(" ", len(u)) })
	for _, loc := range blobRE.FindAllStringIndex(masked, 8) {
		run := masked[loc[0]:loc[1]]
		if !looksEncoded(run) {
			continue
		}
		ts.add(RuleEncodedBlob, SeverityMedium, ptr, excerpt(s, loc[0], loc[1]))
		if dec := decodeBase64(run); dec != "" {
			ts.patterns(ptr, normalize(dec), "base64 decodes to: ")
		}
	}
}

// looksEncoded says whether a run mixes the character classes of base64
// and is not a path.
func looksEncoded(run string) bool {
	var up, low, dig, slash int
	for _, r := range run {
		switch {
		case r >= 'A' && r <= 'Z':
			up++
		case r >= 'a' && r <= 'z':
			low++
		case r >= '0' && r <= '9':
			dig++
		case r == '/':
			slash++
		}
	}
	return up > 0 && low > 0 && dig > 0 && slash <= len(run)/16+1
}

// decodeBase64 returns the text a run decodes to, or "" if it is not
// printable text.
func decodeBase64(run string) string {
	run = strings.TrimRight(run, "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(run)
		if err != nil || !utf8.Valid(b) {
			continue
		}
		printable := 0
		for _, r := range string(b) {
			if unicode.IsPrint(r) || unicode.IsSpace(r) {
				printable++
			}
		}
		if printable*10 >= utf8.RuneCount(b)*9 {
			return string(b)
		}
	}
	return ""
}

// excerpt returns about 160 characters of s around [i, j), escaped.
func excerpt(s string, i, j int) string {
	const ctx = 60
	a, b := max(0, i-ctx), min(len(s), max(j, i+40)+ctx)
	if j-i > 2*ctx {
		b = min(len(s), i+2*ctx)
	}
	for a > 0 && !utf8.RuneStart(s[a]) {
		a--
	}
	for b < len(s) && !utf8.RuneStart(s[b]) {
		b++
	}
	out := escapeInvisible(s[a:b])
	if a > 0 {
		out = "…" + out
	}
	if b < len(s) {
		out += "…"
	}
	return out
}

func escapeInvisible(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' || r == '\r' {
			sb.WriteByte(' ')
			continue
		}
		if invisibleKind(r) != "" || r == utf8.RuneError {
			fmt.Fprintf(&sb, `\u%04X`, r)
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
