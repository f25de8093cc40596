package audit_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

func TestRedactDetectors(t *testing.T) {
	tests := []struct {
		name, value string
		secret      bool
	}{
		{"aws access key id", "AKIAIOSFODNN7EXAMPLE", true},
		{"aws temporary key id in text", "key=ASIAY34FZKBOKMUTVV7A;", true},
		{"aws-like inside a word", "XAKIAIOSFODNN7EXAMPLE", false},
		{"aws prefix too short", "AKIA1234", false},
		{"google api key", "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI", true},
		{"pem private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----", true},
		{"pem openssh key", "x\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl", true},
		{"pem certificate", "-----BEGIN CERTIFICATE-----\nMIIB", false},
		{"bearer token", "Authorization: Bearer abcdef0123456789", true},
		{"bearer lower case", "bearer abcdefgh.ijk", true},
		{"bearer word", "the bearer of bad news", false},
		{"github token", "ghp_" + strings.Repeat("a1B2", 9), true},
		{"github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", true},
		{"github short", "ghp_abc", false},
		{"slack bot token", "xoxb-123456789012-abcdefABCDEF", true},
		{"slack app token", "xapp-1-A0123456789-abc", true},
		{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXZhbHVl", true},
		{"jwt-like text", "eyJust kidding.", false},
		{"url with password", "postgres://app:s3cret@db.internal:5432/prod", true},
		{"url with user only", "https://user@example.com/x", false},
		{"url with empty password", "https://user:@example.com/x", false},
		{"url with @ in path", "https://example.com/a:b@c", false},
		{"plain path", "/w/out/report.txt", false},
		{"plain text", "hello, world: Bob bought eggs", false},
		{"empty", "", false},
	}
	red := audit.NewRedactor([]byte("k"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := map[string]any{"v": tt.value, "n": json.Number("1")}
			out, ptrs := red.Redact(args, nil)
			if !tt.secret {
				assert.Nil(t, ptrs)
				assert.Equal(t, args, out)
				return
			}
			assert.Equal(t, []string{"/v"}, ptrs)
			got := out.(map[string]any)["v"].(string)
			assert.True(t, strings.HasPrefix(got, "redacted:hmac-sha256:"), got)
			assert.Equal(t, tt.value, args["v"], "the caller's arguments are not modified")

			off := audit.NewRedactor([]byte("k"), audit.WithoutDetectors())
			out, ptrs = off.Redact(args, nil)
			assert.Nil(t, ptrs, "detectors off")
			assert.Equal(t, args, out)
		})
	}
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
