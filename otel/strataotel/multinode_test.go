package strataotel_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

func TestSetOnATracesToReceiveOnB(t *testing.T) {
	h := newHarness(t)
	nodes := newCluster(t, h, 2)
	a := nodes[0]
	ctx, req := h.root("request")
	if err := core.Set(ctx, a, "user:1", "Ada", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	req.End()

	set := h.one(t, "strata.set")
	kids := h.children(set)
	names := map[string]trace.SpanKind{}
	for _, k := range kids {
		names[k.Name()] = k.SpanKind()
	}
	if names["strata.l2.set"] != trace.SpanKindClient || names["strata.backplane.publish"] != trace.SpanKindProducer || len(kids) != 2 {
		t.Fatalf("set's children %v, want an l2.set (client) and a backplane.publish (producer)", names)
	}
	pub := h.one(t, "strata.backplane.publish")
	wantAttrs(t, pub, strataotel.AttrCacheName.String("cluster"), strataotel.AttrKey.String("user:1"),
		strataotel.AttrBackplaneAction.String("set"))

	recv := h.waitSpan(t, "strata.backplane.receive", 1)[0]
	if recv.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("receive kind %v, want consumer", recv.SpanKind())
	}
	if recv.Parent().IsValid() {
		t.Error("the receive span has a parent; want a root linked to the write")
	}
	links := recv.Links()
	if len(links) != 1 {
		t.Fatalf("receive has %d links, want 1", len(links))
	}
	if got, want := links[0].SpanContext, set.SpanContext(); got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() {
		t.Errorf("receive links to %s/%s, want A's set span %s/%s", got.TraceID(), got.SpanID(), want.TraceID(), want.SpanID())
	}
	wantAttrs(t, recv, strataotel.AttrBackplaneAction.String("set"), strataotel.AttrKey.String("user:1"))

	rm := h.collect(t)
	if n := histCount(t, rm, strataotel.MetricBackplaneLag, strataotel.AttrBackplaneAction.String("set")); n != 1 {
		t.Errorf("lag points: %d, want 1", n)
	}
	if n := histCount(t, rm, strataotel.MetricL2Duration, strataotel.AttrOperation.String("l2.set")); n != 1 {
		t.Errorf("l2.set durations: %d, want 1", n)
	}
}

func TestFactoryResultOnATracesToReceiveOnB(t *testing.T) {
	h := newHarness(t)
	nodes := newCluster(t, h, 2)
	a, b := nodes[0], nodes[1]
	ctx, req := h.root("request")
	// B misses: L2 read, factory, L2 write, publish.
	if _, err := core.GetOrSet(ctx, b, "k", constant("v"), core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	req.End()
	gos := h.one(t, "strata.get_or_set")
	factory := h.one(t, "strata.factory")
	l2get := h.one(t, "strata.l2.get")
	if !isChild(factory, gos) || !isChild(l2get, gos) {
		t.Errorf("factory and l2.get must be children of get_or_set")
	}
	wantAttrs(t, l2get, strataotel.AttrHit.Bool(false))
	pub := h.one(t, "strata.backplane.publish")
	if pub.SpanContext().TraceID() != gos.SpanContext().TraceID() {
		t.Error("the publish is not in the get_or_set's trace")
	}
	recv := h.waitSpan(t, "strata.backplane.receive", 1)[0]
	if l := recv.Links(); len(l) != 1 || l[0].SpanContext.TraceID() != gos.SpanContext().TraceID() {
		t.Errorf("A's receive links %v, want B's get_or_set trace", l)
	}
	// A finds the value in L2: a get_or_set with an l2.get child and no
	// factory.
	ctx, req = h.root("request-a")
	if _, err := core.GetOrSet(ctx, a, "k", failing[string](context.Canceled), core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	req.End()
	ops := h.spans("strata.get_or_set")
	wantAttrs(t, ops[1], strataotel.AttrSource.String("l2"), strataotel.AttrHit.Bool(false))
	if n := len(h.spans("strata.factory")); n != 1 {
		t.Errorf("%d factory spans, want 1", n)
	}
}

func TestInvalidationsTraceToReceive(t *testing.T) {
	h := newHarness(t)
	nodes := newCluster(t, h, 2)
	a := nodes[0]
	ctx, req := h.root("request")
	a.Remove(ctx, "k")
	a.RemoveByTag(ctx, "tenant:1")
	a.Clear(ctx, false)
	req.End()
	recv := h.waitSpan(t, "strata.backplane.receive", 3)
	want := map[string]string{"remove": "strata.remove", "remove_tag": "strata.remove_by_tag", "clear_remove": "strata.clear"}
	for _, r := range recv {
		action := attrs(r)[strataotel.AttrBackplaneAction].AsString()
		op := h.one(t, want[action])
		if l := r.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != op.SpanContext().SpanID() {
			t.Errorf("receive of %s links %v, want %s", action, l, op.Name())
		}
		pubs := 0
		for _, k := range h.children(op) {
			if k.Name() == "strata.backplane.publish" {
				pubs++
			}
		}
		if pubs != 1 {
			t.Errorf("%s has %d publish children, want 1", op.Name(), pubs)
		}
	}
}
