package membackplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/backplane"
)

// DefaultQueueSize is the number of payloads that may wait for delivery to
// one subscription when Options.QueueSize is zero.
const DefaultQueueSize = 1024

// ErrDisconnected is wrapped by the errors of Publish and Subscribe on a node
// between Disconnect and Reconnect, and is the error reported with
// backplane.Disconnected.
var ErrDisconnected = errors.New("membackplane: disconnected")

// Options configures a node. A nil *Options gives the defaults.
type Options struct {
	// QueueSize bounds the payloads waiting for delivery to one
	// subscription. When they reach it, a further payload is dropped and
	// the subscription's StateFunc gets backplane.Lost. Zero or less means
	// DefaultQueueSize.
	QueueSize int
}

// Fault is a failure to simulate on one node, set with SetFault. The zero
// Fault simulates nothing.
type Fault struct {
	// PublishErr, when not nil, makes Publish on the node fail with an
	// error wrapping it; nothing is delivered.
	PublishErr error
	// Delay, when positive, delays each delivery to the node's
	// subscriptions by this long after its publication (order is kept).
	Delay time.Duration
	// DropIncoming makes the node silently miss incoming payloads: they are
	// counted as dropped, and no state is reported (a silent loss, which
	// only sequence numbers can reveal).
	DropIncoming bool
}

// Stats counts what one node did since it was made.
type Stats struct {
	// Published counts the Publish calls that succeeded on the node.
	Published uint64
	// Delivered counts the payloads passed to the MessageFuncs of the
	// node's subscriptions.
	Delivered uint64
	// Dropped counts the payloads published to one of the node's
	// subscriptions that it will never deliver: its queue was full
	// (reported as backplane.Lost), the node was disconnected, or its
	// Fault had DropIncoming.
	Dropped uint64
}

// Bus connects nodes in one process: a payload published by any node reaches
// the subscriptions of its channel on every node of the Bus, in one order
// that all of them see. The zero Bus is not usable; call NewBus. Its methods
// are safe for concurrent use.
type Bus struct {
	name string // the NAME of mem://NAME, "" for a private Bus

	// mu guards the topology: every field below, and the closed,
	// disconnected and subs fields of every node of the Bus. Publish holds
	// it while it hands a payload to every subscription, which makes the
	// delivery order one total order per Bus.
	mu     sync.Mutex
	topics map[string][]*subscription // by channel, in subscription order
	nodes  map[*Backplane]struct{}
}

// NewBus returns an empty private Bus. Connect attaches nodes to it.
func NewBus() *Bus {
	return newBus("")
}

func newBus(name string) *Bus {
	return &Bus{
		name:   name,
		topics: make(map[string][]*subscription),
		nodes:  make(map[*Backplane]struct{}),
	}
}

// Connect attaches a new node to the Bus and returns it. opts may be nil.
func (b *Bus) Connect(opts *Options) *Backplane {
	n := &Backplane{bus: b, queueSize: DefaultQueueSize, subs: make(map[*subscription]struct{})}
	if opts != nil && opts.QueueSize > 0 {
		n.queueSize = opts.QueueSize
	}
	b.mu.Lock()
	b.nodes[n] = struct{}{}
	b.mu.Unlock()
	return n
}

// New returns a node alone on a new private Bus: it receives only its own
// publications. opts may be nil. Use NewBus and Connect for several nodes.
func New(opts *Options) *Backplane {
	return NewBus().Connect(opts)
}

// Backplane is one node on a Bus. It implements backplane.Backplane, and adds
// fault injection and counters for tests. Its methods are safe for
// concurrent use.
type Backplane struct {
	bus       *Bus
	queueSize int
	fault     atomic.Pointer[Fault]
	wg        sync.WaitGroup // one per subscription goroutine

	// Guarded by bus.mu.
	closed       bool
	disconnected bool
	subs         map[*subscription]struct{}

	published, delivered, dropped atomic.Uint64
}

var _ backplane.Backplane = (*Backplane)(nil)

// Publish hands a copy of payload to every subscription of channel on the
// Bus, this node's own included, and returns without waiting for delivery.
// It fails with an error wrapping ctx.Err() if ctx is done,
// backplane.ErrClosed after Close, ErrDisconnected between Disconnect and
// Reconnect, and Fault.PublishErr when set. It never blocks on a slow
// subscriber.
func (n *Backplane) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("membackplane: publish on %q: %w", channel, err)
	}
	b := n.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case n.closed:
		return fmt.Errorf("membackplane: publish on %q: %w", channel, backplane.ErrClosed)
	case n.disconnected:
		return fmt.Errorf("membackplane: publish on %q: %w", channel, ErrDisconnected)
	}
	if f := n.fault.Load(); f != nil && f.PublishErr != nil {
		return fmt.Errorf("membackplane: publish on %q: %w", channel, f.PublishErr)
	}
	now := time.Now()
	for _, s := range b.topics[channel] {
		s.node.offer(s, payload, now)
	}
	n.published.Add(1)
	return nil
}

