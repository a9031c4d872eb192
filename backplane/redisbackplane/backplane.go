package redisbackplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/internal/rediscall"
)

// DefaultHealthCheckInterval is Options.HealthCheckInterval's default.
const DefaultHealthCheckInterval = time.Second

// Options configures a Backplane. The zero value (or a nil *Options) gives
// the defaults.
type Options struct {
	// Sharded uses Redis 7's sharded pub/sub: SSUBSCRIBE and SPUBLISH
	// instead of SUBSCRIBE and PUBLISH. On Redis Cluster a sharded message
	// travels only within the shard that owns the channel's hash slot
	// instead of to every node; a single node or a failover client works
	// either way. Every node of a cache must use the same setting.
	Sharded bool
	// HealthCheckInterval is how long a subscription's connection may stay
	// silent before the subscription PINGs the server; when the server
	// leaves the PING unanswered for another interval, the connection is
	// taken as lost (Disconnected is reported) and replaced. Zero means
	// DefaultHealthCheckInterval. It must not be negative.
	HealthCheckInterval time.Duration
}

// Backplane is a backplane.Backplane on Redis pub/sub. All methods are safe
// for concurrent use.
type Backplane struct {
	client   redis.UniversalClient
	call     rediscall.Runner
	sharded  bool
	interval time.Duration
	owned    bool // made by the URL opener: Close closes the client

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	// cleanups counts the goroutines that close what abandoned Subscribe
	// calls opened; Close waits for them.
	cleanups sync.WaitGroup
}

var _ backplane.Backplane = (*Backplane)(nil)

// New returns a Backplane on client, which may be a *redis.Client (single
// node, or failover from redis.NewFailoverClient) or a *redis.ClusterClient
// (a *redis.Ring is refused: its pub/sub panics when no shard is up). On a
// cluster, classic PUBLISH is sent to the node owning the channel's hash
// slot, where the subscriptions listen, so that one publisher's payloads
// stay in order. opts may be nil; invalid options are an
// error naming the field. New sends no command: a server that cannot be
// reached shows in Subscribe and Publish. The Backplane never closes
// client.
func New(client redis.UniversalClient, opts *Options) (*Backplane, error) {
	if client == nil {
		return nil, errors.New("redisbackplane: New: nil client")
	}
	if _, ok := client.(*redis.Ring); ok {
		// Ring's Subscribe panics when it has no channel or no live shard.
		return nil, errors.New("redisbackplane: New: *redis.Ring is not supported; use a *redis.Client, a failover client or a *redis.ClusterClient")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.HealthCheckInterval < 0:
		return nil, fmt.Errorf("redisbackplane: New: Options.HealthCheckInterval must not be negative, got %v", o.HealthCheckInterval)
	case o.HealthCheckInterval == 0:
		o.HealthCheckInterval = DefaultHealthCheckInterval
	}
	return &Backplane{
		client:   client,
		call:     rediscall.For(client),
		sharded:  o.Sharded,
		interval: o.HealthCheckInterval,
		subs:     make(map[*subscription]struct{}),
	}, nil
}

