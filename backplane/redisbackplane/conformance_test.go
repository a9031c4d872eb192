package redisbackplane_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/internal/redistest"
)

// harness makes each node on a client of its own that reaches Redis
// through a proxy of its own, so that Disconnect can cut one node off the
// server (every connection dropped, every redial refused) while the others
// carry on, and Reconnect can let it back.
type harness struct {
	addr  string
	opts  *redisbackplane.Options
	admin *redis.Client // straight to the server, for Holdings

	mu      sync.Mutex
	proxies map[backplane.Backplane]*redistest.Proxy
	names   map[backplane.Backplane]string // each node's client name
}

func newHarness(t *testing.T, opts *redisbackplane.Options) *harness {
	return &harness{
		addr: redistest.Addr(t), opts: opts, admin: redistest.NewClient(t, nil),
		proxies: make(map[backplane.Backplane]*redistest.Proxy),
		names:   make(map[backplane.Backplane]string),
	}
}

func (h *harness) MakeBackplane(_ context.Context, t *testing.T) (backplane.Backplane, error) {
	p := redistest.StartProxy(t, h.addr)
	name := "strata-conformance-" + redistest.Unique()
	c := redistest.NewClient(t, &redis.Options{Addr: p.Addr(), ClientName: name})
	b, err := redisbackplane.New(c, h.opts)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.proxies[b] = p
	h.names[b] = name
	h.mu.Unlock()
	return b, nil
}

// Holdings counts the server's connections from b (by their client name),
// the channels they are subscribed to, and the subscribers of channel
// server-wide (PUBSUB NUMSUB, SHARDNUMSUB when sharded).
func (h *harness) Holdings(ctx context.Context, _ *testing.T, b backplane.Backplane, channel string) (map[string]int, error) {
	h.mu.Lock()
	name, ok := h.names[b]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backplane %p was not made by this harness", b)
	}
	list, err := h.admin.ClientList(ctx).Result()
	if err != nil {
		return nil, err
	}
	held := map[string]int{"connections": 0, "their subscriptions": 0}
	for line := range strings.Lines(list) {
		f := clientFields(line)
		if f["name"] != name {
			continue
		}
		held["connections"]++
		for _, k := range []string{"sub", "psub", "ssub"} {
			n, _ := strconv.Atoi(f[k])
			held["their subscriptions"] += n
		}
	}
	var subs map[string]int64
	if h.opts != nil && h.opts.Sharded {
		subs, err = h.admin.PubSubShardNumSub(ctx, channel).Result()
	} else {
		subs, err = h.admin.PubSubNumSub(ctx, channel).Result()
	}
	if err != nil {
		return nil, err
	}
	held["subscribers of the channel"] = int(subs[channel])
	return held, nil
}

// clientFields splits a line of CLIENT LIST into its key=value fields.
func clientFields(line string) map[string]string {
	f := make(map[string]string)
	for kv := range strings.FieldsSeq(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	return f
}

func (h *harness) proxy(b backplane.Backplane) (*redistest.Proxy, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.proxies[b]
	if !ok {
		return nil, fmt.Errorf("backplane %p was not made by this harness", b)
	}
	return p, nil
}

func (h *harness) Disconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	p, err := h.proxy(b)
	if err == nil {
		p.Cut()
	}
	return err
}

func (h *harness) Reconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	p, err := h.proxy(b)
	if err == nil {
		p.Restore()
	}
	return err
}

// MakeUnreachableBackplane points a node at a port where nothing listens.
func (h *harness) MakeUnreachableBackplane(_ context.Context, t *testing.T) (backplane.Backplane, error) {
	c := redistest.NewClient(t, &redis.Options{Addr: redistest.Unreachable, DialTimeout: time.Second})
	return redisbackplane.New(c, h.opts)
}

// urlHarness makes nodes with backplane.Open, each owning its client.
type urlHarness struct{ url string }

func (h urlHarness) MakeBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	return backplane.Open(ctx, h.url)
}

func TestConformance(t *testing.T) {
	t.Parallel() // channels and client names of its own: runs beside the others
	backplanetest.Run(t, newHarness(t, nil))
}

func TestConformanceSharded(t *testing.T) {
	t.Parallel()
	backplanetest.Run(t, newHarness(t, &redisbackplane.Options{Sharded: true}))
}

