package rabbitbackplane

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/backplane"
)

// Defaults of Options.
const (
	// DefaultConnectionName is the client-provided connection name the
	// server shows (rabbitmqctl list_connections client_properties).
	DefaultConnectionName = "strata rabbitbackplane"
	// DefaultPrefetch is the number of unacknowledged messages the server
	// sends ahead to one subscription.
	DefaultPrefetch = 256
	// DefaultMaxQueueLength bounds the messages waiting in one
	// subscription's queue on the server.
	DefaultMaxQueueLength = 100_000
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between two
	// reconnect attempts, which doubles from the first to the second.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	// DefaultDialTimeout bounds each reconnect attempt (dial and
	// handshake), and New when its context has no deadline.
	DefaultDialTimeout = 30 * time.Second
)

// ErrNotConnected is wrapped by the errors of Publish and Subscribe while
// the Backplane has no connection (it is reconnecting), and by the error
// reported with backplane.Disconnected when the server gave none.
var ErrNotConnected = errors.New("rabbitbackplane: not connected")

// ErrBlocked is wrapped by the error of Publish while the server blocks
// publishers (a memory or disk alarm: connection.blocked).
var ErrBlocked = errors.New("rabbitbackplane: connection blocked by the server")

// ErrNacked is wrapped by the error of Publish when Options.Confirm is on
// and the server refused the message.
var ErrNacked = errors.New("rabbitbackplane: message not confirmed by the server")

// Options configures a Backplane. A nil *Options gives the defaults.
type Options struct {
	// Dial, when set, makes each connection (the first and every reconnect)
	// instead of dialling the URL given to New, which must then be empty.
	// It must honour ctx. Use it for a custom TLS or SASL configuration.
	Dial func(ctx context.Context) (*amqp.Connection, error)
	// ConnectionName is the client-provided connection name the server
	// shows, for connections dialled from the URL. Empty means
	// DefaultConnectionName.
	ConnectionName string
	// Confirm puts the publishing channel in confirm mode: Publish then
	// returns only once the server has taken the message (a round trip
	// more), and fails if it refuses it. Off by default: Publish returns
	// once the message is written to the connection, like NATS and Redis
	// pub/sub.
	Confirm bool
	// Prefetch is the number of messages the server sends to a
	// subscription ahead of its acknowledgements. Zero means
	// DefaultPrefetch.
	Prefetch int
	// MaxQueueLength bounds the messages waiting in a subscription's queue
	// on the server (x-max-length); beyond it the server drops the oldest.
	// Zero means DefaultMaxQueueLength.
	MaxQueueLength int
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts
	// (doubling, with jitter). Zero means DefaultMinBackoff and
	// DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
}

// Backplane is a backplane.Backplane on RabbitMQ: a fanout exchange per
// channel, an exclusive server-named queue per subscription. It owns its
// connection and reconnects by itself. Its methods are safe for concurrent
// use.
type Backplane struct {
	dial     func(ctx context.Context) (*amqp.Connection, error)
	confirm  bool
	prefetch int
	maxQueue int
	minWait  time.Duration
	maxWait  time.Duration

	ctx    context.Context // cancelled by Close: ends a reconnect attempt
	cancel context.CancelFunc
	kick   chan uint64    // a subscription's channel died on this connection generation
	wg     sync.WaitGroup // the reconnect loop and every goroutine of the subscriptions

	mu      sync.Mutex
	closed  bool
	conn    *amqp.Connection // nil while reconnecting
	pending *amqp.Connection // a connection being restored
	gen     uint64           // incremented with each connection
	pub     *publisher       // nil while reconnecting
	blocked bool
	subs    map[*subscription]struct{}
}

var _ backplane.Backplane = (*Backplane)(nil)

// publisher is the channel Publish uses on one connection, and the
// exchanges it has declared.
type publisher struct {
	mu       sync.Mutex // one Publish at a time: keeps order, guards declared
	ch       *amqp.Channel
	declared map[string]bool
}