// Publish sends payload on channel with PUBLISH (SPUBLISH when sharded). It
// fails, rather than blocks, while Redis cannot be reached: within ctx and
// the client's dial, read and write timeouts and retries. After Close it
// returns an error wrapping backplane.ErrClosed. Publish keeps no reference
// to payload after it returns.
func (b *Backplane) Publish(ctx context.Context, channel string, payload []byte) error {
	if b.isClosed() {
		return fmt.Errorf("redisbackplane: publish on %q: %w", channel, backplane.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisbackplane: publish on %q: %w", channel, err)
	}
	if !b.call.Inline(ctx) {
		// The command may outlive the call (see rediscall.Do): it gets
		// a copy.
		payload = bytes.Clone(payload)
	}
	_, err := rediscall.Do(b.call, ctx, func(ctx context.Context) (int64, error) {
		if b.sharded {
			return b.client.SPublish(ctx, channel, payload).Result()
		}
		if cc, ok := b.client.(*redis.ClusterClient); ok {
			// go-redis sends a PUBLISH (which names no key) to any node,
			// and messages published on different nodes may overtake each
			// other on the cluster bus. Publishing on the node that owns
			// the channel's slot, where Subscribe listens too, keeps one
			// publisher's messages in order.
			node, err := cc.MasterForKey(ctx, channel)
			if err != nil {
				return 0, err
			}
			return node.Publish(ctx, channel, payload).Result()
		}
		return b.client.Publish(ctx, channel, payload).Result()
	})
	return wrap(ctx, fmt.Sprintf("publish on %q", channel), err)
}

// Subscribe opens a pub/sub connection of its own, subscribes it to channel
// (SSUBSCRIBE when sharded) and returns once Redis has confirmed the
// subscription, so that a payload published after Subscribe returns is
// delivered. It fails when the confirmation has not come before ctx is
// done, or when the server cannot be reached (it does not retry).
//
// Payloads and state changes are delivered from one goroutine per
// subscription, in order: backplane.Connected first, then payloads, with
// Disconnected and Reconnected when the connection drops and comes back
// (see the package documentation). onState may be nil. The Subscription's
// Close must not be called from its own callbacks: it waits for the
// callback in progress to return.
func (b *Backplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	op := fmt.Sprintf("subscribe to %q", channel)
	if onMessage == nil {
		return nil, fmt.Errorf("redisbackplane: %s: nil MessageFunc", op)
	}
	if onState == nil {
		onState = func(backplane.State, error) {}
	}
	if b.isClosed() {
		return nil, fmt.Errorf("redisbackplane: %s: %w", op, backplane.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisbackplane: %s: %w", op, err)
	}
	s := newSubscription(b, channel, onMessage, onState)
	if err := s.start(ctx); err != nil {
		return nil, wrap(ctx, op, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.stop()
		return nil, fmt.Errorf("redisbackplane: %s: %w", op, backplane.ErrClosed)
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.run()
	return s, nil
}

// Close closes every subscription, waiting for their goroutines (a
// subscription whose connection is being dialled closes when the dial ends,
// within the client's timeouts), and closes
// the client when the Backplane was made by backplane.Open (never a client
// passed to New). Later calls of Publish and Subscribe return errors
// wrapping backplane.ErrClosed. Close is idempotent.
func (b *Backplane) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	b.cleanups.Wait()
	if b.owned {
		if err := b.client.Close(); err != nil {
			return fmt.Errorf("redisbackplane: close: %w", err)
		}
	}
	return nil
}

func (b *Backplane) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// background runs f on a goroutine that Close waits for, or at once when
// Close has begun (the WaitGroup must not grow while Close waits on it).
func (b *Backplane) background(f func()) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		f()
		return
	}
	b.cleanups.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.cleanups.Done()
		f()
	}()
}

func (b *Backplane) forget(s *subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// newPubSub returns a PubSub on a connection of its own, not yet subscribed
// to anything (no I/O yet).
func (b *Backplane) newPubSub(ctx context.Context) *redis.PubSub {
	if b.sharded {
		return b.client.SSubscribe(ctx)
	}
	return b.client.Subscribe(ctx)
}

// wrap prefixes err with the package and operation, keeping ctx's error
// visible to errors.Is when ctx is done (go-redis reports a deadline as a
// network timeout, not as ctx.Err()). It returns nil for a nil err.
func wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redisbackplane: %s: %w: %w", op, cerr, err)
	}
	return fmt.Errorf("redisbackplane: %s: %w", op, err)
}

// PublishClient returns the client Publish sends with, and whether the
// backplane uses sharded pub/sub. redisl2 uses it to tell whether it can
// publish in the same round trip as an L2 write (l2.Announcer): only when
// its own client talks to the same single server and publishing is not
// sharded.
func (b *Backplane) PublishClient() (client redis.UniversalClient, sharded bool) {
	return b.client, b.sharded
}
