package scopetest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/scope"
)

// ReplayOptions configure [Replay].
type ReplayOptions struct {
	// Principal returns the principal (scopes and attributes) behind an ID:
	// decision records name principals but do not carry their scopes or
	// attributes. Nil, or a false answer, means a principal with just the
	// ID, holding only the policy's static scopes.
	Principal func(id string) (scope.Principal, bool)
	// Tools gives tool annotations by name, for conditions on
	// tool.annotations.
	Tools map[string]scope.Tool
	// Task returns the task behind a task id: records name tasks but do
	// not carry their scopes, tools or attributes. Nil, or a false answer,
	// means a task with just the id, which narrows nothing.
	Task func(id string) (scope.Task, bool)
	// Results returns the result of an earlier call by its id, for
	// conditions on value provenance (x.from("label")): results are not
	// in the log. Without it, such conditions find no earlier values, and
	// the changes they may cause are marked (Change.Provenance).
	Results func(callID string) (any, bool)
}

// Replayed is a recorded decision's policy outcome: what the old policy
// decided (from the record) or what the new one decides.
type Replayed struct {
	Effect scope.Effect
	Rule   string
	Grant  string
	Reason string
}

// Change is one decision the new policy makes differently.
type Change struct {
	Line      int // 1-based line in the log
	ID        string
	Principal string
	Tool      string
	Before    Replayed
	After     Replayed
	// Redacted reports that some arguments were redacted in the record, so
	// conditions on them saw digests, not the values.
	Redacted bool
	// Session is the call's session, if any.
	Session string
	// Provenance reports that the new decision asked where a value came
	// from while the result of an earlier, labelled call of the session
	// was not available (ReplayOptions.Results): it may have found less.
	Provenance bool
}

// Kind names the change: "allow→deny", "deny→allow", "allow→ask",
// "ask→allow", "ask→deny", "deny→ask" or "rule" (same effect, another rule
// or grant decided).
func (c Change) Kind() string {
	if c.Before.Effect != c.After.Effect {
		return c.Before.Effect.String() + "→" + c.After.Effect.String()
	}
	return "rule"
}

// ReplayReport summarises a replay.
type ReplayReport struct {
	// Records is the number of log lines read; Decisions the policy
	// decisions replayed. Skipped counts decision records that no policy
	// made (unknown tool, missing principal, invalid arguments), and
	// records of other kinds.
	Records, Decisions, Skipped, Unchanged int
	// Counts maps a change kind (see Change.Kind) to how often it happened.
	Counts  map[string]int
	Changes []Change
}

// String summarises the report, one line per change after the counts.
func (r *ReplayReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replayed %d decisions (%d records, %d skipped): %d unchanged, %d changed\n",
		r.Decisions, r.Records, r.Skipped, r.Unchanged, len(r.Changes))
	for _, k := range []string{"allow→deny", "deny→allow", "allow→ask", "ask→allow", "ask→deny", "deny→ask", "rule"} {
		if n := r.Counts[k]; n > 0 {
			fmt.Fprintf(&b, "  %-11s %d\n", k, n)
		}
	}
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "  line %d: %s %s by %q: %s → %s\n", c.Line, c.Kind(), c.Tool, c.Principal, outcome(c.Before), outcome(c.After))
	}
	return b.String()
}

func outcome(o Replayed) string {
	s := o.Effect.String()
	if o.Rule != "" {
		s += " (rule " + o.Rule + ")"
	} else if o.Grant != "" {
		s += " (grant " + o.Grant + ")"
	}
	return s
}

