package strataotel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

func TestGetOrSetMissThenHitInsideATrace(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Name: "users", Observers: []core.Observer{h.observer(t)}})
	ctx, req := h.root("request")
	for range 2 {
		if _, err := core.GetOrSet(ctx, c, "user:1", constant("Ada")); err != nil {
			t.Fatal(err)
		}
	}
	req.End()
	parent := h.one(t, "request")

	ops := h.spans("strata.get_or_set")
	if len(ops) != 2 {
		t.Fatalf("%d get_or_set spans, want 2; spans: %s", len(ops), h.names())
	}
	miss, hit := ops[0], ops[1]
	for _, s := range ops {
		if !isChild(s, parent) {
			t.Errorf("%s is not a child of the request span", s.Name())
		}
		if s.SpanKind() != trace.SpanKindInternal || s.Status().Code != codes.Unset {
			t.Errorf("%s: kind %v status %v, want internal and unset", s.Name(), s.SpanKind(), s.Status())
		}
	}
	wantAttrs(t, miss, strataotel.AttrCacheName.String("users"), strataotel.AttrKey.String("user:1"),
		strataotel.AttrHit.Bool(false), strataotel.AttrStale.Bool(false), strataotel.AttrSource.String("factory"),
		strataotel.AttrFailSafe.Bool(false))
	wantAttrs(t, hit, strataotel.AttrHit.Bool(true), strataotel.AttrSource.String("l1"))

	factory := h.one(t, "strata.factory")
	if !isChild(factory, miss) {
		t.Errorf("the factory span is not a child of the missing get_or_set")
	}
	wantAttrs(t, factory, strataotel.AttrCacheName.String("users"), strataotel.AttrKey.String("user:1"))
	if kids := h.children(hit); len(kids) != 0 {
		t.Errorf("an L1 hit has %d child spans, want none (no span storm)", len(kids))
	}
	if n := len(hit.Events()); n != 0 {
		t.Errorf("an L1 hit has %d span events, want none", n)
	}
}

func TestHitOutsideATraceIsCountedNotTraced(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Name: "users", Observers: []core.Observer{h.observer(t)}})
	ctx := context.Background()
	core.GetOrSet(ctx, c, "k", constant(1))
	before := len(h.rec.Ended())
	for range 5 {
		core.GetOrSet(ctx, c, "k", constant(1))
	}
	if n := len(h.rec.Ended()) - before; n != 0 {
		t.Errorf("5 hits outside any trace made %d spans, want 0", n)
	}
	rm := h.collect(t)
	op := strataotel.AttrOperation.String("get_or_set")
	if n := intValue(t, rm, strataotel.MetricOperations, op, strataotel.AttrResult.String("hit")); n != 5 {
		t.Errorf("hits counted: %d, want 5", n)
	}
	if n := intValue(t, rm, strataotel.MetricOperations, op, strataotel.AttrResult.String("miss")); n != 1 {
		t.Errorf("misses counted: %d, want 1", n)
	}
}

func TestRootHitSpans(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Observers: []core.Observer{h.observer(t, strataotel.WithRootHitSpans())}})
	ctx := context.Background()
	core.GetOrSet(ctx, c, "k", constant(1))
	core.GetOrSet(ctx, c, "k", constant(1))
	ops := h.spans("strata.get_or_set")
	if len(ops) != 2 || ops[1].Parent().IsValid() {
		t.Fatalf("got %d get_or_set spans; want 2, the hit a root span", len(ops))
	}
	wantAttrs(t, ops[1], strataotel.AttrHit.Bool(true))
}

func TestUnsampledParentHitGetsNoSpan(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Observers: []core.Observer{h.observer(t)}})
	core.GetOrSet(context.Background(), c, "k", constant(1))
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	before := len(h.rec.Ended())
	core.GetOrSet(ctx, c, "k", constant(1))
	if n := len(h.rec.Ended()) - before; n != 0 {
		t.Errorf("a hit under an unsampled parent made %d spans", n)
	}
}

type notFound struct{}

func (notFound) Error() string { return "row not found" }

