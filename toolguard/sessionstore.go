package toolguard

import (
	"context"
	"errors"

	"github.com/agentguard/agentguard/scope"
)

// SessionKey identifies one session of one principal. Two principals never
// share a session, whatever ids they bring.
type SessionKey struct {
	Principal string
	Session   string
}

// SessionState is the summary of a session a decision reads in full: small,
// and bounded by the number of distinct labels and tools, not by the number
// of calls. A store may hand out the same state to several callers: they
// must not modify it.
type SessionState struct {
	// Calls is the number of calls that ran in the session.
	Calls uint64
	// Labels holds each label with the earliest call that brought it,
	// sorted by label.
	Labels []scope.LabelOrigin
	// Tools counts the calls that ran, by tool.
	Tools map[string]int
	// Tokens is the size of the session's provenance index: the distinct
	// (label, token) pairs held, so a token indexed under two labels
	// counts twice. It is what a store's token bound limits.
	Tokens int
}

// SessionEvent is what one call that ran adds to its session.
type SessionEvent struct {
	// Origin names the call; its Seq is assigned by the store.
	Origin scope.Origin
	// Labels are the labels the call's result brought, each once.
	Labels []string
	// Tokens are the provenance tokens of the call's result (already
	// normalised), each once, indexed under each of Labels.
	Tokens []string
}

// SessionStore keeps session state for a [Guard]: in memory by default
// ([NewMemorySessions]), or on Redis for several replicas. Every method
// must take time independent of how long the session has run. Any error
// denies the call it was asked for.
type SessionStore interface {
	// Load returns the session's summary; a session never seen is empty.
	// For a session over the store's bounds it returns an error matching
	// [ErrSessionFull], so that the guard denies the call before it runs.
	Load(ctx context.Context, k SessionKey) (SessionState, error)
	// Lookup returns, for each of tokens that an earlier result carrying
	// label held, the earliest such call. Tokens not found are absent.
	// Labels and tokens match byte for byte: the caller normalises.
	Lookup(ctx context.Context, k SessionKey, label string, tokens []string) (map[string]scope.Origin, error)
	// Reserve takes one of the session's calls for the call callID,
	// before its handler runs, so that calls running at once cannot
	// together exceed the store's bound on calls: it returns an error
	// matching [ErrSessionFull] when the calls that ran and those
	// reserved have reached the bound. The reservation is checked and
	// taken atomically. The call's Append uses it up; Release returns it
	// for a call that will not run. Reserving the same callID twice takes
	// one call.
	Reserve(ctx context.Context, k SessionKey, callID string) error
	// Release returns the reservation of callID, if it is still held. It
	// is idempotent and harmless after the call's Append.
	Release(ctx context.Context, k SessionKey, callID string) error
	// Append adds a call that ran and returns its origin with Seq set,
	// using up the reservation of ev.Origin.CallID whatever the outcome.
	// It returns an error matching [ErrSessionFull] when the session would
	// exceed the store's bounds; the session then refuses new calls: Load
	// and Append keep returning ErrSessionFull (until the store forgets
	// the session, e.g. when its time to live ends).
	Append(ctx context.Context, k SessionKey, ev SessionEvent) (scope.Origin, error)
	// Remember stores a human's approval of rule for key, for the rest of
	// the session.
	Remember(ctx context.Context, k SessionKey, rule, key string, o scope.Origin) error
	// Remembered returns the approval stored for rule and key, if any.
	Remembered(ctx context.Context, k SessionKey, rule, key string) (scope.Origin, bool, error)
}

// ErrSessionFull is returned by a [SessionStore] whose bounds a session
// has reached. The guard then denies new calls of that session rather than
// forget its history.
var ErrSessionFull = errors.New("toolguard: the session is over its bounds")
