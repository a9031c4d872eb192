package core_test

// Regression tests of issue 14: every read path keeps the staleness and
// no-lost-update promises (docs/consistency.md). Each test is named for what
// broke; each failed (or did not compile) on 9834907.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// TestHugeDurationsMeanForever: math.MaxInt64 as a duration means "never"
// (capped at core.MaxDuration), not an overflow that caches nothing or
// turns fail-safe off (defect 8).
func TestHugeDurationsMeanForever(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk, L2: meml2.New(nil), MarkerTTL: math.MaxInt64})
	if err := core.Set(ctx, c, "k", "v", core.WithDuration(math.MaxInt64)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * 365 * 24 * time.Hour)
	if v, ok := get(t, c, "k"); !ok || v != "v" {
		t.Fatalf("Set with MaxInt64 duration: Get = %q, %v 50 years later", v, ok)
	}
	opts := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(math.MaxInt64, time.Second)}
	mustGetOrSet(t, c, "fs", constant("old"), opts...)
	clk.Advance(time.Hour)
	v, err := core.GetOrSet(ctx, c, "fs", failing[string](errors.New("down")), opts...)
	if err != nil || v != "old" {
		t.Fatalf("fail-safe with a MaxInt64 max duration = %q, %v; want the stale value", v, err)
	}
	newCache(t, core.Options{TombstoneTTL: math.MaxInt64, BackplaneStalenessBound: math.MaxInt64, CloseTimeout: math.MaxInt64})
}

// TestTransientClockStepHeals: a sender's clock that jumps ahead for a
// moment and back makes its later messages look late for at most about one
// staleness bound, not forever (defect 10).
func TestTransientClockStepHeals(t *testing.T) {
	const bound = time.Second
	clocks := []*offsetClock{{}, {}}
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneStalenessBound = bound
		o.Clock = clocks[0]
		if o.InstanceID == "node-1" {
			o.Clock = clocks[1]
		}
	})
	b := nodes[1]
	time.Sleep(bound) // probes flow both ways
	clocks[0].off.Store(int64(3 * time.Second))
	time.Sleep(3 * bound / 2)
	clocks[0].off.Store(0)
	time.Sleep(5 * bound / 2) // the step is forgotten within about one bound
	before := b.Stats().LossEvents
	time.Sleep(3 * bound)
	// Before the fix, one every half bound (6 here); allow one for a
	// scheduling hiccup of a loaded machine.
	if n := b.Stats().LossEvents - before; n > 1 {
		t.Fatalf("%d loss events long after the sender's clock stepped back", n)
	}
}

// TestClockStepForwardKeepsLaterChangesLater: after a node's clock stepped
// forward and back, a change another node makes after hearing of its
// changes is newer than them (versions form a hybrid logical clock): a
// RemoveByTag applies to an entry the node produced after the step, and a
// later Set wins in L2 and on every node (adversarial review of issue 14,
// finding 3). Expiry and confirmation stay on the clock.
func TestClockStepForwardKeepsLaterChangesLater(t *testing.T) {
	ctx := context.Background()
	clk := &offsetClock{}
	nodes := newCluster(t, 3, func(o *core.Options) {
		o.BackplaneStalenessBound = 400 * time.Millisecond
		if o.InstanceID == "node-0" {
			o.Clock = clk
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	clk.off.Store(int64(time.Hour))
	core.Set(ctx, a.Cache, "during", "x")
	a.RemoveByTag(ctx, "other")
	time.Sleep(50 * time.Millisecond)
	clk.off.Store(0)
	time.Sleep(200 * time.Millisecond) // A's messages reach B and C
	src := newSource()
	tagged := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("tg")}
	if v := mustGetOrSet(t, a.Cache, "k", src.factory, tagged...); v != "v1" {
		t.Fatal(v)
	}
	// B hears of A's entry (reading it adopts its version), then removes
	// its tag: a change made after hearing of the entry.
	waitFor(t, "B reads A's entry", func() bool { v, _ := get(t, b.Cache, "k"); return v == "v1" })
	src.version.Store(2)
	applied(t, a, func() { b.RemoveByTag(ctx, "tg") })
	if v := mustGetOrSet(t, a.Cache, "k", src.factory, tagged...); v != "v2" {
		t.Fatalf("A's entry produced after its clock came back survived B's later RemoveByTag: %q", v)
	}
	core.Set(ctx, a.Cache, "k2", "1", core.WithDuration(time.Hour))
	waitFor(t, "B reads A's k2", func() bool { v, _ := get(t, b.Cache, "k2"); return v == "1" })
	applied(t, c, func() { core.Set(ctx, b.Cache, "k2", "2", core.WithDuration(time.Hour)) })
	for i, n := range nodes {
		var v string
		deadline := time.Now().Add(5 * time.Second)
		for v != "2" && time.Now().Before(deadline) {
			v, _ = core.GetOrSet(ctx, n.Cache, "k2", constant("from the source"))
			time.Sleep(5 * time.Millisecond)
		}
		if v != "2" {
			raw, found, _ := n.l2.Get(ctx, "k2")
			env, _ := l2.DecodeEnvelope(raw)
			t.Fatalf("node %d serves %q after A's Set then B's later one; L2 holds %v (found %v), stats %+v", i, v, env, found, n.Stats())
		}
	}
	if _, ok := get(t, a.Cache, "during"); !ok {
		t.Fatal("the entry set during the step is gone: expiry must run on the clock, not on versions")
	}
}

// TestSlowProductionIsNotLateElsewhere: a change whose message goes out
// long after its version (a slow factory, a slow L2 write) does not look
// like a late delivery to the other nodes, which would expire their whole
// L1 each time (adversarial review of issue 14, round 2).
func TestSlowProductionIsNotLateElsewhere(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) { o.BackplaneStalenessBound = time.Second })
	a, b := nodes[0], nodes[1]
	time.Sleep(300 * time.Millisecond) // probes set the baselines
	losses := b.Stats().LossEvents
	slow := func(context.Context, *core.FactoryContext[string]) (string, error) {
		time.Sleep(700 * time.Millisecond)
		return "v", nil
	}
	for i := range 2 {
		applied(t, b, func() { mustGetOrSet(t, a.Cache, fmt.Sprint("slow-", i), slow) })
	}
	a.l2.SetFault(meml2.Fault{Delay: 700 * time.Millisecond})
	for i := range 2 {
		applied(t, b, func() { core.Set(ctx, a.Cache, fmt.Sprint("set-", i), "v") })
	}
	a.l2.ClearFault()
	if n := b.Stats().LossEvents - losses; n != 0 {
		t.Fatalf("slow factories and slow L2 writes on A made B expire its L1 %d times", n)
	}
}

