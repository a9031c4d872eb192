package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/stratacache/strata/backplane"
)

// launch starts f's factory on its own goroutine, with f's context (which
// Close cancels too) and feo, the factory's own copy of the options
// (forFactory). If the cache is closing, the flight ends at once with
// ErrClosed.
func (c *Cache) launch(f *flight, feo *EntryOptions, factory flightRunner, background bool) {
	started := c.life.goBackground(func() {
		defer f.cancel()
		factory.run(f.context(), c, f, feo, background)
	})
	if !started {
		f.cancel()
		c.flights.finish(f, func() { f.err = ErrClosed })
		f.end()
	}
}

// runInline runs f's factory on the calling goroutine, for a caller that
// would wait for it in any case, with feo as for launch.
func (c *Cache) runInline(f *flight, feo *EntryOptions, factory flightRunner) {
	f.inline = true
	defer f.cancel()
	factory.run(f.context(), c, f, feo, false)
}

// forFactory returns the factory's own copy of eo, in dst (a new one if dst
// is nil): the factory may change it while callers read theirs.
func (eo *EntryOptions) forFactory(dst *EntryOptions) *EntryOptions {
	if dst == nil {
		dst = new(EntryOptions)
	}
	*dst = *eo
	dst.Tags = append([]string(nil), eo.Tags...)
	return dst
}

// flightRunner is implemented by Factory[T] (and missRun[T]) so the untyped
// flight machinery can run a typed factory.
type flightRunner interface {
	run(ctx context.Context, c *Cache, f *flight, eo *EntryOptions, background bool)
}

// run produces f's value: from L2 when it holds a fresh entry newer than
// the stale one, else from the factory, then commits the outcome (the result
// cached in L1, then written to L2 and published, unless superseded; or on
// failure the stale value served by fail-safe) and wakes the waiters.
func (factory Factory[T]) run(ctx context.Context, c *Cache, f *flight, eo *EntryOptions, background bool) {
	factory.produce(ctx, c, f, eo, nil, background)
}

// produce is run with fc, the zero FactoryContext the factory gets (a new
// one if nil).
func (factory Factory[T]) produce(ctx context.Context, c *Cache, f *flight, eo *EntryOptions, fc *FactoryContext[T], background bool) {
	defer c.endAbandoned(ctx, f, eo, background)
	if c.l2.reads(eo) && !(eo.SkipL2ReadWhenStale && f.stale != nil) && fromL2[T](ctx, c, f, eo) {
		return
	}
	if c.l2 != nil && c.l2.locker != nil && !eo.SkipL2Read && !eo.SkipL2Write && !eo.SkipDistributedLock {
		release, done := distributedLock[T](ctx, c, f, eo)
		if done {
			return
		}
		if release != nil {
			defer release() // after the value is in L2 (commit waits for it) or the factory failed
		}
	}
	if fc == nil {
		fc = new(FactoryContext[T])
	}
	fc.Key, fc.Options = f.key, eo
	if f.stale != nil {
		if v, err := as[T](f.key, f.stale.value); err == nil {
			fc.stale, fc.hasStale = v, true
			fc.ETag, fc.LastModified = f.stale.etag(), f.stale.lastModifiedTime()
		}
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpFactory, Cache: c.name, Key: f.key, Background: background, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
	}
	v, err := callFactory(ctx, factory, fc)
	if err == nil {
		verr := eo.validate("FactoryContext.Options.")
		if verr == nil {
			verr = c.cfg.checkTags("FactoryContext.Options.Tags", eo.Tags)
		}
		if verr != nil {
			err = fmt.Errorf("core: factory for key %q set invalid options: %w", f.key, verr)
		}
		eo.clamp()
	}
	if info != nil {
		info.Err = err
		info.Source = SourceFactory
		c.obs.end(ctx, info)
	}
	if err != nil {
		c.factoryFailed(ctx, f, eo, err, background)
		f.end()
		return
	}
	now := c.now()
	e := c.newEntry(v, f.created, f.started, now, eo)
	if fc.notModified && f.stale != nil {
		e.setValidator(f.stale.etag(), f.stale.lastModified())
	} else {
		e.setValidator(fc.newETag, fc.newLastModified)
	}
	c.commit(ctx, f, e, eo, now)
	f.end()
}

