package core

import (
	"context"
	"fmt"
	"time"

	"github.com/stratacache/strata/backplane"
)

// GetOrSet returns the value of key, calling factory on a miss to produce and
// cache it. Concurrent callers missing the same key share one factory call.
// With fail-safe on, a failing or timed-out factory is answered with the
// stale value if one exists; otherwise its error is returned wrapped in a
// *FactoryError (a panic becomes a *PanicError, a hard timeout
// ErrFactoryTimeout). If ctx is done first, GetOrSet returns ctx.Err() while
// the factory goes on for the others. A key holding another type than T is a
// *TypeError.
//
// An L1 hit allocates nothing, per-call options included.
func GetOrSet[T any](ctx context.Context, c *Cache, key string, factory Factory[T], opts ...EntryOption) (T, error) {
	if ctx == nil {
		var zero T
		return zero, errNilContext
	}
	absent := false
	if (c.obs == nil || c.hitRec != nil && !c.hitRec.WantsHitOp(ctx)) && !c.life.closed.Load() && key != "" {
		skip, out, err := scanHit(c.cfg.defaultsOf(key).SkipL1Read, opts)
		if err == nil && !skip {
			// The common case inline: a fresh entry whose tags were found
			// valid at the current tag epoch. Anything else goes the long
			// way, through lookup.
			now := c.now()
			e, ok := c.l1.c.GetIfPresent(key)
			absent = !ok
			if ok && now < e.expires && !e.stale && !e.wire && !e.slid(now) &&
				e.tagEpoch.Load() == c.tags.epoch.Load() && c.gate.since.Load() == 0 {
				if v, ok := e.value.(T); ok {
					e.touch(now)
					if c.hitRec != nil {
						c.hitRec.Hit(ctx, false)
					}
					if e.eagerAt != 0 && now >= e.eagerAt {
						startEagerRefresh(ctx, c, key, factory, opts, e)
					}
					if out != nil {
						out.fill(SourceL1, true, false, false, e.created, now)
					}
					return cloned(c, key, v)
				}
			}
		}
	}
	v, err := getOrSet(ctx, c, key, factory, opts, absent)
	if err != nil {
		return v, err
	}
	return cloned(c, key, v)
}

