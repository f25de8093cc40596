package toolguard

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentguard/agentguard/audit"
)

// instrumentationName names the tracer and meter.
const instrumentationName = "github.com/agentguard/agentguard/toolguard"

// WithTelemetry turns on OpenTelemetry, which is off by default: a span per
// guarded call with the decision as attributes (agentguard.effect, .rule,
// .stage, .tool, .principal.id, .policy.revision, .grant), and metrics —
// decisions by effect, stage and rule (agentguard.decisions), decision
// latency (agentguard.decision.duration, seconds), and rate-limit rejections
// by limit (agentguard.limit.rejections). The span's trace and span ids are
// copied into the call's records unless the caller set them
// ([WithCorrelation]). Nil providers mean the global ones.
func WithTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) Option {
	return func(g *Guard) error {
		if tp == nil {
			tp = otel.GetTracerProvider()
		}
		if mp == nil {
			mp = otel.GetMeterProvider()
		}
		t := &telemetry{tracer: tp.Tracer(instrumentationName)}
		meter := mp.Meter(instrumentationName)
		var err error
		if t.decisions, err = meter.Int64Counter("agentguard.decisions",
			metric.WithDescription("Guarded tool-call decisions, by effect, stage and rule."),
			metric.WithUnit("{decision}")); err != nil {
			return err
		}
		if t.latency, err = meter.Float64Histogram("agentguard.decision.duration",
			metric.WithDescription("Time spent deciding a guarded tool call."),
			metric.WithUnit("s")); err != nil {
			return err
		}
		if t.limited, err = meter.Int64Counter("agentguard.limit.rejections",
			metric.WithDescription("Calls denied by a rate limit, by limit."),
			metric.WithUnit("{call}")); err != nil {
			return err
		}
		g.telemetry = t
		return nil
	}
}

type telemetry struct {
	tracer    trace.Tracer
	decisions metric.Int64Counter
	latency   metric.Float64Histogram
	limited   metric.Int64Counter
}

// start begins the call's span.
func (t *telemetry) start(ctx context.Context, tool string) (context.Context, trace.Span) {
	return t.tracer.Start(ctx, "agentguard.call "+sanitize(tool),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("agentguard.tool", sanitize(tool))))
}

// correlation returns c with the span's trace and span ids filled in where
// the caller left them empty.
func withSpanIDs(c *audit.Correlation, span trace.Span) *audit.Correlation {
	sc := span.SpanContext()
	if !sc.IsValid() {
		return c
	}
	out := audit.Correlation{}
	if c != nil {
		out = *c
	}
	if out.TraceID == "" {
		out.TraceID = sc.TraceID().String()
	}
	if out.SpanID == "" {
		out.SpanID = sc.SpanID().String()
	}
	return &out
}

// decided records the decision on the span and in the metrics.
func (t *telemetry) decided(ctx context.Context, span trace.Span, d *Decision) {
	attrs := []attribute.KeyValue{
		attribute.String("agentguard.effect", d.Effect.String()),
		attribute.String("agentguard.stage", string(d.Stage)),
		attribute.String("agentguard.rule", d.Rule),
		attribute.String("agentguard.tool", sanitize(d.Tool)),
	}
	t.decisions.Add(ctx, 1, metric.WithAttributes(attrs...))
	t.latency.Record(ctx, d.Latency.Seconds(), metric.WithAttributes(attrs[0], attrs[1]))
	for _, l := range d.LimitResults {
		if !l.Allowed {
			t.limited.Add(ctx, 1, metric.WithAttributes(attribute.String("agentguard.limit", l.Name)))
		}
	}
	span.SetAttributes(append(attrs,
		attribute.String("agentguard.principal.id", d.Principal),
		attribute.String("agentguard.policy.revision", d.Revision),
		attribute.String("agentguard.grant", d.GrantID),
		attribute.String("agentguard.call.id", d.CallID),
	)...)
	if d.Effect.String() == "deny" {
		span.SetAttributes(attribute.String("agentguard.reason", d.Reason))
	}
}

// ended records the handler's outcome on the span and ends it.
func (t *telemetry) ended(span trace.Span, err error, dur time.Duration) {
	span.SetAttributes(attribute.Int64("agentguard.tool.duration_ns", int64(dur)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "tool failed")
	}
	span.End()
}
