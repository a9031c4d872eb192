package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/stratacache/strata/plugins/stats"
)

// The load's shape.
const (
	nodes          = 3
	workersPerNode = 2
	// l1Entries bounds each node's L1; keySpace is many times larger, so
	// that L1 evicts all the time (even at a few dozen calls a second) and
	// many reads go to L2, while hotKeys (which fit) get most of the calls,
	// so that L1 also hits.
	l1Entries = 300
	keySpace  = 4000
	hotKeys   = l1Entries / 2
	hotShare  = 80 // percent of the calls on a key that go to the hot keys
	tagSpace  = 32
	// defaultDuration is the load's duration in `go test ./...`.
	defaultDuration = 18 * time.Second
	// opTimeout bounds each call; a call that needs longer is an error.
	opTimeout = 10 * time.Second
)

// config is what the environment chooses.
type config struct {
	duration  time.Duration
	backplane string // "redis", "nats" or "amqp"
	// oncePerMille of the calls use a key never used before.
	oncePerMille int
}

// defaultOncePercent is the share of calls on never-repeated keys. It is 0
// because core keeps per-key state for up to 65,536 keys beyond L1 (see
// TestPerKeyStateIsBoundedByL1): with 6%, a 10-minute soak grows by that
// state until the bound, which the criteria cannot tell from a leak.
const defaultOncePercent = 0

func configFromEnv(t *testing.T) config {
	t.Helper()
	cfg := config{duration: defaultDuration, backplane: "redis", oncePerMille: 10 * defaultOncePercent}
	if s := os.Getenv("STRATA_SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("STRATA_SOAK_DURATION=%q: want a positive duration such as 10m", s)
		}
		cfg.duration = d
	}
	if s := os.Getenv("STRATA_SOAK_ONCE_PERCENT"); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 0 || p > 100 {
			t.Fatalf("STRATA_SOAK_ONCE_PERCENT=%q: want a whole percentage from 0 to 100", s)
		}
		cfg.oncePerMille = 10 * p
	}
	if s := os.Getenv("STRATA_SOAK_BACKPLANE"); s != "" {
		cfg.backplane = s
	}
	switch cfg.backplane {
	case "redis", "nats", "amqp":
	default:
		t.Fatalf("STRATA_SOAK_BACKPLANE=%q: want redis, nats or amqp", cfg.backplane)
	}
	if dl, ok := t.Deadline(); ok && time.Until(dl) < cfg.duration+time.Minute {
		t.Fatalf("the test deadline is %v away, too close for a %v soak: pass -timeout %v", time.Until(dl).Round(time.Second), cfg.duration, cfg.duration+5*time.Minute)
	}
	return cfg
}

// item is the cached value: ID is the number of its key, so that a value
// served for the wrong key is caught.
type item struct {
	ID      int    `json:"id"`
	Version int64  `json:"v"`
	Payload string `json:"p"`
}

// newItem returns a value of 50 to 400 bytes for key number id. It is safe
// for concurrent use (factories may run in the background).
func newItem(id int) item {
	return item{ID: id, Version: time.Now().UnixNano(), Payload: strings.Repeat("x", 50+rand.IntN(350))}
}

// soakNode is one cache with its stats plugin.
type soakNode struct {
	*core.Cache
	stats *stats.Plugin
}

// cluster owns the nodes and everything they were made of, and closes it
// all, in order, once.
type cluster struct {
	nodes   []*soakNode
	prefix  string
	closers []func() // run in reverse order
	once    sync.Once
}

func (c *cluster) onClose(f func()) { c.closers = append(c.closers, f) }

func (c *cluster) close() {
	c.once.Do(func() {
		for i := len(c.closers) - 1; i >= 0; i-- {
			c.closers[i]()
		}
	})
}

