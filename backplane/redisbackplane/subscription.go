package redisbackplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
)

// Bounds of the pause between attempts while a subscription's connection is
// down (go-redis redials on each attempt).
const (
	minRetryPause = 50 * time.Millisecond
	maxRetryPause = 500 * time.Millisecond
)

// subscription is one Subscribe: a PubSub (its own connection) read by one
// goroutine, run, which calls the callbacks.
type subscription struct {
	b         *Backplane
	channel   string
	onMessage backplane.MessageFunc
	onState   backplane.StateFunc

	// ctx lives until Close; it bounds go-redis's redials.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	ps      *redis.PubSub // replaced when a health check finds it dead
	closing bool

	closeOnce sync.Once
	done      chan struct{} // closed when run returns
}

func newSubscription(b *Backplane, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscription{
		b: b, channel: channel, onMessage: onMessage, onState: onState,
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
}

// start subscribes and waits for the server's confirmation, or for ctx to
// be done. On error everything it opened is closed.
func (s *subscription) start(ctx context.Context) error {
	ps := s.b.newPubSub(s.ctx)
	s.ps = ps
	confirmed := make(chan error, 1)
	go func() { confirmed <- s.confirm(ctx, ps) }()
	select {
	case err := <-confirmed:
		if err != nil {
			s.stop()
		}
		return err
	case <-ctx.Done():
		// Closing the PubSub ends a read in progress, but waits for a
		// dial in progress, which may take the client's dial and read
		// timeouts: do it on a goroutine that Backplane.Close waits for.
		s.cancel()
		s.b.background(func() {
			s.stop()
			<-confirmed
		})
		return ctx.Err()
	}
}

// confirm sends the subscribe command on ps and reads until the server
// confirms it.
func (s *subscription) confirm(ctx context.Context, ps *redis.PubSub) error {
	if err := s.subscribe(ctx, ps); err != nil {
		return err
	}
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		if s.confirms(msg) {
			return nil
		}
	}
}

func (s *subscription) subscribe(ctx context.Context, ps *redis.PubSub) error {
	if s.b.sharded {
		return ps.SSubscribe(ctx, s.channel)
	}
	return ps.Subscribe(ctx, s.channel)
}

// confirms reports whether msg is the server's confirmation of this
// subscription.
func (s *subscription) confirms(msg any) bool {
	m, ok := msg.(*redis.Subscription)
	return ok && (m.Kind == "subscribe" || m.Kind == "ssubscribe") && m.Channel == s.channel
}

// run delivers until Close. It reports Connected first, Disconnected on the
// first error of the connection (or an unanswered health-check PING), and
// Reconnected when the server confirms the subscription again: go-redis
// redials and resubscribes by itself, so the confirmation is the sign that
// the subscription is live again.
func (s *subscription) run() {
	defer close(s.done)
	s.onState(backplane.Connected, nil)
	connected, pinged := true, false
	pause := minRetryPause
	down := func(err error) {
		if connected {
			connected = false
			s.onState(backplane.Disconnected, err)
		}
	}
	for {
		ps := s.current()
		if ps == nil {
			return
		}
		msg, err := ps.ReceiveTimeout(s.ctx, s.b.interval)
		if s.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			pinged = false // any reply is as good as a PONG
		case isTimeout(err) && pinged:
			// Silent for two intervals with a PING sent: the connection
			// is dead even if the OS has not noticed. Start afresh.
			down(fmt.Errorf("redisbackplane: no reply to a health-check PING within %v", s.b.interval))
			s.replace()
			pinged = false
			continue
		case isTimeout(err):
			pctx, cancel := context.WithTimeout(s.ctx, s.b.interval)
			err = ps.Ping(pctx)
			cancel()
			if err == nil {
				pinged = true
				continue
			}
			fallthrough
		default:
			down(err)
			pinged = false // a PING sent on the lost connection is moot
			s.sleep(pause) // a server that is down is not hammered
			pause = min(2*pause, maxRetryPause)
			var rerr redis.Error
			if errors.As(err, &rerr) {
				// The server refused the subscribe (MOVED after a slot
				// moved, CLUSTERDOWN, ...): the connection is up but
				// subscribed to nothing. Start afresh where the cluster
				// now says the channel lives.
				s.reloadCluster()
				s.replace()
			}
			// Otherwise go-redis has closed the connection and redials
			// on the next read.
			continue
		}
		switch m := msg.(type) {
		case *redis.Message:
			if m.Channel == s.channel {
				s.onMessage([]byte(m.Payload))
			}
		case *redis.Subscription:
			switch {
			case s.confirms(m):
				// One SUBSCRIBE is sent per connection, and start has
				// read the first connection's confirmation: this one comes
				// from a new connection, even if go-redis swapped it
				// without an error (a server handoff).
				down(errResubscribed)
				connected, pause = true, minRetryPause
				s.onState(backplane.Reconnected, nil)
			case m.Channel == s.channel && (m.Kind == "sunsubscribe" || m.Kind == "unsubscribe"):
				// The server dropped the subscription: on Redis Cluster,
				// the channel's slot moved to another node. A new
				// connection subscribes where the slot is now.
				down(fmt.Errorf("redisbackplane: the server ended the subscription (%s), as when the channel's slot moves", m.Kind))
				s.reloadCluster()
				s.replace()
			}
		}
	}
}

// errResubscribed is the cause of a Disconnected reported when go-redis
// resubscribed on a new connection without returning an error first.
var errResubscribed = errors.New("redisbackplane: go-redis resubscribed on a new connection")

// current returns the PubSub to read, or nil once Close has begun.
func (s *subscription) current() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	return s.ps
}

// replace swaps the PubSub for a new one on a new connection, subscribed to
// the channel (or remembering to subscribe when it connects, if it cannot
// connect yet).
func (s *subscription) replace() {
	ps := s.b.newPubSub(s.ctx)
	_ = s.subscribe(s.ctx, ps) // on failure, the PubSub subscribes when it reconnects
	s.mu.Lock()
	old := s.ps
	if s.closing {
		old = ps
	} else {
		s.ps = ps
	}
	s.mu.Unlock()
	_ = old.Close()
}

// reloadCluster asks a cluster client to reload its slot map (in the
// background), so that a new connection goes to the channel's current
// node.
func (s *subscription) reloadCluster() {
	if cc, ok := s.b.client.(*redis.ClusterClient); ok {
		cc.ReloadState(s.ctx)
	}
}

// sleep waits for d or until Close.
func (s *subscription) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// Close stops delivery and closes the subscription's connection. Once it
// returns, neither callback is called again. It is idempotent and returns
// nil. It must not be called from the subscription's own callbacks.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.done
		s.b.forget(s)
	})
	return nil
}

// stop ends the subscription's context and closes its PubSub, which ends a
// read or dial in progress.
func (s *subscription) stop() {
	s.mu.Lock()
	s.closing = true
	ps := s.ps
	s.mu.Unlock()
	s.cancel()
	if ps != nil {
		_ = ps.Close()
	}
}

// isTimeout reports whether err is a read that timed out: nothing came
// within the health-check interval.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
