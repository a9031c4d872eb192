package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	gocache "github.com/eko/gocache/lib/v4/cache"
	gocachestore "github.com/eko/gocache/lib/v4/store"
	ristrettostore "github.com/eko/gocache/store/ristretto/v4"
	rediscache "github.com/go-redis/cache/v9"
	"github.com/maypok86/otter/v2"
	"github.com/viccon/sturdyc"

	"github.com/stratacache/strata/core"
)

// User is the value the workloads cache.
type User struct {
	ID   int
	Name string
}

var user42 = User{ID: 42, Name: "Ada"}

const (
	hitKey = "user:42"
	// hitCapacity bounds each cache of the hit benchmark, in entries (or
	// cost units of 1 per entry): strata's default L1 bound.
	hitCapacity = core.DefaultL1MaxEntries
)

// HitCase is one library's read of a warm key.
type HitCase struct {
	// Name says which library, API says which call is measured.
	Name, API string
	// Reference marks the raw engine the others are compared with.
	Reference bool
	// Open makes a cache, puts the key in it, and returns the read to
	// measure (an error when the read missed or returned a wrong value)
	// and a function releasing the cache. read is safe for concurrent use.
	Open func() (read func() error, release func(), err error)
}

// Benchmark measures hc's read with b.RunParallel: GOMAXPROCS goroutines
// read the same key.
func (hc HitCase) Benchmark(b *testing.B) {
	read, release, err := hc.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := read(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func loadUser(context.Context, *core.FactoryContext[User]) (User, error) { return user42, nil }

func fetchUser(context.Context) (User, error) { return user42, nil }

func loadGocache(context.Context, any) (User, []gocachestore.Option, error) { return user42, nil, nil }

func check(u User) error {
	if u != user42 {
		return fmt.Errorf("bench: read %+v, want %+v", u, user42)
	}
	return nil
}

// checked turns a read into one that fails on an error or a wrong value.
func checked(read func() (User, error)) func() error {
	return func() error {
		u, err := read()
		if err != nil {
			return err
		}
		return check(u)
	}
}

// warmGocache returns an eko/gocache cache on ristretto holding the hit
// key, and a function releasing it.
func warmGocache(ctx context.Context) (*gocache.Cache[User], func(), error) {
	rc, err := newRistretto(hitCapacity)
	if err != nil {
		return nil, nil, err
	}
	c := gocache.New[User](ristrettostore.NewRistretto(rc))
	if err := c.Set(ctx, hitKey, user42, gocachestore.WithCost(1), gocachestore.WithSynchronousSet()); err != nil {
		rc.Close()
		return nil, nil, err
	}
	return c, rc.Close, nil
}

// newRistretto returns a ristretto cache holding capacity entries of cost
// 1: ten counters per entry (ristretto's advice) and no internal cost, so
// that MaxCost counts entries.
func newRistretto(capacity int) (*ristretto.Cache[string, User], error) {
	return ristretto.NewCache(&ristretto.Config[string, User]{
		NumCounters: int64(capacity) * 10, MaxCost: int64(capacity), BufferItems: 64, IgnoreInternalCost: true,
	})
}

// L1HitCases returns the cases of the hit benchmark, the reference (raw
// otter, strata's L1 engine) first then strata.
func L1HitCases() []HitCase {
	ctx := context.Background()
	return []HitCase{
		{Name: "otter v2 (raw, reference)", API: "GetIfPresent", Reference: true, Open: func() (func() error, func(), error) {
			c := otter.Must(&otter.Options[string, User]{MaximumSize: hitCapacity})
			c.Set(hitKey, user42)
			return func() error {
				u, ok := c.GetIfPresent(hitKey)
				if !ok {
					return errors.New("bench: otter missed")
				}
				return check(u)
			}, func() {}, nil
		}},
		{Name: "strata", API: "core.GetOrSet, 3 per-call options", Open: func() (func() error, func(), error) {
			c, err := core.New(core.Options{Name: "bench-hit", L1MaxEntries: hitCapacity})
			if err != nil {
				return nil, nil, err
			}
			if _, err := core.GetOrSet(ctx, c, hitKey, loadUser, core.WithDuration(time.Hour)); err != nil {
				_ = c.Close()
				return nil, nil, err
			}
			// One closure around the call, as for the reference (checked
			// would add a second indirect call per read).
			return func() error {
				u, err := core.GetOrSet(ctx, c, hitKey, loadUser, core.WithDuration(time.Hour),
					core.WithFailSafe(24*time.Hour, 30*time.Second), core.WithFactoryTimeouts(100*time.Millisecond, 2*time.Second))
				if err != nil {
					return err
				}
				return check(u)
			}, func() { _ = c.Close() }, nil
		}},
		{Name: "sturdyc", API: "GetOrFetch", Open: func() (func() error, func(), error) {
			c := sturdyc.New[User](hitCapacity, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
			if _, err := c.GetOrFetch(ctx, hitKey, fetchUser); err != nil {
				return nil, nil, err
			}
			return checked(func() (User, error) { return c.GetOrFetch(ctx, hitKey, fetchUser) }), func() {}, nil
		}},
		{Name: "eko/gocache + ristretto", API: "Cache.Get", Open: func() (func() error, func(), error) {
			c, release, err := warmGocache(ctx)
			if err != nil {
				return nil, nil, err
			}
			return checked(func() (User, error) { return c.Get(ctx, hitKey) }), release, nil
		}},
		{Name: "eko/gocache + ristretto", API: "LoadableCache.Get", Open: func() (func() error, func(), error) {
			inner, release, err := warmGocache(ctx)
			if err != nil {
				return nil, nil, err
			}
			c := gocache.NewLoadable[User](loadGocache, inner)
			return checked(func() (User, error) { return c.Get(ctx, hitKey) }), func() {
				_ = c.Close()
				release()
			}, nil
		}},
		{Name: "go-redis/cache, local TinyLFU", API: "Once", Open: func() (func() error, func(), error) {
			c := rediscache.New(&rediscache.Options{LocalCache: rediscache.NewTinyLFU(hitCapacity, time.Hour)})
			if err := c.Set(&rediscache.Item{Key: hitKey, Value: user42}); err != nil {
				return nil, nil, err
			}
			do := func(*rediscache.Item) (any, error) { return user42, nil }
			return func() error {
				var u User
				if err := c.Once(&rediscache.Item{Key: hitKey, Value: &u, Do: do}); err != nil {
					return err
				}
				return check(u)
			}, func() {}, nil
		}},
	}
}
