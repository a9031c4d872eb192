package core

import (
	"context"
	"fmt"
	"time"
)

// outcome is what one caller of GetOrSet gets from a flight.
type outcome struct {
	value    any
	err      error
	source   Source
	stale    bool
	failSafe bool
	// invalidated: the caller joined a run whose result a tag
	// invalidation, a Clear or a possible loss has invalidated since
	// (value holds it all the same), or that another caller's timeout
	// cancelled (err holds its error): it goes round once more.
	invalidated bool
}

// await waits for flight f on behalf of one caller, within the caller's
// context and timeouts: the soft timeout (only when fail-safe has a stale
// value to serve), the hard timeout, and, for a caller that joined another's
// flight, the lock timeout.
func await[T any](ctx context.Context, c *Cache, f *flight, eo *EntryOptions, stale *entry, leader bool, factory Factory[T]) outcome {
	canStale := eo.FailSafe && stale != nil
	var soft, hard, lock <-chan time.Time
	if canStale && eo.FactorySoftTimeout > 0 {
		t := time.NewTimer(eo.FactorySoftTimeout)
		defer t.Stop()
		soft = t.C
	}
	if eo.FactoryHardTimeout > 0 {
		t := time.NewTimer(eo.FactoryHardTimeout)
		defer t.Stop()
		hard = t.C
	}
	if !leader && eo.LockTimeout > 0 {
		t := time.NewTimer(eo.LockTimeout)
		defer t.Stop()
		lock = t.C
	}
	select {
	case <-f.done:
		switch {
		case f.hasValue:
			if f.isStale {
				if !eo.FailSafe {
					// Served by fail-safe to a caller that asked for
					// it, not to this one.
					return outcome{err: f.err}
				}
				return outcome{value: f.value, source: SourceL1, stale: true, failSafe: true}
			}
			return outcome{value: f.value, source: f.source, invalidated: !leader && c.invalidated(f)}
		}
		if canStale {
			if r, ok := c.serveStale(ctx, f, stale, eo, f.err); ok {
				return r
			}
		}
		if f.abandoned.Load() {
			// Another caller's timeout cancelled the factory: this
			// caller, still willing to wait, runs it again.
			return outcome{err: f.err, invalidated: true}
		}
		return outcome{err: f.err}
	case <-ctx.Done():
		return outcome{err: ctx.Err()}
	case <-c.life.base.Done():
		return outcome{err: ErrClosed}
	case <-soft:
		c.event(ctx, EventFactorySoftTimeout, f.key, nil)
		return c.timedOut(ctx, f, eo, stale, nil)
	case <-hard:
		c.event(ctx, EventFactoryHardTimeout, f.key, nil)
		var err error
		if !canStale {
			err = fmt.Errorf("core: factory for key %q still running after the hard timeout of %s: %w", f.key, eo.FactoryHardTimeout, ErrFactoryTimeout)
		}
		return c.timedOut(ctx, f, eo, stale, err)
	case <-lock:
		c.event(ctx, EventLockTimeout, f.key, nil)
		if canStale {
			if r, ok := c.serveStale(ctx, f, stale, eo, nil); ok {
				return r
			}
		}
		// Run the factory without the lock: a flight of our own that
		// takes no joiners, superseded by the key's changes like any other.
		own := c.newFlight(ctx, f.key, stale, eo.Tags)
		c.flights.watch(own)
		c.launch(own, eo, factory, false)
		rest := eo.after(eo.LockTimeout)
		rest.LockTimeout = 0
		return await(ctx, c, own, rest, stale, true, factory)
	}
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
// on in the background unless background completion is off.
func (c *Cache) timedOut(ctx context.Context, f *flight, eo *EntryOptions, stale *entry, err error) outcome {
	f.timedOut.Store(true)
	if !eo.BackgroundFactoryCompletion {
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
	v, ok := c.throttle(f, stale, eo)
	if !ok {
		return outcome{}, false
	}
	c.event(ctx, EventFailSafeActivated, f.key, cause)
	return outcome{value: v, source: SourceL1, stale: true, failSafe: true}, true
}
