package natsbackplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stratacache/strata/backplane"
)

// DefaultQueueSize is the number of messages that may wait for delivery to
// one subscription when Options.QueueSize is zero.
const DefaultQueueSize = 8192

// DefaultFlushTimeout bounds Subscribe's wait for the server when its
// context has no deadline and Options.FlushTimeout is zero.
const DefaultFlushTimeout = 10 * time.Second

// ErrNotConnected is wrapped by the error of Publish while the connection is
// not up (connecting, reconnecting, closed), and is the error reported with
// backplane.Disconnected when the client gives no better one.
var ErrNotConnected = errors.New("natsbackplane: not connected")

// ErrSlowConsumer is wrapped by the error reported with backplane.Lost: the
// subscription's queue was full and the client dropped messages.
var ErrSlowConsumer = errors.New("natsbackplane: slow consumer, messages dropped")

// Options configures a Backplane. A nil *Options gives the defaults.
type Options struct {
	// QueueSize bounds the messages received but not yet delivered to one
	// subscription. When it is full the client drops further messages and
	// the subscription's StateFunc gets backplane.Lost. Zero means
	// DefaultQueueSize; it must not be negative.
	QueueSize int
	// FlushTimeout bounds how long Subscribe waits for the server to confirm
	// the subscription when its context has no deadline. Zero means
	// DefaultFlushTimeout; it must not be negative.
	FlushTimeout time.Duration
}

// Backplane is a backplane.Backplane on core NATS subjects: each channel is
// a subject, Publish is a NATS publish and each Subscribe a NATS
// subscription, all on one *nats.Conn. Its methods are safe for concurrent
// use.
type Backplane struct {
	nc           *nats.Conn
	owned        bool // made by the URL opener: Close closes nc
	queueSize    int
	flushTimeout time.Duration

	status chan nats.Status // the connection's status changes
	done   chan struct{}    // closed by Close
	wg     sync.WaitGroup   // the monitor and every subscription goroutine

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
}

var _ backplane.Backplane = (*Backplane)(nil)

// New returns a Backplane on nc, a connection the caller made and keeps:
// Close does not close it. nc may still be connecting; Subscribe waits for
// it (within its context) and Publish fails until it is up. opts may be nil.
//
// The Backplane watches nc's status with nc.StatusChanged, which leaves the
// connection's own handlers (disconnect, reconnect, error) to the caller.
func New(nc *nats.Conn, opts *Options) (*Backplane, error) {
	if nc == nil {
		return nil, errors.New("natsbackplane: nil *nats.Conn")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.QueueSize < 0:
		return nil, fmt.Errorf("natsbackplane: Options.QueueSize is %d, want 0 (default) or more", o.QueueSize)
	case o.FlushTimeout < 0:
		return nil, fmt.Errorf("natsbackplane: Options.FlushTimeout is %v, want 0 (default) or more", o.FlushTimeout)
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("natsbackplane: %w", nats.ErrConnectionClosed)
	}
	b := &Backplane{
		nc:           nc,
		queueSize:    o.QueueSize,
		flushTimeout: o.FlushTimeout,
		done:         make(chan struct{}),
		subs:         make(map[*subscription]struct{}),
	}
	if b.queueSize == 0 {
		b.queueSize = DefaultQueueSize
	}
	if b.flushTimeout == 0 {
		b.flushTimeout = DefaultFlushTimeout
	}
	b.status = nc.StatusChanged()
	reconnects := nc.Stats().Reconnects
	b.wg.Go(func() { b.monitor(reconnects) })
	return b, nil
}

// Publish sends payload on the subject channel. It returns once the client
// has buffered the message (NATS core is at most once: no acknowledgement
// is awaited). It fails at once, with an error wrapping ErrNotConnected,
// while the connection is not up, instead of letting the client buffer the
// message for after a reconnect; with an error wrapping ctx.Err() when ctx
// is done; and with backplane.ErrClosed after Close. It does not keep
// payload.
func (b *Backplane) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbackplane: publish on %q: %w", channel, err)
	}
	if b.isClosed() {
		return fmt.Errorf("natsbackplane: publish on %q: %w", channel, backplane.ErrClosed)
	}
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsbackplane: publish on %q: %w (%v)", channel, ErrNotConnected, st)
	}
	if err := b.nc.Publish(channel, payload); err != nil {
		return fmt.Errorf("natsbackplane: publish on %q: %w", channel, err)
	}
	return nil
}

