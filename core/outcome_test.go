package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// TestOutcomeTellsWhereTheValueCameFrom: each read path fills in the
// outcome it was asked for: a factory run, an L1 hit (fast path and with
// an observer), an L2 hit on another node, fail-safe, Get's hit and miss.
func TestOutcomeTellsWhereTheValueCameFrom(t *testing.T) {
	ctx := context.Background()
	store, _ := meml2.NewShared(t.Name(), nil)
	t.Cleanup(func() { store.Close() })
	a := newCache(t, core.Options{Name: "outcome", L2: store})
	before := time.Now()
	ok := func(context.Context, *core.FactoryContext[string]) (string, error) { return "v", nil }
	var o core.Outcome
	mustOutcome := func(what string, want core.Outcome) {
		t.Helper()
		if o.Source != want.Source || o.Hit != want.Hit || o.Stale != want.Stale || o.FailSafe != want.FailSafe {
			t.Errorf("%s: outcome %+v, want source %v hit %v stale %v fail-safe %v", what, o, want.Source, want.Hit, want.Stale, want.FailSafe)
		}
		if want.Source != core.SourceNone && (o.Version.Before(before.Add(-time.Second)) || o.Age < 0 || o.Age > time.Minute) {
			t.Errorf("%s: version %v, age %v", what, o.Version, o.Age)
		}
	}
	if _, err := core.GetOrSet(ctx, a, "k", ok, core.WithOutcome(&o), core.WithFailSafe(time.Hour, time.Second)); err != nil {
		t.Fatal(err)
	}
	mustOutcome("miss", core.Outcome{Source: core.SourceFactory})
	version := o.Version
	o = core.Outcome{}
	core.GetOrSet(ctx, a, "k", ok, core.WithOutcome(&o))
	mustOutcome("L1 hit", core.Outcome{Source: core.SourceL1, Hit: true})
	if !o.Version.Equal(version) {
		t.Errorf("L1 hit: version %v, want the factory run's %v", o.Version, version)
	}

	b := newCache(t, core.Options{Name: "outcome", L2: store, Observers: []core.Observer{&recorder{}}})
	o = core.Outcome{}
	core.GetOrSet(ctx, b, "k", ok, core.WithOutcome(&o))
	mustOutcome("L2 hit", core.Outcome{Source: core.SourceL2, Hit: true})
	if !o.Version.Equal(version) {
		t.Errorf("L2 hit: version %v, want %v", o.Version, version)
	}

	a.Expire(ctx, "k")
	failing := func(context.Context, *core.FactoryContext[string]) (string, error) { return "", errors.New("down") }
	o = core.Outcome{}
	v, err := core.GetOrSet(ctx, a, "k", failing, core.WithOutcome(&o), core.WithFailSafe(time.Hour, time.Second), core.WithSkipL2Read())
	if err != nil || v != "v" {
		t.Fatalf("fail-safe: %q, %v", v, err)
	}
	mustOutcome("fail-safe", core.Outcome{Source: core.SourceL1, Stale: true, FailSafe: true})

	o = core.Outcome{Source: core.SourceL2}
	if _, found, _ := core.Get[string](ctx, a, "nothing", core.WithOutcome(&o)); found {
		t.Fatal("found a key never set")
	}
	mustOutcome("Get miss", core.Outcome{})
	core.Set(ctx, a, "s", "x")
	core.Get[string](ctx, a, "s", core.WithOutcome(&o))
	mustOutcome("Get hit", core.Outcome{Source: core.SourceL1, Hit: true})

	if _, err := core.GetOrSet(ctx, a, "k2", ok, core.WithOutcome(nil)); err == nil {
		t.Error("WithOutcome(nil) accepted")
	}
}

// TestOutcomeCostsNothingOnAHit: asking for the outcome does not make an L1
// hit allocate (the Outcome itself is the caller's).
func TestOutcomeCostsNothingOnAHit(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	core.Set(ctx, c, "k", "v")
	var o core.Outcome
	ok := func(context.Context, *core.FactoryContext[string]) (string, error) { return "v", nil }
	opt := core.WithOutcome(&o)
	if n := testing.AllocsPerRun(100, func() { core.GetOrSet(ctx, c, "k", ok, opt) }); n != 0 {
		t.Errorf("an L1 hit with WithOutcome allocates %v times", n)
	}
	if o.Source != core.SourceL1 {
		t.Errorf("outcome %+v", o)
	}
}
