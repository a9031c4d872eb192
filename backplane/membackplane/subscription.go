package membackplane

import (
	"bytes"
	"sync"
	"time"

	"github.com/stratacache/strata/backplane"
)

// event is one item of a subscription's queue: a payload, or a state change
// when state is not zero.
type event struct {
	payload []byte
	state   backplane.State
	err     error
	at      time.Time // deliver no earlier than this (Fault.Delay); zero: now
}

// subscription is one Subscribe: a queue of events and the goroutine that
// calls the callbacks with them, in order.
type subscription struct {
	node      *Backplane
	channel   string
	onMessage backplane.MessageFunc
	onState   backplane.StateFunc

	mu       sync.Mutex
	events   []event // events[head:] wait for delivery
	head     int
	payloads int // payloads in events[head:]

	wake     chan struct{} // capacity 1: something was queued
	done     chan struct{} // closed by stop
	exited   chan struct{} // closed when run returns
	stopOnce sync.Once
}

var _ backplane.Subscription = (*subscription)(nil)

func newSubscription(n *Backplane, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) *subscription {
	return &subscription{
		node:      n,
		channel:   channel,
		onMessage: onMessage,
		onState:   onState,
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		exited:    make(chan struct{}),
	}
}

// pushMessage queues a copy of payload, to be delivered at at. When the
// queue already holds node.queueSize payloads it drops it, queues a
// backplane.Lost report instead (one per run of drops), and returns false.
func (s *subscription) pushMessage(payload []byte, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.payloads >= s.node.queueSize {
		if n := len(s.events); n == s.head || s.events[n-1].state != backplane.Lost {
			s.push(event{state: backplane.Lost, at: at})
		}
		return false
	}
	if payload == nil {
		payload = []byte{} // an empty payload arrives as one, never as a state
	}
	s.push(event{payload: bytes.Clone(payload), at: at})
	s.payloads++
	return true
}

// pushState queues a state report.
func (s *subscription) pushState(state backplane.State, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.push(event{state: state, err: err})
}

// push appends e and wakes the goroutine. The caller holds s.mu.
func (s *subscription) push(e event) {
	if s.head > 0 && len(s.events) == cap(s.events) {
		n := copy(s.events, s.events[s.head:])
		clear(s.events[n:])
		s.events = s.events[:n]
		s.head = 0
	}
	s.events = append(s.events, e)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next waits for the next event. It reports false once the subscription is
// stopped.
func (s *subscription) next() (event, bool) {
	for {
		s.mu.Lock()
		if s.head < len(s.events) {
			e := s.events[s.head]
			s.events[s.head] = event{}
			s.head++
			if s.head == len(s.events) {
				s.events, s.head = s.events[:0], 0
			}
			if e.state == 0 {
				s.payloads--
			}
			s.mu.Unlock()
			return e, true
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.done:
			return event{}, false
		}
	}
}

// run delivers events until the subscription is stopped.
func (s *subscription) run() {
	defer close(s.exited)
	defer s.node.wg.Done()
	for {
		e, ok := s.next()
		if !ok || !s.waitUntil(e.at) {
			return
		}
		select {
		case <-s.done:
			return
		default:
		}
		if e.state == 0 {
			s.node.delivered.Add(1)
			s.onMessage(e.payload)
		} else if s.onState != nil {
			s.onState(e.state, e.err)
		}
	}
}

// waitUntil sleeps until at, and reports false if the subscription is
// stopped first.
func (s *subscription) waitUntil(at time.Time) bool {
	if at.IsZero() {
		return true
	}
	d := time.Until(at)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// stop makes run return before its next callback; it does not wait.
func (s *subscription) stop() {
	s.stopOnce.Do(func() { close(s.done) })
}

// Close stops delivery and waits for the callback in progress, if any, to
// return: once Close returns, no callback of the subscription runs again. It
// is idempotent and always returns nil. It must not be called from the
// subscription's own callbacks.
func (s *subscription) Close() error {
	b := s.node.bus
	b.mu.Lock()
	if _, live := s.node.subs[s]; live {
		s.node.unsubscribe(s)
	}
	b.mu.Unlock()
	s.stop()
	<-s.exited
	return nil
}