// getOrSet is GetOrSet past the fast path: observers, misses, stale entries.
// absent says that the fast path has just found no entry for key in L1: the
// first lookup is spared (the re-check after joining a run stays).
func getOrSet[T any](ctx context.Context, c *Cache, key string, factory Factory[T], opts []EntryOption, absent bool) (v T, err error) {
	if err := c.checkOp(key); err != nil {
		return v, err
	}
	if factory == nil {
		return v, &OptionError{Field: "factory", Value: nil, Why: "must not be nil"}
	}
	eo := c.plainOptions
	if len(opts) > 0 || eo == nil {
		if eo, err = c.cfg.resolveFor(key, opts); err != nil {
			return v, err
		}
	}
	ctx, info := c.begin(ctx, OpGetOrSet, key)
	defer func() { c.end(ctx, info, err) }()
	// A caller that joined a run whose result a tag invalidation, a Clear
	// or a possible loss has invalidated since goes round once more: the
	// change may have been made before this call began. Its second run
	// started after that change, so whatever it returns is current. So
	// does a caller whose run another caller's timeout cancelled (without
	// background completion), within what is left of its own timeouts.
	var began time.Time
	if eo.FactorySoftTimeout > 0 || eo.FactoryHardTimeout > 0 {
		began = time.Now() // for eo.after, which changes only these
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !began.IsZero() {
			eo = eo.after(time.Since(began))
		}
		now := c.now()
		var stale *entry
		if !eo.SkipL1Read && !(absent && attempt == 0) {
			e, st := c.lookupFor(key, now, eo)
			switch st {
			case stateFresh:
				v, err := l1Value[T](c, key, e)
				if err == errUndecodable {
					break // dropped from L1: a miss
				}
				if err == nil {
					e.touch(now)
					c.hit(ctx, info, key, e)
					eo.outcome.fill(SourceL1, true, e.stale, false, e.created, now)
					if e.eagerAt != 0 && now >= e.eagerAt && !e.stale {
						if startEagerRefresh(ctx, c, key, factory, opts, e) && info != nil {
							info.EagerRefresh = true
						}
					}
				}
				return v, err
			case stateStale:
				stale = e
			}
		}
		c.event(ctx, EventMiss, key, nil)
		// Nothing can end this caller's wait early when no timeout applies
		// and its context cannot be cancelled: it then runs the factory on
		// its own goroutine and spares a goroutine hand-off.
		inline := ctx.Done() == nil && eo.FactoryHardTimeout == 0 && (stale == nil || !eo.FailSafe || eo.FactorySoftTimeout == 0)
		// A run on this goroutine without L2 takes its flight and the
		// factory's copy of the options from a pool, and returns them when
		// it has ended if no other caller joined it (then nothing else
		// holds them: a FactoryContext must not be used after the factory
		// returns, and the factory's context is not pooled). Other runs
		// allocate them with the rest.
		var m *missRun[T]
		var f *flight
		var feo *EntryOptions
		var pr *pooledRun
		if inline && c.l2 == nil {
			pr, _ = c.runs.Get().(*pooledRun)
			if pr == nil {
				pr = new(pooledRun)
			}
			m = &missRun[T]{factory: factory}
			f, feo = &pr.f, &pr.eo
		} else {
			mo := &missRunOptions[T]{missRun: missRun[T]{factory: factory}}
			m, f, feo = &mo.missRun, &mo.f, &mo.eo
			if !inline {
				f.done = make(chan struct{})
			}
		}
		c.initFlight(f, &m.rc, ctx, key, stale, eo.Tags)
		f, leader := c.joinWith(f, eo)
		if leader {
			if e, st := c.lookupFor(key, c.now(), eo); !eo.SkipL1Read && st == stateFresh {
				// A flight finished between the lookup and the join.
				c.flights.finish(f, func() { f.hasValue, f.source, f.entry = true, SourceL1, e })
				f.end()
			} else if inline {
				c.runInline(f, eo.forFactory(feo), m)
			} else {
				c.launch(f, eo.forFactory(feo), m, false)
			}
		}
		w := newWaiter(eo, stale != nil, leader, false)
		r := await(ctx, c, &w, f, eo, stale, leader, factory)
		w.stop()
		if pr != nil {
			// The run has ended and is unregistered (a run on this
			// goroutine ends before await returns); no caller joined it
			// if it made no done channel, and none can now.
			if !leader || pr.f.done == nil {
				m.fc.Options = nil
				*pr = pooledRun{}
				c.runs.Put(pr)
			}
			pr = nil
		}
		if r.invalidated && attempt == 0 {
			continue
		}
		if info != nil {
			info.Source, info.Stale, info.FailSafe = r.source, r.stale, r.failSafe
		}
		if r.err != nil {
			if eo.FailSafe && eo.failSafeDefault != nil && factoryFailure(r.err) {
				// The fail-safe default value: served, not cached.
				c.event(ctx, EventFailSafeActivated, key, r.err)
				if info != nil {
					info.FailSafe = true
				}
				eo.outcome.fill(SourceNone, false, false, true, 0, 0)
				return as[T](key, *eo.failSafeDefault)
			}
			eo.outcome.fill(SourceNone, false, false, false, 0, 0)
			return v, r.err
		}
		eo.outcome.fill(r.source, r.source != SourceFactory && !r.failSafe, r.stale, r.failSafe, r.version, c.now())
		return as[T](key, r.value)
	}
}

// missRun is what a run of GetOrSet's factory needs of its own, allocated
// together: the factory's context (which the factory may keep), the factory
// and its FactoryContext. The flight and the factory's copy of the options
// come from Cache.runs or with it (missRunOptions).
type missRun[T any] struct {
	rc      runCtx
	factory Factory[T]
	fc      FactoryContext[T]
}

// missRunOptions is a missRun with its flight and the factory's copy of the
// options, for a run that does not take them from Cache.runs.
type missRunOptions[T any] struct {
	missRun[T]
	f  flight
	eo EntryOptions
}

// pooledRun is the flight of a run of GetOrSet and the factory's copy of its
// options, reused by the runs that end on their caller's goroutine in a
// cache without L2 (getOrSet says when one may be returned).
type pooledRun struct {
	f  flight
	eo EntryOptions
}

