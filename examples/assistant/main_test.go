package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentguard/agentguard/audit"
)

// printed is one call as the assistant prints it: the call line (tool and
// arguments, and where a planted call came from) and the lines under it.
type printed struct {
	call, session string
	lines         []string
}

// decision is the line with the decision: ALLOW or DENY.
func (p printed) decision() string {
	for _, l := range p.lines {
		if strings.HasPrefix(l, "ALLOW") || strings.HasPrefix(l, "DENY") {
			return l
		}
	}
	return ""
}

func parse(t *testing.T, out string) []printed {
	t.Helper()
	var calls []printed
	session := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "task "):
			session = regexp.MustCompile(`session (\S+):`).FindStringSubmatch(line)[1]
		case line == "" || strings.HasPrefix(line, "agentguard ") || strings.HasPrefix(line, "money ") ||
			strings.HasPrefix(line, "mail ") || strings.HasPrefix(line, "audit "):
		case strings.HasPrefix(line, " "):
			require.NotEmpty(t, calls, "a line under no call: %s", line)
			calls[len(calls)-1].lines = append(calls[len(calls)-1].lines, strings.TrimSpace(line))
		default:
			calls = append(calls, printed{call: line, session: session})
		}
	}
	return calls
}

// records reads the log: the decision record of each call by its id.
func records(t *testing.T, path string) (audit.Summary, map[string]audit.Record) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sum, err := audit.Verify(f, audit.VerifyOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]audit.Record{}
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r audit.Record
		require.NoError(t, json.Unmarshal(line, &r))
		if r.Kind == audit.KindDecision {
			out[r.ID] = r
		}
	}
	return sum, out
}

var callID = regexp.MustCompile(`because of (\S+), call ([0-9a-f]+) \(#(\d+) in this session\)`)

// The assistant shows every injected call denied, naming the call that
// read the injection (the id of its record in the log), and every call of
// the user's own allowed — including mail to a recipient named for the
// task and an invitation approved for the rest of the session — and its
// log verifies.
func TestAssistant(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "decisions.jsonl")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, logPath))
	s := out.String()
	t.Log(s)
	calls := parse(t, s)
	require.Len(t, calls, 15)
	sum, recs := records(t, logPath)

	planted := 0
	for _, c := range calls {
		d := c.decision()
		injected := strings.Contains(c.call, "← planted in")
		reading := strings.HasPrefix(c.call, "list_transactions") || strings.HasPrefix(c.call, "get_calendar")
		switch {
		case injected && !reading:
			planted++
			assert.True(t, strings.HasPrefix(d, "DENY  [policy] denied by rule"), "%s\n  %s", c.call, d)
			m := callID.FindStringSubmatch(strings.Join(c.lines, "\n"))
			require.NotNil(t, m, "the denial names the earlier call: %s", c.call)
			earlier, ok := recs[m[2]]
			require.True(t, ok, "the named call %s has a decision record", m[2])
			assert.Equal(t, m[1], earlier.Tool)
			assert.Equal(t, c.session, earlier.Session, "the evidence is from the same session")
			assert.Contains(t, []string{"read_inbox", "get_webpage"}, earlier.Tool)
		case strings.Contains(c.call, "eve@rival.example.net"):
			assert.True(t, strings.HasPrefix(d, "DENY  [approval]"), d)
			assert.Contains(t, d, "I don't know eve@rival.example.net")
		default:
			assert.True(t, strings.HasPrefix(d, "ALLOW"), "%s\n  %s", c.call, d)
		}
	}
	assert.Equal(t, 3, planted, "three injected calls that move money or data")

	byCall := map[string]printed{}
	for _, c := range calls {
		byCall[c.call] = c
	}
	mia := byCall[`send_email {"to":"mia@example.org","subject":"Shopping list","body":"300 g red lentils, 2 carrots, 1 onion, 1 tin of tomatoes, 1 l vegetable stock, cumin"}`]
	require.NotEmpty(t, mia.lines, "the mail to Mia is printed")
	assert.True(t, strings.HasPrefix(mia.decision(), "ALLOW"), "the user named Mia for this task: %s", mia.decision())

	var asked, remembered int
	for _, c := range calls {
		for _, l := range c.lines {
			if strings.HasPrefix(l, "? asked Anna") {
				asked++
			}
		}
		if m := regexp.MustCompile(`approved for this session in call ([0-9a-f]+)`).FindStringSubmatch(c.decision()); m != nil {
			remembered++
			first, ok := recs[m[1]]
			require.True(t, ok)
			assert.Equal(t, "create_event", first.Tool)
			require.NotNil(t, first.Approval)
			assert.True(t, first.Approval.ForSession)
		}
	}
	assert.Equal(t, 2, asked, "Dora is asked about once; Dora and Eve once more")
	assert.Equal(t, 1, remembered)

	assert.Contains(t, s, "money sent to: DE02120300000000202051\n", "only the rent was paid")
	assert.Contains(t, s, "mail sent to:  jonas.weber@example.org, mia@example.org\n")
	assert.NotContains(t, s, "mail sent to:  audit@")
	assert.Contains(t, s, "audit log verified: 26 records (15 decisions: 11 allowed, 4 denied; 11 outcomes)")
	assert.Equal(t, 26, sum.Records)

	// A second run appends; the chain continues.
	out.Reset()
	require.NoError(t, run(context.Background(), &out, logPath))
	assert.Contains(t, out.String(), "audit log verified: 52 records (30 decisions: 22 allowed, 8 denied; 22 outcomes)")
}
