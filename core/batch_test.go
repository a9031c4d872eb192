package core_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

// batchSource records every batch it is asked for.
type batchSource struct {
	mu    sync.Mutex
	calls [][]string
	skip  map[string]bool
	err   error
	delay time.Duration
}

func (s *batchSource) factory(ctx context.Context, keys []string) (map[string]string, error) {
	s.mu.Lock()
	s.calls = append(s.calls, slices.Sorted(slices.Values(keys)))
	s.mu.Unlock()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.err != nil {
		return nil, s.err
	}
	out := map[string]string{}
	for _, k := range keys {
		if !s.skip[k] {
			out[k] = "v:" + k
		}
	}
	return out, nil
}

func TestGetOrSetManyOneFactoryCallForTheMisses(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	core.Set(ctx, c, "a", "cached-a")
	src := &batchSource{skip: map[string]bool{"d": true}}
	got, err := core.GetOrSetMany(ctx, c, []string{"a", "b", "c", "d", "b"}, src.factory)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "cached-a", "b": "v:b", "c": "v:c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(src.calls) != 1 || fmt.Sprint(src.calls[0]) != "[b c d]" {
		t.Fatalf("factory calls %v, want one call for [b c d]", src.calls)
	}
	// The produced values are cached; the absent key is not.
	got, _ = core.GetOrSetMany(ctx, c, []string{"b", "c", "d"}, src.factory)
	if len(src.calls) != 2 || fmt.Sprint(src.calls[1]) != "[d]" || got["b"] != "v:b" {
		t.Fatalf("second call: factory calls %v, result %v", src.calls, got)
	}
}

func TestGetOrSetManySharesStampedeProtection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newCache(t, core.Options{Clock: core.SystemClock})
		src := &batchSource{delay: time.Second}
		var single atomic.Int64
		go core.GetOrSetMany(ctx, c, []string{"x", "y"}, src.factory)
		synctest.Wait()
		// A GetOrSet for a key the batch is producing waits for it.
		v, err := core.GetOrSet(ctx, c, "x", func(context.Context, *core.FactoryContext[string]) (string, error) {
			single.Add(1)
			return "single", nil
		})
		if err != nil || v != "v:x" || single.Load() != 0 {
			t.Fatalf("GetOrSet during the batch = %q, %v, %d single calls; want the batch's value", v, err, single.Load())
		}
		// A batch for keys another call is producing waits too.
		go core.GetOrSet(ctx, c, "z", slowFactoryString("z-single", time.Second))
		synctest.Wait()
		got, err := core.GetOrSetMany(ctx, c, []string{"z", "w"}, src.factory)
		if err != nil || got["z"] != "z-single" || got["w"] != "v:w" {
			t.Fatalf("batch = %v, %v", got, err)
		}
		for _, call := range src.calls {
			if slices.Contains(call, "z") {
				t.Fatalf("batch factory asked for z, which GetOrSet was producing: %v", src.calls)
			}
		}
	})
}

func slowFactoryString(v string, d time.Duration) core.Factory[string] {
	return func(context.Context, *core.FactoryContext[string]) (string, error) {
		time.Sleep(d)
		return v, nil
	}
}

func TestGetOrSetManyFailSafeAndErrors(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Minute)}
	core.Set(ctx, c, "a", "old-a", opts...)
	clock.Advance(time.Minute)
	src := &batchSource{err: errors.New("db down")}
	got, err := core.GetOrSetMany(ctx, c, []string{"a", "b"}, src.factory, opts...)
	if got["a"] != "old-a" {
		t.Fatalf("a = %q, want the stale value served by fail-safe", got["a"])
	}
	if _, ok := got["b"]; ok || !errors.Is(err, src.err) {
		t.Fatalf("b present %v, err %v; want b missing and the factory's error", ok, err)
	}
}

func TestGetOrSetManyHardTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(t, core.Options{Clock: core.SystemClock})
		src := &batchSource{delay: time.Hour}
		start := time.Now()
		_, err := core.GetOrSetMany(context.Background(), c, []string{"a", "b"}, src.factory, core.WithFactoryTimeouts(0, time.Second))
		if !errors.Is(err, core.ErrFactoryTimeout) || time.Since(start) != time.Second {
			t.Fatalf("err %v after %v, want ErrFactoryTimeout after 1s", err, time.Since(start))
		}
		c.Close()
		time.Sleep(time.Hour)
	})
}

func TestGetOrSetManyUsesL2(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	for _, k := range []string{"p", "q"} {
		core.Set(ctx, a.Cache, k, "from-a:"+k)
	}
	src := &batchSource{}
	got, err := core.GetOrSetMany(ctx, b.Cache, []string{"p", "q", "r"}, src.factory)
	if err != nil {
		t.Fatal(err)
	}
	if got["p"] != "from-a:p" || got["q"] != "from-a:q" || got["r"] != "v:r" {
		t.Fatalf("got %v", got)
	}
	if len(src.calls) != 1 || fmt.Sprint(src.calls[0]) != "[r]" {
		t.Fatalf("factory calls %v, want [r] only (p and q come from L2)", src.calls)
	}
	if gm := b.l2.Stats().Gets; gm == 0 {
		t.Fatal("no L2 read counted")
	}
}

func TestGetOrSetManyInvalidInput(t *testing.T) {
	c := newCache(t, core.Options{})
	if _, err := core.GetOrSetMany(context.Background(), c, []string{"a", ""}, (&batchSource{}).factory); err == nil {
		t.Fatal("an empty key was accepted")
	}
	if _, err := core.GetOrSetMany[string](context.Background(), c, []string{"a"}, nil); err == nil {
		t.Fatal("a nil factory was accepted")
	}
}
