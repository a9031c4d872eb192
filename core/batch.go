package core

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/stratacache/strata/l2"
)

// ManyFactory produces, in one call, the values of the keys a GetOrSetMany
// call could not find in L1 or L2. A key it leaves out of its result has no
// value: it is not cached and not in GetOrSetMany's result.
type ManyFactory[T any] func(ctx context.Context, keys []string) (map[string]T, error)

// GetOrSetMany returns the values of keys, calling factory once for all the
// keys found neither in L1 nor in L2 (read with one multi-get when the store
// is an l2.MultiGetter). It shares stampede protection with GetOrSet: a key
// another call is already producing is waited for, not produced again, and
// callers of GetOrSet for a key this call produces wait for it.
//
// The result holds every key that has a value. The options apply to every
// key; the factory timeouts and the context bound the whole call, and with
// fail-safe a key whose production failed or timed out gets its stale value:
// at the soft timeout, every key with a stale value still being produced
// gets it while the factory goes on in the background and caches its
// results. The error is the factory's (wrapped in a *FactoryError naming the
// first key), ErrFactoryTimeout, or ctx's, when some key has no value
// because of it; the result then still holds the others.
func GetOrSetMany[T any](ctx context.Context, c *Cache, keys []string, factory ManyFactory[T], opts ...EntryOption) (map[string]T, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	out, err := getOrSetMany(ctx, c, keys, factory, opts, time.Time{})
	for k, v := range out {
		var cerr error
		if out[k], cerr = cloned(c, k, v); cerr != nil {
			return out, cerr
		}
	}
	return out, err
}

// getOrSetMany is GetOrSetMany; again, when not zero, is when the call began,
// for its second round: the keys whose joined runs' results were
// invalidated (see getOrSet), within what is left of its timeouts.
func getOrSetMany[T any](ctx context.Context, c *Cache, keys []string, factory ManyFactory[T], opts []EntryOption, again time.Time) (map[string]T, error) {
	began := again
	if began.IsZero() {
		began = time.Now()
	}
	if c.life.closed.Load() {
		return nil, ErrClosed
	}
	if factory == nil {
		return nil, &OptionError{Field: "factory", Value: nil, Why: "must not be nil"}
	}
	for _, k := range keys {
		if err := c.checkOp(k); err != nil {
			return nil, err
		}
	}
	eo, err := c.cfg.resolve(opts)
	if err != nil {
		return nil, err
	}
	if !again.IsZero() {
		eo = eo.after(time.Since(began))
	}
	out := make(map[string]T, len(keys))
	stale := map[string]*entry{}
	var own, joined []*flight
	now := c.now()
	seen := make(map[string]bool, len(keys))
	// Every key is looked up before any flight is registered: a call that
	// fails (a key holding another type) leaves nothing behind.
	var hits, missing []string
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if !eo.SkipL1Read {
			e, st := c.lookup(k, now)
			if st == stateFresh && !e.stale {
				v, err := l1Value[T](c, k, e)
				switch {
				case err == nil:
					out[k] = v
					hits = append(hits, k)
					continue
				case err != errUndecodable:
					return nil, err
				}
				// Dropped from L1: a miss.
			} else if st != stateAbsent {
				stale[k] = e
			}
		}
		missing = append(missing, k)
	}
	for _, k := range hits {
		c.event(ctx, EventHit, k, nil)
	}
	for _, k := range missing {
		c.event(ctx, EventMiss, k, nil)
		f, leader := c.join(ctx, k, stale[k], eo)
		if leader {
			own = append(own, f)
		} else {
			joined = append(joined, f)
		}
	}
	if len(own) > 0 {
		if !c.life.goBackground(func() { runMany(c, own, eo, factory) }) {
			for _, f := range own {
				f.cancel()
				c.flights.finish(f, func() { f.err = ErrClosed })
				f.end()
			}
		}
	}
	// Wait for every run within ctx and the timeouts of the call, by the
	// policy of GetOrSet (await): one pair of timers for the whole call.
	w := newWaiter(eo, len(stale) > 0, false, true)
	defer w.stop()
	var firstErr error
	var retry []string
	for i, f := range append(own, joined...) {
		r := await[T](ctx, c, &w, f, eo, stale[f.key], i < len(own), nil) // no lock timeout: no factory of one key needed
		if r.invalidated && again.IsZero() {
			retry = append(retry, f.key)
			continue
		}
		if r.err != nil {
			var absent *absentError
			if firstErr == nil && !errors.As(r.err, &absent) {
				firstErr = r.err
			}
			continue
		}
		v, err := as[T](f.key, r.value)
		if err != nil {
			return nil, err
		}
		out[f.key] = v
	}
	if len(retry) > 0 {
		more, err := getOrSetMany(ctx, c, retry, factory, opts, began)
		for k, v := range more {
			out[k] = v
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return out, firstErr
}

// absentError ends the flight of a key the batch factory returned no value
// for; a GetOrSet waiting for that key gets it.
type absentError struct{ key string }

func (e *absentError) Error() string {
	return fmt.Sprintf("core: the GetOrSetMany factory returned no value for key %q", e.key)
}

// runMany produces the values of own's keys: from L2 (one multi-get when the
// store can), then one factory call for the rest; it ends every flight.
func runMany[T any](c *Cache, own []*flight, eo *EntryOptions, factory ManyFactory[T]) {
	ctx := own[0].context()
	stop := context.AfterFunc(c.life.base, func() {
		for _, f := range own {
			f.cancel()
		}
	})
	defer stop()
	defer func() {
		for _, f := range own {
			f.cancel()
		}
	}()
	for _, f := range own {
		defer c.endAbandoned(ctx, f, eo, false)
	}
	rest := own
	if c.l2.reads(eo) {
		rest = manyFromL2[T](ctx, c, own, eo)
	}
	if len(rest) == 0 {
		return
	}
	keys := make([]string, len(rest))
	for i, f := range rest {
		keys[i] = f.key
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpFactory, Cache: c.name, Key: keys[0], Start: time.Now()}
		ctx = c.obs.start(ctx, info)
	}
	vals, err := callManyFactory(ctx, factory, keys)
	if info != nil {
		info.Err, info.Source = err, SourceFactory
		c.obs.end(ctx, info)
	}
	now := c.now()
	for _, f := range rest {
		switch v, ok := vals[f.key]; {
		case err != nil:
			c.factoryFailed(ctx, f, eo, err, false)
		case !ok:
			c.flights.finish(f, func() { f.err = &absentError{key: f.key} })
		default:
			c.commit(ctx, f, c.newEntry(v, f.created, f.started, now, eo), eo, now)
		}
		f.end()
	}
}

