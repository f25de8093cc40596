package toolguard_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentguard/agentguard/toolguard"
)

func spanAttrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func TestTelemetry(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e := newEnv(t, toolguard.WithTelemetry(tp, mp))

	_, err := e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/a.txt"}`))
	require.NoError(t, err)
	_, err = e.g.Call(e.ctx, "read_file", json.RawMessage(`{"path":"/w/.env"}`))
	require.ErrorIs(t, err, toolguard.ErrPolicy)
	for i := 0; i < 3; i++ { // the third write is over the limit
		_, _ = e.g.Call(e.ctx, "write_file", json.RawMessage(`{"path":"/w/out/a","content":"x"}`))
	}
	_, err = e.g.Call(e.ctx, "fails", json.RawMessage(`{}`))
	require.Error(t, err)

	ended := spans.Ended()
	require.Len(t, ended, 6)
	allow, deny := spanAttrs(ended[0]), spanAttrs(ended[1])
	assert.Equal(t, "agentguard.call read_file", ended[0].Name())
	assert.Equal(t, "allow", allow["agentguard.effect"])
	assert.Equal(t, "read_file", allow["agentguard.tool"])
	assert.Equal(t, "agent-7", allow["agentguard.principal.id"])
	assert.Equal(t, e.g.Policy().Revision(), allow["agentguard.policy.revision"])
	assert.Equal(t, "fs.read#0", allow["agentguard.grant"])
	assert.Equal(t, "deny", deny["agentguard.effect"])
	assert.Equal(t, "no-dotenv", deny["agentguard.rule"])
	assert.Equal(t, "policy", deny["agentguard.stage"])
	assert.Contains(t, deny["agentguard.reason"], "secret files are off limits")
	assert.Equal(t, codes.Error, ended[5].Status().Code, "a failing tool marks its span")

	// Trace ids go into the records.
	recs := e.rec.records()
	require.NotNil(t, recs[0].Correlation)
	assert.Equal(t, ended[0].SpanContext().TraceID().String(), recs[0].Correlation.TraceID)
	assert.Equal(t, ended[0].SpanContext().SpanID().String(), recs[0].Correlation.SpanID)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	counts := map[string]int64{}
	var latencies uint64
	var limited int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					switch m.Name {
					case "agentguard.decisions":
						eff, _ := dp.Attributes.Value(attribute.Key("agentguard.effect"))
						stage, _ := dp.Attributes.Value(attribute.Key("agentguard.stage"))
						counts[eff.AsString()+"/"+stage.AsString()] += dp.Value
					case "agentguard.limit.rejections":
						name, _ := dp.Attributes.Value(attribute.Key("agentguard.limit"))
						assert.Equal(t, "writes", name.AsString())
						limited += dp.Value
					}
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					latencies += dp.Count
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{"allow/policy": 2, "deny/policy": 1, "allow/limit": 2, "deny/limit": 1}, counts)
	assert.EqualValues(t, 6, latencies)
	assert.EqualValues(t, 1, limited)
}
