package strataotel_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/otel/strataotel"
)

// TestMain fails the package if a goroutine is left once every test closed
// its caches and providers.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an SDK tracer provider recording every span in memory and a
// meter provider read by hand.
type harness struct {
	rec    *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{rec: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.rec))
	h.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	t.Cleanup(func() {
		ctx := context.Background()
		_ = h.tp.Shutdown(ctx)
		_ = h.mp.Shutdown(ctx)
	})
	return h
}

// observer returns a strataotel observer on h's providers.
func (h *harness) observer(t *testing.T, opts ...strataotel.Option) *strataotel.Observer {
	t.Helper()
	o := strataotel.New(append([]strataotel.Option{strataotel.WithTracerProvider(h.tp), strataotel.WithMeterProvider(h.mp)}, opts...)...)
	t.Cleanup(func() {
		if err := o.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return o
}

// root starts a sampled span standing for an incoming request.
func (h *harness) root(name string) (context.Context, trace.Span) {
	return h.tp.Tracer("test").Start(context.Background(), name)
}

// spans returns the ended spans named name.
func (h *harness) spans(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range h.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only ended span named name.
func (h *harness) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	ss := h.spans(name)
	if len(ss) != 1 {
		t.Fatalf("%d spans named %s, want 1; spans: %s", len(ss), name, h.names())
	}
	return ss[0]
}

// children returns the ended spans whose parent is s.
func (h *harness) children(s sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, c := range h.rec.Ended() {
		if c.Parent().SpanID() == s.SpanContext().SpanID() && c.Parent().TraceID() == s.SpanContext().TraceID() {
			out = append(out, c)
		}
	}
	return out
}

func (h *harness) names() string {
	var s []string
	for _, sp := range h.rec.Ended() {
		s = append(s, sp.Name())
	}
	return fmt.Sprint(s)
}

// waitSpan polls for an ended span named name for up to 5 s.
func (h *harness) waitSpan(t *testing.T, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ss := h.spans(name); len(ss) >= n {
			return ss
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d %s spans; spans: %s", n, name, h.names())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// attrs returns s's attributes as a map.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// wantAttrs fails unless s has each attribute of want with its value.
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	got := attrs(s)
	for _, kv := range want {
		v, ok := got[kv.Key]
		if !ok || v != kv.Value {
			t.Errorf("%s: attribute %s = %v (present %v), want %v; all: %v", s.Name(), kv.Key, v.Emit(), ok, kv.Value.Emit(), s.Attributes())
		}
	}
}

func isChild(child, parent sdktrace.ReadOnlySpan) bool {
	return child.Parent().SpanID() == parent.SpanContext().SpanID() &&
		child.SpanContext().TraceID() == parent.SpanContext().TraceID()
}

// collect reads the metrics once.
func (h *harness) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// intValue sums the points of an int64 sum or gauge whose attributes
// include want.
func intValue(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	var n int64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Value
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if matches(p.Attributes, want) {
				n += p.Value
			}
		}
	default:
		t.Fatalf("%s is a %T", name, m.Data)
	}
	return n
}

// histCount sums the counts of a float64 histogram's points whose
// attributes include want.
func histCount(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) uint64 {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	d, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T", name, m.Data)
	}
	var n uint64
	for _, p := range d.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}

// newCache makes a cache closed at the end of the test.
func newCache(t *testing.T, o core.Options) *core.Cache {
	t.Helper()
	c, err := core.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

var clusterSeq atomic.Int64

// newCluster makes n caches named "cluster", each with its own observer on
// h's providers, sharing an in-process L2 and backplane as n nodes share
// Redis.
func newCluster(t *testing.T, h *harness, n int) []*core.Cache {
	t.Helper()
	name := fmt.Sprintf("%s-%d", t.Name(), clusterSeq.Add(1))
	bus := membackplane.NewBus()
	nodes := make([]*core.Cache, n)
	for i := range nodes {
		store, err := meml2.NewShared(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		bp := bus.Connect(nil)
		c := newCache(t, core.Options{Name: "cluster", InstanceID: fmt.Sprint("node-", i), L2: store, Backplane: bp,
			Observers: []core.Observer{h.observer(t)}})
		t.Cleanup(func() { store.Close(); bp.Close() })
		nodes[i] = c
	}
	for _, c := range nodes {
		waitFor(t, "backplane connected", func() bool { return !c.Stats().Disconnected })
	}
	return nodes
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func constant[T any](v T) core.Factory[T] {
	return func(context.Context, *core.FactoryContext[T]) (T, error) { return v, nil }
}

func failing[T any](err error) core.Factory[T] {
	return func(context.Context, *core.FactoryContext[T]) (T, error) {
		var zero T
		return zero, err
	}
}

// fakeClock is a core.Clock moved by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}
