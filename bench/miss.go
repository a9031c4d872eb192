package bench

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/viccon/sturdyc"

	"github.com/stratacache/strata/core"
)

// MissCase is one library's read of a key it does not hold: the cache calls
// a source, caches its value and returns it.
type MissCase struct {
	// Name says which library, API says which call is measured.
	Name, API string
	// Reference marks the raw engine the others are compared with.
	Reference bool
	// Open makes an empty cache whose source is load, and returns the read
	// to measure (miss(key) reads a key the cache does not hold: an error
	// when it failed or returned another value than load's) and a function
	// releasing the cache. miss calls load once per call.
	Open func(load func() User) (miss func(key string) error, release func(), err error)
}

// missKeys is how many distinct keys a miss benchmark reads before it
// starts again on a new, empty cache (outside the timer): fewer than each
// cache's bound, so that no miss pays for an eviction.
const missKeys = 1 << 16

// MissKeys returns the keys a miss benchmark reads, built once so that
// building them is not measured.
var MissKeys = sync.OnceValue(func() []string {
	keys := make([]string, missKeys)
	for i := range keys {
		keys[i] = "user:" + strconv.Itoa(i)
	}
	return keys
})

func loadUser42() User { return user42 }

// Benchmark measures mc's miss on one goroutine, a new key per call (the
// keys of MissKeys in turn, on a new cache each round).
func (mc MissCase) Benchmark(b *testing.B) {
	keys := MissKeys()
	miss, release, err := mc.Open(loadUser42)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(keys) {
			b.StopTimer()
			release()
			if miss, release, err = mc.Open(loadUser42); err != nil {
				b.Fatal(err)
			}
			i = 0
			b.StartTimer()
		}
		if err := miss(keys[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	release()
}

// MissCases returns the cases of the miss benchmark: the reference (raw
// otter, strata's L1 engine: a lookup that misses, then a Set) first, then
// strata and sturdyc. Each cache holds hitCapacity entries; none has an L2.
func MissCases() []MissCase {
	ctx := context.Background()
	return []MissCase{
		{Name: "otter v2 (raw, reference)", API: "GetIfPresent+Set", Reference: true, Open: func(load func() User) (func(string) error, func(), error) {
			// Maintenance on the writing goroutine, as strata's L1 runs
			// it (otter's default starts a goroutine per write).
			c := otter.Must(&otter.Options[string, User]{MaximumSize: hitCapacity, Executor: func(fn func()) { fn() }})
			return func(key string) error {
				if _, ok := c.GetIfPresent(key); ok {
					return errors.New("bench: otter hit a key it should not hold")
				}
				u := load()
				c.Set(key, u)
				return check(u)
			}, func() {}, nil
		}},
		{Name: "strata", API: "core.GetOrSet", Open: func(load func() User) (func(string) error, func(), error) {
			c, err := core.New(core.Options{Name: "bench-miss", L1MaxEntries: hitCapacity})
			if err != nil {
				return nil, nil, err
			}
			factory := func(context.Context, *core.FactoryContext[User]) (User, error) { return load(), nil }
			return func(key string) error {
				u, err := core.GetOrSet(ctx, c, key, factory)
				if err != nil {
					return err
				}
				return check(u)
			}, func() { _ = c.Close() }, nil
		}},
		{Name: "sturdyc", API: "GetOrFetch", Open: func(load func() User) (func(string) error, func(), error) {
			c := sturdyc.New[User](hitCapacity, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
			fetch := func(context.Context) (User, error) { return load(), nil }
			return func(key string) error {
				u, err := c.GetOrFetch(ctx, key, fetch)
				if err != nil {
					return err
				}
				return check(u)
			}, func() {}, nil
		}},
	}
}
