// Package trace lets package scope report, to its test helpers only, which
// expressions a decision evaluated.
package trace

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Active is set once any recorder exists; until then deciding pays one
// atomic load.
var Active atomic.Bool

// Event is one evaluated expression.
type Event struct {
	Kind    string // "rule", "grant", "limit", "message" or "function"
	ID      string // rule name, or grant id "scope#i"
	Path    string // JSON pointer of the expression in the policy
	Expr    string
	Result  string // "true", "false", a string value, or "error"
	Err     error
	Decided bool // this element decided the call
	// Duration is how long a call of an application function took.
	Duration time.Duration
}

// Recorder collects events. Safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

// Add records an event.
func (r *Recorder) Add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// MarkDecided marks the last event of the element id as deciding.
func (r *Recorder) MarkDecided(kind, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.events) - 1; i >= 0; i-- {
		if r.events[i].Kind == kind && r.events[i].ID == id {
			r.events[i].Decided = true
			return
		}
	}
	r.events = append(r.events, Event{Kind: kind, ID: id, Decided: true})
}

// Events returns a copy of the events.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

type key struct{}

// With returns a context whose decisions are recorded in r.
func With(ctx context.Context, r *Recorder) context.Context {
	Active.Store(true)
	return context.WithValue(ctx, key{}, r)
}

// From returns the recorder of ctx, if tracing is active.
func From(ctx context.Context) *Recorder {
	if !Active.Load() {
		return nil
	}
	r, _ := ctx.Value(key{}).(*Recorder)
	return r
}
