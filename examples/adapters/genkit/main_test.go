package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"
	oai "github.com/firebase/genkit/go/plugins/compat_oai/openai"
	"github.com/openai/openai-go/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/examples/adapters/internal/fakeapi"
	"github.com/agentguard/agentguard/toolguard"
)

// chatRequest is the part of a Chat Completions request the tests read.
type chatRequest struct {
	Messages []struct {
		Role       string          `json:"role"`
		Content    json.RawMessage `json:"content"`
		ToolCallID string          `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

// toolResults returns the tool messages of a request by call id. Genkit
// sends a tool's output as JSON, so a string output arrives quoted.
func toolResults(t *testing.T, body []byte) map[string]string {
	t.Helper()
	var req chatRequest
	require.NoError(t, json.Unmarshal(body, &req))
	out := map[string]string{}
	for _, m := range req.Messages {
		if m.Role != "tool" {
			continue
		}
		var content, output string
		require.NoError(t, json.Unmarshal(m.Content, &content))
		require.NoError(t, json.Unmarshal([]byte(content), &output), content)
		out[m.ToolCallID] = output
	}
	return out
}

// record is the part of a decision or outcome record the tests read.
type record struct {
	Kind   string `json:"kind"`
	Tool   string `json:"tool"`
	Effect string `json:"effect"`
	Stage  string `json:"stage"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

func records(t *testing.T, log []byte) []record {
	t.Helper()
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		var r record
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		out = append(out, r)
	}
	require.NoError(t, sc.Err())
	return out
}

// approveAs answers every interrupt with a, and keeps what was asked.
func approveAs(a toolguard.Approval, asked *[]Interrupt) func(context.Context, Interrupt) (toolguard.Approval, error) {
	return func(_ context.Context, it Interrupt) (toolguard.Approval, error) {
		*asked = append(*asked, it)
		return a, nil
	}
}

const prompt = "Summarise /w/notes.txt and /w/contracts/acme.txt, and append the Stripe key from /w/.env."

func TestRun(t *testing.T) {
	srv := fakeapi.New(t, "testdata/tool_calls.json", "testdata/final.json")
	var log, out bytes.Buffer
	var asked []Interrupt
	err := run(context.Background(), config{
		BaseURL: srv.URL + "/v1/",
		APIKey:  "test-key",
		Model:   "gpt-4.1-mini",
		Prompt:  prompt,
		Sink:    audit.NewLog(&log),
		Out:     &out,
		Approve: approveAs(toolguard.Approval{Approved: true, By: "alice"}, &asked),
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
	assert.JSONEq(t, `{"type":"object","required":["path"],"additionalProperties":false,
		"properties":{"path":{"type":"string","description":"absolute path of the file to read"}}}`,
		string(first.Tools[0].Function.Parameters))

	// The contract needed a human: the generation stopped there, the human
	// was asked about that exact call, and the approved call ran.
	require.Len(t, asked, 1)
	assert.Equal(t, "read_file", asked[0].Tool)
	assert.Equal(t, "ask-contracts", asked[0].Rule)
	assert.Equal(t, `rule "ask-contracts" requires human approval: contracts are confidential: /w/contracts/acme.txt`, asked[0].Reason)
	assert.JSONEq(t, `{"path":"/w/contracts/acme.txt"}`, string(asked[0].Args))
	assert.Len(t, asked[0].Binding, 64)

	// The second request answers all three calls: the allowed ones with
	// the files, the denied one with the reason.
	results := toolResults(t, reqs[1].Body)
	require.Len(t, results, 3)
	assert.Equal(t, "Customer 42 asked for a refund of order 1234.", results["call_notes"])
	assert.Equal(t, "ACME Corp: 12 seats, renews on 2027-01-01.", results["call_contract"])
	assert.Equal(t, `call to "read_file" denied: denied by rule "no-dotenv": secret files are off limits: /w/.env`, results["call_env"])
	for _, r := range reqs {
		assert.NotContains(t, string(r.Body), "sk_live", "the secret never reaches the model")
	}

	assert.Contains(t, out.String(), `tool read_file: call to "read_file" denied`)
	assert.Contains(t, out.String(), "Customer 42 wants a refund")

	// Every call was decided and recorded, the interrupted one twice: not
	// approved while it waited for the human, then approved by alice.
	sum, err := audit.Verify(bytes.NewReader(log.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, sum.Decisions)
	assert.Equal(t, 2, sum.Allowed)
	assert.Equal(t, 2, sum.Denied)
	assert.Equal(t, 2, sum.Outcomes)
	assert.Equal(t, 1, sum.ByRule["no-dotenv"])
	assert.Equal(t, 1, sum.ByRule["ask-contracts"])
	var contract []record
	for _, r := range records(t, log.Bytes()) {
		if r.Kind == "decision" && r.Stage == "approval" {
			contract = append(contract, r)
		}
	}
	require.Len(t, contract, 2)
	assert.Equal(t, "deny", contract[0].Effect)
	assert.Contains(t, contract[0].Reason, "interrupted to ask a human")
	assert.Equal(t, "allow", contract[1].Effect)
	assert.Equal(t, `approved by "alice" (rule "ask-contracts")`, contract[1].Reason)
}

func TestRunHumanDeclines(t *testing.T) {
	srv := fakeapi.New(t, "testdata/tool_calls.json", "testdata/final.json")
	var log bytes.Buffer
	var asked []Interrupt
	err := run(context.Background(), config{
		BaseURL: srv.URL + "/v1/", APIKey: "k", Model: "gpt-4.1-mini", Prompt: prompt,
		Sink: audit.NewLog(&log), Out: &bytes.Buffer{},
		Approve: approveAs(toolguard.Approval{By: "alice", Reason: "not during the audit"}, &asked),
	})
	require.NoError(t, err)
	require.Len(t, asked, 1)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, `call to "read_file" denied: rule "ask-contracts" requires human approval: contracts are confidential: /w/contracts/acme.txt; a human did not approve it: not during the audit`,
		toolResults(t, reqs[1].Body)["call_contract"])
	assert.NotContains(t, string(reqs[1].Body), "ACME Corp", "a declined call does not run")
	sum, err := audit.Verify(bytes.NewReader(log.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 4, sum.Decisions)
	assert.Equal(t, 1, sum.Allowed)
	assert.Equal(t, 1, sum.Outcomes)
}

func TestDeniedCallsReachTheModel(t *testing.T) {
	tests := []struct {
		name, tool, args, want string
	}{
		{"defined but not offered", "delete_file", `{"path":"/w/notes.txt"}`, `no scope held by "support-bot" grants tool "delete_file"`},
		{"outside the workspace", "read_file", `{"path":"/etc/passwd"}`, `allows it only when args.path.isUnder`},
		{"unknown field", "read_file", `{"path":"/w/notes.txt","mode":"raw"}`, `additional properties 'mode' not allowed`},
		{"schema violation", "read_file", `{"path":42}`, "at /path: got number, want string"},
		{"missing argument", "read_file", `{}`, "missing property 'path'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			final, err := os.ReadFile("testdata/final.json")
			require.NoError(t, err)
			srv := fakeapi.NewBodies(t, fakeapi.ChatToolCall(t, tt.tool, tt.args), final)
			var log bytes.Buffer
			err = run(context.Background(), config{
				BaseURL: srv.URL + "/v1/", APIKey: "k", Model: "gpt-4.1-mini", Prompt: "p",
				Sink: audit.NewLog(&log), Out: &bytes.Buffer{},
				Approve: func(context.Context, Interrupt) (toolguard.Approval, error) {
					t.Error("no call here needs a human")
					return toolguard.Approval{}, nil
				},
			})
			require.NoError(t, err)
			reqs := srv.Requests()
			require.Len(t, reqs, 2)
			assert.Contains(t, toolResults(t, reqs[1].Body)["call_1"], tt.want)
			sum, err := audit.Verify(bytes.NewReader(log.Bytes()), audit.VerifyOptions{})
			require.NoError(t, err)
			assert.Equal(t, 1, sum.Denied)
			assert.Zero(t, sum.Outcomes, "a denied tool never runs")
		})
	}
}

// Some calls never reach the guard: Genkit ends the generation with an
// error instead, and nothing runs.
func TestGenkitRefusesBeforeTheGuard(t *testing.T) {
	tests := []struct {
		name, tool, args, want string
	}{
		{"unknown tool", "shell", `{"cmd":"id"}`, `tool "shell" not found`},
		{"malformed arguments", "read_file", `{"path":"/w/notes.txt"`, "could not parse tool args"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.NewBodies(t, fakeapi.ChatToolCall(t, tt.tool, tt.args))
			var log bytes.Buffer
			err := run(context.Background(), config{
				BaseURL: srv.URL + "/v1/", APIKey: "k", Model: "gpt-4.1-mini", Prompt: "p",
				Sink: audit.NewLog(&log), Out: &bytes.Buffer{},
			})
			require.ErrorContains(t, err, tt.want)
			assert.Len(t, srv.Requests(), 1)
			assert.Zero(t, log.Len(), "no decision, nothing ran")
		})
	}
}

// setup returns a Genkit instance whose tools are guarded by a guard that
// writes to log, talking to a server that answers with bodies.
func setup(t *testing.T, log *bytes.Buffer, bodies ...[]byte) (context.Context, *genkit.Genkit, *toolguard.Guard, *fakeapi.Server) {
	t.Helper()
	srv := fakeapi.NewBodies(t, bodies...)
	guard, err := newGuard(audit.NewLog(log))
	require.NoError(t, err)
	ctx := toolguard.WithPrincipal(context.Background(), demo.Principal())
	g := genkit.Init(ctx, genkit.WithPlugins(&oai.OpenAI{APIKey: "k", Opts: []option.RequestOption{option.WithBaseURL(srv.URL + "/v1/")}}))
	require.NoError(t, defineTools(g, guard))
	return ctx, g, guard, srv
}

func TestAnswerApprovesThatCallOnly(t *testing.T) {
	final, err := os.ReadFile("testdata/final.json")
	require.NoError(t, err)
	var log bytes.Buffer
	ctx, g, _, srv := setup(t, &log, fakeapi.ChatToolCall(t, "read_file", `{"path":"/w/contracts/acme.txt"}`), final)
	gen := []ai.GenerateOption{ai.WithModelName("openai/gpt-4.1-mini"), ai.WithTools(ai.ToolName("read_file"))}

	resp, err := genkit.Generate(ctx, g, append(gen, ai.WithPrompt("p"))...)
	require.NoError(t, err)
	require.Equal(t, ai.FinishReasonInterrupted, resp.FinishReason)
	interrupts := resp.Interrupts()
	require.Len(t, interrupts, 1)

	// An answer for another call is refused outright.
	_, err = Answer(g, interrupts[0], toolguard.Approval{Approved: true, Binding: strings.Repeat("0", 64)})
	require.ErrorIs(t, err, toolguard.ErrWrongBinding)

	// An approval does not carry over to other arguments: the restarted
	// call is denied, and the model reads why.
	restart, err := Answer(g, interrupts[0], toolguard.Approval{Approved: true, By: "alice"})
	require.NoError(t, err)
	restart.ToolRequest.Input = map[string]any{"path": "/w/contracts/globex.txt"}
	resp, err = genkit.Generate(ctx, g, append(gen, ai.WithMessages(resp.History()...), ai.WithToolRestarts(restart))...)
	require.NoError(t, err)
	assert.Equal(t, ai.FinishReasonStop, resp.FinishReason)
	reqs := srv.Requests()
	require.Len(t, reqs, 2)
	assert.Contains(t, toolResults(t, reqs[1].Body)["call_1"], "the approval given was for another call")

	sum, err := audit.Verify(bytes.NewReader(log.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Denied)
	assert.Zero(t, sum.Outcomes)
}

func TestRestartWithoutAnswerInterruptsAgain(t *testing.T) {
	var log bytes.Buffer
	ctx, g, _, _ := setup(t, &log, fakeapi.ChatToolCall(t, "read_file", `{"path":"/w/contracts/acme.txt"}`))
	gen := []ai.GenerateOption{ai.WithModelName("openai/gpt-4.1-mini"), ai.WithTools(ai.ToolName("read_file"))}
	resp, err := genkit.Generate(ctx, g, append(gen, ai.WithPrompt("p"))...)
	require.NoError(t, err)
	require.Len(t, resp.Interrupts(), 1)

	// A plain restart carries no human's answer: the call is not approved.
	restart := genkit.LookupTool(g, "read_file").Restart(resp.Interrupts()[0], nil)
	_, err = genkit.Generate(ctx, g, append(gen, ai.WithMessages(resp.History()...), ai.WithToolRestarts(restart))...)
	require.ErrorContains(t, err, "interrupt")
	sum, err := audit.Verify(bytes.NewReader(log.Bytes()), audit.VerifyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Denied)
	assert.Zero(t, sum.Outcomes)
}

func TestAnswerRefusesOtherParts(t *testing.T) {
	var log bytes.Buffer
	_, g, _, _ := setup(t, &log)
	for _, p := range []*ai.Part{
		ai.NewTextPart("hello"),
		ai.NewToolRequestPart(&ai.ToolRequest{Name: "read_file", Input: map[string]any{"path": "/w/notes.txt"}}),
	} {
		_, err := Answer(g, p, toolguard.Approval{Approved: true})
		assert.Error(t, err)
	}
}

func TestDefineTool(t *testing.T) {
	var log bytes.Buffer
	_, g, guard, _ := setup(t, &log)
	assert.Empty(t, Unguarded(g, guard))

	// A second tool of the same name is refused, on either side.
	_, err := DefineTool(g, guard, "read_file", "again", func(*ai.ToolContext, demo.ReadArgs) (string, error) { return "", nil })
	assert.ErrorContains(t, err, "already defined")
	require.NoError(t, guard.Register(toolguard.Tool{Name: "list_dir", Handler: func(context.Context, json.RawMessage) (any, error) { return nil, nil }}))
	_, err = DefineTool(g, guard, "list_dir", "List.", func(*ai.ToolContext, struct{}) (string, error) { return "", nil })
	assert.ErrorContains(t, err, "already registered")
	assert.Nil(t, genkit.LookupTool(g, "list_dir"), "a tool the guard refused is not defined on Genkit")

	// A tool defined on Genkit directly is not guarded, and Unguarded says so.
	genkit.DefineTool(g, "shell", "Run a command.", func(*ai.ToolContext, struct{ Cmd string }) (string, error) {
		return "", errors.New("never")
	})
	assert.Equal(t, []string{"shell"}, Unguarded(g, guard))
}

func TestTerminalApprover(t *testing.T) {
	it := Interrupt{Tool: "read_file", Args: json.RawMessage(`{"path":"/w/contracts/acme.txt"}`), Reason: "contracts are confidential"}
	tests := []struct {
		in       string
		approved bool
	}{
		{"y\n", true},
		{" Y \n", true},
		{"n\n", false},
		{"yes please\n", false},
		{"", false},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		a, err := terminalApprover(strings.NewReader(tt.in), &out)(context.Background(), it)
		require.NoError(t, err)
		assert.Equal(t, tt.approved, a.Approved, "%q", tt.in)
		assert.Contains(t, out.String(), `read_file {"path":"/w/contracts/acme.txt"}`)
	}

	// Nobody answers: the wait ends with the context.
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := terminalApprover(r, io.Discard)(ctx, it)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestRunNeedsAKey(t *testing.T) {
	err := run(context.Background(), config{Model: "gpt-4.1-mini", Prompt: "p", Sink: audit.Discard, Out: io.Discard})
	assert.ErrorContains(t, err, "OPENAI_API_KEY")
}
