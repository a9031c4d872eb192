package coherence

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/natsbackplane"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/toxitest"
	"github.com/stratacache/strata/l2/redisl2"
)

// Backplanes are the backplane kinds a Cluster can use.
var Backplanes = []string{"redis", "nats", "amqp"}

// ClusterConfig says what a Cluster is made of.
type ClusterConfig struct {
	// Nodes is the number of nodes (default 5).
	Nodes int
	// Backplane is "redis", "nats" or "amqp".
	Backplane string
	// RedisAddr is the Redis server (host:port) used for L2, and for the
	// backplane when it is "redis"; NATSURL and AMQPURL the other
	// backplanes' servers (nats://host:port, amqp://user:pass@host:port/).
	RedisAddr, NATSURL, AMQPURL string
	// Toxi is the Toxiproxy server through which every node reaches every
	// server, one per cluster: each node gets a proxy labelled (node, role,
	// service) per connection, node being NodeName(i), role
	// toxitest.RoleL2 or toxitest.RoleBackplane, service the backplane kind
	// or "redis".
	Toxi *toxitest.Server
	// Bound and RecoveryDelay set every node's BackplaneStalenessBound and
	// AutoRecoveryDelay (defaults 1s and 1s).
	Bound, RecoveryDelay time.Duration
	// NATSQueueSize, AMQPMaxQueueLength and AMQPPrefetch, when > 0, set
	// the backplanes' natsbackplane.Options.QueueSize and
	// rabbitbackplane.Options.MaxQueueLength and Prefetch (small values
	// make a slow consumer drop messages sooner instead of falling behind).
	NATSQueueSize, AMQPMaxQueueLength, AMQPPrefetch int
	// Options, when set, adjusts node i's options before core.New.
	Options func(i int, o *core.Options)
}

// Cluster is Nodes caches, each on connections of its own through its own
// proxies, sharing a Redis L2 (redisl2, under a key prefix unique to the
// cluster) and a backplane (under a cache name unique to the cluster).
type Cluster struct {
	Name, Prefix string
	Caches       []*core.Cache
	// Slow holds each node's backplane wrapper, which can slow down the
	// delivery of messages to the node (a slow consumer).
	Slow []*SlowBackplane

	cfg     ClusterConfig
	closers []func() error // in the order they run
}

// NodeName is node i's label on its proxies and its InstanceID.
func NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// NewCluster makes the nodes and returns once every node's backplane is
// connected (or fails after 20s). Close releases everything, also when it
// returns an error (it then closes what it made).
func NewCluster(ctx context.Context, cfg ClusterConfig) (_ *Cluster, err error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 5
	}
	if cfg.Bound <= 0 {
		cfg.Bound = time.Second
	}
	if cfg.RecoveryDelay <= 0 {
		cfg.RecoveryDelay = time.Second
	}
	if cfg.Toxi == nil {
		return nil, errors.New("coherence: ClusterConfig.Toxi is nil")
	}
	unique := rand.Text()[:12]
	c := &Cluster{Name: "strata-coherence-" + unique, Prefix: "strata-coherence:" + unique + ":", cfg: cfg}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if cfg.Backplane == "amqp" {
		c.closers = append(c.closers, func() error { return deleteExchange(cfg.AMQPURL, backplane.ChannelName(c.Name)) })
	}
	c.closers = append(c.closers, func() error { return deleteKeys(cfg.RedisAddr, c.Prefix) })
	for i := range cfg.Nodes {
		if err := c.addNode(ctx, i); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for i, n := range c.Caches {
		for n.Stats().Disconnected {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("coherence: node %d's backplane did not connect within 20s", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return c, nil
}

// addNode makes node i: its proxies, clients, L2 store, backplane and
// cache.
func (c *Cluster) addNode(ctx context.Context, i int) error {
	name := NodeName(i)
	l2proxy, err := c.cfg.Toxi.NewProxy(name, toxitest.RoleL2, "redis", c.cfg.RedisAddr)
	if err != nil {
		return err
	}
	l2client := redisClient(l2proxy.Addr())
	c.later(l2client.Close)
	store, err := redisl2.New(l2client, &redisl2.Options{KeyPrefix: c.Prefix})
	if err != nil {
		return err
	}
	c.later(store.Close)
	bp, err := c.newBackplane(ctx, i)
	if err != nil {
		return err
	}
	slow := &SlowBackplane{Backplane: bp}
	o := core.Options{Name: c.Name, InstanceID: name, L2: store, Backplane: slow,
		BackplaneStalenessBound: c.cfg.Bound, AutoRecoveryDelay: c.cfg.RecoveryDelay}
	if c.cfg.Options != nil {
		c.cfg.Options(i, &o)
	}
	cache, err := core.New(o)
	if err != nil {
		return err
	}
	c.later(cache.Close)
	c.Caches = append(c.Caches, cache)
	c.Slow = append(c.Slow, slow)
	return nil
}

// later registers f to run at Close, before what was registered earlier.
func (c *Cluster) later(f func() error) { c.closers = append(c.closers, f) }

// redisClient returns a client that fails fast when the server cannot be
// reached (no retries, short dial timeout) but waits out a slow one.
func redisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 3 * time.Second,
		WriteTimeout: 3 * time.Second, MaxRetries: -1, DialerRetries: 1, PoolSize: 16})
}

