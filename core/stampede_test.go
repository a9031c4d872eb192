package core_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

// TestStampede10000 is the must-show: 10,000 concurrent callers on
// one missing key run the factory exactly once and all get its value.
func TestStampede10000(t *testing.T) {
	c := newCache(t, core.Options{})
	var calls atomic.Int64
	release := make(chan struct{})
	factory := func(context.Context, *core.FactoryContext[int]) (int, error) {
		calls.Add(1)
		<-release // hold the flight open until every caller is in
		return 42, nil
	}
	const callers = 10_000
	var started, wrong atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			started.Add(1)
			v, err := core.GetOrSet(context.Background(), c, "hot", factory)
			if err != nil || v != 42 {
				wrong.Add(1)
			}
		})
	}
	for started.Load() < callers {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the last callers reach the flight
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("factory ran %d times for %d concurrent callers, want 1", n, callers)
	}
	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d callers did not get the factory's value", n)
	}
}

func TestStampedeWaitersShareError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		sentinel := errors.New("boom")
		var calls atomic.Int64
		factory := func(context.Context, *core.FactoryContext[int]) (int, error) {
			calls.Add(1)
			time.Sleep(time.Second)
			return 0, sentinel
		}
		errs := make(chan error, 10)
		for range 10 {
			go func() {
				_, err := core.GetOrSet(context.Background(), c, "k", factory)
				errs <- err
			}()
		}
		for range 10 {
			if err := <-errs; !errors.Is(err, sentinel) {
				t.Errorf("waiter got %v, want the factory's error", err)
			}
		}
		if calls.Load() != 1 {
			t.Fatalf("factory ran %d times, want 1", calls.Load())
		}
	})
}

func TestWaiterContextCancelledReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		var calls atomic.Int64
		factory := func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
			calls.Add(1)
			time.Sleep(10 * time.Second)
			return 7, nil
		}
		leaderDone := make(chan int)
		go func() {
			v, _ := core.GetOrSet(context.Background(), c, "k", factory)
			leaderDone <- v
		}()
		synctest.Wait()

		ctx, cancel := context.WithCancel(context.Background())
		waiterErr := make(chan error)
		go func() {
			_, err := core.GetOrSet(ctx, c, "k", factory)
			waiterErr <- err
		}()
		synctest.Wait()
		start := time.Now()
		cancel()
		if err := <-waiterErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("cancelled waiter returned after %v of fake time, want at once", d)
		}
		if v := <-leaderDone; v != 7 {
			t.Fatalf("the factory did not go on for the others: leader got %d", v)
		}
		if calls.Load() != 1 {
			t.Fatalf("factory ran %d times, want 1", calls.Load())
		}
	})
}

func TestCallerCancellationDoesNotCancelFactory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		factoryErr := make(chan error, 1)
		factory := func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
			select {
			case <-time.After(time.Second):
				factoryErr <- nil
				return 9, nil
			case <-ctx.Done():
				factoryErr <- ctx.Err()
				return 0, ctx.Err()
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := core.GetOrSet(ctx, c, "k", factory); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetOrSet = %v, want the caller's deadline", err)
		}
		if err := <-factoryErr; err != nil {
			t.Fatalf("factory context was cancelled with the caller's: %v", err)
		}
		synctest.Wait()
		if v, ok, _ := core.Get[int](context.Background(), c, "k"); !ok || v != 9 {
			t.Fatalf("the factory's result was not cached: %d, %v", v, ok)
		}
	})
}

func TestLockTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		var calls atomic.Int64
		factory := func(context.Context, *core.FactoryContext[int]) (int, error) {
			n := calls.Add(1)
			time.Sleep(time.Duration(n) * time.Second) // the first call is slow
			return int(n), nil
		}
		go core.GetOrSet(context.Background(), c, "k", factory)
		synctest.Wait()
		start := time.Now()
		// No stale value: after the lock timeout the waiter runs the factory itself.
		v, err := core.GetOrSet(context.Background(), c, "k", factory, core.WithLockTimeout(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if v != 2 || calls.Load() != 2 {
			t.Fatalf("got %d with %d factory calls, want the waiter's own call (2)", v, calls.Load())
		}
		if d := time.Since(start); d != 100*time.Millisecond+2*time.Second {
			t.Fatalf("waited %v, want the lock timeout then its own factory", d)
		}
		synctest.Wait()
	})
}

func TestLockTimeoutServesStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)}
		mustGetOrSet(t, c, "k", constant(1), opts...)
		time.Sleep(time.Minute)
		slow := func(context.Context, *core.FactoryContext[int]) (int, error) { time.Sleep(time.Hour); return 2, nil }
		go core.GetOrSet(context.Background(), c, "k", slow, opts...)
		synctest.Wait()
		start := time.Now()
		v := mustGetOrSet(t, c, "k", slow, append(opts, core.WithLockTimeout(50*time.Millisecond))...)
		if v != 1 || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("got %d after %v, want the stale 1 at the lock timeout", v, time.Since(start))
		}
		c.Close() // cancel the hour-long factory's context; it ignores it, so wait it out
		time.Sleep(time.Hour)
	})
}

func TestPanickingFactory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		factory := func(context.Context, *core.FactoryContext[int]) (int, error) {
			time.Sleep(time.Second)
			panic("kaboom")
		}
		errs := make(chan error, 5)
		for range 5 {
			go func() {
				_, err := core.GetOrSet(context.Background(), c, "k", factory)
				errs <- err
			}()
		}
		for range 5 {
			var pe *core.PanicError
			if err := <-errs; !errors.As(err, &pe) || pe.Value != "kaboom" || pe.Key != "k" || len(pe.Stack) == 0 {
				t.Fatalf("waiter got %v, want a *PanicError with the value and stack", err)
			}
		}
		// The cache still works.
		if v := mustGetOrSet(t, c, "k", constant(3)); v != 3 {
			t.Fatalf("after a panic = %d", v)
		}
	})
}

func TestPanicWithFailSafeServesStale(t *testing.T) {
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	opts := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Minute)}
	mustGetOrSet(t, c, "k", constant(1), opts...)
	clock.Advance(time.Second)
	v := mustGetOrSet(t, c, "k", func(context.Context, *core.FactoryContext[int]) (int, error) { panic("x") }, opts...)
	if v != 1 {
		t.Fatalf("got %d, want the stale 1", v)
	}
}
