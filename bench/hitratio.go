package bench

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	gocache "github.com/eko/gocache/lib/v4/cache"
	gocachestore "github.com/eko/gocache/lib/v4/store"
	ristrettostore "github.com/eko/gocache/store/ristretto/v4"
	rediscache "github.com/go-redis/cache/v9"
	"github.com/maypok86/otter/v2"
	"github.com/viccon/sturdyc"

	"github.com/stratacache/strata/core"
)

// Trace is a sequence of requests for keys: Keys[Requests[i]] is the i-th
// key asked for.
type Trace struct {
	Keys     []string
	Requests []int32
}

// ZipfTrace returns n requests over keys distinct keys, drawn from a Zipf
// distribution of exponent s (> 1; larger is more skewed) with
// math/rand/v2's generator seeded by seed: the same arguments give the same
// trace. Key 0 is the most popular.
func ZipfTrace(s float64, keys, n int, seed uint64) Trace {
	t := Trace{Keys: make([]string, keys), Requests: make([]int32, n)}
	for i := range t.Keys {
		t.Keys[i] = "key:" + strconv.Itoa(i)
	}
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), s, 1, uint64(keys-1))
	for i := range t.Requests {
		t.Requests[i] = int32(z.Uint64())
	}
	return t
}

// Policy is one cache used cache-aside over a trace: Access reads a key
// and, on a miss, stores a value for it.
type Policy struct {
	Name string
	// Capacity says what the capacity given to New bounds for this
	// library (entries, or a cost of 1 per entry).
	Capacity string
	// AsyncSet is true when a stored value becomes visible only later
	// (ristretto applies sets from a buffer, and may drop them when it is
	// busy): a key asked for again soon after a miss may miss again.
	AsyncSet bool
	// New returns a cache holding at most about capacity entries, its
	// access function (true on a hit) and a function releasing it. Access
	// is called from one goroutine.
	New func(capacity int) (access func(key string) bool, release func(), err error)
}

// HitRatio plays t on a cache p makes with capacity and returns the
// fraction of requests that hit, cold start included.
func HitRatio(p Policy, capacity int, t Trace) (float64, error) {
	access, release, err := p.New(capacity)
	if err != nil {
		return 0, err
	}
	defer release()
	hits := 0
	for _, k := range t.Requests {
		if access(t.Keys[k]) {
			hits++
		}
	}
	return float64(hits) / float64(max(len(t.Requests), 1)), nil
}

// HitRatioPolicies returns the caches of the hit-ratio comparison, strata
// first.
func HitRatioPolicies() []Policy {
	ctx := context.Background()
	return []Policy{
		{Name: "strata L1", Capacity: "Options.L1MaxEntries (entries; otter v2 underneath)", New: func(capacity int) (func(string) bool, func(), error) {
			c, err := core.New(core.Options{Name: "bench-hitratio", L1MaxEntries: capacity})
			if err != nil {
				return nil, nil, err
			}
			missed := false
			factory := func(context.Context, *core.FactoryContext[User]) (User, error) {
				missed = true
				return user42, nil
			}
			return func(key string) bool {
				missed = false
				_, _ = core.GetOrSet(ctx, c, key, factory, core.WithDuration(time.Hour))
				return !missed
			}, func() { _ = c.Close() }, nil
		}},
		{Name: "otter v2", Capacity: "MaximumSize (entries)", New: func(capacity int) (func(string) bool, func(), error) {
			c := otter.Must(&otter.Options[string, User]{MaximumSize: capacity})
			return func(key string) bool {
				if _, ok := c.GetIfPresent(key); ok {
					return true
				}
				c.Set(key, user42)
				return false
			}, func() {}, nil
		}},
		{Name: "sturdyc", Capacity: "capacity (entries, 64 shards of capacity/64, 10% of a full shard evicted at once; no background expiry scan: nothing expires here)", New: func(capacity int) (func(string) bool, func(), error) {
			c := sturdyc.New[User](capacity, 64, time.Hour, 10, sturdyc.WithNoContinuousEvictions())
			missed := false
			fetch := func(context.Context) (User, error) {
				missed = true
				return user42, nil
			}
			return func(key string) bool {
				missed = false
				_, _ = c.GetOrFetch(ctx, key, fetch)
				return !missed
			}, func() {}, nil
		}},
		{Name: "eko/gocache + ristretto", Capacity: "ristretto MaxCost with a cost of 1 per entry, IgnoreInternalCost, 10 counters per entry", AsyncSet: true, New: func(capacity int) (func(string) bool, func(), error) {
			rc, err := newRistretto(capacity)
			if err != nil {
				return nil, nil, err
			}
			c := gocache.New[User](ristrettostore.NewRistretto(rc))
			return func(key string) bool {
				if _, err := c.Get(ctx, key); err == nil {
					return true
				}
				_ = c.Set(ctx, key, user42, gocachestore.WithCost(1)) // false when ristretto drops or rejects it
				return false
			}, rc.Close, nil
		}},
		{Name: "go-redis/cache local", Capacity: "NewTinyLFU size (entries), no Redis", New: func(capacity int) (func(string) bool, func(), error) {
			c := rediscache.New(&rediscache.Options{LocalCache: rediscache.NewTinyLFU(capacity, time.Hour)})
			missed := false
			do := func(*rediscache.Item) (any, error) {
				missed = true
				return user42, nil
			}
			return func(key string) bool {
				missed = false
				var u User
				_ = c.Once(&rediscache.Item{Key: key, Value: &u, Do: do})
				return !missed
			}, func() {}, nil
		}},
	}
}
