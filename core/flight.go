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
	// started is when it started, on the clock: since when its result is
	// confirmed.
	started int64
	// tags are the tags its result gets unless the factory adds some:
	// known at the start, they let a tag invalidation stop joiners at
	// once (joinable).
	tags []string
	// stale is the entry that was stale when the flight started, if any.
	stale *entry
	// rc is the factory's context (context()): the starting call's values
	// without its cancellation, cancelled by f.cancel (at the run's end, or
	// at a caller's timeout when background completion is off) and by
	// Close. It is apart from the flight, which a run may reuse (missRun):
	// the factory may keep its context.
	rc *runCtx
	// supersededAt is the newest version among the changes that
	// superseded the flight: an L2 entry read meanwhile that is no older
	// (the change the message announced, already in L2) may still be
	// cached.
	supersededAt atomic.Int64
	// older is the next older flight still running for the key (guarded
	// by its shard's mutex).
	older *flight
	// done is closed, after ended is set, when the flight has ended. It
	// is made when someone must wait for it: at the start for a flight run
	// on another goroutine, else by the first caller that joins it (under
	// its shard's mutex, so before it ends: see end).
	done chan struct{}
	// Set before ended.
	err error
	// entry is the result's entry, set with hasValue: its value is the
	// result (fresh, or a stale value fail-safe served); a caller that
	// joined checks it against the tag, Clear and loss times
	// (invalidated).
	entry *entry

	// superseded is set by a Set, Remove or Expire of the key while the
	// factory runs: the result is then returned to the waiters but not
	// cached as fresh.
	superseded atomic.Bool
	// removed is set by a Remove of the key while the factory runs: then
	// not even fail-safe may serve the old value.
	removed atomic.Bool
	// timedOut: a caller stopped waiting at a timeout.
	timedOut atomic.Bool
	// abandoned: a caller that timed out without background completion
	// cancelled the factory, which the other callers did not ask for.
	abandoned atomic.Bool
	// ended: see done.
	ended atomic.Bool
	// inline: the flight runs on its only caller's goroutine, which cannot
	// stop waiting (no timeout, a context that cannot be cancelled).
	inline bool
	// joinable: callers missing the key may wait for this flight. A flight
	// that only watches the key's changes (Get's L2 read, a run after a
	// lock timeout) is not.
	joinable bool
	// refresh: an eager refresh of stale, which only a newer version ends.
	refresh bool
	// hasValue: entry holds the result to return (fresh, or stale when the
	// factory failed and fail-safe served the stale value).
	hasValue bool
	isStale  bool
	// l2Failed: the flight's L2 read failed or timed out.
	l2Failed bool
	// source is where the value came from (L2 or the factory).
	source Source
}

// newFlight returns a joinable flight for key, whose result gets tags, not
// yet registered, started now, with its done channel.
func (c *Cache) newFlight(ctx context.Context, key string, stale *entry, tags []string) *flight {
	fc := &flightWithCtx{f: flight{done: make(chan struct{})}}
	c.initFlight(&fc.f, &fc.rc, ctx, key, stale, tags)
	return &fc.f
}

// flightWithCtx is a flight and its factory's context, allocated together.
type flightWithCtx struct {
	f  flight
	rc runCtx
}

// initFlight makes f, zero or with its done channel only, a joinable flight
// for key like newFlight's, whose factory's context is rc (zero).
func (c *Cache) initFlight(f *flight, rc *runCtx, ctx context.Context, key string, stale *entry, tags []string) {
	f.started = c.preciseNow()
	f.key, f.created, f.tags, f.stale, f.joinable = key, c.stampFrom(f.started), tags, stale, true
	rc.init(ctx, c.life)
	f.rc = rc
}

// context returns the factory's context.
func (f *flight) context() context.Context { return f.rc }

// cancel cancels f's context.
func (f *flight) cancel() { f.rc.cancel() }

// end ends f, whose result is set, waking its waiters. Call it once, after
// flights.finish: every caller that joined f made f.done before that.
func (f *flight) end() {
	f.ended.Store(true)
	if f.done != nil {
		close(f.done)
	}
}

// join returns the run a caller missing key waits for: a run under way it
// may join (joinable), else a new one registered for it (leader true),
// whose result gets eo's tags and whose stale value is stale. A call that
// skips L1 reads joins no run under way: such a run may have read L2 before
// a change the call must see (read-your-writes across nodes); later callers
// may join its own.
func (c *Cache) join(ctx context.Context, key string, stale *entry, eo *EntryOptions) (f *flight, leader bool) {
	return c.joinWith(c.newFlight(ctx, key, stale, eo.Tags), eo)
}

