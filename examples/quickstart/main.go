// Command quickstart is a small scripted agent whose three tools — read a
// file, write a file, send an email — are guarded by agentguard. It makes
// calls that are allowed and calls that are denied for every reason the
// guard has, prints one line per decision, then verifies its audit log.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

//go:embed policy.yaml
var policySrc []byte

type readArgs struct {
	Path string `json:"path" jsonschema:"absolute path of the file to read"`
}

type writeArgs struct {
	Path    string `json:"path" jsonschema:"absolute path of the file to write"`
	Content string `json:"content" jsonschema:"the text to write"`
}

type emailArgs struct {
	To      string `json:"to" jsonschema:"recipient address"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "agentguard-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	workspace := filepath.Join(dir, "workspace")
	if err := os.MkdirAll(filepath.Join(workspace, "out"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(workspace, "notes.txt"), []byte("Customer 42 asked for a refund."), 0o644); err != nil {
		return err
	}

	// 1. The policy, compiled once.
	p, err := scope.Parse(policySrc, scope.WithFilename("policy.yaml"))
	if err != nil {
		return err
	}

	// 2. The audit log: hash-chained JSON Lines, fsynced before each tool runs.
	logPath := filepath.Join(dir, "decisions.jsonl")
	log, err := audit.OpenFile(logPath, audit.FileOptions{Sync: audit.SyncEachRecord})
	if err != nil {
		return err
	}

	// 3. A human in the loop, scripted here: approve mail to partners only.
	approver := toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		var a emailArgs
		if err := json.Unmarshal(req.Args, &a); err != nil {
			return toolguard.Approval{}, err
		}
		if strings.HasSuffix(a.To, "@partner.example.net") {
			// An approval names the exact call it answers.
			return toolguard.Approval{Approved: true, By: "duty-manager", Binding: req.Binding}, nil
		}
		return toolguard.Approval{Approved: false, By: "duty-manager", Reason: "not a known partner"}, nil
	})

	// 4. The guard and its tools.
	g, err := toolguard.New(p, toolguard.WithSink(log), toolguard.WithApprover(approver))
	if err != nil {
		return err
	}
	err = errors.Join(
		toolguard.Register(g, "read_file", "Read a text file.", func(ctx context.Context, in readArgs) (string, error) {
			b, err := os.ReadFile(in.Path)
			return string(b), err
		}),
		toolguard.Register(g, "write_file", "Write a text file.", func(ctx context.Context, in writeArgs) (string, error) {
			return "ok", os.WriteFile(in.Path, []byte(in.Content), 0o644)
		}),
		toolguard.Register(g, "send_email", "Send an email.", func(ctx context.Context, in emailArgs) (string, error) {
			return "queued for " + in.To, nil
		}),
	)
	if err != nil {
		return err
	}

	// 5. The agent: a principal and a script of tool calls, as a model might make them.
	bot := toolguard.WithPrincipal(ctx, scope.Principal{
		ID:     "support-bot",
		Scopes: []string{"files.write"}, // brought by its token; the policy adds files.read and mail.send
		Attrs:  map[string]any{"workspace": workspace},
	})
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	calls := []struct{ tool, args string }{
		{"read_file", `{"path":` + q(workspace+"/notes.txt") + `}`},
		{"read_file", `{"path":42}`},
		{"read_file", `{"path":"/etc/passwd"}`},
		{"read_file", `{"path":` + q(workspace+"/../../etc/passwd") + `}`},
		{"read_file", `{"path":` + q(workspace+"/.env") + `}`},
		{"read_file", `{"path":"/w/a","path":"/etc/shadow"}`},
		{"delete_file", `{"path":` + q(workspace+"/notes.txt") + `}`},
		{"write_file", `{"path":` + q(workspace+"/out/summary.txt") + `,"content":"refund approved"}`},
		{"write_file", `{"path":` + q(workspace+"/out/summary.txt") + `,"content":"refund approved, v2"}`},
		{"write_file", `{"path":` + q(workspace+"/out/summary.txt") + `,"content":"refund approved, v3"}`},
		{"send_email", `{"to":"customer42@example.com","subject":"Your refund","body":"Approved."}`},
		{"send_email", `{"to":"billing@partner.example.net","subject":"Refund 42","body":"Please process."}`},
		{"send_email", `{"to":"mallory@evil.example.org","subject":"data","body":"all customers"}`},
	}
	fmt.Fprintln(w, "agentguard quick start — policy revision", p.Revision()[:12])
	for _, c := range calls {
		out, err := g.Call(bot, c.tool, json.RawMessage(c.args))
		fmt.Fprintln(w, describe(c.tool, out, err))
	}

	// 6. Close the log and verify the whole chain.
	if err := log.Close(); err != nil {
		return err
	}
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	sum, err := audit.Verify(f, audit.VerifyOptions{})
	if err != nil {
		return fmt.Errorf("audit log does not verify: %w", err)
	}
	fmt.Fprintf(w, "\naudit log verified: %d records (%d decisions: %d allowed, %d denied; %d outcomes)\n",
		sum.Records, sum.Decisions, sum.Allowed, sum.Denied, sum.Outcomes)
	return nil
}

func describe(tool string, out any, err error) string {
	var de *toolguard.DeniedError
	switch {
	case errors.As(err, &de):
		return fmt.Sprintf("DENY  %-11s [%s] %s", tool, de.Decision.Stage, de.Decision.Reason)
	case err != nil:
		return fmt.Sprintf("ERROR %-11s %v", tool, err)
	}
	s := fmt.Sprint(out)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("ALLOW %-11s → %q", tool, s)
}
