package core_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

// Regression: Get reported a stale value re-cached by fail-safe as found
// without AllowStaleOnRead.
func TestGetDoesNotServeThrottledStaleAsFresh(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Minute)}
	mustGetOrSet(t, c, "k", constant(1), opts...)
	clock.Advance(time.Minute)
	mustGetOrSet(t, c, "k", failing[int](errors.New("down")), opts...) // throttled stale now
	if v, ok, _ := core.Get[int](ctx, c, "k"); ok {
		t.Fatalf("Get = %d, found: a throttled stale value served as fresh", v)
	}
	if v, ok, _ := core.Get[int](ctx, c, "k", core.WithAllowStaleOnRead()); !ok || v != 1 {
		t.Fatalf("Get with AllowStaleOnRead = %d, %v; want the stale 1", v, ok)
	}
}

// Regression: an entry's duration counted from its factory's start, so a
// factory slower than the duration cached an already expired entry.
func TestSlowFactoryEntryIsFreshForItsDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		mustGetOrSet(t, c, "k", slowFactory(1, 2*time.Second), core.WithDuration(time.Second))
		time.Sleep(900 * time.Millisecond)
		if _, ok, _ := core.Get[int](context.Background(), c, "k"); !ok {
			t.Fatal("entry of a 2s factory with a 1s duration expired before its duration")
		}
	})
}

// Regression: a miss starting its factory while Close waited for background
// work could add to a WaitGroup already being waited on.
func TestCloseRacingWithMisses(t *testing.T) {
	for range 20 {
		c, err := core.New(core.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				_, err := core.GetOrSet(context.Background(), c, fmt.Sprint("k", i), constant(i))
				if err != nil && !errors.Is(err, core.ErrClosed) {
					t.Errorf("GetOrSet during Close = %v, want nil or ErrClosed", err)
				}
			})
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

// Regression: pruning tag times while a factory ran could forget the
// invalidation its result depended on.
func TestFactoryOutlivingTagPruneIsNotCached(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		core.GetOrSet(ctx, c, "k", func(context.Context, *core.FactoryContext[int]) (int, error) {
			<-release
			return 1, nil
		}, core.WithDuration(time.Second), core.WithTags("t"))
	}()
	for core.RunningFlights(c) == 0 {
		time.Sleep(time.Millisecond)
	}
	c.RemoveByTag(ctx, "t")
	for i := range 3000 { // enough invalidations to prune, long after the lifetime
		clock.Advance(time.Second)
		c.RemoveByTag(ctx, fmt.Sprint("other", i))
	}
	close(release)
	<-done
	if _, ok, _ := core.Get[int](ctx, c, "k"); ok {
		t.Fatal("a result read before RemoveByTag(t) was cached after t's time was pruned")
	}
}