// joinWith is join with f, made by newFlight or initFlight, as the new run.
func (c *Cache) joinWith(f *flight, eo *EntryOptions) (_ *flight, leader bool) {
	ok := c.joinable
	if eo.SkipL1Read {
		ok = joinNone
	}
	return c.flights.join(f.key, f, ok)
}

// joinNone refuses every run under way.
func joinNone(*flight) bool { return false }

// joinable reports whether a caller that misses f's key now may wait for f:
// no tag invalidation of the tags it is known to give its result, no Clear
// and no possible loss of messages has happened since it started, and,
// while the node is unsure of what it missed (disconnected, behind), it
// started within the staleness bound. (A change of the key itself
// supersedes it: flights.join.)
func (c *Cache) joinable(f *flight) bool {
	probe := entry{created: f.created, confirmed: f.started, tags: f.tags}
	return c.current(&probe, c.now())
}

// invalidated reports whether f's result, fresh when it was produced, has
// been removed or expired since by a tag invalidation, a Clear or a possible
// loss of messages, or is older than the staleness bound while the node is
// unsure: a caller that joined f does not return it.
func (c *Cache) invalidated(f *flight) bool {
	return f.hasValue && !f.isStale && f.entry != nil && !c.current(f.entry, c.now())
}

// isSuperseded reports whether the result must not be cached as fresh.
func (f *flight) isSuperseded() bool { return f.superseded.Load() }

// keepsL2Entry reports whether e, read from L2 by f, may be cached: nothing
// changed the key since f started, or only changes no newer than e (a
// message announcing the very value f read), and no Remove.
func (f *flight) keepsL2Entry(e *entry) bool {
	if !f.isSuperseded() {
		return true
	}
	return !f.removed.Load() && e.created >= f.supersededAt.Load()
}

const flightShards = 64

// flights is the set of running flights, by key. Every flight of a key is
// registered until it ends, so every change of the key reaches it
// (supersede); only the newest one, and only until a change of the key
// supersedes it, takes joiners. A caller that starts after a change of the
// key has returned (or after a message about it was applied) therefore
// never waits for a run the change superseded: it starts a newer run.
// The same holds for a tag invalidation of the tags the run was given, a
// Clear and a possible loss of messages (Cache.joinable). Tags a factory
// adds are known only at its end, so a caller that joined checks the
// result against them then (Cache.invalidated) and, if a tag invalidation
// applies, starts or joins a newer run instead of returning it. Tag
// invalidations of other tags do not stop joiners: stampede protection
// holds under them.
type flights struct {
	seed   maphash.Seed
	shards [flightShards]flightShard
}

type flightShard struct {
	mu sync.Mutex
	// m holds, per key, the newest flight; older ones still running
	// follow through flight.older.
	m map[string]*flight
	_ [48]byte // keep shards on separate cache lines
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

// join returns the flight a caller missing key waits for: the newest
// flight of key if it takes joiners (and ok says it may), else f,
// registered as the newest, with leader = true.
func (fs *flights) join(key string, f *flight, ok func(*flight) bool) (_ *flight, leader bool) {
	s := fs.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.m[key]
	if cur != nil && cur.joinable && !cur.superseded.Load() && ok(cur) {
		if cur.done == nil {
			cur.done = make(chan struct{})
		}
		return cur, false
	}
	f.older = cur
	s.m[key] = f
	return f, true
}

// watch registers f, which takes no joiners, so that the changes of its key
// reach it until it ends (flights.finish). It does not displace the flight
// that takes joiners.
func (fs *flights) watch(f *flight) {
	s := fs.shard(f.key)
	s.mu.Lock()
	f.joinable = false
	if cur := s.m[f.key]; cur != nil {
		f.older, cur.older = cur.older, f
	} else {
		s.m[f.key] = f
	}
	s.mu.Unlock()
}

// supersede marks every flight of key as superseded by a change of version
// at (and removed, for a Remove).
func (fs *flights) supersede(key string, removed bool, at int64) {
	s := fs.shard(key)
	s.mu.Lock()
	for f := s.m[key]; f != nil; f = f.older {
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
	head := s.m[f.key]
	if head == f {
		head = f.older
	} else {
		for p := head; p != nil; p = p.older {
			if p.older == f {
				p.older = f.older
				break
			}
		}
	}
	f.older = nil
	if head == nil {
		delete(s.m, f.key)
	} else {
		s.m[f.key] = head
	}
	s.mu.Unlock()
}
