package core

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// A flight is one run of a factory for a key. Every caller that misses the
// same key while it runs waits for it instead of starting its own (stampede
// protection), each within its own context and timeouts. The flight ends on
// its own goroutine, so a factory that outlives its callers still caches its
// result (background completion).
type flight struct {
	key string
	// created is the time the flight started: the version of the entry it
	// writes, so any invalidation after the start wins over it.
	created int64
	// stale is the entry that was stale when the flight started, if any.
	stale *entry
	// ctx is the factory's context: the starting call's values without its
	// cancellation; cancel cancels it (at Close, or at a caller's timeout
	// when background completion is off).
	ctx    context.Context
	cancel context.CancelFunc
	// inline: the flight runs on its only caller's goroutine, which cannot
	// stop waiting (no timeout, a context that cannot be cancelled).
	inline bool

	// superseded is set by a Set, Remove or Expire of the key while the
	// factory runs: the result is then returned to the waiters but not
	// cached as fresh.
	superseded atomic.Bool
	// supersededAt is the newest version among those changes: an L2
	// entry read meanwhile that is no older (the change the message
	// announced, already in L2) may still be cached.
	supersededAt atomic.Int64
	// removed is set by a Remove of the key while the factory runs: then
	// not even fail-safe may serve the old value.
	removed atomic.Bool
	// unregistered, for a flight outside the flight set, reports whether
	// any invalidation happened since it started.
	unregistered func() bool
	// timedOut: a caller stopped waiting at a timeout.
	timedOut atomic.Bool

	done chan struct{}
	// Set before done is closed.
	value any
	err   error
	// hasValue: value is the result to return (fresh, or stale when the
	// factory failed and fail-safe served the stale value).
	hasValue bool
	isStale  bool
	// source is where value came from (L2 or the factory).
	source Source
	// l2Failed: the flight's L2 read failed or timed out.
	l2Failed bool
}

// newFlight returns a flight for key, not yet registered, started now.
func (c *Cache) newFlight(ctx context.Context, key string, stale *entry) *flight {
	f := &flight{key: key, created: c.stamp(), stale: stale, done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return f
}

// isSuperseded reports whether the result must not be cached as fresh.
func (f *flight) isSuperseded() bool {
	return f.superseded.Load() || (f.unregistered != nil && f.unregistered())
}

// keepsL2Entry reports whether e, read from L2 by f, may be cached: nothing
// changed the key since f started, or only changes no newer than e (a
// message announcing the very value f read), and no Remove.
func (f *flight) keepsL2Entry(e *entry) bool {
	if !f.isSuperseded() {
		return true
	}
	return f.unregistered == nil && !f.removed.Load() && e.created >= f.supersededAt.Load()
}

const flightShards = 64

// flights is the set of running flights, by key.
type flights struct {
	seed   maphash.Seed
	shards [flightShards]flightShard
}

type flightShard struct {
	mu sync.Mutex
	m  map[string]*flight
	_  [48]byte // keep shards on separate cache lines
}

func newFlights() *flights {
	fs := &flights{seed: maphash.MakeSeed()}
	for i := range fs.shards {
		fs.shards[i].m = make(map[string]*flight)
	}
	return fs
}

func (fs *flights) shard(key string) *flightShard {
	return &fs.shards[maphash.String(fs.seed, key)%flightShards]
}

// join returns the flight running for key, or registers f as the flight for
// key and returns it with leader = true.
func (fs *flights) join(key string, f *flight) (_ *flight, leader bool) {
	s := fs.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[key]; ok {
		return cur, false
	}
	s.m[key] = f
	return f, true
}

// running returns the flight for key, if any.
func (fs *flights) running(key string) *flight {
	s := fs.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

// supersede marks the flight for key, if any, as superseded by a change of
// version at (and removed, for a Remove).
func (fs *flights) supersede(key string, removed bool, at int64) {
	s := fs.shard(key)
	s.mu.Lock()
	if f, ok := s.m[key]; ok {
		f.superseded.Store(true)
		if at > f.supersededAt.Load() {
			f.supersededAt.Store(at) // under s.mu: no other writer
		}
		if removed {
			f.removed.Store(true)
		}
	}
	s.mu.Unlock()
}

// finish runs commit (which decides from f.superseded whether to cache) and
// unregisters f, atomically with respect to supersede, so an invalidation
// either is seen by commit or comes after the write and undoes it.
func (fs *flights) finish(f *flight, commit func()) {
	s := fs.shard(f.key)
	s.mu.Lock()
	commit()
	if s.m[f.key] == f {
		delete(s.m, f.key)
	}
	s.mu.Unlock()
}
