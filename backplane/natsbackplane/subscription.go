package natsbackplane

import (
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/stratacache/strata/backplane"
)

// stateEvent is a state change waiting for delivery.
type stateEvent struct {
	state backplane.State
	err   error
}

// subscription is one Subscribe: a NATS channel subscription and the
// goroutine that calls the callbacks, one at a time.
type subscription struct {
	b         *Backplane
	ns        *nats.Subscription
	msgs      chan *nats.Msg // filled by the client; full: it drops
	onMessage backplane.MessageFunc
	onState   backplane.StateFunc

	mu     sync.Mutex
	states []stateEvent
	wake   chan struct{} // capacity 1: a state was queued

	// Guarded by b.mu.
	down  bool   // Disconnected reported, Reconnected not yet
	since uint64 // the client's reconnect count at the last look

	dropped  int // messages the client dropped, as last reported
	done     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once
}

var _ backplane.Subscription = (*subscription)(nil)

func newSubscription(b *Backplane, onMessage backplane.MessageFunc, onState backplane.StateFunc) *subscription {
	return &subscription{
		b:         b,
		msgs:      make(chan *nats.Msg, b.queueSize),
		onMessage: onMessage,
		onState:   onState,
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		exited:    make(chan struct{}),
	}
}

// pushState queues a state change for the goroutine.
func (s *subscription) pushState(state backplane.State, err error) {
	s.mu.Lock()
	s.states = append(s.states, stateEvent{state, err})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run calls the callbacks until the subscription is stopped.
func (s *subscription) run() {
	defer close(s.exited)
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
			if !s.reportStates() {
				return
			}
		case m := <-s.msgs:
			// States queued before the message go first (Connected
			// before any payload).
			if !s.reportStates() {
				return
			}
			if n, err := s.ns.Dropped(); err == nil && n > s.dropped {
				lost := n - s.dropped
				s.dropped = n
				if !s.report(backplane.Lost, fmt.Errorf("%w (%d)", ErrSlowConsumer, lost)) {
					return
				}
			}
			if s.stopped() {
				return
			}
			s.onMessage(m.Data)
		}
	}
}

// reportStates reports the queued states, in order, and reports false if
// the subscription was stopped.
func (s *subscription) reportStates() bool {
	s.mu.Lock()
	states := s.states
	s.states = nil
	s.mu.Unlock()
	for _, e := range states {
		if !s.report(e.state, e.err) {
			return false
		}
	}
	return true
}

// report calls onState unless the subscription is stopped, and reports
// whether it was not.
func (s *subscription) report(state backplane.State, err error) bool {
	if s.stopped() {
		return false
	}
	if s.onState != nil {
		s.onState(state, err)
	}
	return true
}

func (s *subscription) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop unsubscribes and makes run return before its next callback; it does
// not wait.
func (s *subscription) stop() {
	s.stopOnce.Do(func() {
		close(s.done)
		_ = s.ns.Unsubscribe() // fails only when already gone with the connection
	})
}

// Close unsubscribes and waits for the callback in progress, if any: once
// it returns, no callback of the subscription runs again. It is idempotent
// and returns nil. It must not be called from the subscription's own
// callbacks.
func (s *subscription) Close() error {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	s.b.mu.Unlock()
	s.stop()
	<-s.exited
	return nil
}
