package core

import "context"

// startEagerRefresh starts one background refresh of e, a fresh entry past
// its eager-refresh time, unless e already started one or a flight is
// running for key. The caller returns the cached value at once. A failed
// refresh leaves e in place; e does not start another.
func startEagerRefresh[T any](ctx context.Context, c *Cache, key string, factory Factory[T], opts []EntryOption, e *entry) {
	if factory == nil || !e.eagerStarted.CompareAndSwap(false, true) || c.flights.running(key) != nil {
		return
	}
	eo, err := c.resolve(opts)
	if err != nil {
		return
	}
	f := &flight{key: key, created: c.stamp(), stale: e, done: make(chan struct{})}
	if _, leader := c.flights.join(key, f); !leader {
		return
	}
	c.event(ctx, EventEagerRefresh, key, nil)
	c.launch(ctx, f, eo, factory, true)
}
