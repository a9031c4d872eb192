package sim

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
)

// The fault layer of the backplane. Each incarnation of a node gets a simBP,
// a backplane.Backplane over a node of one membackplane.Bus: a publish goes
// through the Bus (which gives every subscriber the messages in one order),
// and each subscriber's share of it is scheduled by the fault layer on a queue
// of the subscription's own, delivered by a goroutine of its own at the
// virtual instant the faults decide (delayed, dropped, duplicated, reordered;
// an attacker's replays and the transport's state reports go through the same
// queue).

var (
	errSimDisconnected = errors.New("sim: backplane disconnected")
	errSimPublish      = errors.New("sim: publish failed")
	errSimSubscribe    = errors.New("sim: subscribe failed")
)

type simBP struct {
	w   *world
	inc *incarnation
	mb  *membackplane.Backplane

	mu     sync.Mutex
	subs   []*simSub
	closed bool
}

var _ backplane.Backplane = (*simBP)(nil)

// Publish sends payload through the Bus unless a fault says otherwise.
func (b *simBP) Publish(ctx context.Context, channel string, payload []byte) error {
	w := b.w
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: publish: %w", err)
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("sim: publish: %w", backplane.ErrClosed)
	}
	w.recordAttempt(b.inc, payload)
	now := w.now()
	node := b.inc.node
	if w.fault(FCut, node, now) != nil {
		return errSimDisconnected
	}
	// Decided by what the message says, not by its sequence number: two
	// of the node's goroutines sending at one instant take numbers in
	// either order.
	m := w.decodePayload(b.inc, payload)
	h := newHasher(w.seed, "publish")
	h.str(b.inc.label)
	h.i64(int64(now))
	h.u64(uint64(m.Action))
	h.str(m.Key)
	h.i64(m.Timestamp)
	d := h.draw()
	if f := w.fault(FPublishErr, node, now); f != nil && d.chance(f.P) {
		return errSimPublish
	}
	if f := w.fault(FPublishTimeout, node, now); f != nil && d.chance(f.P) {
		// The publish outlives its context. It does so at once: core
		// holds a mutex (pubMu) across Publish, and a goroutine waiting
		// for a sync.Mutex is not durably blocked, so a Publish sleeping
		// in virtual time while a prober waits for the mutex would stop
		// the bubble's clock for good. With probability D/bound the
		// server took the message all the same.
		if d.chance(float64(f.D) / float64(w.cfg.Bound)) {
			b.send(channel, payload, true)
		}
		return fmt.Errorf("sim: publish: %w", context.DeadlineExceeded)
	}
	b.send(channel, payload, false)
	return nil
}

// send records payload and hands it to the Bus, prefixed with its record's
// id so that every subscriber's share can be traced back to it.
func (b *simBP) send(channel string, payload []byte, late bool) {
	p := b.w.recordPublish(b.inc, payload, late)
	buf := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(payload)), p.id)
	buf = append(buf, payload...)
	if err := b.mb.Publish(context.Background(), channel, buf); err != nil {
		b.w.tracef(b.inc, "", "publish of %s lost by the bus: %v", p, err)
	}
}

// Subscribe subscribes through the Bus once the faults let it.
func (b *simBP) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	w := b.w
	now := w.now()
	node := b.inc.node
	h := newHasher(w.seed, "subscribe")
	h.str(b.inc.label)
	h.i64(int64(now))
	d := h.draw()
	delay := d.dur(0, w.cfg.SubscribeDelay)
	fail := false
	if f := w.fault(FSubscribe, node, now); f != nil {
		delay += d.dur(0, f.D)
		fail = d.chance(f.P)
	}
	t := time.NewTimer(delay)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil, fmt.Errorf("sim: subscribe: %w", ctx.Err())
	}
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("sim: subscribe: %w", backplane.ErrClosed)
	case fail:
		w.tracef(b.inc, "", "Subscribe fails (fault)")
		return nil, errSimSubscribe
	case w.fault(FCut, node, w.now()) != nil:
		w.tracef(b.inc, "", "Subscribe fails (disconnected)")
		return nil, errSimDisconnected
	}
	s := &simSub{bp: b, onMessage: onMessage, onState: onState, wake: make(chan struct{}, 1),
		done: make(chan struct{}), exited: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("sim: subscribe: %w", backplane.ErrClosed)
	}
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	go s.run()
	under, err := b.mb.Subscribe(context.Background(), channel, s.intercept, s.interceptState)
	if err != nil {
		s.stop()
		<-s.exited
		return nil, err
	}
	s.mu.Lock()
	s.under = under
	s.mu.Unlock()
	w.recordSub(b.inc, subLive)
	return s, nil
}

// liveSub returns the incarnation's live subscription, if any.
func (b *simBP) liveSub() *simSub {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		select {
		case <-s.done:
		default:
			return s
		}
	}
	return nil
}

// Close stops every subscription and leaves the Bus.
func (b *simBP) Close() error {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	return b.mb.Close()
}

// qEv is one event waiting in a subscription's queue.
type qEv struct {
	at      time.Duration
	ord     uint64
	pub     *pubRec
	payload []byte
	kind    deliveryKind
	state   backplane.State
	err     error
}

