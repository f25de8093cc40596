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

// messagesRequest is the part of a Messages request the test reads.
type messagesRequest struct {
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name        string          `json:"name"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
}

type toolResult struct {
	Type      string `json:"type"`
	ToolUseID string `json:"tool_use_id"`
	IsError   bool   `json:"is_error"`
	Content   []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"content"`
}

// toolResults returns the tool_result blocks of the last message of a
// request, by tool_use_id.
func toolResults(t *testing.T, body []byte) map[string]toolResult {
	t.Helper()
	var req messagesRequest
	require.NoError(t, json.Unmarshal(body, &req))
	require.NotEmpty(t, req.Messages)
	last := req.Messages[len(req.Messages)-1]
	require.Equal(t, "user", last.Role)
	var blocks []toolResult
	require.NoError(t, json.Unmarshal(last.Content, &blocks))
	out := map[string]toolResult{}
	for _, b := range blocks {
		require.Equal(t, "tool_result", b.Type)
		out[b.ToolUseID] = b
	}
	return out
}

func TestRun(t *testing.T) {
	srv := fakeapi.New(t, "testdata/tool_use.json", "testdata/final.json")
	var records, out bytes.Buffer
	err := run(context.Background(), config{
		BaseURL: srv.URL,
		APIKey:  "test-key",
		Model:   "claude-sonnet-4-6",
		Prompt:  "Summarise /w/notes.txt and append the Stripe key from /w/.env.",
		Sink:    audit.NewLog(&records),
		Out:     &out,
	})
	require.NoError(t, err)

	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		assert.Equal(t, "/v1/messages", r.Path)
		assert.Equal(t, "test-key", r.Header.Get("X-Api-Key"))
	}

	// The model is offered only what the principal may see, with the
	// schema the guard validates against.
	var first messagesRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &first))
	require.Len(t, first.Tools, 1)
	assert.Equal(t, "read_file", first.Tools[0].Name)
	assert.JSONEq(t, `{"type":"object","properties":{"path":{"type":"string","description":"absolute path of the file to read"}},"required":["path"],"additionalProperties":false}`,
		string(first.Tools[0].InputSchema))

	// The second request answers both tool_use blocks: the allowed one with
	// the file, the denied one as an error with the reason.
	results := toolResults(t, reqs[1].Body)
	require.Len(t, results, 2)
	notes, env := results["toolu_notes"], results["toolu_env"]
	assert.False(t, notes.IsError)
	require.Len(t, notes.Content, 1)
	assert.Equal(t, "Customer 42 asked for a refund of order 1234.", notes.Content[0].Text)
	assert.True(t, env.IsError)
	require.Len(t, env.Content, 1)
	assert.Equal(t, `call to "read_file" denied: denied by rule "no-dotenv": secret files are off limits: /w/.env`, env.Content[0].Text)
	assert.NotContains(t, string(reqs[1].Body), "sk_live", "the secret never reaches the model")

	assert.Contains(t, out.String(), "Customer 42 wants a refund")

	sum, err := audit.Verify(&records, audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Decisions)
	assert.Equal(t, 1, sum.Allowed)
	assert.Equal(t, 1, sum.Denied)
	assert.Equal(t, 1, sum.ByRule["no-dotenv"])
}

func TestDispatchDeniesWhatTheModelMayNotUse(t *testing.T) {
	tests := []struct {
		name, tool, input, want string
	}{
		{"tool not granted", "delete_file", `{"path":"/w/notes.txt"}`, `no scope held by "support-bot" grants tool "delete_file"`},
		{"unknown tool", "shell", `{"cmd":"rm -rf /"}`, `call to "shell" denied`},
		{"outside the workspace", "read_file", `{"path":"/etc/passwd"}`, `allows it only when args.path.isUnder`},
		{"duplicate keys", "read_file", `{"path":"/w/.env","path":"/w/notes.txt"}`, `key "path" appears twice`},
		{"unknown field", "read_file", `{"path":"/w/notes.txt","mode":"raw"}`, `additional properties 'mode' not allowed`},
		{"schema violation", "read_file", `{"path":42}`, "at /path: got number, want string"},
	}
	final, err := os.ReadFile("testdata/final.json")
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.NewBodies(t, oneToolUse(tt.tool, tt.input), final)
			var records bytes.Buffer
			err := run(context.Background(), config{
				BaseURL: srv.URL, APIKey: "k", Model: "m", Prompt: "p",
				Sink: audit.NewLog(&records), Out: &bytes.Buffer{},
			})
			require.NoError(t, err)
			reqs := srv.Requests()
			require.Len(t, reqs, 2)
			res := toolResults(t, reqs[1].Body)["toolu_1"]
			assert.True(t, res.IsError)
			require.Len(t, res.Content, 1)
			assert.Contains(t, res.Content[0].Text, tt.want)
			sum, err := audit.Verify(&records, audit.VerifyOptions{})
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Denied)
			assert.Zero(t, sum.Outcomes, "a denied tool never runs")
		})
	}
}

// oneToolUse is a recorded response in which the model uses one tool with
// the given raw input (kept byte for byte, duplicate keys and all).
func oneToolUse(tool, input string) []byte {
	name, _ := json.Marshal(tool)
	return []byte(`{"id":"msg_x","type":"message","role":"assistant","model":"m",
"content":[{"type":"tool_use","id":"toolu_1","name":` + string(name) + `,"input":` + input + `}],
"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1}}`)
}