// errGoexit is the PanicError value of a factory that called
// runtime.Goexit (as testing's FailNow does).
var errGoexit = errors.New("runtime.Goexit called by the factory")

// endAbandoned, deferred by every run, ends f if the run is leaving without
// having ended it: its factory called runtime.Goexit, which no recover sees.
// Its waiters get a *PanicError, and the next caller starts a new run, instead
// of every later caller joining a run that will never end.
func (c *Cache) endAbandoned(ctx context.Context, f *flight, eo *EntryOptions, background bool) {
	if f.ended.Load() {
		return
	}
	c.factoryFailed(ctx, f, eo, &PanicError{Key: f.key, Value: errGoexit}, background)
	f.end()
}

// commit ends flight f with e, the value its factory produced: e is cached in
// L1 (unless the key changed meanwhile), then written to L2 and published.
// The caller ends f.
func (c *Cache) commit(ctx context.Context, f *flight, e *entry, eo *EntryOptions, now int64) {
	cached := false
	c.flights.finish(f, func() {
		f.hasValue, f.source, f.entry = true, SourceFactory, e
		switch {
		case f.isSuperseded() || f.created <= c.tags.prunedBefore.Load():
			// A newer change of the key, or tag times it may depend on
			// were pruned while it ran: not cached as fresh.
			c.event(ctx, EventNotCachedSuperseded, f.key, nil)
		case !eo.SkipL1Write:
			c.storeIfNewer(f.key, e)
			cached = true
		default:
			cached = true
		}
	})
	if f.timedOut.Load() {
		c.event(ctx, EventBackgroundCompletion, f.key, nil)
	}
	if cached {
		deo := eo
		if f.l2Failed {
			// L2 just failed or timed out on the read: do not make the
			// callers wait for the write too.
			cp := *eo
			cp.BackgroundL2Writes = true
			deo = &cp
		}
		if c.l2 == nil {
			// Without L2 a factory result tells the other nodes nothing
			// they can use: they would drop their copies only to call
			// their own factories. Only explicit writes are published.
			return
		}
		c.distribute(ctx, c.setChange(ctx, f.key, e, eo, now), deo)
	}
}

// setChange describes a new value of key for L2 and the backplane,
// serializing it when L2 is to be written (a value that cannot be serialized
// is reported and only published).
func (c *Cache) setChange(ctx context.Context, key string, e *entry, eo *EntryOptions, now int64) *change {
	ch := &change{action: backplane.ActionSet, key: key, at: e.created, e: e, now: now}
	if c.l2.writes(eo) {
		b, err := c.l2.ser.Marshal(e.value)
		if err != nil {
			c.stats.serializeErrors.Add(1)
			c.event(ctx, EventSerializationError, key, err)
			c.logger.WarnContext(ctx, "strata: value not serializable for L2; cached in L1 only", "key", key, "type", fmt.Sprintf("%T", e.value), "err", err)
		}
		ch.value = b
	}
	return ch
}

// fromL2 reads f's key from L2 and, if it holds an entry, hands it to
// endWithL2Entry.
func fromL2[T any](ctx context.Context, c *Cache, f *flight, eo *EntryOptions) bool {
	if f.inline && l2Timeout(eo, f.stale != nil) <= 0 {
		// Nothing may cut this read short but Close, which does not wait
		// for a caller's own run: a context that cannot be cancelled spares
		// the store the goroutine that would watch for it. The read is
		// still bounded by the store client's own timeouts.
		ctx = context.WithoutCancel(ctx)
	}
	e, err := readL2[T](ctx, c.l2, f.key, eo, f.stale != nil)
	// A key the store refuses for good or cannot decode is a miss, not
	// a slow or failing store: the write waits as after any miss.
	f.l2Failed = retryable(err)
	return e != nil && c.endWithL2Entry(f, e, eo)
}