func (m *missRun[T]) run(ctx context.Context, c *Cache, f *flight, eo *EntryOptions, background bool) {
	m.factory.produce(ctx, c, f, eo, &m.fc, background)
}

// Get returns the value of key if the cache holds a fresh one (or a stale
// one, with AllowStaleOnRead). It never calls a factory; a miss is
// (zero, false, nil).
func Get[T any](ctx context.Context, c *Cache, key string, opts ...EntryOption) (v T, found bool, err error) {
	if ctx == nil {
		return v, false, errNilContext
	}
	if err := c.checkOp(key); err != nil {
		return v, false, err
	}
	eo, err := c.cfg.resolveFor(key, opts)
	if err != nil {
		return v, false, err
	}
	ctx, info := c.begin(ctx, OpGet, key)
	defer func() { c.end(ctx, info, err) }()
	var e *entry
	st := stateAbsent
	if !eo.SkipL1Read {
		e, st = c.lookup(key, c.now())
	}
	if st == stateFresh && e.stale {
		st = stateStale // a stale value re-cached by fail-safe is not fresh
	}
	source := SourceL1
	if st != stateFresh && c.l2.reads(eo) && !(st == stateStale && eo.SkipL2ReadWhenStale) {
		// The read is watched like a factory run: a change of the key
		// applied while it reads (the entry, then the tag and Clear
		// markers) keeps what it read out of L1.
		f := &flight{key: key}
		c.flights.watch(f)
		e2, _ := readL2[T](ctx, c.l2, key, eo, st == stateStale)
		c.flights.finish(f, func() {
			if e2 == nil || (e != nil && e2.created < e.created) {
				return
			}
			e2, st2 := c.entryState(e2, c.now())
			if st2 == stateAbsent {
				return
			}
			if st2 == stateFresh && !eo.SkipL1Write && f.keepsL2Entry(e2) {
				c.storeIfNewer(key, e2)
			}
			e, st, source = e2, st2, SourceL2
		})
	}
	if st == stateFresh || (st == stateStale && eo.AllowStaleOnRead) {
		if v, err = l1Value[T](c, key, e); err == errUndecodable {
			return v, false, nil // dropped from L1: a miss
		} else if err != nil {
			return v, false, err
		}
		if st == stateFresh {
			e.touch(c.now())
		}
		if v, err = cloned(c, key, v); err != nil {
			return v, false, err
		}
		if info != nil {
			info.Hit, info.Source, info.Stale = true, source, st == stateStale
		}
		eo.outcome.fill(source, true, st == stateStale, false, e.created, c.now())
		if st == stateStale {
			c.event(ctx, EventStaleHit, key, nil)
		} else {
			c.event(ctx, EventHit, key, nil)
		}
		return v, true, nil
	}
	c.event(ctx, EventMiss, key, nil)
	eo.outcome.fill(SourceNone, false, false, false, 0, 0)
	return v, false, nil
}

// Set stores value under key, replacing what the cache holds. A factory
// running for key when Set is called does not overwrite it.
//
// The new entry has the call's options only, tags included: the tags of the
// entry it replaces (given by an earlier call, or added by a factory) are not
// kept, so pass WithTags again for the entry to stay in its tag groups.
func Set[T any](ctx context.Context, c *Cache, key string, value T, opts ...EntryOption) (err error) {
	if ctx == nil {
		return errNilContext
	}
	if err := c.checkOp(key); err != nil {
		return err
	}
	eo, err := c.cfg.resolveFor(key, opts)
	if err != nil {
		return err
	}
	ctx, info := c.begin(ctx, OpSet, key)
	defer func() { c.end(ctx, info, err) }()
	var b []byte
	if c.l2.writes(eo) {
		// Serialize first: a value that cannot round-trip is an error
		// here, before anything is written.
		if b, err = c.l2.ser.Marshal(value); err != nil {
			return fmt.Errorf("core: Set of key %q: serializing %T for L2: %w", key, value, err)
		}
	}
	created, err := c.stampChange(eo)
	if err != nil {
		return err
	}
	now := c.preciseNow()
	e := c.newEntry(value, created, now, now, eo)
	c.change(ctx, &change{action: backplane.ActionSet, key: key, at: created, e: e, storeL1: !eo.SkipL1Write, value: b, now: now}, eo)
	return nil
}