// manyFromL2 ends the flights whose keys L2 holds fresh (and newer than
// their stale entry), and returns the others.
func manyFromL2[T any](ctx context.Context, c *Cache, own []*flight, eo *EntryOptions) []*flight {
	var rest []*flight
	mg, ok := c.l2.store.(l2.MultiGetter)
	if !ok || !c.l2.breaker.allow(c.now()) {
		for _, f := range own {
			if !fromL2[T](ctx, c, f, eo) {
				rest = append(rest, f)
			}
		}
		return rest
	}
	storeKeys := make([]string, len(own))
	for i, f := range own {
		storeKeys[i] = c.l2.key(f.key)
	}
	// As for one key (l2Timeout): the soft timeout when some key has a
	// stale value fail-safe can serve instead.
	haveStale := false
	for _, f := range own {
		haveStale = haveStale || f.stale != nil
	}
	gctx, cancel := withTimeout(ctx, l2Timeout(eo, haveStale))
	readAt := c.preciseNow()
	vals, err := mg.GetMany(gctx, storeKeys)
	cancel()
	if err != nil || len(vals) != len(own) {
		if err == nil {
			err = fmt.Errorf("core: L2 GetMany returned %d values for %d keys", len(vals), len(own))
		}
		c.l2.failed(ctx, own[0].key, "get many", err)
		for _, f := range own {
			f.l2Failed = true // the writes of the results go to the background
		}
		return own
	}
	c.l2.succeeded(ctx)
	for i, f := range own {
		e := decodeL2Entry[T](ctx, c.l2, f.key, vals[i], readAt, eo)
		if e == nil || !c.endWithL2Entry(f, e, eo) {
			rest = append(rest, f)
		}
	}
	return rest
}

func callManyFactory[T any](ctx context.Context, factory ManyFactory[T], keys []string) (vals map[string]T, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Key: keys[0], Value: r, Stack: debug.Stack()}
		}
	}()
	vals, err = factory(ctx, keys)
	if err != nil {
		err = &FactoryError{Key: keys[0], Err: err}
	}
	return vals, err
}