// endWithL2Entry uses e, read from L2 for f's key: fresh and newer than f's
// stale entry, it ends the flight (cached in L1) and returns true; stale and
// newer, it becomes f's stale value for fail-safe.
func (c *Cache) endWithL2Entry(f *flight, e *entry, eo *EntryOptions) bool {
	if f.stale != nil && (e.created < f.stale.created || f.refresh && e.created == f.stale.created) {
		// Older than what L1 has (the same version is fresh again, but
		// for an eager refresh, which wants a newer one).
		return false
	}
	e, st := c.entryState(e, c.now())
	switch st {
	case stateStale:
		f.stale = e
	case stateFresh:
		c.flights.finish(f, func() {
			f.hasValue, f.source, f.entry = true, SourceL2, e
			if f.keepsL2Entry(e) && !eo.SkipL1Write {
				c.storeIfNewer(f.key, e)
			}
		})
		f.end()
		return true
	}
	return false
}

// callFactory calls factory, turning a panic into a *PanicError and an error
// into a *FactoryError.
func callFactory[T any](ctx context.Context, factory Factory[T], fc *FactoryContext[T]) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Key: fc.Key, Value: r, Stack: debug.Stack()}
		}
	}()
	v, err = factory(ctx, fc)
	if err != nil {
		err = &FactoryError{Key: fc.Key, Err: err}
	}
	return v, err
}

// factoryFailed commits a failed flight: with fail-safe and a stale value the
// waiters get the stale value and it is re-cached for the throttle duration;
// otherwise they get err.
func (c *Cache) factoryFailed(ctx context.Context, f *flight, eo *EntryOptions, err error, background bool) {
	c.event(ctx, EventFactoryError, f.key, err)
	if _, ok := err.(*PanicError); ok {
		c.logger.ErrorContext(ctx, "strata: factory panicked", "key", f.key, "err", err)
	} else {
		c.logger.DebugContext(ctx, "strata: factory failed", "key", f.key, "err", err)
	}
	c.flights.finish(f, func() {
		f.err = err
		if background || !eo.FailSafe || f.stale == nil {
			return
		}
		if e, ok := c.throttle(f, f.stale, eo); ok {
			f.hasValue, f.isStale, f.entry = true, true, e
			c.event(ctx, EventFailSafeActivated, f.key, err)
			c.logger.WarnContext(ctx, "strata: fail-safe served a stale value", "key", f.key, "err", err)
		}
	})
}

// throttle serves a stale value by fail-safe: it re-caches stale in L1 as a
// stale value for the fail-safe throttle duration, so a failing source is not
// called again on every request, and returns its value. When a newer entry
// reached L1 meanwhile, it returns that one instead (fresh, or stale but
// still usable by fail-safe). It returns the entry served, or false when
// nothing may be served:
// the key (or one of its tags, or everything) was removed since, stale is
// past its fail-safe lifetime, or L1 holds a newer entry that is gone.
func (c *Cache) throttle(f *flight, stale *entry, eo *EntryOptions) (*entry, bool) {
	now := c.now()
	if now >= stale.physExpires {
		return nil, false
	}
	var served *entry
	c.l1.compute(f.key, func(old *entry) (*entry, bool) {
		// Checked under L1's lock of the key: a Remove marks the flight
		// before it deletes the key from L1, so either this sees the mark
		// or the Remove deletes what this stores.
		// A Remove that came after f was unregistered (while its result
		// was being written to L2) is in the floors.
		fl := c.floors.get(f.key)
		if f.removed.Load() || fl.removed > stale.created || c.tags.verdict(stale) == tagsRemoved {
			return nil, true
		}
		switch {
		case old != nil && old.created > stale.created:
			// Newer than stale: serve it, fresh or (fail-safe) stale.
			if _, st := c.entryState(old, now); st != stateAbsent {
				served = old
			}
			return nil, true
		case old != nil && old.stale && now < old.expires:
			served = old // already throttled
			return nil, true
		case fl.set > stale.created:
			// A newer value exists (a Set applied here, even one that
			// reached this node while the factory ran): the stale value
			// is served to this run's callers, as fail-safe allows, but
			// not re-cached, so the next caller looks for the new one.
			served = stale
			return nil, true
		}
		served = stale
		return stale.throttledCopy(now, eo.FailSafeThrottleDuration), false
	})
	return served, served != nil
}
