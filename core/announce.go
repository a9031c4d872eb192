package core

import (
	"context"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/l2"
)

// Two ways to spare round trips and reads when a change goes out:
//
//   - One round trip to write and announce: when the L2 store can publish
//     on the cache's backplane itself (l2.Announcer: redisl2 and
//     redisbackplane on the same Redis), the L2 write and the message go
//     in one call, atomic on the server, so no node gets the message
//     before the write is visible.
//   - Values on the backplane (EntryOptions.ValueOnBackplane): a set
//     message carries the encoded entry, and receivers install it in L1
//     (receive.go) instead of reading L2 on their next read.

// announce writes w to L2 and publishes ch's message in one round trip,
// when the store can (l2.Announcer, on this cache's backplane) and both
// circuit breakers let calls through. It reports whether it did; false: the
// caller writes and publishes apart. A failure is handled as each half's
// would be: the write and the message are queued for auto-recovery, and
// each side's breaker counts it.
func (c *Cache) announce(ctx context.Context, ch *change, w *l2Write, value []byte, eo *EntryOptions) bool {
	s, co := c.l2, c.co
	if s.ann == nil || co == nil || eo.SkipBackplane || ctx.Err() != nil {
		// A caller already gone goes the separate way too: its write
		// fails (queued), while its message goes at once, as always.
		return false
	}
	if now := c.now(); !s.breaker.allow(now) || !co.breaker.allow(now) {
		return false
	}
	var stored, sent bool
	err := s.call(ctx, OpL2Set, "set", w.key, eo.L2HardTimeout, func(ctx context.Context, _ *OpInfo) error {
		err := co.sendWith(ctx, ch.action, ch.key, ch.at, value, func(ctx context.Context, channel string, payload []byte) error {
			sent = true
			var err error
			stored, err = s.ann.SetIfNewerAndPublish(ctx, w.storeKey, w.b, w.ttl, w.version, channel, payload)
			return err
		})
		if err == nil && sent && !stored && s.clearFarFuture(ctx, w.storeKey) {
			stored, err = s.cond.SetIfNewer(ctx, w.storeKey, w.b, w.ttl, w.version)
		}
		return err
	})
	if !sent {
		// The message could not be encoded (reported): nothing went out,
		// the write goes alone.
		return false
	}
	s.wrote(w, stored, err)
	return true
}

// valueOnBackplane returns the encoded entry a set message carries (w's
// bytes), or nil: not asked for, no backplane, not a new entry, or longer
// than Options.BackplaneValueLimit.
func (c *Cache) valueOnBackplane(w *l2Write, eo *EntryOptions) []byte {
	if !eo.ValueOnBackplane || c.co == nil || w == nil || w.e == nil || len(w.b) > c.cfg.bpValueLimit {
		return nil
	}
	return w.b
}

// announcer returns store as an l2.Announcer if it can publish on bp (nil
// without a backplane).
func announcer(store l2.Store, bp backplane.Backplane) l2.Announcer {
	if a, ok := store.(l2.Announcer); ok && bp != nil && a.AnnouncesOn(bp) {
		return a
	}
	return nil
}
