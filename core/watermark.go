package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stratacache/strata/backplane"
)

// The delivery watermark. A node whose subscription is up may still hear
// of changes late: a transport that queues messages for it (a slow
// consumer, a loaded broker) instead of dropping them shows no gap and no
// disconnection, so nothing else tells the node that it is behind.
//
// Every transport delivers a channel's messages to each subscriber in the
// order the server accepted them, the sender's own subscription included.
// So a node that reads back one of its own messages, whose send began at t,
// has heard of every change published before t: t is its watermark. When a
// message it sent has not come back within half the staleness bound, the
// node counts as behind since its watermark and applies the rule of a
// disconnected node (Cache.unconfirmed): an L1 entry last confirmed more
// than the bound ago, and before the watermark, is not served fresh. A node
// that has sent nothing for Options.BackplaneProbeInterval (a quarter of the
// bound by default) sends a probe
// (backplane.ActionProbe), so that the watermark keeps moving while it is
// idle; the others use probes only for their gap and lateness checks.
//
// The watermark runs on the process's monotonic clock, not Options.Clock:
// delivery delays are real time. A node converts it to its own clock when
// it falls behind.

var errBehind = errors.New("core: this node's own backplane messages take longer than half the staleness bound to come back")

// wmRing is how many sends the watermark remembers.
const wmRing = 256

var monoBase = time.Now()

// mono reads the monotonic clock (nanoseconds since the process began).
func mono() int64 { return int64(time.Since(monoBase)) }

type watermark struct {
	mu sync.Mutex
	// sentAt[seq%wmRing] is when the send of this node's message seq
	// began, and sentSeq[seq%wmRing] which seq the slot holds.
	sentAt  [wmRing]int64
	sentSeq [wmRing]uint64
	// last is the highest sequence number sent (or being sent), and
	// lastAt when its send began.
	last   uint64
	lastAt int64
	// back is the highest of this node's sequence numbers read back, and
	// heard the watermark: when the send of that message began, or when
	// the subscription was last (re)established.
	back  uint64
	heard int64
	// echoed: an own message came back since the subscription was
	// established (a transport that never delivers them keeps the node
	// behind; it is logged once).
	echoed, warnedNoEcho bool
}

// sending records that the send of message seq begins at now. The message
// may come back before the send returns, so it is recorded first.
func (w *watermark) sending(seq uint64, now int64) {
	w.mu.Lock()
	w.sentAt[seq%wmRing], w.sentSeq[seq%wmRing] = now, seq
	w.last, w.lastAt = seq, now
	w.mu.Unlock()
}

// returned records that this node's message seq came back.
func (w *watermark) returned(seq uint64) {
	w.mu.Lock()
	if w.sentSeq[seq%wmRing] == seq && seq > w.back {
		w.back, w.echoed = seq, true
		w.heard = max(w.heard, w.sentAt[seq%wmRing])
	}
	w.mu.Unlock()
}

// reset makes now the watermark: the subscription was (re)established, so
// what was sent before says nothing any more.
func (w *watermark) reset(now int64) {
	w.mu.Lock()
	w.back, w.heard, w.echoed = w.last, now, false
	w.mu.Unlock()
}

// idle returns how long ago the last send began.
func (w *watermark) idle(now int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return now - w.lastAt
}

// behind reports whether a message sent has been out longer than limit,
// and the watermark.
func (w *watermark) behind(now, limit int64) (heard int64, behind, echoed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.back >= w.last {
		return w.heard, false, w.echoed
	}
	oldest := w.back + 1
	if w.last-w.back > wmRing {
		// More sends out than remembered: the oldest remembered one is
		// younger than the oldest out, so this errs on the side of
		// "not behind" only for a burst younger than limit.
		oldest = w.last - wmRing + 1
	}
	return w.heard, now-w.sentAt[oldest%wmRing] > limit, w.echoed
}

// prober sends probes and watches the watermark until ctx ends.
func (co *coherence) prober(ctx context.Context) {
	t := time.NewTicker(max(time.Duration(co.gate.bound/8), 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		co.probe(ctx)
	}
}

// probe sends a probe if the node has been idle for its probe interval,
// then marks the node behind, or no longer behind, by its watermark.
func (co *coherence) probe(ctx context.Context) {
	if co.gate.disconnectedAt.Load() != 0 {
		return // the disconnection rule applies; reset at reconnection
	}
	if co.probeEvery > 0 && co.wm.idle(mono()) >= co.probeEvery && len(co.outbox) == 0 && co.breaker.allow(co.now()) {
		// A probe carries its send time on the clock, not a version:
		// receivers measure lateness by it (trackSource).
		_ = co.sendNow(ctx, &outMsg{action: backplane.ActionProbe, at: co.rawNow()})
	}
	now := mono()
	heard, behind, echoed := co.wm.behind(now, co.gate.bound/2)
	if !behind {
		if co.gate.behindAt.Swap(0) != 0 {
			co.gate.refresh()
			co.event(ctx, EventBackplaneBehind, "caught_up", nil)
			co.logger.InfoContext(ctx, "strata: backplane delivery caught up")
		}
		return
	}
	at := max(co.now()-(now-heard), 1) // the watermark on the cache's clock
	if prev := co.gate.behindAt.Load(); prev == 0 || at > prev {
		co.gate.behindAt.Store(at)
		co.gate.refresh()
		if prev == 0 {
			co.stats.behindEvents.Add(1)
			co.event(ctx, EventBackplaneBehind, "behind", fmt.Errorf("%w: heard everything up to %v ago", errBehind,
				time.Duration(now-heard).Round(time.Millisecond)))
			co.logger.WarnContext(ctx, "strata: backplane delivery is behind: this node's own messages take longer than half the staleness bound to come back; L1 entries older than the bound are re-read",
				"heard_through", time.Duration(now-heard).Round(time.Millisecond).String()+" ago")
		}
	}
	co.wm.mu.Lock()
	warn := !echoed && !co.wm.warnedNoEcho
	co.wm.warnedNoEcho = co.wm.warnedNoEcho || warn
	co.wm.mu.Unlock()
	if warn {
		co.logger.WarnContext(ctx, "strata: none of this node's own backplane messages came back since it subscribed; a transport that does not deliver a sender's own messages (NATS NoEcho) keeps the node behind, re-reading L1 entries older than the staleness bound")
	}
}
