package rabbitbackplane

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/backplane"
)

// control is a change for a subscription's goroutine: new deliveries (nil
// when disconnected) and the state to report.
type control struct {
	deliveries <-chan amqp.Delivery
	gen        uint64
	state      backplane.State
	err        error
}

// subscription is one Subscribe: its channel and queue on the current
// connection, and the goroutine that calls the callbacks, one at a time.
type subscription struct {
	b         *Backplane
	channel   string
	onMessage backplane.MessageFunc
	onState   backplane.StateFunc

	ch *amqp.Channel // guarded by b.mu; nil once closed

	mu       sync.Mutex
	controls []control
	wake     chan struct{} // capacity 1: a control was queued

	done     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once
}

var _ backplane.Subscription = (*subscription)(nil)

func newSubscription(b *Backplane, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) *subscription {
	return &subscription{
		b:         b,
		channel:   channel,
		onMessage: onMessage,
		onState:   onState,
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		exited:    make(chan struct{}),
	}
}

// push queues c for the goroutine. It never blocks.
func (s *subscription) push(c control) {
	s.mu.Lock()
	s.controls = append(s.controls, c)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ackFlush is the longest a handled delivery waits for its
// acknowledgement when its batch does not fill.
const ackFlush = time.Second

// run calls the callbacks until the subscription is stopped.
func (s *subscription) run() {
	defer close(s.exited)
	var deliveries <-chan amqp.Delivery
	var gen uint64
	// unacked counts the deliveries of the current channel handled but not
	// acknowledged yet: they are acknowledged together (multiple), once
	// they are half the prefetch, so that the server never waits for an
	// acknowledgement to send more, while a message costs neither node nor
	// server an acknowledgement frame of its own (a write on the socket
	// after each callback delayed whatever the callback woke).
	// A batch that does not fill is acknowledged ackFlush after its first
	// delivery: RabbitMQ closes a channel that leaves a delivery
	// unacknowledged for its consumer_timeout (30 minutes by default), and
	// a quiet channel with a large prefetch could take that long to fill.
	var unacked int
	var last amqp.Delivery // the latest handled, while unacked > 0
	ackEvery := max((s.b.prefetch+1)/2, 1)
	flush := time.NewTimer(ackFlush)
	flush.Stop()
	defer flush.Stop()
	ack := func() {
		if unacked > 0 {
			_ = last.Ack(true) // fails only with the channel, which takes the queue with it
		}
		unacked, last = 0, amqp.Delivery{}
		flush.Stop()
	}
	// apply takes the queued controls in order: it switches deliveries and
	// reports states. It reports false once the subscription is stopped.
	apply := func() bool {
		s.mu.Lock()
		cs := s.controls
		s.controls = nil
		s.mu.Unlock()
		for _, c := range cs {
			deliveries, gen, unacked, last = c.deliveries, c.gen, 0, amqp.Delivery{}
			flush.Stop()
			if s.stopped() {
				return false
			}
			if s.onState != nil {
				s.onState(c.state, c.err)
			}
		}
		return true
	}
	for {
		select {
		case <-s.done:
			return
		case <-s.wake:
			if !apply() {
				return
			}
		case <-flush.C:
			ack()
		case d, ok := <-deliveries:
			if !ok {
				deliveries = nil
				s.b.channelLost(gen)
				continue
			}
			if !apply() || s.stopped() { // Connected before any payload
				return
			}
			s.onMessage(d.Body)
			last = d
			if unacked++; unacked >= ackEvery {
				ack()
			} else if unacked == 1 {
				flush.Reset(ackFlush)
			}
		}
	}
}

func (s *subscription) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop makes run return before its next callback; it does not wait.
func (s *subscription) stop() {
	s.stopOnce.Do(func() { close(s.done) })
}

// Close stops delivery, waits for the callback in progress, if any, then
// closes the subscription's channel (the server deletes its queue). Once it
// returns no callback of the subscription runs again. It is idempotent and
// returns nil. It must not be called from the subscription's own callbacks.
func (s *subscription) Close() error {
	s.b.mu.Lock()
	delete(s.b.subs, s)
	ch := s.ch
	s.ch = nil
	s.b.mu.Unlock()
	s.stop()
	<-s.exited
	if ch != nil {
		_ = ch.Close()
	}
	return nil
}
