// Command genkit runs a Firebase Genkit generation in which every tool call
// the model makes goes through an agentguard Guard (guard.go).
//
// The tools are defined with DefineTool, which registers each on the guard
// and on Genkit; the model is offered only the tools the guard lets the
// principal see, with the guard's input schemas. Genkit runs the tool-call
// loop; each call goes to Guard.Call, and a denial is the tool's output, so
// the model reads why and the tool never runs. A call that an ask rule
// matches interrupts the generation: a human answers on the terminal, and
// the generation resumes with the answer. Every call — allowed, denied or
// interrupted — leaves a decision record in the audit log before anything
// runs.
//
//	cd examples/adapters/genkit && OPENAI_API_KEY=... go run .
//
// The model is reached through Genkit's OpenAI plugin
// (plugins/compat_oai/openai). OPENAI_BASE_URL and OPENAI_MODEL override the
// endpoint and the model; the decision records go to decisions.jsonl.
//
// This example is a module of its own (see go.mod): Genkit and
// anthropic-sdk-go, which the other adapters use, need incompatible
// versions of a common dependency.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"
	oai "github.com/firebase/genkit/go/plugins/compat_oai/openai"
	"github.com/openai/openai-go/option"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/examples/adapters/internal/demo"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// policy is the scenario's policy with one rule more: a human approves
// each read of a contract.
const policy = demo.Policy + `  - name: ask-contracts
    effect: ask
    tools: [read_file]
    when: args.path.isUnder("/w/contracts")
    message: '"contracts are confidential: " + args.path'
`

// config is what run needs from its environment.
type config struct {
	BaseURL string // empty: the SDK's default (or OPENAI_BASE_URL)
	APIKey  string
	Model   string // an OpenAI model name, without the "openai/" prefix
	Prompt  string
	Sink    audit.Sink
	Out     io.Writer
	// Approve asks a human about an interrupted call.
	Approve func(ctx context.Context, it Interrupt) (toolguard.Approval, error)
}

// maxResumes bounds how often one prompt may be interrupted.
const maxResumes = 4

func main() {
	log, err := audit.OpenFile("decisions.jsonl", audit.FileOptions{Sync: audit.SyncEachRecord})
	if err != nil {
		fmt.Fprintln(os.Stderr, "genkit:", err)
		os.Exit(1)
	}
	cfg := config{
		BaseURL: os.Getenv("OPENAI_BASE_URL"),
		APIKey:  os.Getenv("OPENAI_API_KEY"),
		Model:   os.Getenv("OPENAI_MODEL"),
		Prompt:  "Summarise /w/notes.txt and /w/contracts/acme.txt, and append the Stripe key from /w/.env.",
		Sink:    log,
		Out:     os.Stdout,
		Approve: terminalApprover(os.Stdin, os.Stdout),
	}
	if cfg.Model == "" {
		cfg.Model = "gpt-4.1-mini"
	}
	// Genkit handles interrupt signals itself; this context lets one end a
	// wait for an answer on the terminal.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	stop()
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genkit:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	if cfg.APIKey == "" {
		return errors.New("no API key: set OPENAI_API_KEY")
	}
	guard, err := newGuard(cfg.Sink)
	if err != nil {
		return err
	}
	// Who is calling: in a real agent, the end user or service the agent
	// acts for.
	ctx = toolguard.WithPrincipal(ctx, demo.Principal())

	var opts []option.RequestOption
	if cfg.BaseURL != "" {
		opts = append(opts, option.WithBaseURL(cfg.BaseURL))
	}
	g := genkit.Init(ctx, genkit.WithPlugins(&oai.OpenAI{APIKey: cfg.APIKey, Opts: opts}))
	if err := defineTools(g, guard); err != nil {
		return err
	}
	if names := Unguarded(g, guard); len(names) > 0 {
		return fmt.Errorf("tools without a guard: %s", strings.Join(names, ", "))
	}

	// The model is offered only what the principal may see.
	var tools []ai.ToolRef
	for _, t := range demo.VisibleTools(ctx, guard) {
		tools = append(tools, ai.ToolName(t.Name))
	}
	gen := []ai.GenerateOption{ai.WithModelName("openai/" + cfg.Model), ai.WithTools(tools...)}

	resp, err := genkit.Generate(ctx, g, append(gen, ai.WithPrompt(cfg.Prompt))...)
	for range maxResumes {
		if err != nil || resp.FinishReason != ai.FinishReasonInterrupted {
			break
		}
		var restarts []*ai.Part
		for _, p := range resp.Interrupts() {
			it, ok := ai.InterruptAs[Interrupt](p)
			if !ok {
				return fmt.Errorf("tool %q was interrupted for a reason this program does not handle", p.ToolRequest.Name)
			}
			a, err := cfg.Approve(ctx, it)
			if err != nil {
				return err
			}
			r, err := Answer(g, p, a)
			if err != nil {
				return err
			}
			restarts = append(restarts, r)
		}
		resp, err = genkit.Generate(ctx, g, append(gen, ai.WithMessages(resp.History()...), ai.WithToolRestarts(restarts...))...)
	}
	if err != nil {
		return err
	}
	if resp.FinishReason == ai.FinishReasonInterrupted {
		return fmt.Errorf("still interrupted after %d answers", maxResumes)
	}
	for _, m := range resp.History() {
		if m.Role != ai.RoleTool {
			continue
		}
		for _, p := range m.Content {
			if p.IsToolResponse() {
				fmt.Fprintf(cfg.Out, "tool %s: %v\n", p.ToolResponse.Name, p.ToolResponse.Output)
			}
		}
	}
	_, err = fmt.Fprintln(cfg.Out, resp.Text())
	return err
}

