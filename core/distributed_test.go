package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

func TestL2OlderThanL1IsIgnored(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	nodes := newCluster(t, 2, func(o *core.Options) { o.Clock = clock; o.AutoRecoveryDisabled = true })
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)}
	core.Set(ctx, a.Cache, "k", "old", core.WithDuration(time.Hour)) // L2: old, fresh for an hour
	clock.Advance(time.Second)                                       // versions of different nodes differ (one shared frozen clock would tie them)
	b.l2.SetFault(meml2.Fault{Err: errors.New("down")})
	core.Set(ctx, b.Cache, "k", "new", opts...) // B's L1 only
	b.l2.ClearFault()
	clock.Advance(2 * time.Minute) // B's entry is stale; L2's older one is still fresh
	v := mustGetOrSet(t, b.Cache, "k", failing[string](errors.New("db down")), opts...)
	if v != "new" {
		t.Fatalf("B served %q: an L2 entry older than its own stale one", v)
	}
}

func TestBackgroundL2WritesDoNotWait(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	a.l2.SetFault(meml2.Fault{Delay: 300 * time.Millisecond})
	start := time.Now()
	if err := core.Set(ctx, a.Cache, "k", "v", core.WithBackgroundL2Writes()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("Set with BackgroundL2Writes took %v with a 300ms L2", d)
	}
	a.l2.ClearFault()
	waitFor(t, "the background write", func() bool { v, _ := get(t, b.Cache, "k"); return v == "v" })

	// Without it, Set returns once L2 has the value.
	a.l2.SetFault(meml2.Fault{Delay: 100 * time.Millisecond})
	core.Set(ctx, a.Cache, "k2", "v2")
	if v, _ := get(t, b.Cache, "k2"); v != "v2" {
		t.Fatalf("B read %q right after a synchronous Set on A", v)
	}
}

func TestL2CircuitBreaker(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 1, func(o *core.Options) { o.L2CircuitBreakerDuration = 300 * time.Millisecond })
	a := nodes[0]
	rec := &recorder{}
	_ = rec
	a.l2.SetFault(meml2.Fault{Err: errors.New("down")})
	get(t, a.Cache, "k1") // fails: opens the breaker
	before := a.l2.Stats().Gets
	for i := range 10 {
		get(t, a.Cache, fmt.Sprint("k", i+2))
	}
	if n := a.l2.Stats().Gets - before; n != 0 {
		t.Fatalf("L2 called %d times with the breaker open", n)
	}
	a.l2.ClearFault()
	time.Sleep(350 * time.Millisecond)
	// Polled: under load the cache's coarse clock may lag the sleep.
	waitFor(t, "L2 called again after the breaker's duration", func() bool {
		get(t, a.Cache, "k99")
		return a.l2.Stats().Gets != before
	})
	_ = ctx
}

func TestRecoveryQueueBoundedAndLatestWins(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.AutoRecoveryMaxItems = 3
		o.AutoRecoveryDelay = time.Hour // replay only when woken
	})
	a, b := nodes[0], nodes[1]
	a.l2.SetFault(meml2.Fault{Err: errors.New("down")})
	a.bp.SetFault(membackplane.Fault{PublishErr: errors.New("down")})
	for i := range 3 {
		core.Set(ctx, a.Cache, "same", fmt.Sprint("v", i)) // one L2 slot, one publish slot
	}
	if q := a.Stats().RecoveryQueued; q != 2 {
		t.Fatalf("%d items queued for 3 writes of one key, want 2 (its L2 write and its publish, latest wins)", q)
	}
	for i := range 5 {
		core.Set(ctx, a.Cache, fmt.Sprint("k", i), "x")
	}
	st := a.Stats()
	if st.RecoveryQueued != 3 || st.RecoveryDropped == 0 {
		t.Fatalf("queue %d (max 3), dropped %d; want it bounded with drops counted", st.RecoveryQueued, st.RecoveryDropped)
	}
	_ = b
}

func TestRecoveryItemSupersededByNewerRemoteChange(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) { o.AutoRecoveryDelay = 50 * time.Millisecond })
	a, b := nodes[0], nodes[1]
	a.l2.SetFault(meml2.Fault{Err: errors.New("down")})
	core.Set(ctx, a.Cache, "k", "from-a") // queued on A
	core.Set(ctx, b.Cache, "k", "from-b") // newer, written and published by B
	waitFor(t, "A drops its queued write", func() bool { return a.Stats().RecoveryQueued == 0 })
	a.l2.ClearFault()
	time.Sleep(150 * time.Millisecond)
	if v, _, _ := core.Get[string](ctx, b.Cache, "k", core.WithSkipL1Read()); v != "from-b" {
		t.Fatalf("L2 holds %q: an older queued write replaced a newer one", v)
	}
}

func TestSetRejectsUnserializableValue(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 1, nil)
	err := core.Set(ctx, nodes[0].Cache, "k", make(chan int))
	if err == nil {
		t.Fatal("Set of a channel with an L2 succeeded")
	}
	if _, ok, _ := core.Get[chan int](ctx, nodes[0].Cache, "k"); ok {
		t.Fatal("the unserializable value was cached in L1 anyway")
	}
}

func TestReservedKeysRejected(t *testing.T) {
	c := newCache(t, core.Options{})
	var oe *core.OptionError
	if err := core.Set(context.Background(), c, "__strata:tag-remove:x", 1); !errors.As(err, &oe) {
		t.Fatalf("Set of a reserved key = %v, want an *OptionError", err)
	}
}

func TestNewNodeLearnsTagInvalidationFromL2(t *testing.T) {
	ctx := context.Background()
	name := t.Name()
	mk := func() *core.Cache {
		store, _ := meml2.NewShared(name, nil)
		t.Cleanup(func() { store.Close() })
		return newCache(t, core.Options{Name: "late", L2: store})
	}
	a := mk()
	core.Set(ctx, a, "k", "v", core.WithDuration(time.Hour), core.WithTags("t"))
	a.RemoveByTag(ctx, "t")
	b := mk() // started after the invalidation: never heard of it
	if v, ok := get(t, b, "k"); ok {
		t.Fatalf("new node served %q from L2 despite RemoveByTag(t) recorded there", v)
	}
}
