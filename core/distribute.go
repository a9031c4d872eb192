package core

import (
	"context"
	"time"

	"github.com/stratacache/strata/backplane"
)

// change is one local change to tell L2 and the other nodes about.
type change struct {
	action backplane.Action
	key    string // the key, the tag, or "" for Clear
	at     int64  // its version
	// For ActionSet: the entry and its serialized value (nil: no L2 write).
	e     *entry
	value []byte
	now   int64
	// For tags and Clear: the L2 key of the marker.
	markerKey string
}

// distribute writes a change to L2 and then publishes it, in that order (a
// node told about a change must find it in L2). The caller waits for both
// unless the options say otherwise: BackgroundL2Writes (or an L2 write slower
// than L2SoftTimeout) moves both to the background, BackgroundBackplane only
// the publish.
func (c *Cache) distribute(ctx context.Context, ch change, eo *EntryOptions) {
	if c.l2 == nil && c.bp == nil {
		return
	}
	hasL2 := c.l2 != nil && !eo.SkipL2Write
	run := func(ctx context.Context) {
		if hasL2 {
			switch {
			case ch.action == backplane.ActionSet && ch.value != nil:
				c.writeL2(ctx, ch.key, ch.e, ch.value, eo, ch.now)
			case ch.action == backplane.ActionRemove || ch.action == backplane.ActionExpire:
				c.deleteL2(ctx, ch.key, ch.at, eo)
			case ch.markerKey != "":
				c.writeMarker(ctx, ch.markerKey, ch.key, ch.at, eo)
			}
		}
		c.publish(ctx, ch.action, ch.key, ch.at, eo)
	}
	if !hasL2 {
		run(ctx) // publish decides itself whether to wait
		return
	}
	if eo.BackgroundL2Writes {
		c.inBackground(ctx, run)
		return
	}
	if eo.L2SoftTimeout <= 0 {
		run(ctx)
		return
	}
	// Wait up to the soft timeout; past it the write goes on in the
	// background, bounded by the hard timeout.
	done := make(chan struct{})
	if !c.inBackground(ctx, func(ctx context.Context) { defer close(done); run(ctx) }) {
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

// inBackground runs fn on a background goroutine with a context that keeps
// ctx's values, is not cancelled with it, and is cancelled by Close.
func (c *Cache) inBackground(ctx context.Context, fn func(context.Context)) bool {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ok := c.goBackground(func() {
		defer cancel()
		stop := context.AfterFunc(c.base, cancel)
		defer stop()
		fn(bctx)
	})
	if !ok {
		cancel()
	}
	return ok
}
