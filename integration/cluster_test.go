package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/natsbackplane"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/natstest"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

// backplanes are the backplane adapters every scenario runs on.
var backplanes = []string{"redis", "nats", "amqp"}

// node is one cache of a cluster, with a way to cut its backplane
// connection (as a network failure would) and to restore it.
type node struct {
	*core.Cache
	cut     func()
	restore func()
}

// clusterConfig says what a cluster is made of.
type clusterConfig struct {
	backplane string // "redis", "nats" or "amqp"
	redisL2   bool   // share a Redis L2 (redisl2), else no L2
	nodes     int
	mod       func(*core.Options)
}

// newCluster makes cfg.nodes caches with one cache name unique to the call,
// each on clients and connections of its own: an L2 store on a Redis client
// of its own (the key prefix shared by the nodes, unique to the call), and
// a backplane whose connection goes through a proxy the node can cut
// (Redis, NATS) or through a dialer that can cut its sockets (RabbitMQ). It
// waits until every node's backplane is connected. The test's cleanup
// closes each cache before its store, backplane, clients and proxy.
func newCluster(tb testing.TB, cfg clusterConfig) []*node {
	tb.Helper()
	name := "strata-it-" + redistest.Unique()
	prefix := redistest.Prefix()
	if cfg.backplane == "amqp" {
		url := rabbittest.URL(tb)
		tb.Cleanup(func() { rabbittest.DeleteExchanges(tb, url, []string{backplane.ChannelName(name)}) })
	}
	nodes := make([]*node, cfg.nodes)
	for i := range nodes {
		o := core.Options{Name: name, InstanceID: fmt.Sprintf("node-%d", i)}
		if cfg.redisL2 {
			// ContextTimeoutEnabled, as docs/redis.md advises: calls
			// with a deadline then need no goroutine each.
			client := redistest.NewClient(tb, &redis.Options{ContextTimeoutEnabled: true})
			store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: prefix})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = store.Close() })
			o.L2 = l2.Store(store)
		}
		n := &node{}
		o.Backplane, n.cut, n.restore = newBackplane(tb, cfg.backplane, fmt.Sprintf("%s-%d", name, i))
		if cfg.mod != nil {
			cfg.mod(&o)
		}
		c, err := core.New(o)
		if err != nil {
			tb.Fatalf("core.New: %v", err)
		}
		tb.Cleanup(func() {
			if err := c.Close(); err != nil {
				tb.Errorf("Close %s: %v", o.InstanceID, err)
			}
		})
		n.Cache = c
		nodes[i] = n
	}
	for _, n := range nodes {
		waitFor(tb, 10*time.Second, n.InstanceID()+"'s backplane to connect", func() bool { return !n.Stats().Disconnected })
	}
	return nodes
}

// newBackplane returns a backplane of the given kind on connections of its
// own, named connName on the server (Redis, RabbitMQ), closed by the test's
// cleanup, and functions cutting and restoring its connection to the
// server.
func newBackplane(tb testing.TB, kind, connName string) (backplane.Backplane, func(), func()) {
	tb.Helper()
	switch kind {
	case "redis":
		proxy := redistest.StartProxy(tb, redistest.Addr(tb))
		addr, cut, restore := proxy.Addr(), proxy.Cut, proxy.Restore
		client := redistest.NewClient(tb, &redis.Options{Addr: addr, ClientName: connName, DialTimeout: time.Second,
			ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1, ContextTimeoutEnabled: true})
		bp, err := redisbackplane.New(client, &redisbackplane.Options{HealthCheckInterval: 100 * time.Millisecond})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = bp.Close() })
		return bp, cut, restore
	case "nats":
		proxy := natstest.NewProxy(tb, natstest.HostPort(natstest.URL(tb), "4222"))
		url, cut := proxy.URL(), proxy.Cut
		restore := func() {
			if err := proxy.Restore(); err != nil {
				tb.Errorf("restore the NATS proxy: %v", err)
			}
		}
		nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
			nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond), nats.Timeout(2*time.Second),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			tb.Fatalf("nats.Connect: %v", err)
		}
		tb.Cleanup(nc.Close)
		bp, err := natsbackplane.New(nc, nil)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = bp.Close() })
		return bp, cut, restore
	case "amqp":
		d := &rabbittest.Dialer{URL: rabbittest.URL(tb), Name: connName}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bp, err := rabbitbackplane.New(ctx, "", &rabbitbackplane.Options{Dial: d.Dial, ConnectionName: connName,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = bp.Close() })
		return bp, d.Cut, d.Restore
	}
	tb.Fatalf("unknown backplane %q", kind)
	return nil, nil, nil
}

// waitFor polls cond every 5 ms until it holds, failing tb after d.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(tb testing.TB, c *core.Cache, key string) (string, bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, ok, err := core.Get[string](ctx, c, key)
	if err != nil {
		tb.Fatalf("Get(%q) on %s: %v", key, c.InstanceID(), err)
	}
	return v, ok
}

func constant[T any](v T) core.Factory[T] {
	return func(context.Context, *core.FactoryContext[T]) (T, error) { return v, nil }
}