// newCluster makes the nodes: each has a Redis client and redisl2 store of
// its own (sharing a key prefix unique to the run) and a backplane on a
// connection of its own.
func newCluster(t *testing.T, cfg config) *cluster {
	t.Helper()
	redisAddr := redistest.Addr(t)
	name := "strata-soak-" + redistest.Unique()
	cl := &cluster{prefix: redistest.Prefix()}
	t.Cleanup(cl.close)
	// Closed last: deletes what the run left in Redis (tag markers live a
	// day).
	admin := redis.NewClient(&redis.Options{Addr: redisAddr})
	cl.onClose(func() {
		deletePrefix(t, admin, cl.prefix)
		_ = admin.Close()
	})
	if cfg.backplane == "amqp" {
		url := rabbittest.URL(t)
		cl.onClose(func() { rabbittest.DeleteExchanges(t, url, []string{backplane.ChannelName(name)}) })
	}
	for i := range nodes {
		client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
		cl.onClose(func() { _ = client.Close() })
		store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: cl.prefix})
		if err != nil {
			t.Fatal(err)
		}
		cl.onClose(func() { _ = store.Close() })
		bp := newBackplane(t, cl, cfg.backplane, fmt.Sprintf("%s-%d", name, i), redisAddr)
		st := stats.New()
		c, err := core.New(core.Options{
			Name: name, InstanceID: fmt.Sprintf("node-%d", i),
			L1MaxEntries: l1Entries, L2: store, Backplane: bp,
			Plugins: []core.Plugin{st},
		})
		if err != nil {
			t.Fatalf("core.New: %v", err)
		}
		cl.onClose(func() {
			if err := c.Close(); err != nil {
				t.Errorf("Close %s: %v", c.InstanceID(), err)
			}
		})
		cl.nodes = append(cl.nodes, &soakNode{Cache: c, stats: st})
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range cl.nodes {
		for n.Stats().Disconnected {
			if time.Now().After(deadline) {
				t.Fatalf("%s's backplane did not connect", n.InstanceID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return cl
}

func newBackplane(t *testing.T, cl *cluster, kind, connName, redisAddr string) backplane.Backplane {
	t.Helper()
	switch kind {
	case "nats":
		nc, err := nats.Connect(natstest.URL(t), nats.Name(connName), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatalf("nats.Connect: %v", err)
		}
		cl.onClose(nc.Close)
		bp, err := natsbackplane.New(nc, nil)
		if err != nil {
			t.Fatal(err)
		}
		cl.onClose(func() { _ = bp.Close() })
		return bp
	case "amqp":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bp, err := rabbitbackplane.New(ctx, rabbittest.URL(t), &rabbitbackplane.Options{ConnectionName: connName})
		if err != nil {
			t.Fatal(err)
		}
		cl.onClose(func() { _ = bp.Close() })
		return bp
	}
	client := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	cl.onClose(func() { _ = client.Close() })
	bp, err := redisbackplane.New(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.onClose(func() { _ = bp.Close() })
	return bp
}

// deletePrefix removes every Redis key under prefix.
func deletePrefix(t *testing.T, client *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 500 {
			client.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		client.Unlink(ctx, keys...)
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleaning up the keys under %q: %v", prefix, err)
	}
}

// load runs the mixed workload on cl's nodes until ctx ends.
type load struct {
	cl           *cluster
	oncePerMille int
	ops          atomic.Uint64
	errs         atomic.Uint64
	fresh        atomic.Uint64 // counter of keys used once
	mu           sync.Mutex
	firstErr     []string
}

func (l *load) fail(format string, args ...any) {
	l.errs.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.firstErr) < 10 {
		l.firstErr = append(l.firstErr, fmt.Sprintf(format, args...))
	}
}

// worker makes calls on node n until ctx ends. The mix, per 1000 calls:
// 700 GetOrSet, 130 Get, 108 Set, 50 Remove, 5 Expire, 6 RemoveByTag or
// ExpireByTag, and a Clear about once per 20,000 calls; oncePerMille of the
// calls on a key use a key never used before.
func (l *load) worker(ctx context.Context, n *soakNode, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for ctx.Err() == nil {
		id := r.IntN(keySpace)
		if r.IntN(100) < hotShare {
			id = r.IntN(hotKeys)
		}
		key := "k:" + strconv.Itoa(id)
		x := r.IntN(1000)
		if r.IntN(1000) < l.oncePerMille {
			// A key used once: per-key state must not pile up.
			id = keySpace + int(l.fresh.Add(1))
			key = "once:" + strconv.Itoa(id)
		}
		opCtx, cancel := context.WithTimeout(context.Background(), opTimeout)
		var err error
		op := ""
		switch {
		case x < 700:
			op = "GetOrSet"
			opts := []core.EntryOption{
				core.WithDuration(time.Duration(5+r.IntN(26)) * time.Second),
				core.WithTags(tags(r)...),
			}
			switch r.IntN(4) {
			case 0:
				opts = append(opts, core.WithFailSafe(20*time.Second, time.Second))
			case 1:
				opts = append(opts, core.WithEagerRefresh(0.8))
			}
			var v item
			v, err = core.GetOrSet(opCtx, n.Cache, key, func(context.Context, *core.FactoryContext[item]) (item, error) {
				return newItem(id), nil
			}, opts...)
			if err == nil && v.ID != id {
				l.fail("GetOrSet(%q) on %s returned the value of key %d", key, n.InstanceID(), v.ID)
			}
		case x < 830:
			op = "Get"
			var v item
			var found bool
			v, found, err = core.Get[item](opCtx, n.Cache, key)
			if err == nil && found && v.ID != id {
				l.fail("Get(%q) on %s returned the value of key %d", key, n.InstanceID(), v.ID)
			}
		case x < 938:
			op = "Set"
			err = core.Set(opCtx, n.Cache, key, newItem(id), core.WithDuration(time.Duration(5+r.IntN(26))*time.Second),
				core.WithTags(tags(r)...))
		case x < 988:
			op = "Remove"
			err = n.Remove(opCtx, key)
		case x < 993:
			op = "Expire"
			err = n.Expire(opCtx, key)
		case x < 996:
			op = "RemoveByTag"
			err = n.RemoveByTag(opCtx, "t:"+strconv.Itoa(r.IntN(tagSpace)))
		case x < 999:
			op = "ExpireByTag"
			err = n.ExpireByTag(opCtx, "t:"+strconv.Itoa(r.IntN(tagSpace)))
		default:
			op = "Clear"
			if r.IntN(20) == 0 {
				err = n.Clear(opCtx, r.IntN(2) == 0)
			}
		}
		cancel()
		l.ops.Add(1)
		if err != nil {
			l.fail("%s(%q) on %s: %v", op, key, n.InstanceID(), err)
		}
	}
}

// tags returns an entry's tags: one, or two for a quarter of the entries.
func tags(r *rand.Rand) []string {
	t := []string{"t:" + strconv.Itoa(r.IntN(tagSpace))}
	if r.IntN(4) == 0 {
		t = append(t, "t:"+strconv.Itoa(r.IntN(tagSpace)))
	}
	return t
}

// sampleEvery returns the sampling interval for a load of duration d:
// about 60 samples, between half a second and 10 seconds apart.
func sampleEvery(d time.Duration) time.Duration {
	return min(max(d/60, 500*time.Millisecond), 10*time.Second)
}

// TestSoak runs the load for $STRATA_SOAK_DURATION and checks that memory
// and goroutines stay flat, that no call fails, that the nodes still
// converge afterwards, and that Close leaves no goroutine behind.
func TestSoak(t *testing.T) {
	cfg := configFromEnv(t)
	baseline := runtime.NumGoroutine()
	cl := newCluster(t, cfg)
	l := &load{cl: cl, oncePerMille: cfg.oncePerMille}

	ctx, stop := context.WithTimeout(context.Background(), cfg.duration)
	defer stop()
	var wg sync.WaitGroup
	for i, n := range cl.nodes {
		for w := range workersPerNode {
			wg.Go(func() { l.worker(ctx, n, uint64(i*workersPerNode+w+1)) })
		}
	}
	start := time.Now()
	var samples []sample
	take := func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, sample{at: time.Since(start), heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine(), ops: l.ops.Load()})
	}
	tick := time.NewTicker(sampleEvery(cfg.duration))
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			if ctx.Err() == nil { // not a sample of the load winding down
				take()
			}
		}
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)

	report(t, cfg, cl, l, samples, elapsed)
	if n := l.errs.Load(); n > 0 {
		t.Errorf("%d of %d calls failed; the first: %s", n, l.ops.Load(), strings.Join(l.firstErr, "; "))
	}
	if err := checkFlat(samples); err != nil {
		t.Errorf("not flat over %v: %v", elapsed.Round(time.Second), err)
	}
	for _, n := range cl.nodes {
		st := n.Stats()
		if st.L2Corrupt != 0 || st.BackplaneCorrupt != 0 || st.BackplaneRejected != 0 {
			t.Errorf("%s: %d corrupt L2 entries, %d corrupt and %d rejected backplane messages, want none", n.InstanceID(), st.L2Corrupt, st.BackplaneCorrupt, st.BackplaneRejected)
		}
		if s := n.stats.Snapshot(); s.Evictions == 0 || s.Misses == 0 || s.Hits == 0 || s.BackplaneReceived == 0 {
			t.Errorf("%s: %d evictions, %d hits, %d misses, %d messages received: the load did not do what it is for", n.InstanceID(), s.Evictions, s.Hits, s.Misses, s.BackplaneReceived)
		}
	}
	checkConverges(t, cl)
	writeHeapProfile(t)

	cl.close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		t.Errorf("%d goroutines 10s after Close, %d before the nodes were made", n, baseline)
	}
}

