package pgcdc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/stratacache/strata/core"
)

// batch is what one transaction invalidates, gathered from its row changes
// and applied when its commit arrives, with the commit's time. A key or tag
// named twice is invalidated once; Remove wins over Expire.
type batch struct {
	keys, tags map[string]Action
	clear      bool
	clearAct   Action
	max        int // distinct keys and tags kept before a Clear replaces them
}

func newBatch(max int) *batch {
	return &batch{keys: map[string]Action{}, tags: map[string]Action{}, max: max}
}

func (b *batch) addKey(k string, a Action) { b.add(b.keys, k, a) }
func (b *batch) addTag(t string, a Action) { b.add(b.tags, t, a) }

func (b *batch) add(m map[string]Action, s string, a Action) {
	if b.clear {
		b.addClear(a)
		return
	}
	if old, ok := m[s]; ok && old <= a {
		return
	}
	m[s] = a
	if len(b.keys)+len(b.tags) > b.max {
		// Too much to hold: a Clear invalidates all of it. Remove if any
		// of it was to be removed.
		act := Expire
		for _, x := range slices.Concat(slices.Collect(maps.Values(b.keys)), slices.Collect(maps.Values(b.tags))) {
			act = min(act, x)
		}
		b.addClear(act)
	}
}

func (b *batch) addClear(a Action) {
	if !b.clear || a < b.clearAct {
		b.clearAct = a
	}
	b.clear = true
	clear(b.keys)
	clear(b.tags)
}

func (b *batch) empty() bool { return !b.clear && len(b.keys) == 0 && len(b.tags) == 0 }

// errNotDelivered is a transaction's invalidation that the cache accepted
// but may not have written to L2 or published: it is applied again.
var errNotDelivered = errors.New("pgcdc: invalidation not confirmed written and published")

// apply makes the cache invalidate what b holds, stamped with the commit
// time, and checks that every invalidation was written to L2 and published
// before it returns: core's Remove returns nil even when its L2 write or its
// publish failed (it queues them for auto-recovery, which a killed process
// loses), so the cache's counters are compared before and after. Any L2 or
// publish error, anything left in the recovery queue, or a call that may
// have returned before its publish was sent, makes apply return an error
// wrapping errNotDelivered, and the caller applies b again (an
// invalidation applied twice does no harm). Errors of other operations
// made on the same cache at the same time fail it too, only costing a
// retry.
func (c *Consumer) apply(ctx context.Context, cache *core.Cache, b *batch, commit time.Time) (calls int, err error) {
	opts := []core.EntryOption{
		// Soft timeout 0: wait for the L2 write (no move to the
		// background); the hard timeout bounds it.
		core.WithL2Timeouts(0, c.o.ApplyTimeout),
	}
	if lead := time.Until(commit); lead < core.MaxChangedAtLead-time.Minute {
		opts = append(opts, core.WithChangedAt(commit))
	} else {
		// The database's clock is far ahead of this node's: core refuses
		// such a time. Stamped with this node's clock instead, the
		// invalidation is still newer than every run started on nodes in
		// step with it; only runs on nodes as far ahead could win.
		c.stats.clockAhead.Add(1)
		c.log.Warn("pgcdc: commit time far ahead of this node's clock; invalidations stamped with the node's clock", "ahead", lead.Round(time.Second))
	}
	before := cache.Stats()
	var slow time.Duration
	call := func(what, name string, fn func() error) error {
		start := time.Now()
		err := fn()
		calls++
		if d := time.Since(start); d > slow {
			slow = d
		}
		var oe *core.OptionError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &oe):
			// A key or tag the cache refuses (too long, too many): no
			// entry can exist under it, and retrying cannot help.
			c.stats.skipped.Add(1)
			c.log.Error("pgcdc: invalidation refused by the cache; skipped", what, name, "err", err)
			return nil
		}
		return fmt.Errorf("pgcdc: %s %q: %w", what, name, err)
	}
	if b.clear {
		err := call("clear", b.clearAct.String(), func() error { return cache.Clear(ctx, b.clearAct == Expire, opts...) })
		if err != nil {
			return calls, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(b.keys)) {
		fn := cache.Remove
		if b.keys[k] == Expire {
			fn = cache.Expire
		}
		if err := call("key", k, func() error { return fn(ctx, k, opts...) }); err != nil {
			return calls, err
		}
	}
	for _, t := range slices.Sorted(maps.Keys(b.tags)) {
		fn := cache.RemoveByTag
		if b.tags[t] == Expire {
			fn = cache.ExpireByTag
		}
		if err := call("tag", t, func() error { return fn(ctx, t, opts...) }); err != nil {
			return calls, err
		}
	}
	after := cache.Stats()
	switch {
	case after.L2Errors != before.L2Errors:
		return calls, fmt.Errorf("%w: %d L2 errors meanwhile", errNotDelivered, after.L2Errors-before.L2Errors)
	case after.BackplaneErrors != before.BackplaneErrors:
		return calls, fmt.Errorf("%w: %d backplane publish errors meanwhile", errNotDelivered, after.BackplaneErrors-before.BackplaneErrors)
	case after.RecoveryDropped != before.RecoveryDropped:
		return calls, fmt.Errorf("%w: %d writes dropped by auto-recovery meanwhile", errNotDelivered, after.RecoveryDropped-before.RecoveryDropped)
	case after.RecoveryQueued != 0:
		return calls, fmt.Errorf("%w: %d writes wait for auto-recovery", errNotDelivered, after.RecoveryQueued)
	case slow >= c.o.BackplanePublishTimeout:
		// core waits at most its publish timeout for a queued publish,
		// then returns with the message still unsent.
		return calls, fmt.Errorf("%w: a call took %v, not less than the publish timeout %v", errNotDelivered, slow, c.o.BackplanePublishTimeout)
	}
	return calls, nil
}

func sortedKeys(m map[string]Action) []string { return slices.Sorted(maps.Keys(m)) }
