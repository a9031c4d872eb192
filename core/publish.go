package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/backplane"
)

// The coherence side of a Cache: the backplane. Every change made on this node is published
// (no value travels: set, remove, expire, a tag, a Clear); every message from
// another node makes this node drop or expire its own L1 copy, so the next read
// goes to L2. Messages carry a per-source sequence number: a gap, a
// disconnection, a reconnection or a transport's report of dropped messages
// means this node may have missed changes, and it then expires its whole L1
// (stale values stay usable by fail-safe only). While disconnected, an L1
// entry last confirmed longer ago than Options.BackplaneStalenessBound is not
// served fresh.

// coherence owns the backplane: publishing this node's changes (outbox,
// sequence numbers, signing, circuit breaker: publish.go), receiving the
// others' (verification, per-source tracking, drop logs: receive.go), and
// the liveness of the subscription (disconnections, the delivery watermark
// and its probes: liveness.go, watermark.go), which it reports through the
// unsure gate. A cache without a backplane has none (nil): its methods do
// nothing on a nil coherence.
type coherence struct {
	*env
	gate *unsureGate
	rec  *recovery
	// base is the cache's background context (cancelled by Close).
	base context.Context
	// apply applies a change from another node (Cache.apply); expireAll
	// expires what this node holds, after a possible loss of messages.
	apply     func(*change)
	expireAll func()

	bp             backplane.Backplane
	keyring        *backplane.Keyring // nil: messages are not signed
	breaker        breaker
	channel        string
	publishTimeout time.Duration
	// ignoreIncoming: Options.IgnoreIncomingBackplaneMessages.
	ignoreIncoming bool
	probeEvery     int64 // negative: no probes

	outbox chan outMsg
	pubMu  sync.Mutex // orders sendNow calls; guards seq and pubBuf
	seq    uint64
	pubBuf []byte

	subMu   sync.Mutex
	sub     backplane.Subscription
	sources sources
	wm      watermark

	// ready is closed once the first subscription is live; subErr holds
	// Subscribe's last error.
	ready     chan struct{}
	readyOnce sync.Once
	subErr    atomic.Pointer[error]
}

// newCoherence returns the coherence side of a cache with backplane bp (nil:
// none, and a nil side).
func newCoherence(cfg *config, v *env, bp backplane.Backplane, keys [][]byte, gate *unsureGate, rec *recovery, base context.Context) *coherence {
	if bp == nil {
		return nil
	}
	co := &coherence{
		env: v, gate: gate, rec: rec, base: base, bp: bp,
		channel:        backplane.ChannelName(v.name),
		publishTimeout: cfg.publishTimeout,
		probeEvery:     int64(cfg.probeEvery),
		ignoreIncoming: cfg.ignoreIncoming,
		outbox:         make(chan outMsg, 1024),
		ready:          make(chan struct{}),
	}
	co.breaker = breaker{name: "backplane", what: "backplane", duration: int64(cfg.bpBreakerDuration)}
	if len(keys) > 0 {
		co.keyring, _ = backplane.NewKeyring(keys...) // validated
	}
	co.sources.last = make(map[string]sourceSeq)
	// Disconnected until the subscription is live.
	gate.disconnectedAt.Store(max(v.now(), 1))
	gate.refresh()
	return co
}

// start starts the publisher, the subscriber and the prober, with goBackground.
func (co *coherence) start(goBackground func(func()) bool) {
	goBackground(func() { co.publisher(co.base) })
	goBackground(func() { co.subscriber(co.base) })
	goBackground(func() { co.prober(co.base) })
}

// outMsg is one message waiting for the publisher goroutine.
type outMsg struct {
	action      backplane.Action
	key         string
	at          int64
	traceParent string
	// value: the encoded entry a set message carries (nil: none).
	value []byte
	// done, if not nil, receives the outcome.
	done chan error
}

// publish sends a change to the other nodes: at once, waiting for the send
// unless eo.BackgroundBackplane, or through the recovery queue when the
// backplane is down. value, when not nil, is the encoded entry a set
// message carries (a replay from the recovery queue goes without it).
func (co *coherence) publish(ctx context.Context, action backplane.Action, key string, at int64, value []byte, eo *EntryOptions) {
	if co == nil || eo.SkipBackplane {
		return
	}
	if !co.breaker.allow(co.now()) {
		co.queuePublish(action, key, at)
		return
	}
	m := outMsg{action: action, key: key, at: at, traceParent: traceParentOf(ctx), value: value}
	if !eo.BackgroundBackplane {
		if len(co.outbox) == 0 && co.pubMu.TryLock() {
			// Nothing waits to be sent and no send is under way: send
			// on this goroutine, sparing the hand-off to the publisher
			// and back (the larger part of a publish's latency on a
			// busy machine). A message the publisher took just before
			// may go after this one: receivers order changes by their
			// versions, not by arrival, and sequence numbers are taken
			// in sending order all the same.
			err := co.sendLocked(co.base, &m, nil)
			co.pubMu.Unlock()
			if err != nil {
				co.queuePublish(action, key, at)
			}
			return
		}
		m.done = make(chan error, 1)
	}
	select {
	case co.outbox <- m:
	default:
		// The publisher is far behind: let recovery send it later.
		co.queuePublish(action, key, at)
		return
	}
	if m.done != nil {
		// Wait for the send, but no longer than one publish may take: a
		// backlog behind a slow transport must not hold writers.
		t := time.NewTimer(co.publishTimeout)
		defer t.Stop()
		select {
		case <-m.done:
		case <-t.C:
		case <-ctx.Done():
		case <-co.base.Done():
		}
	}
}

