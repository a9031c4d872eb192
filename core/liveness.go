package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratacache/strata/backplane"
)

// The liveness of the subscription: subscribing (retrying until it works),
// connection changes, and possible losses of messages, after which the
// node expires what it holds.

// subscriber subscribes to the cache's channel, retrying with backoff until
// it succeeds or ctx ends. Until then the node counts as disconnected.
func (co *coherence) subscriber(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sub, err := co.bp.Subscribe(sctx, co.channel, co.onMessage, co.onState)
		cancel()
		if err == nil {
			co.subMu.Lock()
			if ctx.Err() != nil {
				// Close ran while Subscribe was under way: it found no
				// subscription to close, so this one is closed here.
				co.subMu.Unlock()
				if err := sub.Close(); err != nil {
					co.logger.Warn("strata: backplane unsubscribe failed", "err", err)
				}
				return
			}
			co.sub = sub
			co.subMu.Unlock()
			co.firstConnected()
			return
		}
		if ctx.Err() != nil {
			return
		}
		co.subErr.Store(&err)
		co.logger.Warn("strata: backplane subscribe failed, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// onState handles a connection change of the subscription.
func (co *coherence) onState(s backplane.State, err error) {
	ctx := context.Background()
	switch s {
	case backplane.Connected:
		co.connected()
	case backplane.Disconnected:
		co.gate.disconnectedAt.CompareAndSwap(0, max(co.now(), 1))
		co.gate.refresh()
		co.logger.Warn("strata: backplane disconnected", "err", err)
	case backplane.Reconnected:
		co.logger.Info("strata: backplane reconnected: expiring L1, since messages may have been missed")
		co.possibleLoss(ctx, "reconnected")
		co.sources.resync() // numbers skipped while disconnected are no news
		co.connected()
	case backplane.Lost:
		co.logger.Warn("strata: backplane dropped messages: expiring L1", "err", err)
		co.possibleLoss(ctx, "lost")
	}
}

// firstConnected is called once, when the first subscription is live.
// Until then the node counted as disconnected; the entries it loaded
// meanwhile may have missed changes published before the subscription took
// effect, so, as at a reconnection, they are expired (not counted as a
// loss: nothing was lost that the bound did not cover).
func (co *coherence) firstConnected() {
	co.expireAll()
	co.connected()
	co.readyOnce.Do(func() { close(co.ready) })
}

func (co *coherence) connected() {
	co.wm.reset(mono())
	co.gate.behindAt.Store(0)
	co.gate.disconnectedAt.Store(0)
	co.gate.refresh()
	co.rec.wake()
}

// possibleLoss expires every L1 entry of this node (locally: nothing is
// published) and forgets which tag times it read from L2.
func (co *coherence) possibleLoss(ctx context.Context, why string) {
	co.stats.lossEvents.Add(1)
	co.expireAll()
	co.event(ctx, EventBackplaneLoss, why, errPossibleLoss)
}

var errPossibleLoss = errors.New("core: backplane messages may have been lost; L1 expired")

// close closes the subscription, if any (Close, after cancelling the
// subscriber).
func (co *coherence) close() {
	if co == nil {
		return
	}
	co.subMu.Lock()
	defer co.subMu.Unlock()
	if co.sub != nil {
		if err := co.sub.Close(); err != nil {
			co.logger.Warn("strata: backplane unsubscribe failed", "err", err)
		}
	}
}

// readyC returns a channel closed once the first subscription is live
// (closed already without a backplane).
func (co *coherence) readyC() <-chan struct{} {
	if co == nil {
		return closedDone
	}
	return co.ready
}

// closedDone is a closed channel.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// waitReady waits up to d for the first subscription.
func (co *coherence) waitReady(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-co.ready:
		return nil
	case <-t.C:
	}
	e := &SubscribeError{Backplane: fmt.Sprintf("%T", co.bp), Channel: co.channel, Timeout: d}
	if p := co.subErr.Load(); p != nil {
		e.Err = *p
	}
	return e
}
