package audit_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// digestRE matches a digest that replaced a value or part of one.
var digestRE = regexp.MustCompile(`redacted:hmac-sha256:[0-9a-f]{32}`)

// TestRedactDetectors: the detectors find each kind of secret and replace
// the part of the string that holds it, and only that part ("§" marks a
// digest in want).
func TestRedactDetectors(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // "" when nothing is a secret
		secrets     []string
	}{
		{"aws access key id", "AKIAIOSFODNN7EXAMPLE", "§", []string{"AKIAIOSFODNN7EXAMPLE"}},
		{"aws temporary key id in text", "key=ASIAY34FZKBOKMUTVV7A;", "key=§;", []string{"ASIAY34FZKBOKMUTVV7A"}},
		{"aws-like inside a word", "XAKIAIOSFODNN7EXAMPLE", "", nil},
		{"aws prefix too short", "AKIA1234", "", nil},
		{"google api key", "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI", "§", []string{"AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI"}},
		{"pem private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----", "§", nil},
		{"pem private key in text", "key: -----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY----- (rotate)", "key: § (rotate)",
			[]string{"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----"}},
		{"pem openssh key without end", "x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl", "x\n§", []string{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl"}},
		{"pem certificate", "-----BEGIN CERTIFICATE-----\nMIIB", "", nil},
		{"bearer token", "Authorization: Bearer abcdef0123456789", "Authorization: §", []string{"Bearer abcdef0123456789"}},
		{"bearer lower case", "bearer abcdefgh.ijk", "§", nil},
		{"bearer token in a recipient", "mallory@evil.test Bearer abcdefghijkl", "mallory@evil.test §", []string{"Bearer abcdefghijkl"}},
		{"bearer word", "the bearer of bad news", "", nil},
		{"github token", "ghp_" + strings.Repeat("a1B2", 9), "§", nil},
		{"github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "§", nil},
		{"github short", "ghp_abc", "", nil},
		{"slack bot token", "xoxb-123456789012-abcdefABCDEF", "§", nil},
		{"slack app token", "xapp-1-A0123456789-abc", "§", nil},
		{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl", "§", nil},
		{"jwt in text", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl here", "token § here",
			[]string{"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl"}},
		{"jwt-like text", "eyJust kidding.", "", nil},
		{"url with password", "postgres://app:s3cret@db.internal:5432/prod", "postgres://app:§@db.internal:5432/prod", []string{"s3cret"}},
		{"url with user only", "https://user@example.com/x", "", nil},
		{"url with empty password", "https://user:@example.com/x", "", nil},
		{"url with @ in path", "https://example.com/a:b@c", "", nil},
		{"two secrets", "AKIAIOSFODNN7EXAMPLE and Bearer abcdefghijkl, end", "§ and §, end", []string{"AKIAIOSFODNN7EXAMPLE", "Bearer abcdefghijkl"}},
		{"plain path", "/w/out/report.txt", "", nil},
		{"plain text", "hello, world: Bob bought eggs", "", nil},
		{"empty", "", "", nil},
	}
	red := audit.NewRedactor([]byte("k"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := map[string]any{"v": tt.value, "n": json.Number("1")}
			out, ptrs := red.Redact(args, nil)
			if tt.want == "" {
				assert.Nil(t, ptrs)
				assert.Equal(t, args, out)
				return
			}
			assert.Equal(t, []string{"/v"}, ptrs)
			got := out.(map[string]any)["v"].(string)
			assert.Equal(t, tt.want, digestRE.ReplaceAllString(got, "§"), "only the secret is replaced")
			// Each digest is the digest of the secret it replaces.
			digests := digestRE.FindAllString(got, -1)
			for i, secret := range tt.secrets {
				whole, _ := red.Redact(map[string]any{"v": secret}, []string{"/v"})
				assert.Equal(t, whole.(map[string]any)["v"], digests[i], "digest of %q", secret)
			}
			for _, secret := range tt.secrets {
				assert.NotContains(t, got, secret)
			}
			assert.Equal(t, tt.value, args["v"], "the caller's arguments are not modified")

			off := audit.NewRedactor([]byte("k"), audit.WithoutDetectors())
			out, ptrs = off.Redact(args, nil)
			assert.Nil(t, ptrs, "detectors off")
			assert.Equal(t, args, out)
		})
	}
}

// A secret that starts inside another and reaches past its end is hidden
// to its own end, and a secret before a URL's password is hidden too.
func TestRedactOverlappingSecrets(t *testing.T) {
	red := audit.NewRedactor([]byte("k"))
	tests := []struct{ name, value, want, leak string }{
		{"pem inside a bearer token", "Bearer -----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY----- ok", "§ ok", "MIIEsecret"},
		{"key id as the user of a url", "https://AKIAIOSFODNN7EXAMPLE:pw123@h.test/x", "https://§:§@h.test/x", "AKIAIOSFODNN7EXAMPLE"},
		{"password holding a token", "https://u:ghp_" + strings.Repeat("Ab12", 10) + "@h.test/", "https://u:§@h.test/", "Ab12Ab12"},
		{"many pem headers", strings.Repeat("-----BEGIN RSA PRIVATE KEY----- x ", 3) + "-----END RSA PRIVATE KEY----- tail", "§ tail", " x "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ptrs := red.Redact(map[string]any{"v": tt.value}, nil)
			require.Equal(t, []string{"/v"}, ptrs)
			got := out.(map[string]any)["v"].(string)
			assert.Equal(t, tt.want, digestRE.ReplaceAllString(got, "§"))
			assert.NotContains(t, got, tt.leak)
		})
	}
}

// Explain says what each redaction hid and why: a person shown the
// arguments is told exactly what they cannot see.
func TestRedactExplain(t *testing.T) {
	red := audit.NewRedactor([]byte("k"))
	args := decodeJSON(t, `{"to":"mallory@evil.test Bearer abcdefghijkl","password":"hunter2",
		"url":"https://u:pw@h.test/","note":"AKIAIOSFODNN7EXAMPLE","ok":"fine"}`)
	out, expl := red.Explain(args, []string{"/password"})
	plain, ptrs := red.Redact(args, []string{"/password"})
	assert.Equal(t, plain, out, "Explain redacts exactly as Redact does")
	assert.Equal(t, []audit.Redaction{
		{Pointer: "/note", Whole: true, Why: "it holds an AWS access key id"},
		{Pointer: "/password", Whole: true, Why: "it is marked sensitive"},
		{Pointer: "/to", Whole: false, Why: "it holds a bearer token"},
		{Pointer: "/url", Whole: false, Why: "it holds a password in a URL"},
	}, expl)
	require.Len(t, ptrs, len(expl))
	for i := range expl {
		assert.Equal(t, ptrs[i], expl[i].Pointer)
	}
	m := out.(map[string]any)
	assert.True(t, strings.HasPrefix(m["to"].(string), "mallory@evil.test redacted:hmac-sha256:"), m["to"])
	assert.Equal(t, "fine", m["ok"])

	clean := map[string]any{"ok": "fine"}
	out, expl = red.Explain(clean, nil)
	assert.Nil(t, expl)
	assert.Equal(t, clean, out)
}

func TestRedactDetectorsNested(t *testing.T) {
	red := audit.NewRedactor([]byte("k"))
	args := decodeJSON(t, `{"cmd":"ls","env":{"AWS_KEY":"AKIAIOSFODNN7EXAMPLE","HOME":"/h"},
		"headers":[{"k":"Accept","v":"*/*"},{"k":"Authorization","v":"Bearer abcdefgh12345678"}],
		"password":"hunter2","tags":["a","postgres://u:p@h/db"]}`)
	before, err := json.Marshal(args)
	require.NoError(t, err)
	out, ptrs := red.Redact(args, []string{"/password"})
	assert.Equal(t, []string{"/env/AWS_KEY", "/headers/1/v", "/password", "/tags/1"}, ptrs)
	after, err := json.Marshal(args)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after), "args unchanged")
	m := out.(map[string]any)
	assert.Equal(t, "ls", m["cmd"])
	assert.Equal(t, "/h", m["env"].(map[string]any)["HOME"])
	assert.Equal(t, "Accept", m["headers"].([]any)[0].(map[string]any)["k"])

	// Typed containers are walked too, and equal secrets give equal digests.
	typed := map[string]any{"a": map[string]string{"x": "AKIAIOSFODNN7EXAMPLE"}, "b": []string{"ok", "AKIAIOSFODNN7EXAMPLE"}}
	out, ptrs = red.Redact(typed, nil)
	assert.Equal(t, []string{"/a/x", "/b/1"}, ptrs)
	o := out.(map[string]any)
	assert.Equal(t, o["a"].(map[string]string)["x"], o["b"].([]string)[1])
	assert.Equal(t, "AKIAIOSFODNN7EXAMPLE", typed["b"].([]string)[1])

	assert.True(t, red.Detects())
	assert.False(t, audit.NewRedactor(nil, audit.WithoutDetectors()).Detects())
	var nilRed *audit.Redactor
	assert.True(t, nilRed.Detects())
	_, ptrs = nilRed.Redact(map[string]any{"k": "AKIAIOSFODNN7EXAMPLE"}, nil)
	assert.Equal(t, []string{"/k"}, ptrs, "the zero Redactor detects")
}

// TestRedactDeep: arguments deeper than the detectors walk are redacted
// whole rather than left unscanned.
func TestRedactDeep(t *testing.T) {
	var v any = "clean"
	for range 1100 {
		v = []any{v}
	}
	out, ptrs := audit.NewRedactor([]byte("k")).Redact(v, nil)
	require.Len(t, ptrs, 1)
	assert.Equal(t, 1001*2, len(ptrs[0]), "redacted at the depth limit: %.20s...", ptrs[0])
	assert.NotEqual(t, v, out)
}

func TestRedactCleanAllocs(t *testing.T) {
	red := audit.NewRedactor([]byte("k"))
	args := decodeJSON(t, `{"path":"/w/out/report.txt","content":"hello, world","mode":420}`)
	allocs := testing.AllocsPerRun(100, func() {
		out, ptrs := red.Redact(args, nil)
		if ptrs != nil || out == nil {
			t.Fatal("redacted")
		}
	})
	assert.Zero(t, allocs)
}
