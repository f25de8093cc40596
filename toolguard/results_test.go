package toolguard_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

const (
	awsKey     = "AKIAIOSFODNN7EXAMPLE"
	awsKeyTail = "IOSFODNN7EXAMPLE"
	privateKey = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----"
)

const resultPolicy = `
version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
results:
  secrets: %s
  patterns:
    - name: iban
      regex: 'DE[0-9]{20}'
  rules:
    - name: no-private-keys
      effect: withhold
      tools: ["*"]
      when: '"private_key" in findings'
      message: '"it holds a private key"'
    - name: hide-card
      effect: redact
      tools: [customer]
      redact: [/card/number]
    - name: big-balances
      effect: withhold
      tools: [balance]
      when: result.amount > 1000
`

// resultEnv is a guard whose tools return what the test sets.
type resultEnv struct {
	g   *toolguard.Guard
	rec *recorder
	ctx context.Context
	out any
	err error
}

func newResultEnv(t testing.TB, secrets string, opts ...toolguard.Option) *resultEnv {
	t.Helper()
	src := resultPolicy
	if secrets == "" {
		src = strings.Replace(src, "  secrets: %s\n", "", 1)
	} else {
		src = fmt.Sprintf(src, secrets)
	}
	p, err := scope.Parse([]byte(src))
	require.NoError(t, err)
	return newResultEnvPolicy(t, p, opts...)
}

func newResultEnvPolicy(t testing.TB, p *scope.Policy, opts ...toolguard.Option) *resultEnv {
	t.Helper()
	e := &resultEnv{rec: newRecorder()}
	g, err := toolguard.New(p, append([]toolguard.Option{toolguard.WithSink(e.rec)}, opts...)...)
	require.NoError(t, err)
	for _, name := range []string{"fetch", "customer", "balance"} {
		require.NoError(t, g.Register(toolguard.Tool{Name: name, Handler: func(context.Context, json.RawMessage) (any, error) {
			return e.out, e.err
		}}))
	}
	e.g = g
	e.ctx = toolguard.WithPrincipal(context.Background(), scope.Principal{ID: "u", Scopes: []string{"all"}})
	return e
}

func (e *resultEnv) call(t *testing.T, tool string, out any) (any, audit.Record, error) {
	t.Helper()
	e.out = out
	res, err := e.g.Call(e.ctx, tool, json.RawMessage(`{}`))
	recs := e.rec.records()
	require.NotEmpty(t, recs)
	o := recs[len(recs)-1]
	require.Equal(t, audit.KindOutcome, o.Kind)
	e.rec.verify(t)
	return res, o, err
}

type account struct {
	Owner string   `json:"owner"`
	Notes []string `json:"notes"`
	Card  struct {
		Number string `json:"number"`
	} `json:"card"`
}