// New connects to the server at url (amqp:// or amqps://, see the package
// documentation for its parameters), or with Options.Dial when url is
// empty, within ctx (or DefaultDialTimeout when ctx has no deadline). An
// unreachable server is an error. opts may be nil.
func New(ctx context.Context, url string, opts *Options) (*Backplane, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Dial == nil && url == "":
		return nil, errors.New("rabbitbackplane: no URL and no Options.Dial")
	case o.Dial != nil && url != "":
		return nil, errors.New("rabbitbackplane: both a URL and Options.Dial: give one")
	case o.Prefetch < 0:
		return nil, fmt.Errorf("rabbitbackplane: Options.Prefetch is %d, want 0 (default) or more", o.Prefetch)
	case o.MaxQueueLength < 0:
		return nil, fmt.Errorf("rabbitbackplane: Options.MaxQueueLength is %d, want 0 (default) or more", o.MaxQueueLength)
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return nil, fmt.Errorf("rabbitbackplane: Options.MinBackoff %v and MaxBackoff %v must not be negative", o.MinBackoff, o.MaxBackoff)
	}
	b := &Backplane{
		dial:     o.Dial,
		confirm:  o.Confirm,
		prefetch: orDefault(o.Prefetch, DefaultPrefetch),
		maxQueue: orDefault(o.MaxQueueLength, DefaultMaxQueueLength),
		minWait:  orDefault(o.MinBackoff, DefaultMinBackoff),
		maxWait:  orDefault(o.MaxBackoff, DefaultMaxBackoff),
		kick:     make(chan uint64, 1),
		subs:     make(map[*subscription]struct{}),
	}
	if b.maxWait < b.minWait {
		return nil, fmt.Errorf("rabbitbackplane: Options.MaxBackoff %v is less than MinBackoff %v", b.maxWait, b.minWait)
	}
	where := "Options.Dial"
	if b.dial == nil {
		d, err := urlDialer(url, cmpOr(o.ConnectionName, DefaultConnectionName))
		if err != nil {
			return nil, err
		}
		b.dial, where = d, redactURL(url)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rabbitbackplane: connect to %s: %w", where, err)
	}
	dctx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		dctx, cancel = context.WithTimeout(ctx, DefaultDialTimeout)
	}
	conn, err := b.dial(dctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("rabbitbackplane: connect to %s: %w", where, withCtx(ctx, err))
	}
	pub, notes, err := b.open(conn)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("rabbitbackplane: connect to %s: %w", where, err)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.conn, b.pub, b.gen = conn, pub, 1
	b.wg.Go(func() { b.run(notes) })
	return b, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// notes are the notifications of one connection.
type notes struct {
	closed  chan *amqp.Error
	blocked chan amqp.Blocking
}

// open opens the publishing channel of conn and registers for its
// notifications.
func (b *Backplane) open(conn *amqp.Connection) (*publisher, notes, error) {
	n := notes{
		closed:  conn.NotifyClose(make(chan *amqp.Error, 1)),
		blocked: conn.NotifyBlocked(make(chan amqp.Blocking, 4)),
	}
	pub, err := b.newPublisher(conn)
	return pub, n, err
}

func (b *Backplane) newPublisher(conn *amqp.Connection) (*publisher, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if b.confirm {
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			return nil, err
		}
	}
	return &publisher{ch: ch, declared: make(map[string]bool)}, nil
}

// declare declares the fanout exchange of channel: not durable (it goes
// with a server restart, and is declared again after the reconnect), not
// auto-deleted (so that publishing to it never fails for want of
// subscribers).
func declare(ch *amqp.Channel, exchange string) error {
	return ch.ExchangeDeclare(exchange, amqp.ExchangeFanout, false, false, false, false, nil)
}

// Publish sends payload to the fanout exchange named channel (declaring it
// on first use on a connection). It fails at once, with an error wrapping
// ErrNotConnected, while the Backplane is reconnecting, and with ErrBlocked
// while the server blocks publishers; with an error wrapping ctx.Err() when
// ctx is done; and with backplane.ErrClosed after Close. Without
// Options.Confirm it returns once the message is written to the connection
// (at most once delivery); with it, once the server confirms it. It does not
// keep payload.
func (b *Backplane) Publish(ctx context.Context, channel string, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, err)
	}
	b.mu.Lock()
	closed, conn, pub, blocked := b.closed, b.conn, b.pub, b.blocked
	b.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, backplane.ErrClosed)
	case pub == nil:
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, ErrNotConnected)
	case blocked:
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, ErrBlocked)
	}
	dc, err := b.publish(ctx, conn, pub, channel, payload)
	if err != nil {
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, withCtx(ctx, err))
	}
	if dc == nil {
		return nil
	}
	ok, err := dc.WaitContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, err)
	case !ok:
		return fmt.Errorf("rabbitbackplane: publish on %q: %w", channel, ErrNacked)
	}
	return nil
}

