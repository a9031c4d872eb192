package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keep is an in-memory exporter that keeps its spans after Shutdown.
type keep struct{ *tracetest.InMemoryExporter }

func (keep) Shutdown(context.Context) error { return nil }

// TestScenarioInMemory plays the scenario on the in-process adapters with
// in-memory span exporters: the structure the end-to-end test then finds in
// Jaeger, without Jaeger.
func TestScenarioInMemory(t *testing.T) {
	exporters := map[string]*tracetest.InMemoryExporter{"A": tracetest.NewInMemoryExporter(), "B": tracetest.NewInMemoryExporter()}
	var out strings.Builder
	cfg := config{
		L2URL: "mem://jaeger-test", BackplaneURL: "mem://jaeger-test", MetricsAddr: "127.0.0.1:0", Out: &out,
		exporter: func(node string) sdktrace.SpanExporter { return keep{exporters[node]} },
	}
	res, err := run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if len(res.Steps) != 7 {
		t.Fatalf("%d steps, want 7:\n%s", len(res.Steps), out.String())
	}
	spansOf := func(node string) tracetest.SpanStubs { return exporters[node].GetSpans() }
	find := func(node, name, traceID string) []tracetest.SpanStub {
		var out []tracetest.SpanStub
		for _, s := range spansOf(node) {
			if s.Name == name && (traceID == "" || s.SpanContext.TraceID().String() == traceID) {
				out = append(out, s)
			}
		}
		return out
	}
	update, _ := res.Step("update")
	sets := find("A", "strata.set", update.TraceID)
	pubs := find("A", "strata.backplane.publish", update.TraceID)
	if len(sets) != 1 || len(pubs) != 1 {
		t.Fatalf("update trace on A: %d set and %d publish spans, want 1 each", len(sets), len(pubs))
	}
	set := sets[0]
	if pubs[0].Parent.SpanID() != set.SpanContext.SpanID() || pubs[0].SpanKind != trace.SpanKindProducer {
		t.Errorf("the publish is not a producer child of the set span")
	}
	linked := 0
	for _, r := range find("B", "strata.backplane.receive", "") {
		for _, l := range r.Links {
			if l.SpanContext.TraceID() == set.SpanContext.TraceID() && l.SpanContext.SpanID() == set.SpanContext.SpanID() {
				linked++
			}
		}
	}
	if linked != 1 {
		t.Errorf("%d receive spans on B link to A's set span, want 1", linked)
	}
	fs, _ := res.Step("fail-safe")
	gos := find("A", "strata.get_or_set", fs.TraceID)
	if len(gos) != 1 {
		t.Fatalf("fail-safe trace: %d get_or_set spans", len(gos))
	}
	attrs := map[string]string{}
	for _, kv := range gos[0].Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["strata.failsafe"] != "true" || attrs["strata.stale"] != "true" {
		t.Errorf("fail-safe get_or_set attributes %v", attrs)
	}
	hit, _ := res.Step("l1-hit")
	if n := len(find("B", "strata.get_or_set", hit.TraceID)); n != 1 {
		t.Errorf("l1-hit trace has %d get_or_set spans, want 1", n)
	}
	for _, s := range spansOf("B") {
		if s.SpanContext.TraceID().String() == hit.TraceID && strings.HasPrefix(s.Name, "strata.") && s.Name != "strata.get_or_set" {
			t.Errorf("an L1 hit has a child span %s", s.Name)
		}
	}
	if res.MetricsURL == "" {
		t.Fatal("no metrics URL")
	}
}

// TestMetricsEndpoint reads /metrics while the scenario's caches are open.
func TestMetricsEndpoint(t *testing.T) {
	var body string
	cfg := config{L2URL: "mem://jaeger-metrics", BackplaneURL: "mem://jaeger-metrics", MetricsAddr: "127.0.0.1:0"}
	cfg.exporter = func(string) sdktrace.SpanExporter { return tracetest.NewNoopExporter() }
	hook = func(res *Result) {
		resp, err := http.Get(res.MetricsURL)
		if err != nil {
			t.Errorf("GET /metrics: %v", err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	}
	defer func() { hook = nil }()
	if _, err := run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`strata_cache_operations_total{`, `strata_result="hit"`, `otel_scope_strata_node="B"`,
		`strata_cache_factory_duration_seconds_bucket{`, `strata_cache_backplane_lag_seconds_count{`,
		`strata_cache_failsafe_activations_total{`, `strata_cache_l1_entries{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