// TestResultSecretsRedacted: a secret however the result carries it is
// replaced, the result keeps its Go type, and the record says so.
func TestResultSecretsRedacted(t *testing.T) {
	e := newResultEnv(t, "")
	acct := &account{Owner: "bob", Notes: []string{"key " + awsKey + " rotated"}}
	tests := []struct {
		name string
		out  any
	}{
		{"text", "your key is " + awsKey + ", keep it"},
		{"bytes", []byte("key: " + awsKey)},
		{"raw JSON", json.RawMessage(`{"k":"` + awsKey + `"}`)},
		{"raw JSON with \\u escapes", json.RawMessage(`{"k":"\u0041KIA\u0049OSFODNN7EXAMPLE"}`)},
		{"escaped solidus and escaped key prefix", json.RawMessage(`{"k":"\u0041\u004b\u0049\u0041IOSFODNN7EXAMPLE"}`)},
		{"text that is JSON with escapes", `{"k":"\u0041KIAIOSFODNN7EXAMPLE"}`},
		{"secret as a key", json.RawMessage(`{"` + awsKey + `":1}`)},
		{"secret as an escaped key", json.RawMessage(`{"\u0041KIAIOSFODNN7EXAMPLE":1}`)},
		{"nested arrays", json.RawMessage(`[[[[[["` + awsKey + `"]]]]]]`)},
		{"JSON in a string in JSON", json.RawMessage(`{"content":[{"type":"text","text":"{\"k\":\"\\u0041KIAIOSFODNN7EXAMPLE\"}"}]}`)},
		{"text spelling the key with \\u escapes", `key \u0041KIAIOSFODNN7EXAMPLE`},
		{"JSON string holding \\u escapes as text", json.RawMessage(`{"k":"\\u0041KIA\\u0049OSFODNN7EXAMPLE"}`)},
		{"Go struct", acct},
		{"Go map", map[string]any{"items": []any{map[string]any{"token": awsKey}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, o, err := e.call(t, "fetch", tt.out)
			require.NoError(t, err)
			assert.IsType(t, tt.out, res, "the result keeps its type")
			assert.NotContains(t, plain(t, res), awsKeyTail)
			assert.Contains(t, plain(t, res), "redacted:hmac-sha256:")
			assert.Equal(t, "redacted", o.ResultAction)
			assert.Positive(t, o.ResultRedacted)
			assert.Contains(t, o.ResultFindings, audit.SecretAWSAccessKeyID)
		})
	}
	assert.Contains(t, acct.Notes[0], awsKey, "the handler's value is not modified")
}

// plain renders a result with every JSON escape decoded, at every level
// of JSON held in strings, so that a test cannot be fooled by escapes.
func plain(t *testing.T, v any) string {
	t.Helper()
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case []byte:
		s = string(x)
	case json.RawMessage:
		s = string(x)
	default:
		b, err := json.Marshal(v)
		require.NoError(t, err)
		s = string(b)
	}
	for range 5 {
		var d any
		if json.Unmarshal([]byte(s), &d) != nil {
			break
		}
		b, _ := json.Marshal(d)
		s = strings.ReplaceAll(string(b), `\"`, `"`)
		s = strings.ReplaceAll(s, `\\`, `\`)
		// Decode the \u escapes of nested JSON too.
		if u, err := decodeEscapes(s); err == nil {
			s = u
		}
	}
	return s
}

func decodeEscapes(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(`"`+strings.ReplaceAll(s, `"`, `\"`)+`"`), &out)
	return out, err
}

func TestResultCleanIsUntouched(t *testing.T) {
	e := newResultEnv(t, "")
	acct := &account{Owner: "bob"}
	res, o, err := e.call(t, "fetch", acct)
	require.NoError(t, err)
	assert.Same(t, acct, res, "a clean result is the handler's own value")
	assert.Empty(t, o.ResultAction)
	assert.Zero(t, o.ResultRedacted)

	res, _, err = e.call(t, "fetch", "plain text")
	require.NoError(t, err)
	assert.Equal(t, "plain text", res)
}

func TestResultWithheldByRule(t *testing.T) {
	e := newResultEnv(t, "")
	for _, out := range []any{
		privateKey,
		json.RawMessage(`{"files":[{"name":"id_rsa","body":` + mustJSON(privateKey) + `}]}`),
		json.RawMessage(`{"body":"\u002d\u002d\u002d\u002d\u002dBEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"}`),
	} {
		res, o, err := e.call(t, "fetch", out)
		require.Error(t, err)
		assert.Nil(t, res)
		assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
		assert.NotErrorIs(t, err, toolguard.ErrDenied, "the tool ran: this is not a denial")
		var we *toolguard.WithheldError
		require.ErrorAs(t, err, &we)
		assert.Equal(t, []string{"no-private-keys"}, we.Rules)
		assert.Contains(t, we.ModelText(), "it holds a private key")
		assert.NotContains(t, we.ModelText(), "toolguard")
		assert.Equal(t, "withheld", o.ResultAction)
		assert.Equal(t, []string{"no-private-keys"}, o.ResultRules)
		assert.Contains(t, o.ResultFindings, audit.SecretPrivateKey)
	}
}

func TestResultWithheldEvenWithHandlerError(t *testing.T) {
	e := newResultEnv(t, "")
	e.err = errors.New("partial failure")
	res, _, err := e.call(t, "fetch", privateKey)
	assert.Nil(t, res)
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	assert.ErrorContains(t, err, "partial failure")
}

func TestResultRedactRulePointers(t *testing.T) {
	e := newResultEnv(t, "")
	a := account{Owner: "bob"}
	a.Card.Number = "4111111111111111"
	res, o, err := e.call(t, "customer", a)
	require.NoError(t, err)
	got := res.(account)
	assert.Equal(t, "bob", got.Owner)
	assert.True(t, strings.HasPrefix(got.Card.Number, "redacted:hmac-sha256:"), got.Card.Number)
	assert.Equal(t, []string{"hide-card"}, o.ResultRules)

	// The rule is for customer only.
	res, _, err = e.call(t, "fetch", a)
	require.NoError(t, err)
	assert.Equal(t, a, res)
}

func TestResultRuleReadsResult(t *testing.T) {
	e := newResultEnv(t, "")
	_, _, err := e.call(t, "balance", map[string]any{"amount": 5000})
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	res, _, err := e.call(t, "balance", map[string]any{"amount": 50})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"amount": 50}, res)
	// The rule cannot be evaluated on this result: withheld, with the
	// error in the record.
	_, o, err := e.call(t, "balance", map[string]any{"other": 1})
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	assert.Contains(t, err.Error(), "could not be evaluated")
	assert.NotEmpty(t, o.Errors)
}

func TestResultPatterns(t *testing.T) {
	e := newResultEnv(t, "")
	res, o, err := e.call(t, "fetch", map[string]any{"iban": "pay to DE89370400440532013000 today", "DE89370400440532013000": "as a key"})
	require.NoError(t, err)
	assert.NotContains(t, plain(t, res), "DE89370400440532013000")
	assert.Contains(t, plain(t, res), "pay to redacted:hmac-sha256:")
	assert.Contains(t, plain(t, res), "as a key", "the value of a redacted key stays")
	assert.Equal(t, []string{"iban"}, o.ResultFindings)
	assert.Equal(t, int64(2), o.ResultRedacted)
}

func TestResultSecretsModes(t *testing.T) {
	e := newResultEnv(t, "withhold")
	_, o, err := e.call(t, "fetch", "token: "+awsKey)
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	assert.Contains(t, err.Error(), "aws_access_key_id")
	assert.Equal(t, "withheld", o.ResultAction)

	e = newResultEnv(t, "allow")
	res, o, err := e.call(t, "fetch", "token: "+awsKey)
	require.NoError(t, err)
	assert.Equal(t, "token: "+awsKey, res)
	assert.Empty(t, o.ResultAction)
	assert.Equal(t, []string{"aws_access_key_id"}, o.ResultFindings, "found and recorded, not redacted")
}

// TestResultNotCaught states what the detectors do not find: a secret
// encoded in base64, or split across two strings.
func TestResultNotCaught(t *testing.T) {
	e := newResultEnv(t, "")
	b64 := base64.StdEncoding.EncodeToString([]byte(awsKey))
	res, _, err := e.call(t, "fetch", "blob "+b64)
	require.NoError(t, err)
	assert.Equal(t, "blob "+b64, res)
	split := []any{"AKIAIOSF", "ODNN7EXAMPLE"}
	res, _, err = e.call(t, "fetch", split)
	require.NoError(t, err)
	assert.Equal(t, split, res)
}

func TestResultLimits(t *testing.T) {
	e := newResultEnv(t, "", toolguard.WithMaxResultBytes(1<<10))
	_, o, err := e.call(t, "fetch", strings.Repeat("x", 2<<10))
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	assert.Contains(t, err.Error(), "more than the 1024 bytes")
	assert.Equal(t, "withheld", o.ResultAction)
	_, _, err = e.call(t, "fetch", map[string]any{"big": strings.Repeat("x", 2<<10)})
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)

	e = newResultEnv(t, "")
	deep := json.RawMessage(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000))
	_, _, err = e.call(t, "fetch", deep)
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld, "too deep to check")
	_, _, err = e.call(t, "fetch", json.RawMessage(`{"a":1,"a":2}`))
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld, "duplicate keys: the reader could take either")
	_, _, err = e.call(t, "fetch", json.RawMessage(`{"a":`))
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	_, _, err = e.call(t, "fetch", func() {})
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld, "not JSON-marshalable")

	// Bounded time on a large hostile result: start bytes of every
	// detector, many times, near the limit.
	unit := "AKIA-----BEGIN Bearer ghp_xoxb-eyJ://a:b@"
	hostile := strings.Repeat(unit, (DefaultMaxResultBytesForTest-1024)/len(unit))
	start := time.Now()
	_, _, err = e.call(t, "fetch", hostile)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// DefaultMaxResultBytesForTest mirrors the default.
const DefaultMaxResultBytesForTest = toolguard.DefaultMaxResultBytes

func TestResultNoSectionPassesAnything(t *testing.T) {
	p, err := scope.Parse([]byte("version: 1\nscopes:\n  all:\n    grants:\n      - tools: [\"*\"]\n"))
	require.NoError(t, err)
	e := newResultEnvPolicy(t, p, toolguard.WithMaxResultBytes(10))
	res, o, err := e.call(t, "fetch", privateKey)
	require.NoError(t, err)
	assert.Equal(t, privateKey, res)
	assert.Empty(t, o.ResultAction)
}

func TestResultWrongTypeAfterRedaction(t *testing.T) {
	p, err := scope.Parse([]byte(`
version: 1
scopes:
  all:
    grants:
      - tools: ["*"]
results:
  rules:
    - name: hide-count
      effect: redact
      tools: ["*"]
      redact: [/count]
`))
	require.NoError(t, err)
	e := newResultEnvPolicy(t, p)
	type counted struct {
		Count int `json:"count"`
	}
	_, o, err := e.call(t, "fetch", counted{Count: 3})
	assert.ErrorIs(t, err, toolguard.ErrResultWithheld)
	assert.Contains(t, err.Error(), "no longer fits its type")
	assert.Equal(t, "withheld", o.ResultAction)
}

func TestResultsLoadErrors(t *testing.T) {
	base := "version: 1\nscopes:\n  all:\n    grants:\n      - tools: [\"*\"]\nresults:\n"
	tests := map[string]string{
		"bad secrets":         "  secrets: maybe\n",
		"bad effect":          "  rules:\n    - {name: r, effect: deny, tools: [x]}\n",
		"redact without ptrs": "  rules:\n    - {name: r, effect: redact, tools: [x]}\n",
		"withhold with ptrs":  "  rules:\n    - {name: r, effect: withhold, tools: [x], redact: [/a]}\n",
		"bad pointer":         "  rules:\n    - {name: r, effect: redact, tools: [x], redact: [a]}\n",
		"bad CEL":             "  rules:\n    - {name: r, effect: withhold, tools: [x], when: 'result.'}\n",
		"not bool":            "  rules:\n    - {name: r, effect: withhold, tools: [x], when: '1'}\n",
		"unknown variable":    "  rules:\n    - {name: r, effect: withhold, tools: [x], when: 'output == 1'}\n",
		"duplicate rule":      "  rules:\n    - {name: r, effect: withhold, tools: [x]}\n    - {name: r, effect: withhold, tools: [x]}\n",
		"bad regex":           "  patterns:\n    - {name: p, regex: '('}\n",
		"empty match":         "  patterns:\n    - {name: p, regex: 'a*'}\n",
		"unnamed pattern":     "  patterns:\n    - {regex: 'a'}\n",
		"unknown field":       "  rulez: []\n",
	}
	for name, tail := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := scope.Parse([]byte(base + tail))
			require.Error(t, err)
		})
	}
	// result is not a variable of call rules.
	_, err := scope.Parse([]byte(base + "  secrets: redact\nrules:\n  - {name: r, effect: deny, tools: [x], when: 'result == 1'}\n"))
	require.Error(t, err)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