// writeHeapProfile writes the live heap, before the nodes close, to the
// file named by $STRATA_SOAK_HEAPPROFILE, if set (read it with go tool
// pprof -sample_index=inuse_space).
func writeHeapProfile(t *testing.T) {
	path := os.Getenv("STRATA_SOAK_HEAPPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
}

// checkConverges checks that after the load a change made on one node still
// reaches the others' L1 through the backplane.
func checkConverges(t *testing.T, cl *cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "after-the-soak"
	for _, n := range cl.nodes {
		if _, err := core.GetOrSet(ctx, n.Cache, key, func(context.Context, *core.FactoryContext[string]) (string, error) { return "old", nil },
			core.WithDuration(time.Hour)); err != nil {
			t.Fatalf("GetOrSet on %s: %v", n.InstanceID(), err)
		}
	}
	if err := core.Set(ctx, cl.nodes[0].Cache, key, "new", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, n := range cl.nodes[1:] {
		for {
			v, _, err := core.Get[string](ctx, n.Cache, key)
			if err != nil {
				t.Fatalf("Get on %s: %v", n.InstanceID(), err)
			}
			if v == "new" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s still serves %q 30s after a Set on node-0", n.InstanceID(), v)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// report logs the run's figures: throughput, the samples, each node's
// counts. `make soak` keeps them for docs/hardening.md.
func report(t *testing.T, cfg config, cl *cluster, l *load, samples []sample, elapsed time.Duration) {
	t.Helper()
	var b strings.Builder
	ops := l.ops.Load()
	fmt.Fprintf(&b, "soak: %d nodes on Redis L2 + %s backplane, %d workers, %v: %d calls (%.0f/s), %d errors, %d keys used once (%d%% of calls)\n",
		nodes, cfg.backplane, nodes*workersPerNode, elapsed.Round(time.Second), ops, float64(ops)/elapsed.Seconds(), l.errs.Load(), l.fresh.Load(), cfg.oncePerMille/10)
	fmt.Fprintf(&b, "%8s %10s %10s %10s\n", "t", "heap", "goroutines", "calls/s")
	var prev sample
	for _, s := range samples {
		rate := float64(s.ops-prev.ops) / (s.at - prev.at).Seconds()
		fmt.Fprintf(&b, "%8v %10s %10d %10.0f\n", s.at.Round(100*time.Millisecond), mib(s.heap), s.goroutines, rate)
		prev = s
	}
	for _, n := range cl.nodes {
		s, st := n.stats.Snapshot(), n.Stats()
		fmt.Fprintf(&b, "%s: hits %d, stale hits %d, misses %d, evictions %d, L2 errors %d, sent %d, received %d, losses %d, recovery queued %d dropped %d\n",
			n.InstanceID(), s.Hits, s.StaleHits, s.Misses, s.Evictions, st.L2Errors, st.BackplaneSent, st.BackplaneReceived, st.LossEvents, st.RecoveryQueued, st.RecoveryDropped)
	}
	t.Log("\n" + b.String())
}
