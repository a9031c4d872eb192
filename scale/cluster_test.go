package scale

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
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
	"github.com/stratacache/strata/l2/redisl2"
)

// setup says what a cluster is made of.
type setup struct {
	backplane string // "redis", "nats" or "amqp"
	redisL2   bool   // share a Redis L2, else none
	nodes     int
	// stampedeLock turns on Options.DistributedStampedeLock (needs redisL2).
	stampedeLock bool
}

func (s setup) String() string {
	l2 := "no-l2"
	if s.redisL2 {
		l2 = "redis-l2"
	}
	if s.stampedeLock {
		l2 += "/lock"
	}
	return s.backplane + "/" + l2
}

// cluster is s.nodes caches of one name, in this process, each on
// connections of its own, and the recorder their observers report to.
type cluster struct {
	nodes []*core.Cache
	rec   *recorder
	// heapPerNode and goroutinesPerNode are what building the cluster
	// added to the process, divided by the number of nodes.
	heapPerNode       uint64
	goroutinesPerNode float64
}

// benchNodes is the number of nodes of the benchmarks: $STRATA_SCALE_NODES,
// default 50.
func benchNodes(tb testing.TB) int {
	tb.Helper()
	v := os.Getenv("STRATA_SCALE_NODES")
	if v == "" {
		return 50
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		tb.Fatalf("STRATA_SCALE_NODES=%q: want a number of nodes >= 2", v)
	}
	return n
}

// newCluster builds the cluster s describes, with a cache name and L2 key
// prefix unique to the call, and waits until every node's subscription is
// live. The test's cleanup closes every cache, then its store and
// backplane and their clients.
func newCluster(tb testing.TB, s setup) *cluster {
	tb.Helper()
	name := "strata-scale-" + redistest.Unique()
	prefix := redistest.Prefix()
	if s.backplane == "amqp" {
		url := rabbittest.URL(tb)
		tb.Cleanup(func() { rabbittest.DeleteExchanges(tb, url, []string{backplane.ChannelName(name)}) })
	}
	heap0, g0 := heapInUse(), runtime.NumGoroutine()
	cl := &cluster{rec: newRecorder(s.nodes)}
	for i := range s.nodes {
		id := fmt.Sprintf("n%d", i)
		o := core.Options{Name: name, InstanceID: id, Observers: []core.Observer{cl.rec.observer(i)},
			DistributedStampedeLock: s.stampedeLock}
		o.Backplane = dialBackplane(tb, s.backplane, name+"-"+id)
		if s.redisL2 {
			store, err := redisl2.New(redistest.NewClient(tb, nil), &redisl2.Options{KeyPrefix: prefix})
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = store.Close() })
			o.L2 = store
		}
		c, err := core.New(o)
		if err != nil {
			tb.Fatalf("core.New(%s): %v", id, err)
		}
		tb.Cleanup(func() {
			if err := c.Close(); err != nil {
				tb.Errorf("Close %s: %v", id, err)
			}
		})
		cl.nodes = append(cl.nodes, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range cl.nodes {
		for c.Stats().Disconnected {
			if time.Now().After(deadline) {
				tb.Fatalf("%s: the backplane subscription of %s is not live after 30 s", s, c.InstanceID())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cl.heapPerNode = (max(heapInUse(), heap0) - heap0) / uint64(s.nodes)
	cl.goroutinesPerNode = float64(runtime.NumGoroutine()-g0) / float64(s.nodes)
	return cl
}

// dialBackplane returns a backplane of the given kind straight on the
// server, on a connection of its own named connName where the server shows
// names; the test's cleanup closes it and its client.
func dialBackplane(tb testing.TB, kind, connName string) backplane.Backplane {
	tb.Helper()
	var bp backplane.Backplane
	var err error
	switch kind {
	case "redis":
		client := redistest.NewClient(tb, &redis.Options{ClientName: connName})
		bp, err = redisbackplane.New(client, nil)
	case "nats":
		var nc *nats.Conn
		nc, err = nats.Connect(natstest.URL(tb), nats.Name(connName), nats.MaxReconnects(-1))
		if err != nil {
			tb.Fatalf("nats.Connect: %v", err)
		}
		tb.Cleanup(nc.Close)
		bp, err = natsbackplane.New(nc, nil)
	case "amqp":
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		bp, err = rabbitbackplane.New(ctx, rabbittest.URL(tb), &rabbitbackplane.Options{ConnectionName: connName})
	default:
		tb.Fatalf("unknown backplane %q", kind)
	}
	if err != nil {
		tb.Fatalf("%s backplane: %v", kind, err)
	}
	tb.Cleanup(func() { _ = bp.Close() })
	return bp
}

// heapInUse returns the bytes of live heap objects after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