// Subscribe subscribes to the subject channel and returns once the server
// has the subscription (a round trip to the server, bounded by ctx, or by
// Options.FlushTimeout when ctx has no deadline). Messages are delivered to
// onMessage from one goroutine per subscription; state changes go to
// onState (which may be nil) from the same goroutine: backplane.Connected
// first, then Disconnected and Reconnected as the connection drops and comes
// back (the client re-subscribes by itself), and Lost when the
// subscription's queue overflowed.
//
// The Subscription's Close must not be called from its own callbacks: it
// waits for the callback in progress to return.
func (b *Backplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	if onMessage == nil {
		return nil, fmt.Errorf("natsbackplane: subscribe to %q: nil MessageFunc", channel)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsbackplane: subscribe to %q: %w", channel, err)
	}
	if b.isClosed() {
		return nil, fmt.Errorf("natsbackplane: subscribe to %q: %w", channel, backplane.ErrClosed)
	}
	s := newSubscription(b, onMessage, onState)
	ns, err := b.nc.ChanSubscribe(channel, s.msgs)
	if err != nil {
		return nil, fmt.Errorf("natsbackplane: subscribe to %q: %w", channel, err)
	}
	s.ns = ns
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, b.flushTimeout)
		defer cancel()
	}
	if err := b.nc.FlushWithContext(fctx); err != nil {
		_ = ns.Unsubscribe()
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return nil, fmt.Errorf("natsbackplane: subscribe to %q: %w", channel, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = ns.Unsubscribe()
		return nil, fmt.Errorf("natsbackplane: subscribe to %q: %w", channel, backplane.ErrClosed)
	}
	b.subs[s] = struct{}{}
	s.since = b.nc.Stats().Reconnects
	s.pushState(backplane.Connected, nil)
	b.wg.Go(s.run)
	b.mu.Unlock()
	return s, nil
}

// Close stops every subscription, waits for their goroutines (no callback
// runs after it returns), and closes the connection if the Backplane made
// it (backplane.Open); a connection passed to New is left open. It is
// idempotent and returns nil. Later Publish and Subscribe calls fail with an
// error wrapping backplane.ErrClosed. It must not be called from a callback.
func (b *Backplane) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.wg.Wait()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	clear(b.subs)
	b.mu.Unlock()
	close(b.done)
	b.nc.RemoveStatusListener(b.status)
	for _, s := range subs {
		s.stop()
	}
	b.wg.Wait()
	if b.owned {
		b.nc.Close()
	}
	return nil
}

// retryPause is how long the monitor waits before it tries the round trip
// of a reconnection again.
const retryPause = 100 * time.Millisecond

// anyDown reports whether a subscription has been told Disconnected and
// not yet Reconnected.
func (b *Backplane) anyDown() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.down {
			return true
		}
	}
	return false
}

func (b *Backplane) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// monitor turns the connection's status changes into state reports. It
// reads the current status on each change (changes may come in bursts) and
// compares the client's reconnect counter, so that a drop and reconnect too
// quick to be seen as two changes is still reported.
//
// Reconnected is reported only once a round trip to the server has
// succeeded on the new connection: nats.go sends the subscriptions again
// before it reports the reconnection, and the round trip makes sure the
// server has them, so a message published after core hears Reconnected
// cannot miss this node. While the round trip fails the node stays down,
// and the monitor tries again every retryPause.
func (b *Backplane) monitor(reconnects uint64) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-b.done:
			return
		case _, ok := <-b.status:
			if !ok {
				return
			}
		case <-retry.C:
		}
		st := b.nc.Status()
		n := b.nc.Stats().Reconnects
		err := b.nc.LastError()
		if st == nats.CONNECTED && (n != reconnects || b.anyDown()) {
			if ferr := b.nc.FlushTimeout(min(b.flushTimeout, time.Second)); ferr != nil {
				st, err = nats.RECONNECTING, fmt.Errorf("natsbackplane: no round trip on the new connection: %w", ferr)
				retry.Reset(retryPause)
			}
		}
		if err == nil {
			err = fmt.Errorf("%w (%v)", ErrNotConnected, st)
		}
		b.mu.Lock()
		for s := range b.subs {
			switch {
			case st != nats.CONNECTED && !s.down:
				s.down = true
				s.pushState(backplane.Disconnected, err)
			case st == nats.CONNECTED && s.down:
				s.down = false
				s.pushState(backplane.Reconnected, nil)
			case st == nats.CONNECTED && n != reconnects && s.since < n:
				// Down and up again between two looks.
				s.pushState(backplane.Disconnected, err)
				s.pushState(backplane.Reconnected, nil)
			}
			s.since = n
		}
		b.mu.Unlock()
		reconnects = n
	}
}
