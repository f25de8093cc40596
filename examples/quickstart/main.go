// Command quickstart is a small scripted agent whose three tools — read a
// file, write a file, send an email — are guarded by agentguard. It makes
// calls that are allowed and calls that are denied for every reason the
// guard has, prints each call's arguments and its decision, then verifies
// its audit log and says where the log is.
//
//	go run ./examples/quickstart [-log decisions.jsonl]
//
// The log is kept (by default quickstart-decisions.jsonl in the current
// directory); a second run appends to it and the chain continues. The
// workspace the agent works in is a temporary directory, removed at the
// end. Its policy checks paths with resolvesUnder, which follows symbolic
// links, and its file tools open files with toolguard/fsroot, so a link
// swapped in after the decision is refused when the file is opened.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
	"github.com/agentguard/agentguard/toolguard/fsroot"
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
	logPath := flag.String("log", "quickstart-decisions.jsonl", "the audit log, JSON Lines; appended to if it exists")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *logPath); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// setup makes the agent's workspace in dir: notes.txt, an out/ directory,
// and a link "hr" to a directory beside the workspace that the agent must
// not read.
func setup(dir string) (string, error) {
	workspace := filepath.Join(dir, "workspace")
	return workspace, errors.Join(
		os.MkdirAll(filepath.Join(workspace, "out"), 0o755),
		os.MkdirAll(filepath.Join(dir, "hr"), 0o755),
		os.WriteFile(filepath.Join(workspace, "notes.txt"), []byte("Customer 42 asked for a refund."), 0o644),
		os.WriteFile(filepath.Join(dir, "hr", "salaries.csv"), []byte("name,salary"), 0o644),
		os.Symlink(filepath.Join(dir, "hr"), filepath.Join(workspace, "hr")),
	)
}

func run(ctx context.Context, w io.Writer, logPath string) error {
	dir, err := os.MkdirTemp("", "agentguard-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	workspace, err := setup(dir)
	if err != nil {
		return err
	}

	// 1. The policy, compiled once.
	p, err := scope.Parse(policySrc, scope.WithFilename("policy.yaml"))
	if err != nil {
		return err
	}

	// 2. The audit log: hash-chained JSON Lines, fsynced before each tool runs.
	log, err := audit.OpenFile(logPath, audit.FileOptions{Sync: audit.SyncEachRecord})
	if err != nil {
		return err
	}
	defer log.Close()

	// 3. A human in the loop, scripted here: approve mail to partners only.
	approver := toolguard.ApproverFunc(func(ctx context.Context, req toolguard.ApprovalRequest) (toolguard.Approval, error) {
		var a emailArgs
		if err := json.Unmarshal(req.Args, &a); err != nil {
			return toolguard.Approval{}, err
		}
		if strings.HasSuffix(a.To, "@partner.example.net") {
			return toolguard.Approval{Approved: true, By: "duty-manager"}, nil
		}
		return toolguard.Approval{Approved: false, By: "duty-manager", Reason: "not a known partner"}, nil
	})

	// 4. The guard and its tools.
	g, err := toolguard.New(p, toolguard.WithSink(log), toolguard.WithApprover(approver))
	if err != nil {
		return err
	}
	closeTools, err := registerTools(g, workspace)
	if err != nil {
		return err
	}
	defer closeTools()

	// 5. The agent: a principal and a script of tool calls, as a model might make them.
	bot := toolguard.WithPrincipal(ctx, scope.Principal{
		ID:     "support-bot",
		Scopes: []string{"files.write"}, // brought by its token; the policy adds files.read and mail.send
		Attrs:  map[string]any{"workspace": workspace},
	})
	fmt.Fprintln(w, "agentguard quick start — policy revision", p.Revision()[:12])
	for _, c := range script(workspace) {
		out, err := g.Call(bot, c.tool, json.RawMessage(c.args))
		line := fmt.Sprintf("%s %s\n    %s\n", c.tool, c.args, describe(out, err))
		fmt.Fprint(w, strings.ReplaceAll(line, workspace, "<workspace>"))
	}

	// 6. Close the log and verify the whole chain.
	if err := log.Close(); err != nil {
		return err
	}
	return verifyLog(w, logPath, workspace)
}

// registerTools registers the three tools. The file tools open files with
// fsroot, below the workspace (read) and its out/ directory (write) only,
// so a path that leads elsewhere through a link is refused when the file is
// opened, even if the link appeared after the policy's decision.
func registerTools(g *toolguard.Guard, workspace string) (closeRoots func(), err error) {
	readRoot, err := fsroot.Open(workspace)
	if err != nil {
		return nil, err
	}
	writeRoot, err := fsroot.Open(filepath.Join(workspace, "out"))
	if err != nil {
		readRoot.Close()
		return nil, err
	}
	closeRoots = func() { readRoot.Close(); writeRoot.Close() }
	err = errors.Join(
		toolguard.Register(g, "read_file", "Read a text file.", func(ctx context.Context, in readArgs) (string, error) {
			b, err := readRoot.ReadFile(in.Path)
			return string(b), err
		}),
		toolguard.Register(g, "write_file", "Write a text file.", func(ctx context.Context, in writeArgs) (string, error) {
			return "ok", writeRoot.WriteFile(in.Path, []byte(in.Content), fsroot.WriteOptions{Sync: true})
		}),
		toolguard.Register(g, "send_email", "Send an email.", func(ctx context.Context, in emailArgs) (string, error) {
			return "queued for " + in.To, nil
		}),
	)
	if err != nil {
		closeRoots()
		return nil, err
	}
	return closeRoots, nil
}

// script is the agent's tool calls, as a model might make them.
func script(workspace string) []struct{ tool, args string } {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return []struct{ tool, args string }{
		{"read_file", `{"path":` + q(workspace+"/notes.txt") + `}`},
		{"read_file", `{"path":42}`},
		{"read_file", `{"path":"/etc/passwd"}`},
		{"read_file", `{"path":` + q(workspace+"/../../etc/passwd") + `}`},
		{"read_file", `{"path":` + q(workspace+"/hr/salaries.csv") + `}`}, // hr is a link out of the workspace
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
}

// verifyLog verifies the whole audit log and says where it is.
func verifyLog(w io.Writer, logPath, workspace string) error {
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
	abs, err := filepath.Abs(logPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "audit log kept at %s (<workspace> was %s, now removed)\n", abs, workspace)
	return nil
}

// describe is one call's result: its decision and what the tool returned.
func describe(out any, err error) string {
	var de *toolguard.DeniedError
	switch {
	case errors.As(err, &de):
		return fmt.Sprintf("DENY  [%s] %s", de.Decision.Stage, de.Decision.Reason)
	case err != nil:
		return fmt.Sprintf("ERROR %v", err)
	}
	s := fmt.Sprint(out)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Sprintf("ALLOW → %q", s)
}
