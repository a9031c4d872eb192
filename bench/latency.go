package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"

	// The backplane URL schemes InvalidationLatency opens.
	_ "github.com/stratacache/strata/backplane/natsbackplane"
	_ "github.com/stratacache/strata/backplane/rabbitbackplane"
	_ "github.com/stratacache/strata/backplane/redisbackplane"
)

// Transports are the backplanes measured, in report order.
var Transports = []string{"redis", "nats", "amqp"}

// Servers are the addresses of the real servers.
type Servers struct {
	RedisAddr string // host:port
	NATSURL   string
	AMQPURL   string
}

// ServersFromEnv reads $STRATA_REDIS_ADDR, $STRATA_NATS_URL and
// $STRATA_AMQP_URL, with the test defaults (the local servers) for those
// unset.
func ServersFromEnv() Servers {
	return Servers{
		RedisAddr: cmp.Or(os.Getenv("STRATA_REDIS_ADDR"), "127.0.0.1:6379"),
		NATSURL:   cmp.Or(os.Getenv("STRATA_NATS_URL"), nats.DefaultURL),
		AMQPURL:   cmp.Or(os.Getenv("STRATA_AMQP_URL"), "amqp://guest:guest@127.0.0.1:5672/"),
	}
}

// backplaneURL is the URL backplane.Open takes for transport.
func (s Servers) backplaneURL(transport string) (string, error) {
	switch transport {
	case "redis":
		return "redis://" + s.RedisAddr, nil
	case "nats":
		return s.NATSURL, nil
	case "amqp":
		return s.AMQPURL, nil
	}
	return "", fmt.Errorf("bench: unknown transport %q (want one of %v)", transport, Transports)
}

// roundTimeout bounds one measured trip.
const roundTimeout = 5 * time.Second

// warmup is the number of trips made before measuring, to open
// connections and fill pools.
const warmup = 20

// receipts is a core.Observer sending the time each backplane message
// about key arrives.
type receipts struct {
	key string
	got chan time.Time
}

func (o *receipts) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }
func (o *receipts) OpEnd(context.Context, *core.OpInfo)                         {}
func (o *receipts) Event(_ context.Context, ev core.Event) {
	if ev.Kind == core.EventBackplaneReceived && ev.Key == o.key {
		select {
		case o.got <- time.Now():
		default:
		}
	}
}

// A Path carries one-way trips, one at a time, and times each from the
// send until the receiver has it: strata's path (NewInvalidationPath,
// NewUpdatePath) or a raw client's (NewRawPath, NewRawUpdatePath). Its
// methods must not be called concurrently.
type Path struct {
	what string // "strata redis", "raw nats", ...: for errors
	send func(ctx context.Context, i int) error
	got  <-chan time.Time // the receiver's time of each arrival
	// serve, when set, is what the receiver does once told (on the
	// trip's goroutine): it reads the value of trip i and fails if it is
	// not the one sent. The trip then ends when serve returns.
	serve   func(ctx context.Context, i int) error
	closers []func() error // what Close releases, last made first
	trips   int
}

// NewInvalidationPath makes two strata nodes, A and B, on one backplane of
// the given transport (no L2). Each trip is the time from A's core.Set
// until B's observer sees the backplane message for the key. ctx bounds
// the set-up; Close releases every cache, backplane and exchange it makes.
func NewInvalidationPath(ctx context.Context, s Servers, transport string) (_ *Path, err error) {
	url, err := s.backplaneURL(transport)
	if err != nil {
		return nil, err
	}
	name := "strata-bench-" + unique()
	const key = "profile:42"
	obs := &receipts{key: key, got: make(chan time.Time, 1)}
	p := &Path{what: "strata " + transport, got: obs.got}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	if transport == "amqp" {
		// First, so released last: after the caches and backplanes closed
		// (a live backplane would declare the exchange again).
		p.closers = append(p.closers, func() error { return deleteExchange(s.AMQPURL, backplane.ChannelName(name)) })
	}
	nodes, err := p.openNodes(ctx, name, url, "", obs)
	if err != nil {
		return nil, err
	}
	p.send = func(ctx context.Context, i int) error {
		return core.Set(ctx, nodes[0], key, strconv.Itoa(i), core.WithDuration(time.Hour))
	}
	return p, nil
}

