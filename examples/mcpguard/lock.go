package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"

	"github.com/agentguard/agentguard/audit"
	guardmcp "github.com/agentguard/agentguard/mcp"
	"github.com/agentguard/agentguard/scope"
	"github.com/agentguard/agentguard/toolguard"
)

// checkLock checks, before anything is started or written, that the lock
// file (if one is asked for) can be read; a missing one gets the first-run
// step explained.
func checkLock(path string) error {
	if path == "" {
		return nil
	}
	_, err := guardmcp.ReadLock(path)
	if errors.Is(err, fs.ErrNotExist) {
		return firstRunError{path}
	}
	return err
}

// firstRunError explains a missing lock file in command-line terms.
type firstRunError struct{ path string }

func (e firstRunError) Error() string {
	return fmt.Sprintf("no tool lock at %s.\n"+
		"On the first run, pin the upstream's tools: run the same command with -update-lock added.\n"+
		"It lists the tools, writes %s and exits; review the list, then start mcpguard without -update-lock.", e.path, e.path)
}

// updateLock writes the lock from the upstream's current tools and prints
// what it pinned and what changed since the previous lock. With -policy,
// tools no scope grants are warned about.
func updateLock(ctx context.Context, c *config, stdout, stderr io.Writer, logger *slog.Logger) error {
	prev, err := guardmcp.ReadLock(c.lock)
	if errors.Is(err, fs.ErrNotExist) {
		prev = nil
	} else if err != nil {
		return err
	}
	var p *scope.Policy
	guardLogger := logger
	if c.policy != "" {
		p, err = scope.Load(c.policy, c.policyOptions()...)
	} else {
		// Without a policy there is nothing to check the tools against.
		p, err = scope.Parse([]byte("version: 1\n"))
		guardLogger = slog.New(slog.DiscardHandler)
	}
	if err != nil {
		return err
	}
	g, err := toolguard.New(p, toolguard.WithSink(audit.Discard), toolguard.WithLogger(guardLogger))
	if err != nil {
		return err
	}
	px, err := guardmcp.DialProxy(ctx, c.upstreamSpec(stderr), g,
		guardmcp.WithLogger(logger),
		guardmcp.WithAuditSink(audit.Discard),
		guardmcp.WithLock(c.lock, true),
		guardmcp.WithCallTimeout(c.callTimeout),
	)
	if err != nil {
		return err
	}
	if err := px.Close(); err != nil {
		logger.Warn("mcpguard: stopping the upstream", "err", err)
	}
	next, err := guardmcp.ReadLock(c.lock)
	if err != nil {
		return err
	}
	printLockReport(stdout, c.lock, prev, next)
	return nil
}

// printLockReport prints the tools a lock pins, how it differs from the
// previous one, and each tool's tool-poisoning findings.
func printLockReport(w io.Writer, path string, prev, next *guardmcp.Lock) {
	added, removed, changed := next.Changes(prev)
	if prev == nil {
		fmt.Fprintf(w, "mcpguard: wrote %s: %d tools pinned (there was no lock before)\n", path, len(next.Tools))
	} else {
		fmt.Fprintf(w, "mcpguard: wrote %s: %d tools pinned; since the previous lock %d added, %d changed, %d removed\n",
			path, len(next.Tools), len(added), len(changed), len(removed))
	}
	status := map[string]string{}
	for _, n := range added {
		status[n] = "added"
	}
	for _, n := range changed {
		status[n] = "changed"
	}
	for _, n := range removed {
		status[n] = "removed"
	}
	names := slices.Collect(maps.Keys(next.Tools))
	names = append(names, removed...)
	slices.Sort(names)
	for _, n := range names {
		st := status[n]
		if st == "" {
			st = "unchanged"
		}
		fmt.Fprintf(w, "  %-9s %s\n", st, n)
		for _, f := range next.Findings[n] {
			fmt.Fprintf(w, "            %s finding %s at %s: %s\n", f.Severity, f.Rule, f.Pointer, f.Excerpt)
		}
	}
	if n := len(next.Findings); n > 0 {
		fmt.Fprintf(w, "mcpguard: %d tools have tool-poisoning findings; those of -hide-flagged severity or worse stay hidden\n", n)
	}
}

// auditLog is the decision log of a run. A log file the run created is
// removed again if the run fails before serving, so that a failed start
// leaves no empty file behind.
type auditLog struct {
	*audit.Log
	path    string
	created bool
	started bool
}

func openLog(path string, opts audit.FileOptions) (*auditLog, error) {
	_, statErr := os.Lstat(path)
	l, err := audit.OpenFile(path, opts)
	if err != nil {
		return nil, err
	}
	return &auditLog{Log: l, path: path, created: errors.Is(statErr, fs.ErrNotExist)}, nil
}

// closeAfter closes the log; if err (the run's error) is not nil and the
// run created the log and never served, the file is removed.
func (l *auditLog) closeAfter(err error) error {
	cerr := l.Close()
	if err != nil && l.created && !l.started {
		os.Remove(l.path)
	}
	return cerr
}
