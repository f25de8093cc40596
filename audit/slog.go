package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// NewSlogSink returns a Sink that hands each record to h as one slog.Record:
// time r.Time, message "audit decision", "audit outcome" or "audit
// checkpoint", level Warn for denials and Info otherwise, and one attribute
// for each member the record's JSON encoding has, under the same names
// ("v", "seq", "id", "kind", "principal", "correlation" as a group, "args"
// as its raw JSON, ...). Records go wherever the handler sends them — an
// existing log pipeline, say — with no hash chain: use it next to a [Log]
// in [Multi], not instead of one.
//
// Write fails, and the record is not handed over, when ctx is done, when r
// is not a valid record (as for [Log.Write]) or when h is not enabled for
// the record's level: a handler that would discard the record must not
// look like one that stored it. An error from h.Handle is returned. Write
// passes h copies of the record's slices, so the handler may keep what it
// is given.
//
// The Sink is safe for concurrent use if h is, as slog handlers must be.
func NewSlogSink(h slog.Handler) Sink {
	return slogSink{h: h}
}

type slogSink struct{ h slog.Handler }

func (s slogSink) Write(ctx context.Context, r *Record) error {
	if s.h == nil {
		return errors.New("audit: slog sink has no handler: record not stored")
	}
	if r == nil {
		return errors.New("audit: nil record")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: record not written: %w", err)
	}
	rec := *r
	if rec.Version == 0 {
		rec.Version = FormatVersion
	}
	if reason := rec.check(); reason != "" {
		return fmt.Errorf("audit: invalid record: %s", reason)
	}
	level := slog.LevelInfo
	if rec.Effect == "deny" {
		level = slog.LevelWarn
	}
	if !s.h.Enabled(ctx, level) {
		return fmt.Errorf("audit: slog handler is not enabled for level %v: record not stored", level)
	}
	sr := slog.NewRecord(rec.Time, level, "audit "+string(rec.Kind), 0)
	sr.AddAttrs(slogAttrs(&rec)...)
	if err := s.h.Handle(ctx, sr); err != nil {
		return fmt.Errorf("audit: slog handler: %w", err)
	}
	return nil
}

// slogAttrs returns the record's members as attributes, leaving out what
// the JSON encoding leaves out. Time is the slog.Record's own.
func slogAttrs(r *Record) []slog.Attr {
	as := make([]slog.Attr, 0, 16)
	str := func(k, v string) {
		if v != "" {
			as = append(as, slog.String(k, v))
		}
	}
	i64 := func(k string, v int64) {
		if v != 0 {
			as = append(as, slog.Int64(k, v))
		}
	}
	as = append(as, slog.Int("v", r.Version), slog.Uint64("seq", r.Seq), slog.String("id", r.ID), slog.String("kind", string(r.Kind)))
	str("principal", r.Principal)
	str("session", r.Session)
	str("task", r.Task)
	if c := r.Correlation; !c.isZero() {
		var g []any
		for _, kv := range [...][2]string{{"trace_id", c.TraceID}, {"span_id", c.SpanID}, {"conversation", c.Conversation}, {"turn", c.Turn}, {"message", c.Message}} {
			if kv[1] != "" {
				g = append(g, slog.String(kv[0], kv[1]))
			}
		}
		as = append(as, slog.Group("correlation", g...))
	}
	as = append(as, slog.String("tool", r.Tool))
	if len(r.Args) > 0 {
		// The Log's canonical form: compact JSON, or a string if invalid.
		args, ok := appendCompact(nil, r.Args)
		if ok {
			as = append(as, slog.Any("args", rawJSON(args)))
		} else {
			as = append(as, slog.String("args", string(r.Args)))
		}
	}
	str("args_sha256", r.ArgsSHA256)
	if len(r.Redacted) > 0 {
		as = append(as, slog.Any("redacted", slices.Clone(r.Redacted)))
	}
	str("effect", r.Effect)
	str("stage", r.Stage)
	str("rule", r.Rule)
	str("scope", r.Scope)
	str("grant", r.Grant)
	str("reason", r.Reason)
	if len(r.Violations) > 0 {
		as = append(as, slog.Any("violations", slices.Clone(r.Violations)))
	}
	if len(r.Limits) > 0 {
		as = append(as, slog.Any("limits", slices.Clone(r.Limits)))
	}
	if r.Approval != nil {
		a := *r.Approval
		as = append(as, slog.Any("approval", &a))
	}
	if len(r.Labels) > 0 {
		as = append(as, slog.Any("labels", slices.Clone(r.Labels)))
	}
	if len(r.Flow) > 0 {
		as = append(as, slog.Any("flow", slices.Clone(r.Flow)))
	}
	str("remembered", r.Remembered)
	if len(r.Shadow) > 0 {
		as = append(as, slog.Any("shadow", slices.Clone(r.Shadow)))
	}
	if r.Candidate != nil {
		c := *r.Candidate
		as = append(as, slog.Any("candidate", &c))
	}
	if len(r.Errors) > 0 {
		as = append(as, slog.Any("errors", slices.Clone(r.Errors)))
	}
	str("policy", r.Policy)
	i64("latency_ns", r.LatencyNS)
	i64("duration_ns", r.DurationNS)
	str("error", r.Error)
	str("error_class", r.ErrorClass)
	i64("result_bytes", r.ResultBytes)
	str("result_sha256", r.ResultSHA256)
	if len(r.LabelsAdded) > 0 {
		as = append(as, slog.Any("labels_added", slices.Clone(r.LabelsAdded)))
	}
	if r.Checkpoint != nil {
		c := *r.Checkpoint
		as = append(as, slog.Any("checkpoint", &c))
	}
	as = append(as, slog.String("prev", r.Prev))
	str("mac", r.MAC)
	str("sig", r.Sig)
	return as
}

// rawJSON is JSON text that marshals as itself, and prints as text.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return bytes.Clone(j), nil }
func (j rawJSON) String() string               { return string(j) }