// openNodes makes the two nodes of a strata path, A and B, caches named
// name on backplanes opened from bpURL, each with an L2 opened from l2URL
// (none when empty), B with observer obs, and waits until both are
// subscribed. p's Close releases them, each cache before its store and
// backplane.
func (p *Path) openNodes(ctx context.Context, name, bpURL, l2URL string, obs core.Observer) (nodes [2]*core.Cache, err error) {
	for i := range nodes {
		o := core.Options{Name: name, InstanceID: "node-" + strconv.Itoa(i)}
		if o.Backplane, err = backplane.Open(ctx, bpURL); err != nil {
			return nodes, err
		}
		p.closers = append(p.closers, o.Backplane.Close)
		if l2URL != "" {
			if o.L2, err = l2.Open(ctx, l2URL); err != nil {
				return nodes, err
			}
			p.closers = append(p.closers, o.L2.Close)
		}
		if i == 1 {
			o.Observers = []core.Observer{obs}
		}
		if nodes[i], err = core.New(o); err != nil {
			return nodes, err
		}
		p.closers = append(p.closers, nodes[i].Close)
	}
	for _, c := range nodes {
		if err := waitConnected(ctx, c); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// NewRawPath opens two connections of the transport's own client, one
// subscribed to a channel of its own. Each trip is the time from
// publishing a 100-byte message on the other connection until the
// subscriber's client delivers it: the floor under NewInvalidationPath's.
// ctx bounds the set-up; Close releases every connection and exchange it
// makes.
func NewRawPath(ctx context.Context, s Servers, transport string) (_ *Path, err error) {
	p := &Path{what: "raw " + transport}
	defer func() {
		if err != nil {
			err = errors.Join(err, p.Close())
		}
	}()
	publish, got, err := p.openRaw(ctx, s, transport, "strata-bench-raw-"+unique())
	if err != nil {
		return nil, err
	}
	p.got = got
	p.send = func(ctx context.Context, _ int) error { return publish(ctx) }
	return p, nil
}

// rawPayload is the raw paths' message: about a backplane message.
var rawPayload = make([]byte, 100)

// openRaw opens two connections of the transport's own client: one
// subscribed to channel name (a fanout exchange for amqp), whose every
// message sends its time of arrival on got (dropped when one is waiting
// already), and one that publish sends rawPayload on. What it makes is
// added to p's closers.
func (p *Path) openRaw(ctx context.Context, s Servers, transport, name string) (publish func(context.Context) error, got <-chan time.Time, err error) {
	arrivals := make(chan time.Time, 1)
	signal := func() {
		select {
		case arrivals <- time.Now():
		default:
		}
	}
	switch transport {
	case "redis":
		pub, sub := redis.NewClient(&redis.Options{Addr: s.RedisAddr}), redis.NewClient(&redis.Options{Addr: s.RedisAddr})
		p.closers = append(p.closers, pub.Close, sub.Close)
		ps := sub.Subscribe(ctx, name)
		p.closers = append(p.closers, ps.Close)
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			return nil, nil, fmt.Errorf("bench: redis subscribe: %w", err)
		}
		msgs := ps.Channel()
		go func() {
			for range msgs {
				signal()
			}
		}()
		publish = func(ctx context.Context) error { return pub.Publish(ctx, name, rawPayload).Err() }
	case "nats":
		var conns [2]*nats.Conn
		for i := range conns {
			nc, err := nats.Connect(s.NATSURL)
			if err != nil {
				return nil, nil, fmt.Errorf("bench: nats connect: %w", err)
			}
			p.closers = append(p.closers, func() error { nc.Close(); return nil })
			conns[i] = nc
		}
		if _, err := conns[1].Subscribe(name, func(*nats.Msg) { signal() }); err != nil {
			return nil, nil, err
		}
		if err := conns[1].Flush(); err != nil {
			return nil, nil, err
		}
		publish = func(context.Context) error { return conns[0].Publish(name, rawPayload) }
	case "amqp":
		p.closers = append(p.closers, func() error { return deleteExchange(s.AMQPURL, name) })
		var chans [2]*amqp.Channel
		for i := range chans {
			conn, err := amqp.Dial(s.AMQPURL)
			if err != nil {
				return nil, nil, fmt.Errorf("bench: amqp dial: %w", err)
			}
			p.closers = append(p.closers, conn.Close)
			if chans[i], err = conn.Channel(); err != nil {
				return nil, nil, err
			}
			if err := chans[i].ExchangeDeclare(name, amqp.ExchangeFanout, false, false, false, false, nil); err != nil {
				return nil, nil, err
			}
		}
		q, err := chans[1].QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return nil, nil, err
		}
		if err := chans[1].QueueBind(q.Name, "", name, false, nil); err != nil {
			return nil, nil, err
		}
		deliveries, err := chans[1].Consume(q.Name, "", true, true, false, false, nil)
		if err != nil {
			return nil, nil, err
		}
		go func() {
			for range deliveries {
				signal()
			}
		}()
		publish = func(ctx context.Context) error {
			return chans[0].PublishWithContext(ctx, name, "", false, false, amqp.Publishing{Body: rawPayload})
		}
	default:
		return nil, nil, fmt.Errorf("bench: unknown transport %q (want one of %v)", transport, Transports)
	}
	return publish, arrivals, nil
}

