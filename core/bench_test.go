package core_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/viccon/sturdyc"

	"github.com/stratacache/strata/core"
)

// The benchmarks behind docs/benchmarks.md: strata's L1 paths side by side
// with raw otter (the L1 engine itself) and sturdyc, in the same run.

type benchUser struct {
	ID   int
	Name string
}

var benchUserValue = benchUser{ID: 42, Name: "Ada"}

func loadBenchUser(context.Context, *core.FactoryContext[benchUser]) (benchUser, error) {
	return benchUserValue, nil
}

func newBenchCache(b *testing.B) *core.Cache {
	b.Helper()
	c, err := core.New(core.Options{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkL1Hit: one warm key read over and over, per goroutine count.
func BenchmarkL1Hit(b *testing.B) {
	ctx := context.Background()
	b.Run("strata-GetOrSet-with-options", func(b *testing.B) {
		c := newBenchCache(b)
		if _, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser, core.WithDuration(time.Hour)); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser,
					core.WithDuration(time.Hour), core.WithFailSafe(24*time.Hour, 30*time.Second),
					core.WithFactoryTimeouts(100*time.Millisecond, 2*time.Second))
				if err != nil || v.ID != 42 {
					b.Fatal(v, err)
				}
			}
		})
	})
	b.Run("strata-GetOrSet", func(b *testing.B) {
		c := newBenchCache(b)
		if _, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser)
				if err != nil || v.ID != 42 {
					b.Fatal(v, err)
				}
			}
		})
	})
	// The floor of a strata hit: the lookup in strata's own L1 engine
	// (values are *entry), with none of strata's checks.
	b.Run("strata-L1-engine-GetIfPresent", func(b *testing.B) {
		c := newBenchCache(b)
		if _, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !core.L1Present(c, "user:42") {
					b.Fatal("missed")
				}
			}
		})
	})
	b.Run("otter-GetIfPresent", func(b *testing.B) {
		c := otter.Must(&otter.Options[string, benchUser]{MaximumSize: core.DefaultL1MaxEntries})
		c.Set("user:42", benchUserValue)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, ok := c.GetIfPresent("user:42")
				if !ok || v.ID != 42 {
					b.Fatal(v, ok)
				}
			}
		})
	})
	b.Run("sturdyc-GetOrFetch", func(b *testing.B) {
		c := sturdyc.New[benchUser](core.DefaultL1MaxEntries, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
		fetch := func(context.Context) (benchUser, error) { return benchUserValue, nil }
		if _, err := c.GetOrFetch(ctx, "user:42", fetch); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				v, err := c.GetOrFetch(ctx, "user:42", fetch)
				if err != nil || v.ID != 42 {
					b.Fatal(v, err)
				}
			}
		})
	})
}

// BenchmarkMiss: every call misses (a new key) and runs a trivial factory.
func BenchmarkMiss(b *testing.B) {
	ctx := context.Background()
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	b.Run("strata-GetOrSet", func(b *testing.B) {
		c := newBenchCache(b)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%len(keys) == 0 {
				c.Clear(ctx, false)
			}
			if _, err := core.GetOrSet(ctx, c, keys[i%len(keys)], loadBenchUser); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// A cancellable context (an HTTP request's) makes strata run the factory
	// on its own goroutine, so the caller can stop waiting at once.
	b.Run("strata-GetOrSet-cancellable-ctx", func(b *testing.B) {
		c := newBenchCache(b)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%len(keys) == 0 {
				c.Clear(ctx, false)
			}
			if _, err := core.GetOrSet(ctx, c, keys[i%len(keys)], loadBenchUser); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	// The otter calls a strata miss cannot do without, with nothing of
	// strata around them: the fast path's lookup, the lookup again once
	// the run is registered (a run may have ended in between), and the
	// store of a new entry of an L1 entry's size holding the boxed value.
	b.Run("otter-floor-of-strata", func(b *testing.B) {
		type floorEntry struct {
			value any
			meta  [10]int64
			tags  []string
		}
		newOtter := func() *otter.Cache[string, *floorEntry] {
			return otter.Must(&otter.Options[string, *floorEntry]{MaximumSize: core.DefaultL1MaxEntries, Executor: func(fn func()) { fn() }})
		}
		c := newOtter()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%len(keys) == 0 {
				c = newOtter()
			}
			key := keys[i%len(keys)]
			if _, ok := c.GetIfPresent(key); ok {
				b.Fatal("hit")
			}
			if _, ok := c.GetIfPresent(key); ok {
				b.Fatal("hit")
			}
			v, _ := loadBenchUser(ctx, nil)
			c.SetIfAbsent(key, &floorEntry{value: v})
			i++
		}
	})
	b.Run("otter-GetIfPresent+Set", func(b *testing.B) {
		newOtter := func() *otter.Cache[string, benchUser] {
			return otter.Must(&otter.Options[string, benchUser]{MaximumSize: core.DefaultL1MaxEntries, Executor: func(fn func()) { fn() }})
		}
		c := newOtter()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%len(keys) == 0 {
				c = newOtter()
			}
			key := keys[i%len(keys)]
			if _, ok := c.GetIfPresent(key); ok {
				b.Fatal("hit")
			}
			v, _ := loadBenchUser(ctx, nil)
			c.Set(key, v)
			i++
		}
	})
	b.Run("sturdyc-GetOrFetch", func(b *testing.B) {
		c := sturdyc.New[benchUser](core.DefaultL1MaxEntries, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
		fetch := func(context.Context) (benchUser, error) { return benchUserValue, nil }
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%len(keys) == 0 {
				c = sturdyc.New[benchUser](core.DefaultL1MaxEntries, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
			}
			if _, err := c.GetOrFetch(ctx, keys[i%len(keys)], fetch); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkStampede: 1,000 concurrent callers on one missing key; the
// factory (1 ms) runs once per round.
func BenchmarkStampede(b *testing.B) {
	ctx := context.Background()
	const callers = 1000
	slow := func(key string, calls *atomic.Int64) func() {
		return func() { calls.Add(1); time.Sleep(time.Millisecond) }
	}
	b.Run("strata-GetOrSet", func(b *testing.B) {
		c := newBenchCache(b)
		var calls atomic.Int64
		sleep := slow("k", &calls)
		factory := func(context.Context, *core.FactoryContext[int]) (int, error) { sleep(); return 1, nil }
		b.ReportAllocs()
		round := 0
		for b.Loop() {
			key := "k" + strconv.Itoa(round)
			round++
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					if _, err := core.GetOrSet(ctx, c, key, factory); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(calls.Load())/float64(round), "factory-calls/op")
	})
	b.Run("sturdyc-GetOrFetch", func(b *testing.B) {
		c := sturdyc.New[int](core.DefaultL1MaxEntries, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
		var calls atomic.Int64
		sleep := slow("k", &calls)
		fetch := func(context.Context) (int, error) { sleep(); return 1, nil }
		b.ReportAllocs()
		round := 0
		for b.Loop() {
			key := "k" + strconv.Itoa(round)
			round++
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					if _, err := c.GetOrFetch(ctx, key, fetch); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(calls.Load())/float64(round), "factory-calls/op")
	})
}
