package core_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

// slowFactory returns v after d, or the context's error if it ends first.
func slowFactory(v int, d time.Duration) core.Factory[int] {
	return func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
		select {
		case <-time.After(d):
			return v, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func TestFactoryTimeouts(t *testing.T) {
	const soft, hard = 100 * time.Millisecond, time.Second
	tests := []struct {
		name      string
		withStale bool
		failSafe  bool
		factory   time.Duration // how long the factory takes
		wantV     int
		wantErr   error
		wantAfter time.Duration // fake time the call took
	}{
		{"fast factory: no timeout", true, true, 10 * time.Millisecond, 2, nil, 10 * time.Millisecond},
		{"soft timeout with stale and fail-safe", true, true, 5 * time.Second, 1, nil, soft},
		{"no soft timeout without a stale value", false, true, 500 * time.Millisecond, 2, nil, 500 * time.Millisecond},
		{"no soft timeout without fail-safe", true, false, 500 * time.Millisecond, 2, nil, 500 * time.Millisecond},
		{"hard timeout without stale", false, true, 5 * time.Second, 0, core.ErrFactoryTimeout, hard},
		{"hard timeout without fail-safe", true, false, 5 * time.Second, 0, core.ErrFactoryTimeout, hard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCache(t, core.Options{Clock: core.SystemClock})
				opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFactoryTimeouts(soft, hard)}
				if tt.failSafe {
					opts = append(opts, core.WithFailSafe(time.Hour, time.Second))
				}
				if tt.withStale {
					mustGetOrSet(t, c, "k", constant(1), append(opts, core.WithFailSafe(time.Hour, time.Second))...)
					time.Sleep(time.Minute)
				}
				start := time.Now()
				v, err := core.GetOrSet(context.Background(), c, "k", slowFactory(2, tt.factory), opts...)
				if took := time.Since(start); took != tt.wantAfter {
					t.Errorf("call took %v, want %v", took, tt.wantAfter)
				}
				if !errors.Is(err, tt.wantErr) || v != tt.wantV {
					t.Fatalf("got %d, %v; want %d, %v", v, err, tt.wantV, tt.wantErr)
				}
				time.Sleep(10 * time.Second) // let background completions end
			})
		})
	}
}

func TestBackgroundCompletionUpdatesCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		c := newCache(t, core.Options{Clock: core.SystemClock, Observers: []core.Observer{rec}})
		opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Minute),
			core.WithFactoryTimeouts(100*time.Millisecond, 0)}
		mustGetOrSet(t, c, "k", constant(1), opts...)
		time.Sleep(time.Minute)
		// The caller's context is cancelled as soon as it returns: the
		// factory's must not be.
		ctx, cancel := context.WithCancel(context.Background())
		v, err := core.GetOrSet(ctx, c, "k", slowFactory(2, time.Second), opts...)
		cancel()
		if err != nil || v != 1 {
			t.Fatalf("got %d, %v; want the stale 1 at the soft timeout", v, err)
		}
		// Meanwhile the stale value is served (throttled), without waiting.
		start := time.Now()
		if v := mustGetOrSet(t, c, "k", slowFactory(3, time.Hour), opts...); v != 1 || time.Since(start) != 0 {
			t.Fatalf("during the background run got %d after %v, want the stale 1 at once", v, time.Since(start))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if v, ok, _ := core.Get[int](context.Background(), c, "k"); !ok || v != 2 {
			t.Fatalf("after background completion Get = %d, %v; want 2", v, ok)
		}
		if !rec.has(core.EventBackgroundCompletion) || !rec.has(core.EventFactorySoftTimeout) {
			t.Fatalf("events %v, want factory_soft_timeout and background_completion", rec.kinds())
		}
	})
}

func TestHardTimeoutThenBackgroundCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		_, err := core.GetOrSet(context.Background(), c, "k", slowFactory(2, time.Second),
			core.WithFactoryTimeouts(0, 100*time.Millisecond))
		if !errors.Is(err, core.ErrFactoryTimeout) {
			t.Fatalf("err = %v, want ErrFactoryTimeout", err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if v, ok, _ := core.Get[int](context.Background(), c, "k"); !ok || v != 2 {
			t.Fatalf("Get = %d, %v; want the background result 2", v, ok)
		}
	})
}

func TestNoBackgroundCompletionCancelsFactory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		factoryErr := make(chan error, 1)
		factory := func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
			select {
			case <-time.After(time.Second):
				factoryErr <- nil
				return 2, nil
			case <-ctx.Done():
				factoryErr <- ctx.Err()
				return 0, ctx.Err()
			}
		}
		_, err := core.GetOrSet(context.Background(), c, "k", factory,
			core.WithFactoryTimeouts(0, 100*time.Millisecond), core.WithBackgroundFactoryCompletion(false))
		if !errors.Is(err, core.ErrFactoryTimeout) {
			t.Fatalf("err = %v, want ErrFactoryTimeout", err)
		}
		if err := <-factoryErr; !errors.Is(err, context.Canceled) {
			t.Fatalf("factory saw %v, want its context cancelled at the timeout", err)
		}
		synctest.Wait()
		if _, ok, _ := core.Get[int](context.Background(), c, "k"); ok {
			t.Fatal("a cancelled factory's result was cached")
		}
	})
}

func TestCloseCancelsRunningFactories(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := core.New(core.Options{Clock: core.SystemClock})
		if err != nil {
			t.Fatal(err)
		}
		sawCancel := make(chan struct{})
		go core.GetOrSet(context.Background(), c, "k", func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
			<-ctx.Done()
			close(sawCancel)
			return 0, ctx.Err()
		})
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		<-sawCancel
	})
}

func TestCloseTimeoutWhenFactoryIgnoresContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := core.New(core.Options{Clock: core.SystemClock, CloseTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		go core.GetOrSet(context.Background(), c, "k", slowFactory(1, time.Hour)) // honours ctx
		// A timeout makes the factory background work (its caller may stop
		// waiting); a factory run on its caller's goroutine is not Close's.
		go core.GetOrSet(context.Background(), c, "stubborn", func(context.Context, *core.FactoryContext[int]) (int, error) {
			time.Sleep(time.Hour) // ignores ctx
			return 1, nil
		}, core.WithFactoryTimeouts(0, 2*time.Hour))
		synctest.Wait()
		start := time.Now()
		var cte *core.CloseTimeoutError
		if err := c.Close(); !errors.As(err, &cte) || time.Since(start) != time.Second {
			t.Fatalf("Close = %v after %v, want a *CloseTimeoutError after 1s", err, time.Since(start))
		}
		time.Sleep(time.Hour)
	})
}
