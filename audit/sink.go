package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Sink receives records.
//
// Write must return only once the record is stored as durably as the sink
// promises (a file [Log] per its [SyncMode] and
// [FileOptions.DeferOutcomes]); it must return a non-nil error if
// the record was not stored, and must never drop a record silently. The guard
// denies a call whose decision record could not be written, so an error is
// always safe and a lost record never is.
//
// Write may be called concurrently. A cancelled ctx must not leave a
// half-written record: a sink either stores the whole record or none of it
// (it may still return ctx's error after storing it). Write must not retain r
// after returning. Write may set r.Seq and r.Prev ([Log] also sets a zero
// r.Version).
type Sink interface {
	Write(ctx context.Context, r *Record) error
}

// SinkFunc adapts a function to [Sink].
type SinkFunc func(ctx context.Context, r *Record) error

// Write calls f(ctx, r). A nil SinkFunc returns an error.
func (f SinkFunc) Write(ctx context.Context, r *Record) error {
	if f == nil {
		return errors.New("audit: nil SinkFunc")
	}
	return f(ctx, r)
}

// Discard is a Sink that accepts and forgets every record: an explicit
// opt-out of auditing, for tests and for tools whose calls need no evidence.
var Discard Sink = discard{}

type discard struct{}

func (discard) Write(context.Context, *Record) error { return nil }

// Multi returns a Sink that writes each record to every one of sinks, in
// order, and succeeds only if all of them accept it. The first error stops
// the Write and is returned (wrapped, naming the sink's position): the
// record may then be stored in the sinks before it but not in the others,
// and the guard denies the call. Multi with no sinks, or with a nil one,
// fails every Write: an empty fan-out would drop records silently.
//
// The sinks slice is copied. Multi is safe for concurrent use when the
// sinks are; concurrent records may reach different sinks in different
// orders. Sinks may set Seq and Prev ([Log] does), so a later sink sees the
// values an earlier one set.
func Multi(sinks ...Sink) Sink {
	return multi(slices.Clone(sinks))
}

type multi []Sink

func (m multi) Write(ctx context.Context, r *Record) error {
	if len(m) == 0 {
		return errors.New("audit: Multi has no sinks: record not stored")
	}
	for i, s := range m {
		if s == nil {
			return fmt.Errorf("audit: Multi sink %d is nil: record not stored", i)
		}
		if err := s.Write(ctx, r); err != nil {
			return fmt.Errorf("audit: Multi sink %d of %d: %w", i+1, len(m), err)
		}
	}
	return nil
}
