// Package demo builds the guard that every adapter example puts in front of
// its tools, so that the examples differ only in how they plug it into
// their framework.
//
// # The scenario
//
// A support bot works in the workspace /w. Its scope fs.read lets it read
// files there, except secrets (rule no-dotenv). The guard also has a
// delete_file tool that no scope of the bot grants: the bot is never shown
// it, and a call to it is denied. The workspace also holds a contract,
// /w/contracts/acme.txt, for examples that add a rule asking a human
// before it is read.
//
//	g, err := demo.NewGuard(audit.NewLog(w))
//	ctx = toolguard.WithPrincipal(ctx, demo.Principal())
//	tools := demo.VisibleTools(ctx, g) // what the model is offered
//
// # Concurrency
//
// The guard and the in-memory files are safe for concurrent use.
package demo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// Policy is the policy of the scenario.
const Policy = `version: 1
scopes:
  fs.read:
    description: Read files in the caller's workspace.
    grants:
      - tools: [read_file]
        when: args.path.isUnder(principal.attrs.workspace)
  fs.admin:
    description: Delete files.
    grants:
      - tools: [delete_file]
rules:
  - name: no-dotenv
    effect: deny
    tools: ["*"]
    when: has(args.path) && args.path.glob("**/.env*")
    message: '"secret files are off limits: " + args.path'
`

// files is the workspace the tools see. It is never written.
var files = map[string]string{
	"/w/notes.txt":          "Customer 42 asked for a refund of order 1234.",
	"/w/.env":               "STRIPE_KEY=sk_live_do_not_leak",
	"/w/contracts/acme.txt": "ACME Corp: 12 seats, renews on 2027-01-01.",
}

// ReadArgs are the arguments of read_file.
type ReadArgs struct {
	Path string `json:"path" jsonschema:"absolute path of the file to read"`
}

// DeleteArgs are the arguments of delete_file.
type DeleteArgs struct {
	Path string `json:"path" jsonschema:"absolute path of the file to delete"`
}

// NewPolicyGuard returns a guard with the scenario's policy and no tools,
// writing its decision records to sink: for frameworks whose adapter
// registers the tools itself.
func NewPolicyGuard(sink audit.Sink) (*toolguard.Guard, error) {
	p, err := scope.Parse([]byte(Policy), scope.WithFilename("policy.yaml"))
	if err != nil {
		return nil, err
	}
	return toolguard.New(p, toolguard.WithSink(sink))
}

// NewGuard returns a guard with the scenario's policy and tools, writing
// its decision records to sink.
func NewGuard(sink audit.Sink) (*toolguard.Guard, error) {
	g, err := NewPolicyGuard(sink)
	if err != nil {
		return nil, err
	}
	if err := toolguard.Register(g, "read_file", "Read a text file in the workspace.", ReadFile); err != nil {
		return nil, err
	}
	if err := toolguard.Register(g, "delete_file", "Delete a file.", DeleteFile); err != nil {
		return nil, err
	}
	return g, nil
}

// ReadFile is the read_file tool.
func ReadFile(_ context.Context, in ReadArgs) (string, error) {
	s, ok := files[in.Path]
	if !ok {
		return "", fmt.Errorf("read_file: %s: no such file", in.Path)
	}
	return s, nil
}

// DeleteFile is the delete_file tool. The scenario never lets it run.
func DeleteFile(_ context.Context, in DeleteArgs) (string, error) {
	return "", fmt.Errorf("delete_file: %s: read-only workspace", in.Path)
}

// Principal is the support bot.
func Principal() scope.Principal {
	return scope.Principal{
		ID:     "support-bot",
		Scopes: []string{"fs.read"},
		Attrs:  map[string]any{"workspace": "/w"},
	}
}

// VisibleTools returns the tools of g that the principal in ctx may see:
// the ones to offer the model.
func VisibleTools(ctx context.Context, g *toolguard.Guard) []toolguard.ToolInfo {
	var out []toolguard.ToolInfo
	for _, t := range g.Tools() {
		if g.Visible(ctx, t.Name) {
			out = append(out, t)
		}
	}
	return out
}

// Text renders a tool's result for a model: strings as they are, anything
// else as JSON.
func Text(out any) (string, error) {
	switch v := out.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("demo: result: %w", err)
	}
	return string(b), nil
}
