package core_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

func TestEagerRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		var calls atomic.Int64
		factory := func(context.Context, *core.FactoryContext[int]) (int, error) {
			n := calls.Add(1)
			if n > 1 {
				time.Sleep(time.Second) // a slow refresh
			}
			return int(n), nil
		}
		opts := []core.EntryOption{core.WithDuration(10 * time.Second), core.WithEagerRefresh(0.8)}
		mustGetOrSet(t, c, "k", factory, opts...)

		time.Sleep(7 * time.Second) // before the threshold: a plain hit
		mustGetOrSet(t, c, "k", factory, opts...)
		synctest.Wait()
		if calls.Load() != 1 {
			t.Fatalf("refresh started before the threshold (%d calls)", calls.Load())
		}

		time.Sleep(time.Second) // at 8s: past the threshold
		start := time.Now()
		for range 50 {
			if v := mustGetOrSet(t, c, "k", factory, opts...); v != 1 {
				t.Fatalf("hit past the threshold = %d, want the cached 1", v)
			}
		}
		if time.Since(start) != 0 {
			t.Fatalf("hits past the threshold waited %v, want none", time.Since(start))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if calls.Load() != 2 {
			t.Fatalf("factory called %d times, want exactly one background refresh", calls.Load())
		}
		if v := mustGetOrSet(t, c, "k", factory, opts...); v != 2 {
			t.Fatalf("after the refresh = %d, want 2", v)
		}
	})
}

func TestEagerRefreshFailureKeepsValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		opts := []core.EntryOption{core.WithDuration(10 * time.Second), core.WithEagerRefresh(0.5)}
		mustGetOrSet(t, c, "k", constant(1), opts...)
		time.Sleep(6 * time.Second)
		var calls atomic.Int64
		broken := func(context.Context, *core.FactoryContext[int]) (int, error) {
			calls.Add(1)
			return 0, errors.New("down")
		}
		for range 5 {
			if v := mustGetOrSet(t, c, "k", broken, opts...); v != 1 {
				t.Fatalf("got %d, want the cached 1", v)
			}
			synctest.Wait()
		}
		if calls.Load() != 1 {
			t.Fatalf("a failing refresh was retried on every hit: %d calls, want 1", calls.Load())
		}
	})
}

func TestEagerRefreshSeesCurrentValueAsStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		opts := []core.EntryOption{core.WithDuration(10 * time.Second), core.WithEagerRefresh(0.5)}
		mustGetOrSet(t, c, "k", constant(41), opts...)
		time.Sleep(6 * time.Second)
		mustGetOrSet(t, c, "k", func(_ context.Context, fc *core.FactoryContext[int]) (int, error) {
			old, ok := fc.Stale()
			if !ok {
				return 0, errors.New("no stale value in an eager refresh")
			}
			return old + 1, nil
		}, opts...)
		synctest.Wait()
		if v, _, _ := core.Get[int](context.Background(), c, "k"); v != 42 {
			t.Fatalf("after refresh = %d, want 42", v)
		}
	})
}