// queuePublish queues a message that could not be sent now for
// auto-recovery, which sends it (without a carried value) later.
func (co *coherence) queuePublish(action backplane.Action, key string, at int64) {
	co.rec.queue(&recoveryItem{kind: recoverPublish, key: key, at: at, action: action})
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
func (co *coherence) publisher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case m := <-co.outbox:
					if m.done != nil {
						m.done <- ErrClosed
					}
				default:
					return
				}
			}
		case m := <-co.outbox:
			err := co.sendNow(ctx, &m)
			if err != nil {
				co.queuePublish(m.action, m.key, m.at)
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
func (co *coherence) sendNow(ctx context.Context, m *outMsg) error {
	co.pubMu.Lock()
	defer co.pubMu.Unlock()
	return co.sendLocked(ctx, m, nil)
}

// sendWith publishes a change through send, the L2 store's write and
// publish in one call (Cache.announce), instead of the backplane's Publish,
// and queues its message for auto-recovery when that fails. It waits for
// pubMu, so that sequence numbers follow the order of the sends. It does
// not call send when the message cannot be encoded (reported, nil).
func (co *coherence) sendWith(ctx context.Context, action backplane.Action, key string, at int64, value []byte, send func(ctx context.Context, channel string, payload []byte) error) error {
	m := outMsg{action: action, key: key, at: at, traceParent: traceParentOf(ctx), value: value}
	co.pubMu.Lock()
	err := co.sendLocked(ctx, &m, send)
	co.pubMu.Unlock()
	if err != nil {
		co.queuePublish(action, key, at)
	}
	return err
}

// sendLocked is sendNow with co.pubMu held, publishing through send (nil:
// the backplane's Publish).
func (co *coherence) sendLocked(ctx context.Context, m *outMsg, send func(ctx context.Context, channel string, payload []byte) error) error {
	action, key, at, traceParent := m.action, m.key, m.at, m.traceParent
	pctx, cancel := withTimeout(ctx, co.publishTimeout)
	defer cancel()
	probe := action == backplane.ActionProbe
	var info *OpInfo
	if co.obs != nil && !probe {
		// The message carries the traceparent of the write that caused it
		// (the receipt links to that write); the publish op is told it too.
		info = &OpInfo{Op: OpBackplanePublish, Cache: co.name, Key: key, Start: time.Now(), Action: action.String(), TraceParent: traceParent}
		pctx = co.obs.start(pctx, info)
	}
	msg := backplane.Message{
		Cache: co.name, Source: co.source, Seq: co.seq + 1, Action: action,
		Key: key, Timestamp: at, TraceParent: traceParent, Value: m.value,
	}
	var err error
	co.pubBuf, err = msg.AppendBinary(co.pubBuf[:0])
	if err == nil && co.keyring != nil {
		co.pubBuf, err = co.keyring.Seal(co.pubBuf)
	}
	if err != nil {
		if info != nil {
			info.Err = err
			co.obs.end(pctx, info)
		}
		co.logger.ErrorContext(ctx, "strata: backplane message not encodable, dropped", "key", key, "err", err)
		return nil // retrying cannot help
	}
	co.wm.sending(msg.Seq, mono())
	if send != nil {
		err = send(pctx, co.channel, co.pubBuf)
	} else {
		err = co.bp.Publish(pctx, co.channel, co.pubBuf)
	}
	if info != nil {
		info.Err = err
		co.obs.end(pctx, info)
	}
	// The number is spent whatever the outcome: a publish that failed or
	// timed out may still have gone out, and a number sent twice would be
	// taken by the receivers for a replay and dropped. One that did not go
	// out shows them a gap (they expire their L1): safe.
	co.seq++
	if err != nil {
		co.stats.bpErrors.Add(1)
		co.event(ctx, EventBackplaneSent, key, err)
		co.logger.WarnContext(ctx, "strata: backplane publish failed", "key", key, "action", action.String(), "err", err)
		co.breaker.failed(ctx, co.env)
		return err
	}
	if !probe {
		co.stats.bpSent.Add(1)
		co.event(ctx, EventBackplaneSent, key, nil)
	}
	co.breaker.succeeded(ctx, co.env, co.rec)
	return nil
}