type evHeap []qEv

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].ord < h[j].ord
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(qEv)) }
func (h *evHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// simSub is one subscription: a queue ordered by delivery instant, and the
// goroutine that hands its events to core's callbacks, one at a time.
type simSub struct {
	bp        *simBP
	onMessage backplane.MessageFunc
	onState   backplane.StateFunc

	mu    sync.Mutex
	q     evHeap
	ord   uint64
	last  time.Duration // the latest instant scheduled in order (FIFO)
	under backplane.Subscription

	wake     chan struct{}
	done     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once
}

// push queues e. In order (fifo), it goes after everything queued in order
// before it, as a transport's queue would.
func (s *simSub) push(e qEv, fifo bool) {
	s.mu.Lock()
	if fifo && e.at <= s.last {
		e.at = s.last + time.Nanosecond
	}
	if e.at > s.last {
		s.last = e.at
	}
	s.ord++
	e.ord = s.ord
	heap.Push(&s.q, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// intercept receives this subscriber's share of a publish, at the instant
// of the publish, and schedules it.
func (s *simSub) intercept(payload []byte) {
	w := s.bp.w
	if len(payload) < 8 {
		return
	}
	p := w.pubByID(binary.LittleEndian.Uint64(payload))
	if p == nil {
		return
	}
	w.schedule(s, p, payload[8:])
}

// interceptState forwards the Bus's state reports (only Connected: the
// fault layer makes the others).
func (s *simSub) interceptState(state backplane.State, err error) {
	s.push(qEv{at: s.bp.w.now() + time.Microsecond, state: state, err: err}, true)
}

// run delivers the queue until the subscription stops.
func (s *simSub) run() {
	defer close(s.exited)
	w := s.bp.w
	var t *time.Timer
	for {
		s.mu.Lock()
		var wait time.Duration = -1
		var e qEv
		ready := false
		if len(s.q) > 0 {
			now := w.now()
			if s.q[0].at <= now {
				e = heap.Pop(&s.q).(qEv)
				ready = true
			} else {
				wait = s.q[0].at - now
			}
		}
		s.mu.Unlock()
		if !ready {
			var tc <-chan time.Time
			if wait >= 0 {
				if t == nil {
					t = time.NewTimer(wait)
				} else {
					t.Reset(wait)
				}
				tc = t.C
			}
			select {
			case <-s.done:
				if t != nil {
					t.Stop()
				}
				return
			case <-s.wake:
				if t != nil {
					t.Stop()
				}
			case <-tc:
			}
			continue
		}
		select {
		case <-s.done:
			return
		default:
		}
		if e.state != 0 {
			if e.state != backplane.Connected { // recorded when Subscribe returned
				w.recordSub(s.bp.inc, stateKind(e.state))
			}
			if s.onState != nil {
				s.onState(e.state, e.err)
			}
			continue
		}
		w.deliver(s, e)
	}
}

func stateKind(s backplane.State) subKind {
	switch s {
	case backplane.Disconnected:
		return subDisconnected
	case backplane.Reconnected:
		return subReconnected
	case backplane.Lost:
		return subLost
	}
	return subLive
}

func (s *simSub) stop() { s.stopOnce.Do(func() { close(s.done) }) }

// Close stops delivery and waits for the callback in progress.
func (s *simSub) Close() error {
	s.stop()
	<-s.exited
	s.mu.Lock()
	under := s.under
	s.under = nil
	s.mu.Unlock()
	if under != nil {
		return under.Close()
	}
	return nil
}

// schedule decides what becomes of subscriber s's share of publish p: the
// faults active on s's node at the instant of the publish, and a draw of
// its own, say when it arrives, if ever, and how many times.
func (w *world) schedule(s *simSub, p *pubRec, payload []byte) {
	inc := s.bp.inc
	node := inc.node
	now := w.now()
	h := newHasher(w.seed, "deliver")
	h.str(inc.label)
	h.str(p.inc.label)
	h.u64(uint64(p.msg.Action))
	h.str(p.msg.Key)
	h.i64(p.msg.Timestamp)
	h.i64(int64(p.at))
	d := h.draw()
	body := append([]byte(nil), payload...)
	if w.fault(FCut, node, now) != nil {
		w.recordDrop(inc, p, "disconnected")
		return
	}
	if f := w.fault(FLoss, node, now); f != nil && d.chance(f.P) {
		w.recordDrop(inc, p, "lost silently")
		return
	}
	if f := w.fault(FLostReport, node, now); f != nil && d.chance(f.P) {
		w.recordDrop(inc, p, "dropped, Lost reported")
		s.push(qEv{at: now + d.dur(time.Microsecond, w.cfg.MsgDelay), state: backplane.Lost,
			err: errors.New("sim: messages dropped")}, true)
		return
	}
	delay := d.dur(time.Microsecond, w.cfg.MsgDelay)
	fifo := true
	if f := w.fault(FLag, node, now); f != nil {
		delay += f.D
	}
	if f := w.fault(FReorder, node, now); f != nil {
		delay += d.dur(0, f.D)
		fifo = false
	}
	s.push(qEv{at: now + delay, pub: p, payload: body}, fifo)
	if f := w.fault(FDup, node, now); f != nil && d.chance(f.P) {
		s.push(qEv{at: now + delay + d.dur(time.Microsecond, f.D+time.Microsecond), pub: p, payload: body, kind: deliverDup}, fifo)
	}
}

// deliver hands one message to core and records it. For duplicates and
// replays it measures whether the receiver expired its L1 for it.
func (w *world) deliver(s *simSub, e qEv) {
	inc := s.bp.inc
	w.mu.Lock()
	c := inc.cache
	w.mu.Unlock()
	rec := &delivRec{to: inc, at: w.now(), pub: e.pub, kind: e.kind}
	var before uint64
	measure := c != nil
	if measure {
		before = c.Stats().LossEvents
	}
	s.onMessage(e.payload)
	if measure {
		rec.lossDelta = c.Stats().LossEvents - before
		rec.measured = true
	}
	w.recordDelivery(rec)
}
