package core

import "context"

// startEagerRefresh starts one background refresh of e, a fresh entry past
// its eager-refresh time, unless e already started one or a flight that
// takes joiners is running for key. The refresh ends only with a version
// newer than e's: from L2 if another node refreshed it already, else from
// the factory. The caller returns the cached value at once. A failed refresh
// leaves e in place; e does not start another. It reports whether it started
// a refresh.
func startEagerRefresh[T any](ctx context.Context, c *Cache, key string, factory Factory[T], opts []EntryOption, e *entry) bool {
	if factory == nil || !e.eagerStarted.CompareAndSwap(false, true) {
		return false
	}
	eo, err := c.cfg.resolveFor(key, opts)
	if err != nil {
		return false
	}
	f := c.newFlight(ctx, key, e, eo.Tags)
	f.refresh = true
	if _, leader := c.flights.join(key, f, c.joinable); !leader {
		f.cancel()
		return false
	}
	c.event(ctx, EventEagerRefresh, key, nil)
	c.launch(f, eo.forFactory(nil), factory, true)
	return true
}
