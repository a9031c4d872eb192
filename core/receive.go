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
	"github.com/stratacache/strata/l2"
)

// onMessage applies a message from another node. Garbage and, with signing
// on, messages without a valid signature are dropped, counted, told to
// observers and logged (rate-limited), never a panic.
func (co *coherence) onMessage(payload []byte) {
	if co.keyring != nil {
		body, err := co.keyring.Open(nil, payload)
		if err != nil {
			co.stats.bpRejected.Add(1)
			co.dropped(EventBackplaneRejected, &co.sources.rejectedLog, "strata: backplane message without a valid signature dropped",
				err, len(payload), co.stats.bpRejected.Load())
			return
		}
		payload = body
	}
	m, err := backplane.DecodeMessage(payload)
	if err != nil {
		co.stats.bpCorrupt.Add(1)
		co.dropped(EventBackplaneCorrupt, &co.sources.corruptLog, "strata: undecodable backplane message dropped",
			err, len(payload), co.stats.bpCorrupt.Load())
		return
	}
	if m.Cache != co.name {
		return
	}
	if m.Source == co.source {
		co.wm.returned(m.Seq) // its own: the delivery watermark moves
		return
	}
	if co.ignoreIncoming {
		return
	}
	future := co.tooFarAhead(m.Timestamp)
	v := co.trackSource(m.Source, m.Seq, m.Timestamp, m.Action == backplane.ActionProbe && !future)
	if v == sourceReplayed {
		// A duplicate, or a message sent before one already seen: it
		// carries nothing new, and must not count as a late delivery
		// (which would expire every entry) whoever replays it.
		co.stats.bpRejected.Add(1)
		co.dropped(EventBackplaneRejected, &co.sources.rejectedLog, "strata: duplicate or replayed backplane message dropped",
			fmt.Errorf("%w (source %q, seq %d)", errReplayed, m.Source, m.Seq), len(payload), co.stats.bpRejected.Load())
		return
	}
	ctx := context.Background()
	if future {
		// From a clock far ahead, or forged: applied, its time would
		// outlast every later change (a tag or Clear time, a floor). Its
		// number is tracked (no gap later), and the change it announced
		// is lost to this node: it expires its L1, as for a lost message.
		co.stats.bpRejected.Add(1)
		co.dropped(EventBackplaneRejected, &co.sources.rejectedLog, "strata: backplane message from far in the future dropped",
			fmt.Errorf("%w (source %q, %v ahead)", errFuture, m.Source, time.Duration(m.Timestamp-co.preciseNow()).Round(time.Second)), len(payload), co.stats.bpRejected.Load())
		if m.Action != backplane.ActionProbe {
			co.possibleLoss(ctx, "future")
		}
		return
	}
	co.observe(m.Timestamp)
	if m.Action == backplane.ActionProbe {
		co.sourceLoss(ctx, &m, v) // nothing changed
		return
	}
	if co.obs != nil {
		info := &OpInfo{Op: OpBackplaneReceive, Cache: co.name, Key: m.Key, Start: time.Now(), TraceParent: m.TraceParent,
			Action: m.Action.String(), ChangedAt: time.Unix(0, m.Timestamp)}
		ctx = co.obs.start(ctx, info)
		defer co.obs.end(ctx, info)
	}
	co.event(ctx, EventBackplaneReceived, m.Key, nil)
	co.sourceLoss(ctx, &m, v)
	co.apply(&change{action: m.Action, key: m.Key, at: m.Timestamp, remote: true, carried: co.carried(&m, len(payload))})
	// Counted once applied: a caller that waits for the count to move
	// and then reads sees the change.
	co.stats.bpReceived.Add(1)
}

// carried decodes the entry a set message carries (values on the
// backplane), or returns nil: none, or one that does not decode or is not
// the message's version, dropped as corrupt (counted, logged at most once
// per dropLogInterval: the message then only invalidates).
func (co *coherence) carried(m *backplane.Message, n int) *l2.Envelope {
	if m.Value == nil {
		return nil
	}
	env, err := l2.DecodeEnvelope(m.Value)
	if err == nil && (env.Created != m.Timestamp || env.Flags&l2.FlagTombstone != 0) {
		err = fmt.Errorf("%w: the entry of a set message of version %d has version %d (flags %#x)", l2.ErrCorrupt, m.Timestamp, env.Created, env.Flags)
	}
	if err != nil {
		co.stats.bpCorrupt.Add(1)
		co.dropped(EventBackplaneCorrupt, &co.sources.corruptLog, "strata: the entry a backplane message carried does not decode; the message only invalidates",
			err, n, co.stats.bpCorrupt.Load())
		return nil
	}
	return &env
}

// dropped tells observers about a message dropped as kind (corrupt or
// rejected) and logs it at Warn, at most once per dropLogInterval per kind:
// a flood of garbage or forgeries must not flood the logs. total is the
// count of such drops so far.
func (co *coherence) dropped(kind EventKind, l *dropLog, msg string, err error, n int, total uint64) {
	co.event(context.Background(), kind, "", err)
	if ok, suppressed := l.allow(co.now()); ok {
		co.logger.Warn(msg, "err", err, "len", n, "suppressed", suppressed, "total", total)
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
func (co *coherence) sourceLoss(ctx context.Context, m *backplane.Message, v sourceVerdict) {
	switch v {
	case sourceGap:
		co.logger.WarnContext(ctx, "strata: gap in backplane sequence numbers: expiring L1", "source", m.Source, "seq", m.Seq)
		co.possibleLoss(ctx, "gap")
	case sourceLate:
		co.logger.WarnContext(ctx, "strata: backplane messages arrive late (a slow consumer?): expiring L1", "source", m.Source, "seq", m.Seq)
		co.possibleLoss(ctx, "late")
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
func (co *coherence) trackSource(source string, seq uint64, changedAt int64, probe bool) sourceVerdict {
	s := &co.sources
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
	lag := co.rawNow() - changedAt
	base := cur.baseLag(now, lag, co.gate.bound/2)
	s.last[source] = cur
	if v == sourceOK && base != noLag && lag-base > co.gate.bound/2 && now-s.lateAt > co.gate.bound/2 {
		s.lateAt = now
		v = sourceLate
	}
	return v
}
