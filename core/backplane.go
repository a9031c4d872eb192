package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/backplane"
)

// The backplane side of a Cache. Every change made on this node is published
// (no value travels: set, remove, expire, a tag, a Clear); every message from
// another node makes this node drop or expire its own L1 copy, so the next read
// goes to L2. Messages carry a per-source sequence number: a gap, a
// disconnection, a reconnection or a transport's report of dropped messages
// means this node may have missed changes, and it then expires its whole L1
// (stale values stay usable by fail-safe only). While disconnected, an L1
// entry last confirmed longer ago than Options.BackplaneStalenessBound is not
// served fresh.

// outMsg is one message waiting for the publisher goroutine.
type outMsg struct {
	action      backplane.Action
	key         string
	at          int64
	traceParent string
	// done, if not nil, receives the outcome.
	done chan error
}

// publish sends a change to the other nodes: at once, waiting for the send
// unless eo.BackgroundBackplane, or through the recovery queue when the
// backplane is down.
func (c *Cache) publish(ctx context.Context, action backplane.Action, key string, at int64, eo *EntryOptions) {
	if c.bp == nil || eo.SkipBackplane {
		return
	}
	if !c.bpBreaker.allow(c.now()) {
		c.queue(&recoveryItem{kind: recoverPublish, key: key, at: at, action: action})
		return
	}
	m := outMsg{action: action, key: key, at: at, traceParent: traceParentOf(ctx)}
	if !eo.BackgroundBackplane {
		if len(c.outbox) == 0 && c.pubMu.TryLock() {
			// Nothing waits to be sent and no send is under way: send
			// on this goroutine, sparing the hand-off to the publisher
			// and back (the larger part of a publish's latency on a
			// busy machine). A message the publisher took just before
			// may go after this one: receivers order changes by their
			// versions, not by arrival, and sequence numbers are taken
			// in sending order all the same.
			err := c.sendLocked(c.base, action, key, at, m.traceParent)
			c.pubMu.Unlock()
			if err != nil {
				c.queue(&recoveryItem{kind: recoverPublish, key: key, at: at, action: action})
			}
			return
		}
		m.done = make(chan error, 1)
	}
	select {
	case c.outbox <- m:
	default:
		// The publisher is far behind: let recovery send it later.
		c.queue(&recoveryItem{kind: recoverPublish, key: key, at: at, action: action})
		return
	}
	if m.done != nil {
		// Wait for the send, but no longer than one publish may take: a
		// backlog behind a slow transport must not hold writers.
		t := time.NewTimer(c.publishTimeout)
		defer t.Stop()
		select {
		case <-m.done:
		case <-t.C:
		case <-ctx.Done():
		case <-c.base.Done():
		}
	}
}

// traceParentOf returns the W3C traceparent observers put in ctx, if any.
func traceParentOf(ctx context.Context) string {
	if tp, ok := ctx.Value(TraceParentKey{}).(string); ok {
		return tp
	}
	return ""
}

// TraceParentKey is the context key under which an observer may put the W3C
// traceparent of the current operation (a string), so that the backplane
// message it causes carries it to the other nodes.
type TraceParentKey struct{}

// publisher sends the outbox in order, one message at a time, so sequence
// numbers follow the order of the sends (each send spends one, see
// sendLocked).
func (c *Cache) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case m := <-c.outbox:
					if m.done != nil {
						m.done <- ErrClosed
					}
				default:
					return
				}
			}
		case m := <-c.outbox:
			err := c.sendNow(ctx, m.action, m.key, m.at, m.traceParent)
			if err != nil {
				c.queue(&recoveryItem{kind: recoverPublish, key: m.key, at: m.at, action: m.action})
			}
			if m.done != nil {
				m.done <- err
			}
		}
	}
}

// sendNow encodes and publishes one message with the next sequence number.
// The publisher and the recovery loop call it, and publish sends through
// sendLocked directly when nothing is queued; pubMu orders them.
func (c *Cache) sendNow(ctx context.Context, action backplane.Action, key string, at int64, traceParent string) error {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	return c.sendLocked(ctx, action, key, at, traceParent)
}

