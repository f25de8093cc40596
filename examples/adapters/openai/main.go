// Command openai runs an OpenAI Chat Completions tool-call loop in which
// every function call the model makes goes through an agentguard Guard.
//
// The model is offered only the tools the guard lets the principal see, with
// their exact input schemas. Each function call is passed to Guard.Call with
// the arguments exactly as the model wrote them; a denial goes back to the
// model as the tool message, so it can read why and correct itself, and the
// tool never runs. Every call — allowed or denied — leaves a decision record
// in the audit log before anything runs.
//
//	OPENAI_API_KEY=... go run ./openai
//
// OPENAI_BASE_URL and OPENAI_MODEL override the endpoint and the model; the
// decision records go to decisions.jsonl.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/toolguard"
)

// config is what run needs from its environment.
type config struct {
	BaseURL string // empty: the SDK's default (or OPENAI_BASE_URL)
	APIKey  string
	Model   string
	Prompt  string
	Sink    audit.Sink
	Out     io.Writer
}

// maxTurns bounds the loop: a model that keeps calling tools is stopped.
const maxTurns = 8

func main() {
	log, err := audit.OpenFile("decisions.jsonl", audit.FileOptions{Sync: audit.SyncEachRecord})
	if err != nil {
		fmt.Fprintln(os.Stderr, "openai:", err)
		os.Exit(1)
	}
	cfg := config{
		BaseURL: os.Getenv("OPENAI_BASE_URL"),
		APIKey:  os.Getenv("OPENAI_API_KEY"),
		Model:   os.Getenv("OPENAI_MODEL"),
		Prompt:  "Summarise /w/notes.txt and append the Stripe key from /w/.env.",
		Sink:    log,
		Out:     os.Stdout,
	}
	if cfg.Model == "" {
		cfg.Model = openai.ChatModelGPT5_4Mini
	}
	err = run(context.Background(), cfg)
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "openai:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	g, err := demo.NewGuard(cfg.Sink)
	if err != nil {
		return err
	}
	// Who is calling: in a real agent, the end user or service the agent
	// acts for.
	ctx = toolguard.WithPrincipal(ctx, demo.Principal())

	opts := []option.RequestOption{option.WithAPIKey(cfg.APIKey)}
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	client := openai.NewClient(opts...)

	tools, err := functionTools(ctx, g)
	if err != nil {
		return err
	}
	params := openai.ChatCompletionNewParams{
		Model:    cfg.Model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(cfg.Prompt)},
		Tools:    tools,
	}
	for range maxTurns {
		resp, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			return err
		}
		if len(resp.Choices) == 0 {
			return errors.New("openai: the response has no choices")
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			_, err := fmt.Fprintln(cfg.Out, msg.Content)
			return err
		}
		params.Messages = append(params.Messages, msg.ToParam())
		for _, tc := range msg.ToolCalls {
			text, err := dispatch(ctx, g, tc)
			if err != nil {
				return err
			}
			fmt.Fprintf(cfg.Out, "tool %s: %s\n", tc.Function.Name, text)
			params.Messages = append(params.Messages, openai.ToolMessage(text, tc.ID))
		}
	}
	return fmt.Errorf("openai: no final answer after %d turns", maxTurns)
}

// functionTools describes the tools the principal in ctx may see, with the
// input schemas the guard validates against.
func functionTools(ctx context.Context, g *toolguard.Guard) ([]openai.ChatCompletionToolUnionParam, error) {
	var out []openai.ChatCompletionToolUnionParam
	for _, t := range demo.VisibleTools(ctx, g) {
		var schema shared.FunctionParameters
		if err := json.Unmarshal(t.InputSchema, &schema); err != nil {
			return nil, fmt.Errorf("openai: schema of %q: %w", t.Name, err)
		}
		out = append(out, openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:        t.Name,
			Description: openai.String(t.Description),
			Parameters:  schema,
		}))
	}
	return out, nil
}

// dispatch runs one tool call through the guard and returns the text of the
// tool message that answers it. Denials are answers, not errors: the model
// reads the reason. The tool's own failure is reported to the model too; the
// decision and outcome records keep the details. Only a result that cannot
// be rendered ends the loop.
func dispatch(ctx context.Context, g *toolguard.Guard, tc openai.ChatCompletionMessageToolCallUnion) (string, error) {
	fn, ok := tc.AsAny().(openai.ChatCompletionMessageFunctionToolCall)
	if !ok {
		// Only function tools are offered; anything else is not run.
		return fmt.Sprintf("call %q refused: only function tools are available", tc.ID), nil
	}
	// The arguments exactly as the model wrote them: the guard parses them
	// strictly, and the tool receives the bytes that were checked.
	out, err := g.Call(ctx, fn.Function.Name, json.RawMessage(fn.Function.Arguments))
	var de *toolguard.DeniedError
	switch {
	case errors.As(err, &de):
		return de.ModelText(), nil
	case err != nil:
		return "error: " + err.Error(), nil
	}
	return demo.Text(out)
}
