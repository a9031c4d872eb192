package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestHitObserverFastPath(t *testing.T) {
	h := &hitCounter{}
	c := newCache(t, core.Options{Observers: []core.Observer{h}})
	mustGetOrSet(t, c, "k", constant(1)) // a miss: full ops
	starts := h.starts
	for range 10 {
		mustGetOrSet(t, c, "k", constant(1))
	}
	if h.hits != 10 || h.starts != starts {
		t.Fatalf("hits %d, OpStarts %d after 10 hits; want 10 Hit calls and no new OpStart", h.hits, h.starts-starts)
	}
	h.wants = true
	mustGetOrSet(t, c, "k", constant(1))
	if h.starts != starts+1 || h.lastOp(core.OpGetOrSet).Hit != true {
		t.Fatal("a hit the observer wanted traced got no OpStart/OpEnd")
	}
}

func TestMixedObserversTraceEveryHit(t *testing.T) {
	h, plain := &hitCounter{}, &recorder{}
	c := newCache(t, core.Options{Observers: []core.Observer{h, plain}})
	mustGetOrSet(t, c, "k", constant(1))
	mustGetOrSet(t, c, "k", constant(1))
	if plain.count(core.OpGetOrSet) != 2 {
		t.Fatalf("a plain observer saw %d of 2 operations", plain.count(core.OpGetOrSet))
	}
}

func BenchmarkL1HitWithHitObserver(b *testing.B) {
	ctx := context.Background()
	c, _ := core.New(core.Options{Observers: []core.Observer{&hitCounter{}}})
	defer c.Close()
	core.GetOrSet(ctx, c, "k", loadBenchUser)
	b.ReportAllocs()
	for b.Loop() {
		core.GetOrSet(ctx, c, "k", loadBenchUser, core.WithDuration(time.Hour))
	}
}