// offer queues payload for s, a subscription of n, unless n is to miss it.
// The caller holds n.bus.mu.
func (n *Backplane) offer(s *subscription, payload []byte, now time.Time) {
	f := n.fault.Load()
	if n.disconnected || f != nil && f.DropIncoming {
		n.dropped.Add(1)
		return
	}
	var at time.Time
	if f != nil && f.Delay > 0 {
		at = now.Add(f.Delay)
	}
	if !s.pushMessage(payload, at) {
		n.dropped.Add(1)
	}
}

// Subscribe starts delivering the payloads published on channel to
// onMessage, from a goroutine of its own, and returns once the subscription
// is live: a payload published after Subscribe returns reaches it.
// backplane.Connected is reported to onState (which may be nil) before any
// payload. Subscribe fails with an error wrapping ctx.Err() if ctx is done,
// backplane.ErrClosed after Close, or ErrDisconnected between Disconnect and
// Reconnect (it does not wait for Reconnect).
//
// The Subscription's Close must not be called from its own callbacks: it
// waits for the callback in progress to return.
func (n *Backplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	if onMessage == nil {
		return nil, fmt.Errorf("membackplane: subscribe to %q: nil MessageFunc", channel)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("membackplane: subscribe to %q: %w", channel, err)
	}
	s := newSubscription(n, channel, onMessage, onState)
	b := n.bus
	b.mu.Lock()
	switch {
	case n.closed:
		b.mu.Unlock()
		return nil, fmt.Errorf("membackplane: subscribe to %q: %w", channel, backplane.ErrClosed)
	case n.disconnected:
		b.mu.Unlock()
		return nil, fmt.Errorf("membackplane: subscribe to %q: %w", channel, ErrDisconnected)
	}
	b.topics[channel] = append(b.topics[channel], s)
	n.subs[s] = struct{}{}
	s.pushState(backplane.Connected, nil)
	n.wg.Add(1)
	b.mu.Unlock()
	go s.run()
	return s, nil
}

// unsubscribe takes s off the Bus. The caller holds n.bus.mu.
func (n *Backplane) unsubscribe(s *subscription) {
	b := n.bus
	subs := slices.DeleteFunc(b.topics[s.channel], func(x *subscription) bool { return x == s })
	if len(subs) == 0 {
		delete(b.topics, s.channel)
	} else {
		b.topics[s.channel] = subs
	}
	delete(n.subs, s)
}

// Close detaches the node from its Bus, stops its subscriptions and waits
// for their goroutines to return; no callback runs after Close returns. It is
// idempotent and always returns nil. Later Publish and Subscribe calls fail
// with an error wrapping backplane.ErrClosed. It must not be called from a
// callback of one of the node's subscriptions.
func (n *Backplane) Close() error {
	b := n.bus
	b.mu.Lock()
	var subs []*subscription
	if !n.closed {
		n.closed = true
		for s := range n.subs {
			subs = append(subs, s)
			n.unsubscribe(s)
		}
		delete(b.nodes, n)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
	n.wg.Wait()
	if b.name != "" {
		forgetIfEmpty(b)
	}
	return nil
}

// SetFault makes the node simulate f from now on, replacing any Fault set
// before. Payloads already queued keep the delay they were given.
func (n *Backplane) SetFault(f Fault) {
	n.fault.Store(&f)
}

// ClearFault stops simulating the Fault set by SetFault.
func (n *Backplane) ClearFault() {
	n.fault.Store(nil)
}

// Disconnect simulates a dropped connection: each subscription of the node
// gets backplane.Disconnected (after the payloads already queued for it),
// payloads published on the Bus are not delivered to the node until
// Reconnect, and Publish and Subscribe on it fail fast with ErrDisconnected.
// It does nothing on a node already disconnected or closed.
func (n *Backplane) Disconnect() {
	n.setConnected(false, backplane.Disconnected, ErrDisconnected)
}

// Reconnect ends a simulated disconnection: each subscription of the node
// gets backplane.Reconnected and delivery resumes with the next payload
// published; those published while disconnected are lost. It does nothing on
// a node that is connected or closed.
func (n *Backplane) Reconnect() {
	n.setConnected(true, backplane.Reconnected, nil)
}

func (n *Backplane) setConnected(connected bool, state backplane.State, err error) {
	b := n.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if n.closed || n.disconnected != connected {
		return
	}
	n.disconnected = !connected
	for s := range n.subs {
		s.pushState(state, err)
	}
}

// Stats returns the node's counters.
func (n *Backplane) Stats() Stats {
	return Stats{
		Published: n.published.Load(),
		Delivered: n.delivered.Load(),
		Dropped:   n.dropped.Load(),
	}
}