// TestFarFutureVersionsAreRejected: a message, an L2 entry or a marker
// whose version is more than a day ahead of the node's clock (a broken
// clock, a forgery without signing) is dropped and counted, not applied: its
// time would outlast every later change (adversarial review of issue 14,
// round 2).
func TestFarFutureVersionsAreRejected(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	future := time.Now().Add(25 * time.Hour).UnixNano()
	rejected := b.Stats().BackplaneRejected
	for i, act := range []backplane.Action{backplane.ActionClearRemove, backplane.ActionRemoveTag, backplane.ActionRemove} {
		m := backplane.Message{Cache: "cluster", Source: "forger/1", Seq: uint64(i + 1), Action: act, Key: "t", Timestamp: future}
		if act == backplane.ActionClearRemove {
			m.Key = ""
		}
		raw, _ := m.AppendBinary(nil)
		if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), raw); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the forgeries rejected", func() bool { return b.Stats().BackplaneRejected >= rejected+3 })
	var calls atomic.Int64
	counting := func(context.Context, *core.FactoryContext[string]) (string, error) { calls.Add(1); return "v", nil }
	for range 3 {
		mustGetOrSet(t, b.Cache, "t", counting, core.WithTags("t"))
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the factory ran %d times for 3 reads: caching is off", n)
	}
	// An L2 entry from far in the future is corrupt, not a version to beat.
	env := l2.Envelope{Created: future, Expires: future, Value: []byte(`"far"`)}
	raw, _ := env.AppendBinary(nil)
	if err := a.l2.Set(ctx, "future", raw, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, b.Cache, "future"); found {
		t.Fatal("an entry from far in the future was served")
	}
	if err := core.Set(ctx, b.Cache, "future", "now"); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, a.Cache, "future"); v != "now" {
		t.Fatalf("A reads %q after B's Set over a far-future entry", v)
	}
}

// TestEntriesDoNotOutliveMarkers: with an L2, no entry lives longer than
// Options.MarkerTTL after its version, in L1 or in L2, so a tag or Clear
// marker written by any node outlives every entry it invalidates
// (adversarial review, finding 2).
func TestEntriesDoNotOutliveMarkers(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	store := &ttlStore{Store: meml2.New(&meml2.Options{Now: clk.Now})}
	t.Cleanup(func() { store.Close() })
	c := newCache(t, core.Options{Clock: clk, L2: store, MarkerTTL: 48 * time.Hour})
	if err := core.Set(ctx, c, "k", "v", core.WithDuration(30*24*time.Hour), core.WithFailSafe(60*24*time.Hour, time.Second)); err != nil {
		t.Fatal(err)
	}
	if ttl := time.Duration(store.ttl.Load()); ttl > 48*time.Hour {
		t.Errorf("L2 TTL %v over MarkerTTL 48h", ttl)
	}
	clk.Advance(47 * time.Hour)
	if _, ok := get(t, c, "k"); !ok {
		t.Error("the entry is gone before MarkerTTL")
	}
	clk.Advance(2 * time.Hour)
	if v, ok := get(t, c, "k"); ok {
		t.Errorf("Get = %q 49 h later with MarkerTTL 48h", v)
	}
}