// newBackplane returns node i's backplane, connected through a proxy of
// its own.
func (c *Cluster) newBackplane(ctx context.Context, i int) (backplane.Backplane, error) {
	name, kind := NodeName(i), c.cfg.Backplane
	var upstream string
	switch kind {
	case "redis":
		upstream = c.cfg.RedisAddr
	case "nats", "amqp":
		raw := c.cfg.NATSURL
		if kind == "amqp" {
			raw = c.cfg.AMQPURL
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("coherence: %s URL: %w", kind, err)
		}
		upstream = u.Host
	default:
		return nil, fmt.Errorf("coherence: unknown backplane %q (want one of %v)", kind, Backplanes)
	}
	proxy, err := c.cfg.Toxi.NewProxy(name, toxitest.RoleBackplane, kind, upstream)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "redis":
		client := redisClient(proxy.Addr())
		c.later(client.Close)
		bp, err := redisbackplane.New(client, &redisbackplane.Options{HealthCheckInterval: 200 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		c.later(bp.Close)
		return bp, nil
	case "nats":
		nc, err := nats.Connect("nats://"+proxy.Addr(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
			nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond), nats.Timeout(2*time.Second),
			nats.Name(name+"."+c.Name), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			return nil, fmt.Errorf("coherence: nats.Connect: %w", err)
		}
		c.later(func() error { nc.Close(); return nil })
		bp, err := natsbackplane.New(nc, &natsbackplane.Options{QueueSize: c.cfg.NATSQueueSize})
		if err != nil {
			return nil, err
		}
		c.later(bp.Close)
		return bp, nil
	default:
		u, _ := url.Parse(c.cfg.AMQPURL)
		u.Host = proxy.Addr()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		bp, err := rabbitbackplane.New(dctx, u.String(), &rabbitbackplane.Options{ConnectionName: name + "." + c.Name,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxQueueLength: c.cfg.AMQPMaxQueueLength,
			Prefetch: c.cfg.AMQPPrefetch})
		if err != nil {
			return nil, err
		}
		c.later(bp.Close)
		return bp, nil
	}
}

// Close closes the caches, then their backplanes, stores and clients,
// deletes the cluster's L2 keys (and its RabbitMQ exchange), and returns
// the errors joined. Call it after the proxies are back up, so that the
// deletions reach the servers.
func (c *Cluster) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		if err := c.closers[i](); err != nil && !errors.Is(err, core.ErrClosed) {
			errs = append(errs, err)
		}
	}
	c.closers = nil
	return errors.Join(errs...)
}

// deleteKeys deletes the keys under prefix, directly on the server.
func deleteKeys(addr, prefix string) error {
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				return fmt.Errorf("coherence: delete keys: %w", err)
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("coherence: scan keys: %w", err)
	}
	if len(batch) > 0 {
		return client.Unlink(ctx, batch...).Err()
	}
	return nil
}

// deleteExchange deletes the cache's fanout exchange on RabbitMQ.
func deleteExchange(rawURL, name string) error {
	conn, err := amqp.DialConfig(rawURL, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return fmt.Errorf("coherence: delete exchange: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("coherence: delete exchange: %w", err)
	}
	defer ch.Close()
	return ch.ExchangeDelete(name, false, false)
}

// SlowBackplane wraps a backplane so that each message delivered to the
// node can be delayed (SetDelay), making the node a slow consumer: the
// transport's queue in front of it fills and the transport does what it
// does then (NATS drops messages and reports backplane.Lost, RabbitMQ
// drops the oldest beyond x-max-length, Redis buffers them on the server).
type SlowBackplane struct {
	backplane.Backplane
	delay atomic.Int64 // nanoseconds
}

// SetDelay makes each later delivery wait d first; 0 ends it.
func (s *SlowBackplane) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Subscribe subscribes on the wrapped backplane, delaying each delivery by
// the current delay.
func (s *SlowBackplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	return s.Backplane.Subscribe(ctx, channel, func(payload []byte) {
		if d := time.Duration(s.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		onMessage(payload)
	}, onState)
}
