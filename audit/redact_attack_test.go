package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/canonjson"
	"github.com/agentguard/agentguard/internal/safejson"
)

const token = "abcdefghijklmnopqrstuvwxyz0123"

// redactJSON decodes raw as a guard does and redacts it with the
// detectors; it returns the canonical redacted arguments.
func redactJSON(t *testing.T, raw string) (string, []audit.Redaction) {
	t.Helper()
	args, err := safejson.DecodeArguments([]byte(raw), safejson.Limits{})
	require.NoError(t, err)
	r := audit.NewRedactor([]byte("k"))
	out, expl := r.Explain(args, nil)
	b, err := canonjson.Append(nil, out)
	require.NoError(t, err)
	return string(b), expl
}

// TestRedactSecretInAKey: a model that puts the secret in an object key
// instead of a value does not get it into the record: the key's secret
// part is replaced, the member is listed under its new key, and the value
// is kept.
func TestRedactSecretInAKey(t *testing.T) {
	out, expl := redactJSON(t, `{"headers":{"Bearer `+token+`":"to bob"}}`)
	assert.NotContains(t, out, token)
	assert.Contains(t, out, "to bob")
	require.Len(t, expl, 1)
	assert.True(t, strings.HasPrefix(expl[0].Pointer, "/headers/redacted:hmac-sha256:"), expl[0].Pointer)
	assert.Contains(t, expl[0].Why, "key")
	assert.Contains(t, expl[0].Why, "bearer token")
	assert.False(t, expl[0].Whole, "the value is shown")

	// Key and value both secret: both hidden, the key's pointer named.
	out, expl = redactJSON(t, `{"AKIAIOSFODNN7EXAMPLE":"Bearer `+token+`"}`)
	assert.NotContains(t, out, token)
	assert.NotContains(t, out, "AKIAIOSFODNN7EXAMPLE")
	require.Len(t, expl, 2)
	for _, e := range expl {
		assert.NotContains(t, e.Pointer, "AKIA")
	}
}

// TestRedactEscapedSecret: a secret spelled with JSON escapes is found
// after decoding, as the tool will read it.
func TestRedactEscapedSecret(t *testing.T) {
	out, expl := redactJSON(t, `{"to":"bob@example.com \u0042earer `+token+`"}`)
	assert.NotContains(t, out, token)
	assert.Contains(t, out, "bob@example.com ", "the approver sees the recipient")
	require.Len(t, expl, 1)
	assert.False(t, expl[0].Whole)
}

// TestRedactSecretSplitAcrossValues: each string is looked at on its own,
// so a secret the model splits across two values is recorded as given.
// (Accepted and documented: the detectors are a net for secrets that leak
// by accident; values a tool takes as secrets must be marked sensitive in
// its schema or the policy, which hides them whole, wherever they go.)
func TestRedactSecretSplitAcrossValues(t *testing.T) {
	out, expl := redactJSON(t, `{"a":"Bearer","b":"`+token+`"}`)
	assert.Contains(t, out, token)
	assert.Empty(t, expl)
}

// TestRedactLongStringNearTheLimit: a string of nearly the whole argument
// limit, full of things that start like secrets, is redacted in bounded
// time.
func TestRedactLongStringNearTheLimit(t *testing.T) {
	s := strings.Repeat("Bearer x AKIA eyJ ", (1<<20-64)/18)
	start := time.Now()
	out, _ := redactJSON(t, `{"s":"`+s+`","k":"Bearer `+token+`"}`)
	require.Less(t, time.Since(start), 5*time.Second)
	assert.NotContains(t, out, token)
}