func TestErrorsSetStatusAndType(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Name: "users", Observers: []core.Observer{h.observer(t)}})
	ctx, req := h.root("request")
	_, err := core.GetOrSet(ctx, c, "user:9", failing[string](notFound{}))
	if err == nil {
		t.Fatal("no error")
	}
	if _, found, err := core.Get[string](ctx, c, "user:10"); found || err != nil {
		t.Fatalf("Get: %v %v", found, err)
	}
	req.End()
	for _, name := range []string{"strata.get_or_set", "strata.factory"} {
		s := h.one(t, name)
		if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "row not found") {
			t.Errorf("%s status %v, want an error", name, s.Status())
		}
		wantAttrs(t, s, strataotel.AttrErrorType.String("strataotel_test.notFound"))
	}
	get := h.one(t, "strata.get")
	if get.Status().Code != codes.Unset {
		t.Errorf("a Get miss has status %v: a miss is not an error", get.Status())
	}
	if _, ok := attrs(get)[strataotel.AttrErrorType]; ok {
		t.Error("a Get miss has error.type")
	}
	wantAttrs(t, get, strataotel.AttrHit.Bool(false))

	// The factory_error event lands on the get_or_set span, the factory's
	// own span having ended.
	gos := h.one(t, "strata.get_or_set")
	found := false
	for _, ev := range gos.Events() {
		found = found || ev.Name == "strata.factory_error"
	}
	if !found {
		t.Errorf("get_or_set span events %v, want strata.factory_error", gos.Events())
	}
	rm := h.collect(t)
	if n := intValue(t, rm, strataotel.MetricFactoryErrors, strataotel.AttrErrorType.String("strataotel_test.notFound")); n != 1 {
		t.Errorf("factory errors: %d, want 1", n)
	}
	if n := intValue(t, rm, strataotel.MetricOperations, strataotel.AttrOperation.String("get"), strataotel.AttrResult.String("miss")); n != 1 {
		t.Errorf("get misses: %d, want 1", n)
	}
}

func TestWithoutKeys(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Observers: []core.Observer{h.observer(t, strataotel.WithoutKeys())}})
	ctx, req := h.root("request")
	core.GetOrSet(ctx, c, "secret:1", failing[int](errors.New("boom")))
	core.Set(ctx, c, "secret:2", 2)
	req.End()
	for _, s := range h.rec.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == strataotel.AttrKey || strings.Contains(kv.Value.Emit(), "secret") {
				t.Errorf("%s has %v with WithoutKeys", s.Name(), kv)
			}
		}
		if strings.Contains(s.Status().Description, "secret") {
			t.Errorf("%s status %q quotes the key", s.Name(), s.Status().Description)
		}
	}
}

func TestWriteOperationsSpans(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Name: "c", Observers: []core.Observer{h.observer(t)}})
	ctx, req := h.root("request")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(core.Set(ctx, c, "k", 1, core.WithTags("t")))
	must(c.Expire(ctx, "k"))
	must(c.Remove(ctx, "k"))
	must(c.ExpireByTag(ctx, "t"))
	must(c.RemoveByTag(ctx, "t"))
	must(c.Clear(ctx, true))
	req.End()
	parent := h.one(t, "request")
	for _, name := range []string{"strata.set", "strata.expire", "strata.remove", "strata.expire_by_tag", "strata.remove_by_tag", "strata.clear"} {
		s := h.one(t, name)
		if !isChild(s, parent) {
			t.Errorf("%s is not a child of the request", name)
		}
		if len(h.children(s)) != 0 {
			t.Errorf("%s has children without L2 or backplane", name)
		}
	}
	wantAttrs(t, h.one(t, "strata.remove_by_tag"), strataotel.AttrKey.String("t"))
	if _, ok := attrs(h.one(t, "strata.clear"))[strataotel.AttrKey]; ok {
		t.Error("clear has a key")
	}
	rm := h.collect(t)
	if n := intValue(t, rm, strataotel.MetricOperations, strataotel.AttrOperation.String("set"), strataotel.AttrResult.String("ok")); n != 1 {
		t.Errorf("sets counted: %d", n)
	}
	if n := histCount(t, rm, strataotel.MetricOperationDuration, strataotel.AttrOperation.String("clear")); n != 1 {
		t.Errorf("clear durations: %d", n)
	}
}

func TestWritesPutTraceParentInContext(t *testing.T) {
	// A second observer after strataotel sees the traceparent core will
	// put in the backplane message.
	h := newHarness(t)
	spy := &tpSpy{}
	c := newCache(t, core.Options{Observers: []core.Observer{h.observer(t), spy}})
	ctx, req := h.root("request")
	core.Set(ctx, c, "k", 1)
	req.End()
	set := h.one(t, "strata.set")
	want := "00-" + set.SpanContext().TraceID().String() + "-" + set.SpanContext().SpanID().String() + "-01"
	if spy.tp != want {
		t.Errorf("traceparent in ctx %q, want %q", spy.tp, want)
	}
}

type tpSpy struct{ tp string }

func (s *tpSpy) OpStart(ctx context.Context, op *core.OpInfo) context.Context {
	if op.Op == core.OpSet {
		s.tp, _ = ctx.Value(core.TraceParentKey{}).(string)
	}
	return ctx
}
func (s *tpSpy) OpEnd(context.Context, *core.OpInfo) {}
func (s *tpSpy) Event(context.Context, core.Event)   {}