// sendLocked is sendNow with c.pubMu held.
func (c *Cache) sendLocked(ctx context.Context, action backplane.Action, key string, at int64, traceParent string) error {
	pctx, cancel := withTimeout(ctx, c.publishTimeout)
	defer cancel()
	probe := action == backplane.ActionProbe
	var info *OpInfo
	if c.obs != nil && !probe {
		// The message carries the traceparent of the write that caused it
		// (the receipt links to that write); the publish op is told it too.
		info = &OpInfo{Op: OpBackplanePublish, Cache: c.name, Key: key, Start: time.Now(), Action: action.String(), TraceParent: traceParent}
		pctx = c.obs.start(pctx, info)
	}
	msg := backplane.Message{
		Cache: c.name, Source: c.source, Seq: c.seq + 1, Action: action,
		Key: key, Timestamp: at, TraceParent: traceParent,
	}
	var err error
	c.pubBuf, err = msg.AppendBinary(c.pubBuf[:0])
	if err == nil && c.keyring != nil {
		c.pubBuf, err = c.keyring.Seal(c.pubBuf)
	}
	if err != nil {
		if info != nil {
			info.Err = err
			c.obs.end(pctx, info)
		}
		c.logger.ErrorContext(ctx, "strata: backplane message not encodable, dropped", "key", key, "err", err)
		return nil // retrying cannot help
	}
	c.wm.sending(msg.Seq, mono())
	err = c.bp.Publish(pctx, c.channel, c.pubBuf)
	if info != nil {
		info.Err = err
		c.obs.end(pctx, info)
	}
	// The number is spent whatever the outcome: a publish that failed or
	// timed out may still have gone out, and a number sent twice would be
	// taken by the receivers for a replay and dropped. One that did not go
	// out shows them a gap (they expire their L1): safe.
	c.seq++
	if err != nil {
		c.stats.bpErrors.Add(1)
		c.event(ctx, EventBackplaneSent, key, err)
		c.logger.WarnContext(ctx, "strata: backplane publish failed", "key", key, "action", action.String(), "err", err)
		if c.bpBreaker.fail(c.now()) {
			c.event(ctx, EventCircuitBreakerChange, "backplane:open", nil)
		}
		return err
	}
	if !probe {
		c.stats.bpSent.Add(1)
		c.event(ctx, EventBackplaneSent, key, nil)
	}
	if c.bpBreaker.succeed() {
		c.event(ctx, EventCircuitBreakerChange, "backplane:closed", nil)
		c.recovery.wake()
	}
	return nil
}

// queue hands an item to auto-recovery (or drops it, counted, when recovery
// is off).
func (c *Cache) queue(it *recoveryItem) {
	if c.recovery == nil {
		c.stats.recoveryDropped.Add(1)
		return
	}
	if !c.recovery.add(it) {
		c.stats.recoveryDropped.Add(1)
		c.logger.Warn("strata: auto-recovery queue full (items or bytes): oldest items dropped", "max_items", c.recovery.max, "max_bytes", c.recovery.maxBytes)
	}
}