func (b *Backplane) publish(ctx context.Context, conn *amqp.Connection, pub *publisher, channel string, payload []byte) (*amqp.DeferredConfirmation, error) {
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if pub.ch.IsClosed() {
		// The server closed the channel (an exchange deleted under us, say)
		// but not the connection: open another one.
		if conn.IsClosed() {
			return nil, ErrNotConnected
		}
		p, err := b.newPublisher(conn)
		if err != nil {
			return nil, err
		}
		pub.ch, pub.declared = p.ch, p.declared
	}
	if !pub.declared[channel] {
		if err := declare(pub.ch, channel); err != nil {
			return nil, err
		}
		pub.declared[channel] = true
	}
	msg := amqp.Publishing{ContentType: "application/octet-stream", DeliveryMode: amqp.Transient, Body: payload}
	if b.confirm {
		return pub.ch.PublishWithDeferredConfirmWithContext(ctx, channel, "", false, false, msg)
	}
	return nil, pub.ch.PublishWithContext(ctx, channel, "", false, false, msg)
}

// Subscribe declares the fanout exchange named channel and an exclusive,
// auto-deleted, server-named queue bound to it, and consumes from it. It
// returns once the server has the binding and the consumer, or with an error
// when ctx is done first; it fails at once, with an error wrapping
// ErrNotConnected, while the Backplane is reconnecting.
//
// Messages are delivered to onMessage, and state changes to onState (which
// may be nil), from one goroutine per subscription: backplane.Connected
// first; Disconnected when the connection drops; Reconnected once the
// Backplane has reconnected and declared a new queue for the subscription
// (what was published in between is lost).
//
// The Subscription's Close must not be called from its own callbacks: it
// waits for the callback in progress to return.
func (b *Backplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	if onMessage == nil {
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: nil MessageFunc", channel)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: %w", channel, err)
	}
	b.mu.Lock()
	closed, conn, gen := b.closed, b.conn, b.gen
	b.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: %w", channel, backplane.ErrClosed)
	case conn == nil:
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: %w", channel, ErrNotConnected)
	}
	// The declarations do not take a context: run them aside, so that ctx
	// can end the wait; if it does, the channel is closed when they end.
	type result struct {
		ch *amqp.Channel
		d  <-chan amqp.Delivery
		e  error
	}
	results, abandon := make(chan result), make(chan struct{})
	b.wg.Go(func() {
		ch, d, err := b.consume(conn, channel)
		select {
		case results <- result{ch, d, err}:
		case <-abandon:
			if ch != nil {
				_ = ch.Close()
			}
		}
	})
	var r result
	select {
	case r = <-results:
	case <-ctx.Done():
		close(abandon)
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: %w", channel, ctx.Err())
	}
	if r.e != nil {
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: %w", channel, r.e)
	}
	s := newSubscription(b, channel, onMessage, onState)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		_ = r.ch.Close()
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: %w", channel, backplane.ErrClosed)
	case b.gen != gen || b.conn == nil:
		_ = r.ch.Close()
		return nil, fmt.Errorf("rabbitbackplane: subscribe to %q: connection lost meanwhile: %w", channel, ErrNotConnected)
	}
	b.subs[s] = struct{}{}
	s.ch = r.ch
	s.push(control{deliveries: r.d, gen: gen, state: backplane.Connected})
	b.wg.Go(s.run)
	return s, nil
}

// consume opens a channel on conn with a queue bound to the exchange and a
// consumer on it.
func (b *Backplane) consume(conn *amqp.Connection, exchange string) (ch *amqp.Channel, d <-chan amqp.Delivery, err error) {
	ch, err = conn.Channel()
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			_ = ch.Close()
			ch, d = nil, nil
		}
	}()
	if err = ch.Qos(b.prefetch, 0, false); err != nil {
		return
	}
	if err = declare(ch, exchange); err != nil {
		return
	}
	q, err := ch.QueueDeclare("", false, true, true, false, amqp.Table{"x-max-length": int64(b.maxQueue)})
	if err != nil {
		return
	}
	if err = ch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
		return
	}
	d, err = ch.Consume(q.Name, "", false, true, false, false, nil)
	return
}

