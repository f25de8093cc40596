package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

func resultGuarded() *audit.Record {
	return &audit.Record{Version: audit.FormatVersion, ID: "c1", Kind: audit.KindOutcome, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Tool: "read_mail", ResultAction: "redacted", ResultRules: []string{"hide-card"},
		ResultFindings: []string{audit.SecretAWSAccessKeyID, "iban"}, ResultRedacted: 3}
}

func TestResultGuardMembers(t *testing.T) {
	r := resultGuarded()
	line := r.AppendJSON(nil)
	assert.Contains(t, string(line), `"result_action":"redacted","result_rules":["hide-card"],"result_findings":["aws_access_key_id","iban"],"result_redacted":3`)
	var back audit.Record
	require.NoError(t, json.Unmarshal(line, &back))
	assert.Equal(t, *r, back)

	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	require.NoError(t, err)
	require.NoError(t, recordSchema(t).Validate(inst))
	bad, err := jsonschema.UnmarshalJSON(strings.NewReader(strings.Replace(string(line), `"redacted"`, `"hidden"`, 1)))
	require.NoError(t, err)
	require.Error(t, recordSchema(t).Validate(bad))

	// A log with such records verifies; an edited action does not.
	var buf bytes.Buffer
	log := audit.NewLog(&buf)
	require.NoError(t, log.Write(context.Background(), decision("c1", "allow")))
	require.NoError(t, log.Write(context.Background(), decision("c2", "allow")))
	require.NoError(t, log.Write(context.Background(), resultGuarded()))
	w := resultGuarded()
	w.ID, w.ResultAction, w.ResultRedacted = "c2", "withheld", 0
	require.NoError(t, log.Write(context.Background(), w))
	_, err = audit.Verify(bytes.NewReader(buf.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
	// The first outcome has a successor whose prev covers it.
	edited := bytes.Replace(buf.Bytes(), []byte(`"result_action":"redacted"`), []byte(`"result_action":"withheld"`), 1)
	require.NotEqual(t, buf.Bytes(), edited)
	_, err = audit.Verify(bytes.NewReader(edited), audit.VerifyOptions{})
	require.Error(t, err)
	bogus := resultGuarded()
	bogus.ResultAction = "hidden"
	require.Error(t, audit.NewLog(&bytes.Buffer{}).Write(context.Background(), bogus))
}

func TestSecretKinds(t *testing.T) {
	assert.Zero(t, audit.SecretKinds("nothing to see"))
	k := audit.SecretKinds("a AKIAIOSFODNN7EXAMPLE and -----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY-----")
	assert.Equal(t, []string{audit.SecretAWSAccessKeyID, audit.SecretPrivateKey}, audit.SecretKindNames(k))
	assert.Equal(t, []string{audit.SecretBearerToken}, audit.SecretKindNames(audit.SecretKinds("Authorization: Bearer abcdefghijklmnop")))
	r := audit.NewRedactor([]byte("k"))
	assert.Equal(t, r.Digest("x"), r.Digest("x"))
	assert.NotEqual(t, r.Digest("x"), audit.NewRedactor([]byte("k2")).Digest("x"))
	assert.True(t, strings.HasPrefix(r.Digest("x"), "redacted:hmac-sha256:"))
}