// subscriber subscribes to the cache's channel, retrying with backoff until
// it succeeds or ctx ends. Until then the node counts as disconnected.
func (c *Cache) subscriber(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sub, err := c.bp.Subscribe(sctx, c.channel, c.onMessage, c.onState)
		cancel()
		if err == nil {
			c.subMu.Lock()
			if ctx.Err() != nil {
				// Close ran while Subscribe was under way: it found no
				// subscription to close, so this one is closed here.
				c.subMu.Unlock()
				if err := sub.Close(); err != nil {
					c.logger.Warn("strata: backplane unsubscribe failed", "err", err)
				}
				return
			}
			c.sub = sub
			c.subMu.Unlock()
			c.firstConnected()
			return
		}
		if ctx.Err() != nil {
			return
		}
		c.subErr.Store(&err)
		c.logger.Warn("strata: backplane subscribe failed, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// onState handles a connection change of the subscription.
func (c *Cache) onState(s backplane.State, err error) {
	ctx := context.Background()
	switch s {
	case backplane.Connected:
		c.connected()
	case backplane.Disconnected:
		c.disconnectedAt.CompareAndSwap(0, max(c.now(), 1))
		c.refreshUnsure()
		c.logger.Warn("strata: backplane disconnected", "err", err)
	case backplane.Reconnected:
		c.logger.Info("strata: backplane reconnected: expiring L1, since messages may have been missed")
		c.possibleLoss(ctx, "reconnected")
		c.sources.resync() // numbers skipped while disconnected are no news
		c.connected()
	case backplane.Lost:
		c.logger.Warn("strata: backplane dropped messages: expiring L1", "err", err)
		c.possibleLoss(ctx, "lost")
	}
}

// firstConnected is called once, when the first subscription is live.
// Until then the node counted as disconnected; the entries it loaded
// meanwhile may have missed changes published before the subscription took
// effect, so, as at a reconnection, they are expired (not counted as a
// loss: nothing was lost that the bound did not cover).
func (c *Cache) firstConnected() {
	c.expireAll()
	c.connected()
	c.readyOnce.Do(func() { close(c.ready) })
}

func (c *Cache) connected() {
	c.wm.reset(mono())
	c.behindAt.Store(0)
	c.disconnectedAt.Store(0)
	c.refreshUnsure()
	c.recovery.wake()
}

// possibleLoss expires every L1 entry of this node (locally: nothing is
// published) and forgets which tag times it read from L2.
func (c *Cache) possibleLoss(ctx context.Context, why string) {
	c.stats.lossEvents.Add(1)
	c.expireAll()
	c.event(ctx, EventBackplaneLoss, why, errPossibleLoss)
}

// expireAll expires every L1 entry confirmed until now, and the results of
// the runs under way (confirmed as of their start), and forgets which tag
// times were read from L2: this node may not have heard of changes made
// before now.
func (c *Cache) expireAll() {
	now := c.preciseNow()
	c.tags.loss(now)
	c.tags.resetKnown(now)
}

var errPossibleLoss = errors.New("core: backplane messages may have been lost; L1 expired")

// onMessage applies a message from another node. Garbage and, with signing
// on, messages without a valid signature are dropped, counted, told to
// observers and logged (rate-limited), never a panic.
func (c *Cache) onMessage(payload []byte) {
	if c.keyring != nil {
		body, err := c.keyring.Open(nil, payload)
		if err != nil {
			c.stats.bpRejected.Add(1)
			c.dropped(EventBackplaneRejected, &c.sources.rejectedLog, "strata: backplane message without a valid signature dropped",
				err, len(payload), c.stats.bpRejected.Load())
			return
		}
		payload = body
	}
	m, err := backplane.DecodeMessage(payload)
	if err != nil {
		c.stats.bpCorrupt.Add(1)
		c.dropped(EventBackplaneCorrupt, &c.sources.corruptLog, "strata: undecodable backplane message dropped",
			err, len(payload), c.stats.bpCorrupt.Load())
		return
	}
	if m.Cache != c.name {
		return
	}
	if m.Source == c.source {
		c.wm.returned(m.Seq) // its own: the delivery watermark moves
		return
	}
	if m.Timestamp-c.preciseNow() > maxClockLead {
		// From a clock far ahead, or forged: applied, its time would
		// outlast every later change (a tag or Clear time, a floor).
		c.stats.bpRejected.Add(1)
		c.dropped(EventBackplaneRejected, &c.sources.rejectedLog, "strata: backplane message from far in the future dropped",
			fmt.Errorf("%w (source %q, %v ahead)", errFuture, m.Source, time.Duration(m.Timestamp-c.preciseNow()).Round(time.Second)), len(payload), c.stats.bpRejected.Load())
		return
	}
	v := c.trackSource(m.Source, m.Seq, m.Timestamp, m.Action == backplane.ActionProbe)
	if v == sourceReplayed {
		// A duplicate, or a message sent before one already seen: it
		// carries nothing new, and must not count as a late delivery
		// (which would expire every entry) whoever replays it.
		c.stats.bpRejected.Add(1)
		c.dropped(EventBackplaneRejected, &c.sources.rejectedLog, "strata: duplicate or replayed backplane message dropped",
			fmt.Errorf("%w (source %q, seq %d)", errReplayed, m.Source, m.Seq), len(payload), c.stats.bpRejected.Load())
		return
	}
	c.observe(m.Timestamp)
	ctx := context.Background()
	if m.Action == backplane.ActionProbe {
		c.sourceLoss(ctx, &m, v) // nothing changed
		return
	}
	if c.obs != nil {
		info := &OpInfo{Op: OpBackplaneReceive, Cache: c.name, Key: m.Key, Start: time.Now(), TraceParent: m.TraceParent,
			Action: m.Action.String(), ChangedAt: time.Unix(0, m.Timestamp)}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	c.stats.bpReceived.Add(1)
	c.event(ctx, EventBackplaneReceived, m.Key, nil)
	c.sourceLoss(ctx, &m, v)
	switch m.Action {
	case backplane.ActionSet, backplane.ActionExpire:
		// Drop (or expire, for fail-safe) an L1 copy older than the change;
		// the same version or a newer one stays. L2 entries older than it
		// are not fresh any more either (floors).
		c.floors.raise(m.Key, m.Timestamp, false)
		c.recovery.supersede(m.Key, m.Timestamp)
		c.flights.supersede(m.Key, false, m.Timestamp)
		now := c.now()
		c.l1.compute(m.Key, func(old *entry) (*entry, bool) {
			switch {
			case old == nil || old.created >= m.Timestamp:
				return nil, true
			case !old.failSafe:
				return nil, false
			}
			return old.expiredCopy(now), false
		})
	case backplane.ActionRemove:
		c.floors.raise(m.Key, m.Timestamp, true)
		c.recovery.supersede(m.Key, m.Timestamp)
		c.flights.supersede(m.Key, true, m.Timestamp)
		c.l1.compute(m.Key, func(old *entry) (*entry, bool) {
			return nil, old == nil || old.created >= m.Timestamp
		})
	case backplane.ActionRemoveTag, backplane.ActionExpireTag:
		c.tags.invalidate(m.Key, m.Timestamp, m.Action == backplane.ActionRemoveTag, c.now()-c.maxLife.Load())
	case backplane.ActionClearRemove, backplane.ActionClearExpire:
		c.tags.clear(m.Timestamp, m.Action == backplane.ActionClearRemove)
	}
}

// dropped tells observers about a message dropped as kind (corrupt or
// rejected) and logs it at Warn, at most once per dropLogInterval per kind:
// a flood of garbage or forgeries must not flood the logs. total is the
// count of such drops so far.
func (c *Cache) dropped(kind EventKind, l *dropLog, msg string, err error, n int, total uint64) {
	c.event(context.Background(), kind, "", err)
	if ok, suppressed := l.allow(c.now()); ok {
		c.logger.Warn(msg, "err", err, "len", n, "suppressed", suppressed, "total", total)
	}
}

// dropLogInterval is the least time between two log records of dropped
// messages of one kind.
const dropLogInterval = int64(time.Second)

// dropLog rate-limits the log records of one kind of dropped message.
type dropLog struct {
	// last is when the last record was written.
	last atomic.Int64
	// suppressed counts the drops not logged since then.
	suppressed atomic.Uint64
}

// allow reports whether a drop at now gets a record and, if so, how many
// drops since the previous record got none.
func (l *dropLog) allow(now int64) (ok bool, suppressed uint64) {
	last := l.last.Load()
	if now-last < dropLogInterval || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// errReplayed is the error of a dropped duplicate or replayed message.
var errReplayed = errors.New("core: backplane message already seen, or older than one seen from its source")

// errFuture is the error of a message, an L2 entry or a marker whose
// version is more than maxClockLead ahead of this node's clock.
var errFuture = errors.New("core: version more than 24h ahead of this node's clock")

// sourceLoss expires L1 when m, from another node, showed a gap in its
// source's sequence numbers or arrived late.
func (c *Cache) sourceLoss(ctx context.Context, m *backplane.Message, v sourceVerdict) {
	switch v {
	case sourceGap:
		c.logger.WarnContext(ctx, "strata: gap in backplane sequence numbers: expiring L1", "source", m.Source, "seq", m.Seq)
		c.possibleLoss(ctx, "gap")
	case sourceLate:
		c.logger.WarnContext(ctx, "strata: backplane messages arrive late (a slow consumer?): expiring L1", "source", m.Source, "seq", m.Seq)
		c.possibleLoss(ctx, "late")
	}
}

// sources is the receive side's state: per source, which sequence numbers
// were seen (to see gaps and drop replays) and how late its messages
// arrive; and the rate limits of the logs of dropped messages.
type sources struct {
	mu   sync.Mutex
	last map[string]sourceSeq
	// lateAt is when lateness last expired L1 (at most once per half
	// bound).
	lateAt int64

	corruptLog, rejectedLog dropLog
}

// replayWindow is how many sequence numbers below a source's highest one
// are remembered as seen or not: a message of the window not seen yet (a
// reordering) is applied, one seen or below the window is dropped.
const replayWindow = 64

type sourceSeq struct {
	// top is the highest sequence number seen; seenBits bit i says whether
	// top-i was seen.
	top      uint64
	seenBits uint64
	seen     int64
	// resync: the next number above top sets the baseline without counting
	// as a gap (after a reconnection, whose loss was already handled).
	resync bool
	// The lag of a probe (receipt time minus send time: the clocks'
	// offset plus the transport's delivery) is compared with the smallest
	// lag of the current and the previous window of half the staleness
	// bound each, so that a clock step of the sender or receiver, once
	// over, is forgotten within one bound. Only probes count: a change's
	// time is its version, which may be long before its message was sent
	// (a slow factory, a slow L2 write, a replay).
	winAt, minCur, minPrev int64
}

const noLag = math.MaxInt64

// baseLag returns the smallest lag of the current and previous windows
// before lag at now (noLag: none), then records lag.
func (s *sourceSeq) baseLag(now, lag, window int64) int64 {
	switch {
	case now-s.winAt >= 2*window:
		s.minPrev, s.minCur, s.winAt = noLag, noLag, now
	case now-s.winAt >= window:
		s.minPrev, s.minCur, s.winAt = s.minCur, noLag, now
	}
	base := min(s.minPrev, s.minCur)
	s.minCur = min(s.minCur, lag)
	return base
}

// sourceVerdict is what trackSource makes of a message.
type sourceVerdict uint8

const (
	sourceOK sourceVerdict = iota
	// sourceReplayed: seen already, or older than the window: dropped.
	sourceReplayed
	// sourceGap: numbers were skipped: messages may have been lost.
	sourceGap
	// sourceLate: the message waited in a queue.
	sourceLate
)

// resync makes each source's next new number a baseline, not a gap: the
// node reconnected and has expired L1 for what it may have missed.
func (s *sources) resync() {
	s.mu.Lock()
	for k, v := range s.last {
		v.resync = true
		s.last[k] = v
	}
	s.mu.Unlock()
}

// maxSources bounds the sources remembered; the least recently heard ones
// are forgotten first (a forgotten source's next message cannot show a gap).
const maxSources = 4096

// trackSource records message seq of source, stamped at changedAt (the
// sender's clock), and says whether it was seen already or is older than
// the replay window (replayed: drop it), shows skipped numbers (gap), or,
// for a probe, arrives late: more than half Options.BackplaneStalenessBound
// later than the source's quickest recent probe, as when this node consumes
// slower than others publish and the transport queues messages instead of
// dropping them. Lateness is reported at most once per half bound.
func (c *Cache) trackSource(source string, seq uint64, changedAt int64, probe bool) sourceVerdict {
	s := &c.sources
	s.mu.Lock()
	defer s.mu.Unlock()
	// Windows and rate limits run on the process's monotonic clock: a
	// step of the cache's clock must not stop them (nor start them again).
	now := mono()
	cur, ok := s.last[source]
	if ok && seq <= cur.top {
		d := cur.top - seq
		if d >= replayWindow || cur.seenBits&(1<<d) != 0 {
			return sourceReplayed
		}
		cur.seenBits |= 1 << d // a late one of the window
	}
	if !ok && len(s.last) >= maxSources {
		if _, known := s.last[source]; !known {
			oldest, at := "", int64(0)
			for k, v := range s.last {
				if oldest == "" || v.seen < at {
					oldest, at = k, v.seen
				}
			}
			delete(s.last, oldest)
		}
	}
	v := sourceOK
	switch {
	case !ok:
		cur = sourceSeq{top: seq, seenBits: 1, minPrev: noLag, minCur: noLag, winAt: now}
	case seq > cur.top:
		if seq > cur.top+1 && !cur.resync {
			v = sourceGap
		}
		if d := seq - cur.top; d < replayWindow {
			cur.seenBits = cur.seenBits<<d | 1
		} else {
			cur.seenBits = 1
		}
		cur.top, cur.resync = seq, false
	}
	cur.seen = now
	if !probe {
		s.last[source] = cur
		return v
	}
	// A probe carries its send time on the sender's clock: the lag is
	// the clocks' offset plus the delivery time, constant but for the
	// delivery (versions, which a clock step leaves ahead of the clocks
	// for a while, do not enter it).
	lag := c.rawNow() - changedAt
	base := cur.baseLag(now, lag, c.staleBound/2)
	s.last[source] = cur
	if v == sourceOK && base != noLag && lag-base > c.staleBound/2 && now-s.lateAt > c.staleBound/2 {
		s.lateAt = now
		v = sourceLate
	}
	return v
}