// Trip makes one trip and returns how long it took. It fails, with ctx's
// error when ctx has ended, when the send fails, when nothing arrives
// within 5 s, or, on an update path, when the receiver cannot read the
// value sent or reads another; after an error the path is good only for
// Close.
func (p *Path) Trip(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	i := p.trips
	p.trips++
	start := time.Now()
	if err := p.send(ctx, i); err != nil {
		return 0, fmt.Errorf("bench: %s: %w", p.what, err)
	}
	select {
	case t := <-p.got:
		if p.serve == nil {
			return t.Sub(start), nil
		}
		if err := p.serve(ctx, i); err != nil {
			return 0, fmt.Errorf("bench: %s: trip %d: %w", p.what, i, err)
		}
		return time.Since(start), nil
	case <-time.After(roundTimeout):
		return 0, fmt.Errorf("bench: %s: trip %d did not arrive within %v", p.what, i, roundTimeout)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close releases what the path made, last made first, and returns their
// errors joined. Closing again does nothing.
func (p *Path) Close() error {
	var errs []error
	for _, c := range slices.Backward(p.closers) {
		errs = append(errs, c())
	}
	p.closers = nil
	return errors.Join(errs...)
}

// InvalidationLatency returns n trips of NewInvalidationPath's, made one
// at a time after 20 unmeasured ones, on a path it closes before it
// returns.
func InvalidationLatency(ctx context.Context, s Servers, transport string, n int) ([]time.Duration, error) {
	return latency(ctx, n, func() (*Path, error) { return NewInvalidationPath(ctx, s, transport) })
}

// RawLatency returns n trips of NewRawPath's, made one at a time after 20
// unmeasured ones, on a path it closes before it returns.
func RawLatency(ctx context.Context, s Servers, transport string, n int) ([]time.Duration, error) {
	return latency(ctx, n, func() (*Path, error) { return NewRawPath(ctx, s, transport) })
}

// latency opens a path, makes warmup+n trips on it one at a time, closes
// it and returns the last n durations.
func latency(ctx context.Context, n int, open func() (*Path, error)) (_ []time.Duration, err error) {
	p, err := open()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, p.Close()) }()
	lat := make([]time.Duration, 0, n)
	for i := range warmup + n {
		d, err := p.Trip(ctx)
		if err != nil {
			return nil, err
		}
		if i >= warmup {
			lat = append(lat, d)
		}
	}
	return lat, nil
}

func waitConnected(ctx context.Context, c *core.Cache) error {
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Disconnected {
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s's backplane did not connect within 10 s", c.InstanceID())
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// deleteExchange deletes a fanout exchange the benchmark declared (they
// are not auto-deleted, and the server is shared).
func deleteExchange(url, name string) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("bench: delete exchange %q: %w", name, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("bench: delete exchange %q: %w", name, err)
	}
	if err := ch.ExchangeDelete(name, false, false); err != nil {
		return fmt.Errorf("bench: delete exchange %q: %w", name, err)
	}
	return nil
}

// Percentile returns the p-quantile (0 <= p <= 1) of sorted by the
// nearest-rank method, or 0 when sorted is empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func unique() string { return rand.Text()[:12] }