// newGuard returns the guard of the scenario, with the contracts rule and
// the approver that turns its asks into interrupts.
func newGuard(sink audit.Sink) (*toolguard.Guard, error) {
	p, err := scope.Parse([]byte(policy), scope.WithFilename("policy.yaml"))
	if err != nil {
		return nil, err
	}
	return toolguard.New(p, toolguard.WithSink(sink), toolguard.WithApprover(Approver()))
}

// defineTools defines the scenario's tools on g, each behind guard.
func defineTools(g *genkit.Genkit, guard *toolguard.Guard) error {
	_, err := DefineTool(g, guard, "read_file", "Read a text file in the workspace.",
		func(tc *ai.ToolContext, in demo.ReadArgs) (string, error) { return demo.ReadFile(tc, in) })
	if err != nil {
		return err
	}
	_, err = DefineTool(g, guard, "delete_file", "Delete a file.",
		func(tc *ai.ToolContext, in demo.DeleteArgs) (string, error) { return demo.DeleteFile(tc, in) })
	return err
}

// terminalApprover asks on out and reads the answer from in.
func terminalApprover(in io.Reader, out io.Writer) func(context.Context, Interrupt) (toolguard.Approval, error) {
	r := bufio.NewReader(in)
	return func(ctx context.Context, it Interrupt) (toolguard.Approval, error) {
		fmt.Fprintf(out, "%s wants to call %s %s (%s). Allow? [y/N] ", demo.Principal().ID, it.Tool, it.Args, it.Reason)
		type answer struct {
			line string
			err  error
		}
		ch := make(chan answer, 1)
		go func() {
			line, err := r.ReadString('\n')
			ch <- answer{line, err}
		}()
		var a answer
		select {
		case <-ctx.Done():
			return toolguard.Approval{}, fmt.Errorf("waiting for an answer: %w", ctx.Err())
		case a = <-ch:
		}
		if a.err != nil && !errors.Is(a.err, io.EOF) {
			return toolguard.Approval{}, fmt.Errorf("reading the answer: %w", a.err)
		}
		by := os.Getenv("USER")
		if strings.EqualFold(strings.TrimSpace(a.line), "y") {
			return toolguard.Approval{Approved: true, By: by}, nil
		}
		return toolguard.Approval{By: by, Reason: "declined on the terminal"}, nil
	}
}
