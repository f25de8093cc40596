package scope

// Session is a read-only view of what earlier calls in the caller's session
// did: the labels their results brought in, the tools that ran, the values
// their results carried and the approvals a human gave for the rest of the
// session. Rules read it through the CEL variable session and the from
// function. scope never stores a session: the caller (toolguard) keeps the
// state and hands a view to [Policy.Decide] in [Input.Session].
//
// Every method must be cheap and independent of how long the session has
// run: Decide calls them on the hot path. An implementation that cannot
// answer (its store is unavailable, the session is over its bounds) must
// not be handed to Decide at all: the caller denies instead.
type Session interface {
	// ID is the session's id.
	ID() string
	// Labels returns each label brought into the session so far, with the
	// earliest call that brought it, sorted by label.
	Labels() []LabelOrigin
	// ToolCount reports how many earlier calls in the session ran tool
	// (allowed and run, whatever their outcome).
	ToolCount(tool string) int
	// Calls is the number of earlier calls that ran in the session.
	Calls() int
	// From reports whether value appeared, as the provenance matching
	// rules define it, in the result of an earlier call that carried
	// label, and if so which call (the earliest such). An error (the store
	// could not answer) fails the expression, which never allows.
	From(value, label string) (Origin, bool, error)
	// Remembered reports whether a human approved, for the rest of the
	// session, the ask rule named rule for the key key, and if so in which
	// call. An error fails the decision closed.
	Remembered(rule, key string) (Origin, bool, error)
}

// Origin names an earlier call of the session: the evidence a flow decision
// points to.
type Origin struct {
	// Tool is the earlier call's tool.
	Tool string `json:"tool"`
	// CallID is the earlier call's id (its audit record id).
	CallID string `json:"call_id"`
	// Seq is the earlier call's position in the session: 1 for the first
	// call that ran.
	Seq uint64 `json:"seq"`
}

// LabelOrigin is a label and the earliest call that brought it into the
// session.
type LabelOrigin struct {
	Label string `json:"label"`
	Origin
}

// Task narrows, for one task (one user request), what the principal may do.
// Narrowing only removes privilege: the effective scopes are the
// principal's scopes that Scopes also names, and only tools matching Tools
// may be called. In CEL it is the variable task with fields id and attrs.
type Task struct {
	// ID identifies the task in decisions and records.
	ID string `cel:"id" json:"id"`
	// Scopes, when not nil, keeps only these of the principal's scopes.
	Scopes []string `json:"scopes,omitempty"`
	// Tools, when not nil, keeps only tools matching these names or globs.
	Tools []string `json:"tools,omitempty"`
	// Attrs are attributes for conditions, such as the recipients or the
	// amounts the user named. They never widen what a grant allows: a
	// condition may read them to allow less.
	Attrs map[string]any `cel:"attrs" json:"attrs,omitempty"`
}
