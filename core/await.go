package core

import (
	"context"
	"fmt"
	"time"
)

// outcome is what one caller gets from a run.
type outcome struct {
	value    any
	err      error
	source   Source
	stale    bool
	failSafe bool
	version  int64 // of the value
	// invalidated: the caller joined a run whose result a tag
	// invalidation, a Clear or a possible loss has invalidated since
	// (value holds it all the same), or that another caller's timeout
	// cancelled (err holds its error): it goes round once more.
	invalidated bool
}

// waiter is the one wait policy of a call, GetOrSet's or GetOrSetMany's:
// its timers count from the call's start and, once fired, stay fired, so
// that every run a call waits for (several for GetOrSetMany, a second one
// after a lock timeout or a retry) shares them: the soft timeout (only when
// fail-safe has a stale value to serve), the hard timeout, and, for a caller
// that joined another's run, the lock timeout.
type waiter struct {
	soft, hard, lock <-chan time.Time
	timers           [3]*time.Timer
	n                int
	// batch: the call is a GetOrSetMany, whose one factory call produces
	// other keys too: a timeout never cancels it, and a caller that joined
	// a run has no lock timeout (it has no factory of its own for one key).
	batch bool
}

// newWaiter starts the timers of a call with options eo; withStale says
// whether some key has a stale value (the soft timeout applies only then),
// leader whether the call waits for its own run only (no lock timeout).
func newWaiter(eo *EntryOptions, withStale, leader, batch bool) waiter {
	w := waiter{batch: batch}
	if withStale && eo.FailSafe && eo.FactorySoftTimeout > 0 {
		w.soft = w.timer(eo.FactorySoftTimeout)
	}
	if eo.FactoryHardTimeout > 0 {
		w.hard = w.timer(eo.FactoryHardTimeout)
	}
	if !batch && !leader && eo.LockTimeout > 0 {
		w.lock = w.timer(eo.LockTimeout)
	}
	return w
}

func (w *waiter) timer(d time.Duration) <-chan time.Time {
	t := time.NewTimer(d)
	w.timers[w.n] = t
	w.n++
	return t.C
}

// stop stops the timers.
func (w *waiter) stop() {
	for _, t := range w.timers[:w.n] {
		t.Stop()
	}
}

// closedTimer is a timer channel that has fired.
var closedTimer = func() <-chan time.Time {
	ch := make(chan time.Time)
	close(ch)
	return ch
}()

// await waits for run f on behalf of one caller, within the caller's context
// and w's timeouts. A run that has ended goes first, timeouts or not.
func await[T any](ctx context.Context, c *Cache, w *waiter, f *flight, eo *EntryOptions, stale *entry, leader bool, factory Factory[T]) outcome {
	canStale := eo.FailSafe && stale != nil
	var soft, lock <-chan time.Time
	if canStale {
		soft = w.soft
	}
	if !leader {
		lock = w.lock
	}
	if f.ended.Load() {
		return c.ended(ctx, f, eo, stale, leader)
	}
	// f.done exists: f runs on another goroutine, or this caller joined it.
	select {
	case <-f.done:
		return c.ended(ctx, f, eo, stale, leader)
	case <-ctx.Done():
		return outcome{err: ctx.Err()}
	case <-c.life.base.Done():
		return outcome{err: ErrClosed}
	case <-soft:
		w.soft = closedTimer
		c.event(ctx, EventFactorySoftTimeout, f.key, nil)
		return c.timedOut(ctx, w, f, eo, stale, nil)
	case <-w.hard:
		w.hard = closedTimer
		c.event(ctx, EventFactoryHardTimeout, f.key, nil)
		var err error
		if !canStale {
			err = fmt.Errorf("core: factory for key %q still running after the hard timeout of %s: %w", f.key, eo.FactoryHardTimeout, ErrFactoryTimeout)
		}
		return c.timedOut(ctx, w, f, eo, stale, err)
	case <-lock:
		w.lock = closedTimer
		c.event(ctx, EventLockTimeout, f.key, nil)
		if canStale {
			if r, ok := c.serveStale(ctx, f, stale, eo, nil); ok {
				return r
			}
		}
		// Run the factory without the lock: a run of our own that takes
		// no joiners, superseded by the key's changes like any other.
		own := c.newFlight(ctx, f.key, stale, eo.Tags)
		c.flights.watch(own)
		c.launch(own, eo.forFactory(nil), factory, false)
		return await(ctx, c, w, own, eo, stale, true, factory)
	}
}

// ended is what a caller gets from f, which has ended: its value, else
// with fail-safe the stale value (stale, or a newer one in L1), else its
// error.
func (c *Cache) ended(ctx context.Context, f *flight, eo *EntryOptions, stale *entry, leader bool) outcome {
	if f.hasValue {
		if f.isStale {
			if !eo.FailSafe {
				// Served by fail-safe to a caller that asked for it,
				// not to this one.
				return outcome{err: f.err}
			}
			return outcome{value: f.entry.value, source: SourceL1, stale: true, failSafe: true, version: f.entry.created}
		}
		return outcome{value: f.entry.value, source: f.source, version: f.entry.created, invalidated: !leader && c.invalidated(f)}
	}
	if eo.FailSafe && stale != nil {
		if r, ok := c.serveStale(ctx, f, stale, eo, f.err); ok {
			return r
		}
	}
	if f.abandoned.Load() {
		// Another caller's timeout cancelled the factory: this caller,
		// still willing to wait, runs it again.
		return outcome{err: f.err, invalidated: true}
	}
	return outcome{err: f.err}
}

// after returns a copy of eo for a wait that goes on elapsed after the
// call began: its factory timeouts count from the call's start, not from
// now (a timeout that has passed fires at once).
func (eo *EntryOptions) after(elapsed time.Duration) *EntryOptions {
	cp := *eo
	for _, d := range []*time.Duration{&cp.FactorySoftTimeout, &cp.FactoryHardTimeout} {
		if *d > 0 {
			*d = max(*d-elapsed, 1)
		}
	}
	return &cp
}

// timedOut ends a caller's wait at a timeout: the stale value if fail-safe
// allows (re-cached for the throttle duration), else err. The factory goes
// on in the background unless background completion is off (and it is not
// a batch factory, which produces other keys too).
func (c *Cache) timedOut(ctx context.Context, w *waiter, f *flight, eo *EntryOptions, stale *entry, err error) outcome {
	f.timedOut.Store(true)
	if !eo.BackgroundFactoryCompletion && !w.batch {
		f.abandoned.Store(true)
		f.cancel()
	}
	if err == nil && eo.FailSafe && stale != nil {
		if r, ok := c.serveStale(ctx, f, stale, eo, nil); ok {
			return r
		}
	}
	if err == nil {
		// The stale value vanished (removed meanwhile): nothing to serve.
		err = fmt.Errorf("core: factory for key %q timed out and its stale value is gone: %w", f.key, ErrFactoryTimeout)
	}
	return outcome{err: err}
}

// serveStale is fail-safe for one waiting caller: the value throttle allows
// (stale, or a newer one that reached L1), reported as a fail-safe
// activation caused by cause.
func (c *Cache) serveStale(ctx context.Context, f *flight, stale *entry, eo *EntryOptions, cause error) (outcome, bool) {
	e, ok := c.throttle(f, stale, eo)
	if !ok {
		return outcome{}, false
	}
	c.event(ctx, EventFailSafeActivated, f.key, cause)
	return outcome{value: e.value, source: SourceL1, stale: true, failSafe: true, version: e.created}, true
}