func TestConformanceURL(t *testing.T) {
	t.Parallel()
	backplanetest.Run(t, urlHarness{url: "redis://" + redistest.Addr(t) + "/0?health_check_interval=500ms"})
}

// clusterHarness makes each node on a Redis Cluster client of its own.
type clusterHarness struct {
	addrs []string
	opts  *redisbackplane.Options
}

func (h clusterHarness) MakeBackplane(_ context.Context, t *testing.T) (backplane.Backplane, error) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: h.addrs})
	t.Cleanup(func() { _ = c.Close() })
	return redisbackplane.New(c, h.opts)
}

// TestCluster runs the suite on a three-node Redis Cluster started for the
// test, with classic pub/sub (messages broadcast to every node, so
// publisher and subscriber may be on different nodes) and sharded pub/sub
// (SSUBSCRIBE and SPUBLISH on the node owning the channel's slot).
func TestCluster(t *testing.T) {
	t.Parallel() // on servers of its own, like TestSentinel(Failover) and TestClusterSlotMove
	addrs := redistest.StartCluster(t)
	t.Run("Classic", func(t *testing.T) { backplanetest.Run(t, clusterHarness{addrs: addrs}) })
	t.Run("Sharded", func(t *testing.T) {
		backplanetest.Run(t, clusterHarness{addrs: addrs, opts: &redisbackplane.Options{Sharded: true}})
	})
}

// sentinelHarness makes each node on a failover client of its own.
type sentinelHarness struct {
	master    string
	sentinels []string
}

func (h sentinelHarness) MakeBackplane(_ context.Context, t *testing.T) (backplane.Backplane, error) {
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: h.master, SentinelAddrs: h.sentinels})
	t.Cleanup(func() { _ = c.Close() })
	return redisbackplane.New(c, nil)
}

// TestSentinel runs the suite through Sentinel-managed failover clients,
// against a primary and a Sentinel started for the test.
func TestSentinel(t *testing.T) {
	t.Parallel()
	master, sentinels := redistest.StartSentinel(t)
	backplanetest.Run(t, sentinelHarness{master: master, sentinels: sentinels})
}

// TestClusterSlotMove: when the slot of a sharded subscription's channel
// moves to another node, the server ends the subscription (SUNSUBSCRIBE);
// the subscription reports Disconnected, subscribes on the slot's new
// node, reports Reconnected, and payloads flow again.
func TestClusterSlotMove(t *testing.T) {
	t.Parallel()
	addrs := redistest.StartCluster(t)
	cluster := func() *redis.ClusterClient {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	opts := &redisbackplane.Options{Sharded: true}
	node, err := redisbackplane.New(cluster(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	pub, err := redisbackplane.New(cluster(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	ch := backplane.ChannelName("move-" + redistest.Unique())
	r := subscribe(t, node, ch)
	publishUntil(t, pub, ch, r, "before")

	ctx := ctxFor(t)
	nodes := make([]*redis.Client, len(addrs))
	for i, a := range addrs {
		nodes[i] = redistest.NewClient(t, &redis.Options{Addr: a})
	}
	slot, err := nodes[0].ClusterKeySlot(ctx, ch).Result()
	if err != nil {
		t.Fatal(err)
	}
	slots, err := nodes[0].ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := -1
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			for i, a := range addrs {
				if a == r.Nodes[0].Addr {
					owner = i
				}
			}
		}
	}
	if owner < 0 {
		t.Fatalf("no node owns slot %d: %+v", slot, slots)
	}
	// Another node takes the (key-less) slot over, with a bumped epoch so
	// that its claim wins, and the owner gives it up.
	target := nodes[(owner+1)%len(nodes)]
	targetID, err := target.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", targetID).Err(); err != nil {
		t.Fatalf("CLUSTER SETSLOT on the target: %v", err)
	}
	if err := target.Do(ctx, "CLUSTER", "BUMPEPOCH").Err(); err != nil {
		t.Fatalf("CLUSTER BUMPEPOCH: %v", err)
	}
	if err := nodes[owner].Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", targetID).Err(); err != nil {
		t.Fatalf("CLUSTER SETSLOT on the owner: %v", err)
	}
	waitFor(t, "Disconnected", func() bool { return r.stateAfter(backplane.Disconnected, 1) })
	waitFor(t, "Reconnected", func() bool { return r.stateAfter(backplane.Reconnected, 2) })
	publishUntil(t, pub, ch, r, "after")
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Logf("states %v, causes %v", r.states, r.errs)
}
