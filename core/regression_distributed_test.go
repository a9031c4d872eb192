package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// Regression: a Set whose L2 write failed was still published; the other
// nodes dropped their copy, re-read the old value from L2 and served it as
// fresh.
func TestPublishedChangeMakesOlderL2EntryStale(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) { o.AutoRecoveryDelay = time.Hour })
	a, b := nodes[0], nodes[1]
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	get(t, b.Cache, "k")
	a.l2.SetFault(meml2.Fault{Err: errors.New("A's L2 connection down")})
	core.Set(ctx, a.Cache, "k", "v2", core.WithDuration(time.Hour))
	waitFor(t, "B hears of v2", func() bool { _, ok := get(t, b.Cache, "k"); return !ok })
	for range 5 {
		if v, ok := get(t, b.Cache, "k"); ok {
			t.Fatalf("B serves %q as fresh: an L2 entry older than a change it heard of", v)
		}
	}
	v := mustGetOrSet(t, b.Cache, "k", constant("from-db"), core.WithDuration(time.Hour))
	if v != "from-db" {
		t.Fatalf("B's GetOrSet = %q, want its factory's value", v)
	}
}

// Regression: while disconnected, a node kept trusting the tag times it had
// read from L2, so a RemoveByTag made elsewhere was never seen until it
// reconnected.
func TestDisconnectedNodeRereadsTagTimes(t *testing.T) {
	ctx := context.Background()
	const bound = 100 * time.Millisecond
	nodes := newCluster(t, 2, func(o *core.Options) { o.BackplaneStalenessBound = bound })
	a, b := nodes[0], nodes[1]
	core.Set(ctx, a.Cache, "k", "v", core.WithDuration(time.Hour), core.WithTags("t"))
	if _, ok := get(t, b.Cache, "k"); !ok {
		t.Fatal("B does not see k")
	}
	b.bp.Disconnect()
	waitFor(t, "B disconnected", func() bool { return b.Stats().Disconnected })
	a.RemoveByTag(ctx, "t")
	waitFor(t, "B stops serving k after the bound", func() bool { _, ok := get(t, b.Cache, "k"); return !ok })
}

// Regression: a Remove left nothing in L2, so a slower node's factory result,
// read before the Remove, was written back and served by everyone.
func TestTombstoneKeepsOlderValueOut(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	b.bp.SetFault(membackplane.Fault{DropIncoming: true}) // B will not hear of the Remove in time
	done := make(chan string)
	go func() {
		v, _ := core.GetOrSet(ctx, b.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			time.Sleep(200 * time.Millisecond) // read from the source before the Remove
			return "old", nil
		}, core.WithDuration(time.Hour))
		done <- v
	}()
	time.Sleep(50 * time.Millisecond)
	a.Remove(ctx, "k")
	<-done
	if v, ok := get(t, a.Cache, "k"); ok {
		t.Fatalf("A serves %q after its own Remove: an older value was written back to L2", v)
	}
}

// Regression: a value the serializer refused counted as an L2 failure and
// opened the L2 circuit breaker.
func TestUnserializableFactoryResultIsNotAnL2Failure(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 1, func(o *core.Options) { o.L2CircuitBreakerDuration = time.Hour })
	a := nodes[0]
	ch := make(chan int)
	v, err := core.GetOrSet(ctx, a.Cache, "k", constant(ch))
	if err != nil || v != ch {
		t.Fatalf("GetOrSet = %v, %v", v, err)
	}
	st := a.Stats()
	if st.SerializationErrors != 1 || st.L2Errors != 0 {
		t.Fatalf("stats %+v: want 1 serialization error and no L2 error", st)
	}
	core.Set(ctx, a.Cache, "other", "x")
	if st := a.Stats(); st.RecoveryQueued != 0 {
		t.Fatal("L2 treated as down after a serialization error")
	}
}

// Regression: fail-safe with a stale value found only in L2 (nothing in L1)
// dereferenced a nil L1 entry inside the L1 engine's compute: a crash.
func TestFailSafeWithStaleOnlyInL2(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	nodes := newCluster(t, 2, func(o *core.Options) { o.Clock = clock })
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Minute)}
	core.Set(ctx, a.Cache, "k", "v1", opts...)
	clock.Advance(2 * time.Minute)
	v, err := core.GetOrSet(ctx, b.Cache, "k", failing[string](errors.New("db down")), opts...)
	if err != nil || v != "v1" {
		t.Fatalf("cold node B = %q, %v; want the stale v1 from L2", v, err)
	}
}
