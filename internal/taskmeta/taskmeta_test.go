package taskmeta_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/agentguard/agentguard/internal/taskmeta"
)

func TestRead(t *testing.T) {
	for _, c := range []struct {
		name    string
		fields  map[string]any
		tok     string
		present bool
		err     string
	}{
		{"none", nil, "", false, ""},
		{"other keys", map[string]any{"progressToken": "p", "io.example/x": 1}, "", false, ""},
		{"a token", map[string]any{taskmeta.Key: "a.b.c", "io.example/x": 1}, "a.b.c", true, ""},
		{"not a string", map[string]any{taskmeta.Key: map[string]any{}}, "", true, "not a string"},
		{"upper case", map[string]any{"IO.AGENTGUARD/TASK": "x"}, "", true, `"IO.AGENTGUARD/TASK"`},
		{"a long s", map[string]any{"io.agentguard/taſk": "x"}, "", true, "not one this server reads"},
		{"Kelvin sign", map[string]any{"io.agentguard/tas\u212a": "x"}, "", true, "not one this server reads"},
		{"beside the key", map[string]any{taskmeta.Key: "a.b.c", "agentguard": "x"}, "", true, `"agentguard"`},
		{"the first of two, sorted", map[string]any{"b-agentguard": 1, "a-AgentGuard": 2}, "", true, `"a-AgentGuard"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok, present, err := taskmeta.Read(c.fields)
			assert.Equal(t, c.tok, tok)
			assert.Equal(t, c.present, present)
			if c.err == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, c.err)
			}
		})
	}
}

func TestWithout(t *testing.T) {
	assert.Nil(t, taskmeta.Without(nil))
	other := map[string]any{"io.example/x": 1}
	assert.Equal(t, other, taskmeta.Without(other))
	assert.Nil(t, taskmeta.Without(map[string]any{taskmeta.Key: "t"}), "nothing left")
	both := map[string]any{taskmeta.Key: "t", "io.example/x": 1}
	assert.Equal(t, other, taskmeta.Without(both))
	assert.Equal(t, "t", both[taskmeta.Key], "the request's own _meta is left alone")
}