// Close stops the reconnect loop and every subscription, closes the
// connection, and waits for the Backplane's goroutines: no callback runs
// after it returns. It is idempotent and returns nil. Later Publish and
// Subscribe calls fail with an error wrapping backplane.ErrClosed. It must
// not be called from a callback.
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
	conns := []*amqp.Connection{b.conn, b.pending}
	b.conn, b.pub = nil, nil
	b.mu.Unlock()
	b.cancel()
	for _, s := range subs {
		s.stop()
	}
	for _, conn := range conns {
		if conn != nil {
			_ = conn.CloseDeadline(time.Now().Add(5 * time.Second))
		}
	}
	b.wg.Wait()
	return nil
}

// channelLost is called by a subscription whose deliveries stopped on
// connection generation gen. Unless the connection is already gone, its
// channel was closed by the server alone (its queue deleted, say): the
// reconnect loop then closes the connection and restores everything.
func (b *Backplane) channelLost(gen uint64) {
	select {
	case b.kick <- gen:
	default:
	}
}

// run is the reconnect loop: it waits for the connection to close, reports
// Disconnected, reconnects with capped exponential backoff and jitter,
// restores every subscription's queue and consumer, and reports
// Reconnected.
func (b *Backplane) run(n notes) {
	for {
		err := b.wait(n)
		if err == nil { // Close
			return
		}
		b.mu.Lock()
		old := b.conn
		b.conn, b.pub, b.blocked = nil, nil, false
		for s := range b.subs {
			s.push(control{state: backplane.Disconnected, err: err})
		}
		b.mu.Unlock()
		if old != nil {
			_ = old.CloseDeadline(time.Now().Add(time.Second))
		}
		var ok bool
		if n, ok = b.reconnect(); !ok {
			return
		}
	}
}

// wait waits for the current connection to fail and returns why, or nil
// once the Backplane is closed.
func (b *Backplane) wait(n notes) error {
	for {
		select {
		case <-b.ctx.Done():
			return nil
		case bl, ok := <-n.blocked:
			if !ok {
				n.blocked = nil
				continue
			}
			b.mu.Lock()
			b.blocked = bl.Active
			b.mu.Unlock()
		case gen := <-b.kick:
			b.mu.Lock()
			conn := b.conn
			current := gen == b.gen && conn != nil
			b.mu.Unlock()
			if current {
				_ = conn.CloseDeadline(time.Now().Add(time.Second))
				return fmt.Errorf("%w: a subscription's channel was closed by the server", ErrNotConnected)
			}
		case e, ok := <-n.closed:
			if !ok || e == nil {
				if b.ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("%w: connection closed", ErrNotConnected)
			}
			return e
		}
	}
}

// reconnect dials until it has a connection with every subscription
// restored, and reports false if the Backplane was closed first.
func (b *Backplane) reconnect() (notes, bool) {
	wait := b.minWait
	for {
		// Full jitter in [wait/2, wait].
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-b.ctx.Done():
			t.Stop()
			return notes{}, false
		case <-t.C:
		}
		wait = min(2*wait, b.maxWait)
		dctx, cancel := context.WithTimeout(b.ctx, DefaultDialTimeout)
		conn, err := b.dial(dctx)
		cancel()
		if err != nil {
			continue
		}
		if n, err := b.restore(conn); err == nil {
			return n, true
		}
		_ = conn.CloseDeadline(time.Now().Add(time.Second))
		if b.ctx.Err() != nil {
			return notes{}, false
		}
	}
}

// restore opens the publishing channel and every subscription's queue on
// conn, then makes conn current and reports Reconnected.
func (b *Backplane) restore(conn *amqp.Connection) (notes, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return notes{}, backplane.ErrClosed
	}
	b.pending = conn
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.pending = nil
		b.mu.Unlock()
	}()

	pub, n, err := b.open(conn)
	if err != nil {
		return notes{}, err
	}
	type restored struct {
		ch *amqp.Channel
		d  <-chan amqp.Delivery
	}
	chans := make(map[*subscription]restored, len(subs))
	for _, s := range subs {
		ch, d, err := b.consume(conn, s.channel)
		if err != nil {
			return notes{}, err // closing conn closes the channels opened so far
		}
		chans[s] = restored{ch, d}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return notes{}, backplane.ErrClosed
	}
	b.gen++
	b.conn, b.pub = conn, pub
	for s, r := range chans {
		if _, live := b.subs[s]; !live {
			_ = r.ch.Close() // closed meanwhile
			continue
		}
		s.ch = r.ch
		s.push(control{deliveries: r.d, gen: b.gen, state: backplane.Reconnected})
	}
	return n, nil
}

// withCtx makes err wrap ctx's error when ctx is done.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