// Replay decides every policy decision of a recorded audit log (JSON Lines,
// as written by package audit) again under p, and reports each one that
// would change. Records are read as they are; verify the log first with
// audit.Verify if it may have been tampered with.
//
// Sessions are replayed in order: each decision of a session is decided
// with what the session's earlier calls did, as their records show —
// each outcome record is a call that ran, with the labels its result
// brought (as the recording policy labelled it), and an approval given
// for the rest of the session covers the later calls the new policy's
// rule asks about with the same key. A call the new policy would deny
// still counts as having run: the log shows what followed it.
func Replay(ctx context.Context, p *scope.Policy, r io.Reader, opts ReplayOptions) (*ReplayReport, error) {
	rep := &ReplayReport{Counts: map[string]int{}}
	sessions := newReplaySessions(p, &opts)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		rep.Records++
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return rep, fmt.Errorf("scopetest: replay: line %d: %w", line, err)
		}
		if rec.Kind == audit.KindOutcome {
			sessions.ran(&rec)
		}
		before, ok := recordedOutcome(&rec)
		if !ok {
			rep.Skipped++
			continue
		}
		rep.Decisions++
		var args map[string]any
		if len(rec.Args) > 0 {
			dec := json.NewDecoder(strings.NewReader(string(rec.Args)))
			dec.UseNumber()
			if err := dec.Decode(&args); err != nil {
				return rep, fmt.Errorf("scopetest: replay: line %d: arguments: %w", line, err)
			}
		}
		pr := scope.Principal{ID: rec.Principal}
		if opts.Principal != nil {
			if got, ok := opts.Principal(rec.Principal); ok {
				pr = got
			}
		}
		tool := scope.Tool{Name: rec.Tool}
		if t, ok := opts.Tools[rec.Tool]; ok {
			tool = t
		}
		in := scope.Input{Principal: pr, Tool: tool, Args: args, Call: scope.Call{ID: rec.ID, Time: rec.Time}}
		view := sessions.view(&rec)
		if view != nil {
			view.asked = false
			in.Session = view
		}
		if rec.Task != "" {
			t := scope.Task{ID: rec.Task}
			if opts.Task != nil {
				if got, ok := opts.Task(rec.Task); ok {
					t = got
				}
			}
			in.Task = &t
		}
		d := p.Decide(ctx, in)
		sessions.decided(&rec, d)
		after := Replayed{Effect: d.Effect, Rule: d.Rule, Grant: d.GrantID, Reason: d.Reason}
		if after.Effect == scope.Allow {
			// As recorded: an allow is by a grant (an ask rule may have
			// named an approval remembered for the session).
			after.Rule = ""
		}
		if after.Effect == before.Effect && after.Rule == before.Rule && (after.Effect != scope.Allow || after.Grant == before.Grant) {
			rep.Unchanged++
			continue
		}
		c := Change{Line: line, ID: rec.ID, Principal: rec.Principal, Tool: rec.Tool, Before: before, After: after,
			Redacted: len(rec.Redacted) > 0, Session: rec.Session, Provenance: view != nil && view.asked}
		rep.Counts[c.Kind()]++
		rep.Changes = append(rep.Changes, c)
	}
	if err := sc.Err(); err != nil {
		return rep, fmt.Errorf("scopetest: replay: line %d: %w", line+1, err)
	}
	return rep, nil
}

// recordedOutcome reconstructs what the recording policy decided, or false
// for records that are not policy decisions.
func recordedOutcome(r *audit.Record) (Replayed, bool) {
	if r.Kind != audit.KindDecision {
		return Replayed{}, false
	}
	out := Replayed{Rule: r.Rule, Grant: r.Grant, Reason: r.Reason}
	switch {
	case r.Approval != nil:
		// An ask rule matched; the approver then allowed or denied.
		out.Effect = scope.Ask
		if r.Approval.Rule != "" {
			out.Rule = r.Approval.Rule
		}
	case r.Stage == "policy" && r.Effect == "deny":
		out.Effect = scope.Deny
	case r.Stage == "approval" && r.Effect == "deny":
		// Asked, but with no approver configured.
		out.Effect = scope.Ask
	case r.Stage == "policy" || r.Stage == "limit":
		// The policy allowed; a limit or the log may have denied later.
		out.Effect = scope.Allow
		out.Rule = ""
	default:
		return Replayed{}, false
	}
	return out, true
}
