package scopetest

import (
	"slices"

	"github.com/agentguard/agentguard/audit"
	"github.com/agentguard/agentguard/internal/provenance"
	"github.com/agentguard/agentguard/scope"
)

// replaySessions rebuilds, from the records of a log in order, what each
// session's earlier calls did, so that flow rules are replayed with the
// session they saw. A session is what its recorded calls did: each outcome
// record is a call that ran, and brought the labels the record says (the
// recording policy's labels: results are not in the log, so the labels of
// a changed labels section cannot be recomputed). Values for provenance
// come from ReplayOptions.Results when it can give a call's result.
type replaySessions struct {
	opts     *ReplayOptions
	p        *scope.Policy
	sessions map[[2]string]*replaySession
	// remember are approvals given for the rest of the session, waiting
	// for their call's outcome: by call id.
	remember map[string]pendingMemory
}

type pendingMemory struct{ rule, key string }

func newReplaySessions(p *scope.Policy, opts *ReplayOptions) *replaySessions {
	return &replaySessions{opts: opts, p: p, sessions: map[[2]string]*replaySession{}, remember: map[string]pendingMemory{}}
}

// view returns the session of a record, or nil when it belongs to none.
func (rs *replaySessions) view(r *audit.Record) *replaySession {
	if r.Session == "" {
		return nil
	}
	k := [2]string{r.Principal, r.Session}
	s := rs.sessions[k]
	if s == nil {
		s = &replaySession{id: r.Session, tools: map[string]int{}, tokens: map[string]map[string]scope.Origin{}, approvals: map[[2]string]scope.Origin{}}
		rs.sessions[k] = s
	}
	return s
}

// decided notes what the replayed decision d of the recorded decision r
// leaves for the call's outcome: an approval for the rest of the session,
// remembered under the new policy's rule and key.
func (rs *replaySessions) decided(r *audit.Record, d scope.Decision) {
	a := r.Approval
	if a == nil || !a.Approved || !a.ForSession || d.Effect != scope.Ask || d.RememberKey == "" {
		return
	}
	if id := rs.p.RememberID(d.Rule); id != "" {
		rs.remember[r.ID] = pendingMemory{rule: id, key: d.RememberKey}
	}
}

// ran applies an outcome record: the call ran in its session.
func (rs *replaySessions) ran(r *audit.Record) {
	s := rs.view(r)
	if s == nil {
		return
	}
	s.calls++
	o := scope.Origin{Tool: r.Tool, CallID: r.ID, Seq: uint64(s.calls)}
	s.tools[r.Tool]++
	for _, l := range r.LabelsAdded {
		if !slices.ContainsFunc(s.labels, func(h scope.LabelOrigin) bool { return h.Label == l }) {
			s.labels = append(s.labels, scope.LabelOrigin{Label: l, Origin: o})
		}
	}
	slices.SortFunc(s.labels, func(a, b scope.LabelOrigin) int {
		switch {
		case a.Label < b.Label:
			return -1
		case a.Label > b.Label:
			return 1
		}
		return 0
	})
	if len(r.LabelsAdded) > 0 {
		v, ok := rs.result(r.ID)
		s.index(v, ok, r.LabelsAdded, o)
	}
	if m, ok := rs.remember[r.ID]; ok {
		delete(rs.remember, r.ID)
		if _, held := s.approvals[[2]string{m.rule, m.key}]; !held {
			s.approvals[[2]string{m.rule, m.key}] = o
		}
	}
}

func (rs *replaySessions) result(id string) (any, bool) {
	if rs.opts.Results == nil {
		return nil, false
	}
	return rs.opts.Results(id)
}

// replaySession is a session rebuilt from a log: a [scope.Session].
type replaySession struct {
	id        string
	calls     int
	labels    []scope.LabelOrigin
	tools     map[string]int
	tokens    map[string]map[string]scope.Origin // label → token → earliest call
	approvals map[[2]string]scope.Origin
	// unknown counts results that carried a label but are not available:
	// provenance cannot see their values.
	unknown int
	// asked reports that the decision being replayed asked where a value
	// came from while some labelled result was unknown.
	asked bool
}

// index adds the tokens of a labelled result.
func (s *replaySession) index(v any, ok bool, labels []string, o scope.Origin) {
	if !ok {
		s.unknown++
		return
	}
	var set provenance.Set
	switch x := v.(type) {
	case string:
		set.Add(x)
	default:
		set.AddValue(normalizeValue(x))
	}
	for _, l := range labels {
		m := s.tokens[l]
		if m == nil {
			m = map[string]scope.Origin{}
			s.tokens[l] = m
		}
		for _, t := range set.Tokens() {
			if _, seen := m[t]; !seen {
				m[t] = o
			}
		}
	}
}

func (s *replaySession) ID() string                  { return s.id }
func (s *replaySession) Labels() []scope.LabelOrigin { return s.labels }
func (s *replaySession) ToolCount(tool string) int   { return s.tools[tool] }
func (s *replaySession) ToolCounts() map[string]int  { return s.tools }
func (s *replaySession) Calls() int                  { return s.calls }

func (s *replaySession) From(value, label string) (scope.Origin, bool, error) {
	if s.unknown > 0 {
		s.asked = true
	}
	var best scope.Origin
	found := false
	for _, t := range provenance.Tokens(value) {
		if o, ok := s.tokens[label][t]; ok && (!found || o.Seq < best.Seq) {
			best, found = o, true
		}
	}
	return best, found, nil
}

func (s *replaySession) Remembered(rule, key string) (scope.Origin, bool, error) {
	o, ok := s.approvals[[2]string{rule, key}]
	return o, ok, nil
}
