package core

import (
	"context"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/l2"
)

// change is one change of the cache's contents: a new value of a key, its
// removal or expiry, a tag invalidation or a Clear, made on this node or
// received from another.
type change struct {
	action backplane.Action
	key    string // the key, the tag, or "" for Clear
	at     int64  // its version
	// remote: received from another node.
	remote bool
	// For a local ActionSet: the entry, whether L1 stores it (else the
	// older copy goes), its serialized value (nil: no L2 write) and when
	// it was made (where its L2 durations start).
	e       *entry
	storeL1 bool
	value   []byte
	now     int64
	// For tags and Clear: the L2 key of the marker.
	markerKey string
	// For a remote ActionSet: the entry the message carried, decoded (nil:
	// none).
	carried *l2.Envelope
}

// apply makes ch take effect on this node. Every change goes through it,
// local or remote: the runs of its key are superseded (none caches an older
// result over it), the floors raised (no older L2 entry is read as fresh),
// queued writes it replaces dropped (remote changes), then L1 and the tag
// and Clear times updated.
func (c *Cache) apply(ch *change) {
	switch ch.action {
	case backplane.ActionSet, backplane.ActionExpire, backplane.ActionRemove:
		removed := ch.action == backplane.ActionRemove
		c.flights.supersede(ch.key, removed, ch.at)
		kind := floorExpire
		switch ch.action {
		case backplane.ActionSet:
			kind = floorSet
		case backplane.ActionRemove:
			kind = floorRemove
		}
		c.floors.raise(ch.key, ch.at, kind)
		if ch.remote {
			c.rec.supersede(ch.key, ch.at)
		}
		if ch.carried != nil && c.l2 != nil {
			if e := c.l2.fromMessage(ch, c.cfg.defaultsOf(ch.key)); e != nil {
				ch.e, ch.storeL1 = e, true
				c.stats.bpValues.Add(1)
			}
		}
	}
	c.applyL1(ch, c.now())
}

// distribute writes a local change to L2 and then publishes it, in that
// order (a node told about a change must find it in L2). The caller waits
// for both unless the options say otherwise: BackgroundL2Writes (or an L2
// write slower than L2SoftTimeout) moves both to the background,
// BackgroundBackplane only the publish.
func (c *Cache) distribute(ctx context.Context, ch *change, eo *EntryOptions) {
	if c.l2 == nil && c.co == nil {
		return
	}
	hasL2 := c.l2.writes(eo)
	run := func(ctx context.Context) {
		var w *l2Write
		if hasL2 {
			w = c.l2.prepare(ctx, ch, eo)
		}
		value := c.valueOnBackplane(w, eo)
		if w != nil && c.announce(ctx, ch, w, value, eo) {
			return
		}
		switch {
		case w != nil:
			c.l2.write(ctx, w, eo)
		case hasL2 && c.l2.cond == nil && (ch.action == backplane.ActionRemove || ch.action == backplane.ActionExpire):
			c.l2.delete(ctx, ch.key, ch.at, eo)
		}
		c.co.publish(ctx, ch.action, ch.key, ch.at, value, eo)
	}
	if !hasL2 {
		run(ctx) // publish decides itself whether to wait
		return
	}
	if eo.BackgroundL2Writes {
		c.life.inBackground(ctx, run)
		return
	}
	if eo.L2SoftTimeout <= 0 {
		run(ctx)
		return
	}
	// Wait up to the soft timeout; past it the write goes on in the
	// background, bounded by the hard timeout.
	done := make(chan struct{})
	if !c.life.inBackground(ctx, func(ctx context.Context) { defer close(done); run(ctx) }) {
		return
	}
	t := time.NewTimer(eo.L2SoftTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// change makes a local change of version stamped from eo: applied here,
// then distributed.
func (c *Cache) change(ctx context.Context, ch *change, eo *EntryOptions) {
	c.apply(ch)
	c.distribute(ctx, ch, eo)
}

// Remove deletes key from the cache: the next read misses, and fail-safe
// cannot serve its old value. A factory running for key when Remove is
// called does not cache its result.
func (c *Cache) Remove(ctx context.Context, key string, opts ...EntryOption) error {
	return c.invalidate(ctx, OpRemove, key, opts)
}

// Expire marks key stale: the next GetOrSet calls the factory, but fail-safe
// may still serve the old value if the factory fails. Without fail-safe on
// the entry, Expire is Remove. A factory running for key when Expire is
// called does not cache its result as fresh.
func (c *Cache) Expire(ctx context.Context, key string, opts ...EntryOption) error {
	return c.invalidate(ctx, OpExpire, key, opts)
}

// RemoveByTag removes every entry tagged tag, as Remove does, including
// entries whose factory is running now.
func (c *Cache) RemoveByTag(ctx context.Context, tag string, opts ...EntryOption) error {
	return c.invalidate(ctx, OpRemoveByTag, tag, opts)
}

// ExpireByTag expires every entry tagged tag, as Expire does: fail-safe may
// still serve them.
func (c *Cache) ExpireByTag(ctx context.Context, tag string, opts ...EntryOption) error {
	return c.invalidate(ctx, OpExpireByTag, tag, opts)
}

// Clear invalidates every entry. With allowFailSafe true it expires them
// (fail-safe may still serve them); with false it removes them.
func (c *Cache) Clear(ctx context.Context, allowFailSafe bool, opts ...EntryOption) error {
	op := OpClear
	if allowFailSafe {
		op = opClearExpire
	}
	return c.invalidate(ctx, op, "", opts)
}

// opClearExpire is Clear(allowFailSafe = true) inside invalidate; observers
// see OpClear.
const opClearExpire Operation = 255

// invalidate is every invalidation: a key's (Remove, Expire), a tag's or
// everything (Clear). subject is the key or the tag.
func (c *Cache) invalidate(ctx context.Context, op Operation, subject string, opts []EntryOption) (err error) {
	if ctx == nil {
		return errNilContext
	}
	ch := &change{key: subject}
	switch op {
	case OpRemove, OpExpire:
		err = c.checkOp(subject)
		ch.action = backplane.ActionExpire
		if op == OpRemove {
			ch.action = backplane.ActionRemove
		}
	case OpRemoveByTag, OpExpireByTag:
		switch {
		case c.life.closed.Load():
			err = ErrClosed
		case subject == "":
			err = errEmptyTag
		default:
			err = c.cfg.checkTags("tag", []string{subject})
		}
		ch.action = backplane.ActionExpireTag
		if op == OpRemoveByTag {
			ch.action = backplane.ActionRemoveTag
		}
	default:
		if c.life.closed.Load() {
			err = ErrClosed
		}
		ch.action = backplane.ActionClearRemove
		if op == opClearExpire {
			ch.action, op = backplane.ActionClearExpire, OpClear
		}
	}
	if err != nil {
		return err
	}
	ctx, info := c.begin(ctx, op, subject)
	defer c.end(ctx, info, nil)
	key := "" // the options of a key's invalidation may be the key's own
	if op == OpRemove || op == OpExpire {
		key = subject
	}
	eo, err := c.cfg.resolveFor(key, opts)
	if err != nil {
		return err
	}
	if c.l2 != nil {
		ch.markerKey = c.l2.markerKey(ch)
	}
	if ch.at, err = c.stampChange(eo); err != nil {
		return err
	}
	c.change(ctx, ch, eo)
	if ch.action == backplane.ActionClearRemove {
		c.l1.clear() // every entry is older: free the memory now
	}
	return nil
}
