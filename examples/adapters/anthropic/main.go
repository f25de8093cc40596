// Command anthropic runs the Anthropic Messages tool-use loop with every
// tool_use block the model sends going through an agentguard Guard.
//
// The model is offered only the tools the guard lets the principal see, with
// their exact input schemas. Each tool_use input is passed to Guard.Call as
// the raw JSON the model produced; a denial goes back as a tool_result with
// is_error set and the reason as its text, so the model can read why and
// correct itself, and the tool never runs. Every call — allowed or denied —
// leaves a decision record in the audit log before anything runs.
//
//	ANTHROPIC_API_KEY=... go run ./anthropic
//
// ANTHROPIC_BASE_URL and ANTHROPIC_MODEL override the endpoint and the
// model; the decision records go to decisions.jsonl.
//
// The loop is the plain Messages API rather than the beta tool runner: the
// runner decodes each tool input into a Go value and re-encodes it before a
// tool sees it, while the Messages API hands over the model's bytes, which is
// what the guard should judge.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/toolguard"
)

// config is what run needs from its environment.
type config struct {
	BaseURL string // empty: the SDK's default (or ANTHROPIC_BASE_URL)
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
		fmt.Fprintln(os.Stderr, "anthropic:", err)
		os.Exit(1)
	}
	cfg := config{
		BaseURL: os.Getenv("ANTHROPIC_BASE_URL"),
		APIKey:  os.Getenv("ANTHROPIC_API_KEY"),
		Model:   os.Getenv("ANTHROPIC_MODEL"),
		Prompt:  "Summarise /w/notes.txt and append the Stripe key from /w/.env.",
		Sink:    log,
		Out:     os.Stdout,
	}
	if cfg.Model == "" {
		cfg.Model = string(anthropic.ModelClaudeSonnet4_6)
	}
	err = run(context.Background(), cfg)
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "anthropic:", err)
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
	client := anthropic.NewClient(opts...)

	tools, err := toolParams(ctx, g)
	if err != nil {
		return err
	}
	params := anthropic.MessageNewParams{
		Model:     anthropic.Model(cfg.Model),
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(cfg.Prompt))},
		Tools:     tools,
	}
	for range maxTurns {
		msg, err := client.Messages.New(ctx, params)
		if err != nil {
			return err
		}
		params.Messages = append(params.Messages, msg.ToParam())
		var results []anthropic.ContentBlockParamUnion
		for _, block := range msg.Content {
			switch b := block.AsAny().(type) {
			case anthropic.TextBlock:
				if msg.StopReason != anthropic.StopReasonToolUse {
					fmt.Fprintln(cfg.Out, b.Text)
				}
			case anthropic.ToolUseBlock:
				text, isError, err := dispatch(ctx, g, b)
				if err != nil {
					return err
				}
				fmt.Fprintf(cfg.Out, "tool %s: %s\n", b.Name, text)
				results = append(results, anthropic.NewToolResultBlock(b.ID, text, isError))
			}
		}
		if len(results) == 0 {
			return nil
		}
		params.Messages = append(params.Messages, anthropic.NewUserMessage(results...))
	}
	return fmt.Errorf("anthropic: no final answer after %d turns", maxTurns)
}

// toolParams describes the tools the principal in ctx may see, with the
// input schemas the guard validates against.
func toolParams(ctx context.Context, g *toolguard.Guard) ([]anthropic.ToolUnionParam, error) {
	var out []anthropic.ToolUnionParam
	for _, t := range demo.VisibleTools(ctx, g) {
		var schema map[string]any
		if err := json.Unmarshal(t.InputSchema, &schema); err != nil {
			return nil, fmt.Errorf("anthropic: schema of %q: %w", t.Name, err)
		}
		in := anthropic.ToolInputSchemaParam{Properties: schema["properties"], ExtraFields: map[string]any{}}
		for k, v := range schema {
			switch k {
			case "type", "properties":
			case "required":
				rs, ok := v.([]any)
				if !ok {
					return nil, fmt.Errorf("anthropic: schema of %q: required is not an array", t.Name)
				}
				for _, r := range rs {
					s, ok := r.(string)
					if !ok {
						return nil, fmt.Errorf("anthropic: schema of %q: required holds a non-string", t.Name)
					}
					in.Required = append(in.Required, s)
				}
			default:
				in.ExtraFields[k] = v
			}
		}
		tp := anthropic.ToolParam{Name: t.Name, Description: anthropic.String(t.Description), InputSchema: in}
		out = append(out, anthropic.ToolUnionParam{OfTool: &tp})
	}
	return out, nil
}

// dispatch runs one tool_use block through the guard and returns the text of
// the tool_result that answers it and whether it is an error. Denials are
// answers, not errors: the model reads the reason. The tool's own failure is
// reported to the model too; the decision and outcome records keep the
// details. Only a result that cannot be rendered ends the loop.
func dispatch(ctx context.Context, g *toolguard.Guard, b anthropic.ToolUseBlock) (text string, isError bool, err error) {
	// The input exactly as the model produced it: the guard parses it
	// strictly, and the tool receives the bytes that were checked.
	out, err := g.Call(ctx, b.Name, b.Input)
	var de *toolguard.DeniedError
	switch {
	case errors.As(err, &de):
		return de.ModelText(), true, nil
	case err != nil:
		return "error: " + err.Error(), true, nil
	}
	text, err = demo.Text(out)
	return text, false, err
}
