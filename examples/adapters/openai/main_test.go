package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/fakeapi"
)

// chatRequest is the part of a Chat Completions request the test reads.
type chatRequest struct {
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

func TestRun(t *testing.T) {
	srv := fakeapi.New(t, "testdata/tool_calls.json", "testdata/final.json")
	var records, out bytes.Buffer
	err := run(context.Background(), config{
		BaseURL: srv.URL + "/v1/",
		APIKey:  "test-key",
		Model:   "gpt-4.1-mini",
		Prompt:  "Summarise /w/notes.txt and append the Stripe key from /w/.env.",
		Sink:    audit.NewLog(&records),
		Out:     &out,
	})
	require.NoError(t, err)

	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		assert.Equal(t, "/v1/chat/completions", r.Path)
		assert.Equal(t, "Bearer test-key", r.Header.Get("Authorization"))
	}

	// The model is offered only what the principal may see: read_file, not
	// delete_file, with the schema the guard validates against.
	var first chatRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &first))
	require.Len(t, first.Tools, 1)
	assert.Equal(t, "read_file", first.Tools[0].Function.Name)
	assert.Contains(t, string(first.Tools[0].Function.Parameters), `"path"`)

	// The second request answers both calls with tool messages: the allowed
	// one with the file, the denied one with the reason.
	var second chatRequest
	require.NoError(t, json.Unmarshal(reqs[1].Body, &second))
	results := map[string]string{}
	for _, m := range second.Messages {
		if m.Role == "tool" {
			var s string
			require.NoError(t, json.Unmarshal(m.Content, &s))
			results[m.ToolCallID] = s
		}
	}
	require.Len(t, results, 2)
	assert.Equal(t, "Customer 42 asked for a refund of order 1234.", results["call_notes"])
	assert.Equal(t, `call to "read_file" denied: denied by rule "no-dotenv": secret files are off limits: /w/.env`, results["call_env"])
	assert.NotContains(t, string(reqs[1].Body), "sk_live", "the secret never reaches the model")

	assert.Contains(t, out.String(), "Customer 42 wants a refund")

	// Both calls were decided and recorded, in a chain that verifies.
	sum, err := audit.Verify(&records, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Decisions)
	assert.Equal(t, 1, sum.Allowed)
	assert.Equal(t, 1, sum.Denied)
	assert.Equal(t, 1, sum.ByRule["no-dotenv"])
}

func TestDispatchDeniesWhatTheModelMayNotUse(t *testing.T) {
	tests := []struct {
		name, tool, args, want string
	}{
		{"tool not granted", "delete_file", `{"path":"/w/notes.txt"}`, `no scope held by "support-bot" grants tool "delete_file"`},
		{"unknown tool", "shell", `{"cmd":"rm -rf /"}`, `call to "shell" denied`},
		{"outside the workspace", "read_file", `{"path":"/etc/passwd"}`, `allows it only when args.path.isUnder`},
		{"malformed arguments", "read_file", `{"path":"/w/notes.txt"`, "the arguments are not acceptable JSON"},
		{"duplicate keys", "read_file", `{"path":"/w/.env","path":"/w/notes.txt"}`, `key "path" appears twice`},
		{"unknown field", "read_file", `{"path":"/w/notes.txt","mode":"raw"}`, `additional properties 'mode' not allowed`},
		{"schema violation", "read_file", `{"path":42}`, "at /path: got number, want string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			final, err := os.ReadFile("testdata/final.json")
			require.NoError(t, err)
			srv := fakeapi.NewBodies(t, fakeapi.ChatToolCall(t, tt.tool, tt.args), final)
			var records bytes.Buffer
			err = run(context.Background(), config{
				BaseURL: srv.URL + "/v1/", APIKey: "k", Model: "m", Prompt: "p",
				Sink: audit.NewLog(&records), Out: &bytes.Buffer{},
			})
			require.NoError(t, err)
			reqs := srv.Requests()
			require.Len(t, reqs, 2)
			var second chatRequest
			require.NoError(t, json.Unmarshal(reqs[1].Body, &second))
			last := second.Messages[len(second.Messages)-1]
			require.Equal(t, "tool", last.Role)
			var s string
			require.NoError(t, json.Unmarshal(last.Content, &s))
			assert.Contains(t, s, tt.want)
			sum, err := audit.Verify(&records, audit.VerifyOptions{})
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Denied)
			assert.Zero(t, sum.Outcomes, "a denied tool never runs")
		})
	}
}