func TestEagerRefreshIsItsOwnTraceLinkedToTheHit(t *testing.T) {
	h := newHarness(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	c := newCache(t, core.Options{Clock: clock, Observers: []core.Observer{h.observer(t)}})
	opts := []core.EntryOption{core.WithDuration(10 * time.Second), core.WithEagerRefresh(0.5)}
	core.GetOrSet(context.Background(), c, "k", constant(1), opts...)
	clock.Advance(6 * time.Second)
	ctx, req := h.root("request")
	core.GetOrSet(ctx, c, "k", constant(2), opts...)
	req.End()
	factories := h.waitSpan(t, "strata.factory", 2)
	bg := factories[1]
	hit := h.spans("strata.get_or_set")[1]
	wantAttrs(t, hit, strataotel.AttrHit.Bool(true), strataotel.AttrEagerRefresh.Bool(true))
	wantAttrs(t, bg, strataotel.AttrBackground.Bool(true))
	if bg.Parent().IsValid() || bg.SpanContext().TraceID() == hit.SpanContext().TraceID() {
		t.Error("the eager refresh's factory span is not the root of its own trace")
	}
	if l := bg.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != hit.SpanContext().SpanID() {
		t.Errorf("eager refresh links %v, want the hit's span", l)
	}
}

func TestFailSafeAndTimeoutMetrics(t *testing.T) {
	h := newHarness(t)
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	c := newCache(t, core.Options{Clock: clock, Observers: []core.Observer{h.observer(t)}})
	opts := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Minute)}
	core.GetOrSet(context.Background(), c, "k", constant(1), opts...)
	clock.Advance(2 * time.Second)
	ctx, req := h.root("request")
	v, err := core.GetOrSet(ctx, c, "k", failing[int](errors.New("db down")), opts...)
	if v != 1 || err != nil {
		t.Fatalf("got %v %v, want the stale 1", v, err)
	}
	// A slow factory with a soft timeout and a stale value: fail-safe
	// answers at the soft timeout.
	clock.Advance(2 * time.Minute)
	release := make(chan struct{})
	slow := func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 3, nil
	}
	v, err = core.GetOrSet(ctx, c, "k", slow, append(opts, core.WithFactoryTimeouts(10*time.Millisecond, 0))...)
	close(release)
	req.End()
	if v != 1 || err != nil {
		t.Fatalf("got %v %v after a soft timeout, want the stale 1", v, err)
	}
	ops := h.spans("strata.get_or_set")
	wantAttrs(t, ops[1], strataotel.AttrFailSafe.Bool(true), strataotel.AttrStale.Bool(true))
	rm := h.collect(t)
	if n := intValue(t, rm, strataotel.MetricFailSafe); n < 2 {
		t.Errorf("fail-safe activations: %d, want 2", n)
	}
	if n := intValue(t, rm, strataotel.MetricFactoryTimeouts, strataotel.AttrTimeout.String("soft")); n != 1 {
		t.Errorf("soft timeouts: %d, want 1", n)
	}
	if n := intValue(t, rm, strataotel.MetricOperations, strataotel.AttrResult.String("stale_hit")); n != 2 {
		t.Errorf("stale hits: %d, want 2", n)
	}
}

func TestEvictionsAndCacheMetrics(t *testing.T) {
	h := newHarness(t)
	c := newCache(t, core.Options{Name: "small", L1MaxEntries: 10, Observers: []core.Observer{h.observer(t)}})
	reg, err := strataotel.RegisterCacheMetrics(c, h.mp)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	for i := range 200 {
		core.Set(context.Background(), c, string(rune('a'+i%26))+strings.Repeat("x", i), i)
	}
	waitFor(t, "evictions", func() bool {
		return intValue(t, h.collect(t), strataotel.MetricEvictions) > 0
	})
	rm := h.collect(t)
	n := intValue(t, rm, strataotel.MetricL1Entries, strataotel.AttrCacheName.String("small"))
	if n <= 0 || n >= 200 {
		t.Errorf("l1 entries %d after 200 sets with evictions, want 1 to 199", n)
	}
	if n := intValue(t, rm, strataotel.MetricBackplaneConnected); n != 1 {
		t.Errorf("connected %d without a backplane, want 1", n)
	}
}

func TestErrorType(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{core.ErrFactoryTimeout, "timeout"},
		{context.DeadlineExceeded, "timeout"},
		{context.Canceled, "canceled"},
		{core.ErrClosed, "closed"},
		{&core.PanicError{Key: "k", Value: 1}, "panic"},
		{&core.FactoryError{Key: "k", Err: notFound{}}, "strataotel_test.notFound"},
		{&core.TypeError{Key: "k"}, "*core.TypeError"},
	} {
		if got := strataotel.ErrorType(tc.err); got != tc.want {
			t.Errorf("ErrorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestOneObserverManyCaches(t *testing.T) {
	h := newHarness(t)
	o := h.observer(t)
	a := newCache(t, core.Options{Name: "a", Observers: []core.Observer{o}})
	b := newCache(t, core.Options{Name: "b", Observers: []core.Observer{o}})
	ctx := context.Background()
	for range 3 {
		core.GetOrSet(ctx, a, "k", constant(1))
		core.GetOrSet(ctx, b, "k", constant(1))
	}
	rm := h.collect(t)
	hit := strataotel.AttrResult.String("hit")
	for _, name := range []string{"a", "b"} {
		if n := intValue(t, rm, strataotel.MetricOperations, strataotel.AttrCacheName.String(name), hit); n != 2 {
			t.Errorf("cache %s: %d hits, want 2", name, n)
		}
	}
}
