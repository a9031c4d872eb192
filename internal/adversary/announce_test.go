package adversary

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2/redisl2"
)

// Attacks on the one-round-trip write and announce (l2.Announcer): redisl2
// and redisbackplane on one Redis client, so that core writes the entry and
// publishes its message in one Lua script.

type redisCluster struct {
	name, prefix, addr string
}

func newRedisCluster(t *testing.T) *redisCluster {
	return &redisCluster{name: "adv-" + redistest.Unique(), prefix: redistest.Prefix(), addr: redistest.Addr(t)}
}

// node starts a node whose store and backplane share one client dialling
// addr ("" for the server itself).
func (rc *redisCluster) node(t *testing.T, id, addr string, mod func(*core.Options)) *core.Cache {
	t.Helper()
	if addr == "" {
		addr = rc.addr
	}
	client := redistest.NewClient(t, &redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: rc.prefix})
	if err != nil {
		t.Fatal(err)
	}
	bp, err := redisbackplane.New(client, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !store.AnnouncesOn(bp) {
		t.Fatal("the store does not announce on its own client's backplane")
	}
	o := core.Options{Name: rc.name, InstanceID: id, L2: store, Backplane: bp, WaitForInitialSubscribe: 5 * time.Second,
		AutoRecoveryDelay: 100 * time.Millisecond, CloseTimeout: 2 * time.Second}
	if mod != nil {
		mod(&o)
	}
	c, err := core.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = bp.Close(); _ = store.Close() })
	return c
}

// observe reads key through a node without L1 state or backplane: what L2
// holds now ("" for a miss).
func (rc *redisCluster) observe(t *testing.T, key string) string {
	t.Helper()
	client := redistest.NewClient(t, &redis.Options{Addr: rc.addr})
	store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: rc.prefix})
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Options{Name: rc.name, InstanceID: "observer", L2: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, found, err := core.Get[string](context.Background(), c, key)
	if err != nil {
		t.Fatalf("observer: %v", err)
	}
	if !found {
		return ""
	}
	return v
}

// redisWarm makes every node read an entry from L2 (a hit), so that each
// knows the Clear times and installs values from messages.
func redisWarm(t *testing.T, nodes ...*core.Cache) {
	t.Helper()
	ctx := context.Background()
	if err := core.Set(ctx, nodes[0], "warm", "w", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range nodes {
		if v, err := core.GetOrSet(ctx, c, "warm", failF(errSourceDown), core.WithDuration(time.Hour), core.WithSkipL1Read()); err != nil || v != "w" {
			t.Fatalf("warm-up on %s: %q, %v", c.InstanceID(), v, err)
		}
	}
}

func redisGet(t *testing.T, c *core.Cache, key string) string {
	t.Helper()
	v, found, err := core.Get[string](context.Background(), c, key)
	if err != nil {
		t.Fatalf("Get on %s: %v", c.InstanceID(), err)
	}
	if !found {
		return ""
	}
	return v
}

// TestAnnounceConcurrentSetsConverge: two nodes set one key at the same
// moment, many times, with and without values on the backplane. After each
// round every node and L2 agree on one of the two values (no lost update,
// no node left holding the loser).
func TestAnnounceConcurrentSetsConverge(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			rc := newRedisCluster(t)
			a := rc.node(t, "a", "", nil)
			b := rc.node(t, "b", "", nil)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			redisWarm(t, a, b)
			for round := range 30 {
				va, vb := fmt.Sprint("a-", round), fmt.Sprint("b-", round)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for _, w := range []struct {
					c *core.Cache
					v string
				}{{a, va}, {b, vb}} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						if err := core.Set(ctx, w.c, "k", w.v, opts...); err != nil {
							t.Error(err)
						}
					}()
				}
				close(start)
				wg.Wait()
				eventually(t, 3*time.Second, 5*time.Millisecond, func() string {
					ga, gb, gl := redisGet(t, a, "k"), redisGet(t, b, "k"), rc.observe(t, "k")
					if ga == gb && gb == gl && (gl == va || gl == vb) {
						return ""
					}
					return fmt.Sprintf("round %d: a serves %q, b serves %q, L2 holds %q: no convergence in 3s", round, ga, gb, gl)
				})
			}
			if n := a.Stats().BackplaneValues + b.Stats().BackplaneValues; values && n == 0 {
				t.Fatal("no value installed: values on the backplane not exercised")
			}
		})
	}
}

// TestAnnounceCutMidWriteRecovers: the writing node's connection (store
// and backplane on one client) is cut while it sets a key; meanwhile the
// other node changes the key. Once the connection is back and the writer's
// queue is replayed, every node serves the other node's newer change (the
// writer's older, replayed write must not undo it), and nobody serves the
// value from before the cut.
func TestAnnounceCutMidWriteRecovers(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			rc := newRedisCluster(t)
			proxy := redistest.StartProxy(t, rc.addr)
			a := rc.node(t, "a", proxy.Addr(), nil)
			b := rc.node(t, "b", "", nil)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			redisWarm(t, a, b)
			if err := core.Set(ctx, a, "k", "v1", opts...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b serves v1", func() bool { return redisGet(t, b, "k") == "v1" })
			proxy.Cut()
			if err := core.Set(ctx, a, "k", "a-during-cut", opts...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "a disconnected", func() bool { return a.Stats().Disconnected })
			time.Sleep(20 * time.Millisecond)
			if err := core.Set(ctx, b, "k", "b-newer", opts...); err != nil {
				t.Fatal(err)
			}
			proxy.Restore()
			waitFor(t, "a's recovery", func() bool { s := a.Stats(); return !s.Disconnected && s.RecoveryQueued == 0 })
			eventually(t, 3*time.Second, 10*time.Millisecond, func() string {
				ga, gb := redisGet(t, a, "k"), redisGet(t, b, "k")
				if ga == "v1" || gb == "v1" {
					t.Fatalf("v1 served after it was replaced: a %q, b %q", ga, gb)
				}
				return bNewerEverywhere(ga, gb, rc.observe(t, "k"))
			})
		})
	}
}

// TestAnnounceTimedOutScriptThatRan: the writer's script reaches Redis and
// runs (write and publish), but the reply comes too late: the writer sees
// a timeout. Then the other node changes the key. After the writer
// recovers, the newer change wins everywhere.
func TestAnnounceTimedOutScriptThatRan(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			rc := newRedisCluster(t)
			proxy := redistest.StartProxy(t, rc.addr)
			a := rc.node(t, "a", proxy.Addr(), nil)
			b := rc.node(t, "b", "", nil)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			redisWarm(t, a, b)
			if err := core.Set(ctx, a, "k", "v1", opts...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b serves v1", func() bool { return redisGet(t, b, "k") == "v1" })
			proxy.SetLatency(250 * time.Millisecond) // the request gets through, the reply comes after ReadTimeout (300ms)
			errs := a.Stats().L2Errors
			if err := core.Set(ctx, a, "k", "v2", opts...); err != nil {
				t.Fatal(err)
			}
			t.Logf("a: L2Errors +%d, RecoveryQueued %d", a.Stats().L2Errors-errs, a.Stats().RecoveryQueued)
			waitFor(t, "b hears of v2", func() bool { return redisGet(t, b, "k") != "v1" })
			time.Sleep(20 * time.Millisecond)
			if err := core.Set(ctx, b, "k", "b-newer", opts...); err != nil {
				t.Fatal(err)
			}
			proxy.SetLatency(0)
			waitFor(t, "a's recovery", func() bool { s := a.Stats(); return !s.Disconnected && s.RecoveryQueued == 0 })
			eventually(t, 3*time.Second, 10*time.Millisecond, func() string {
				return bNewerEverywhere(redisGet(t, a, "k"), redisGet(t, b, "k"), rc.observe(t, "k"))
			})
		})
	}
}

// TestAnnounceCloseDuringWrite: Close while a write and announce is held
// up by a slow connection returns within CloseTimeout and leaves no
// goroutine calling into the closed cache (-race, and the Set returns).
func TestAnnounceCloseDuringWrite(t *testing.T) {
	ctx := context.Background()
	rc := newRedisCluster(t)
	proxy := redistest.StartProxy(t, rc.addr)
	a := rc.node(t, "a", proxy.Addr(), nil)
	if err := core.Set(ctx, a, "warm", "w"); err != nil {
		t.Fatal(err)
	}
	proxy.SetLatency(time.Hour) // a black hole
	done := make(chan error, 1)
	go func() { done <- core.Set(ctx, a, "k", "v", core.WithValueOnBackplane(true)) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := a.Close(); err != nil && !errors.Is(err, core.ErrClosed) {
		t.Logf("Close: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v with CloseTimeout 2s", d)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the Set never returned after Close")
	}
	proxy.SetLatency(0)
}

// TestAnnounceManyConcurrentWritesNoneDropped: with the one-round-trip
// path the sequence number is inside the script's payload, fixed before
// the script reaches Redis; 200 concurrent Sets from one node go through
// many pooled connections (new ones dialled through a slow proxy), so
// their messages may reach Redis out of number order. None may be dropped
// as a replay (older than the last 64): every other node must drop its
// copy of every key.
func TestAnnounceManyConcurrentWritesNoneDropped(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			rc := newRedisCluster(t)
			proxy := redistest.StartProxy(t, rc.addr)
			a := rc.node(t, "a", proxy.Addr(), nil)
			b := rc.node(t, "b", "", nil)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			redisWarm(t, a, b)
			const n = 200
			for i := range n {
				if err := core.Set(ctx, a, fmt.Sprint("k-", i), "v1", opts...); err != nil {
					t.Fatal(err)
				}
			}
			for i := range n {
				if v := redisGet(t, b, fmt.Sprint("k-", i)); v != "v1" {
					t.Fatalf("b: k-%d = %q", i, v)
				}
			}
			proxy.SetLatency(5 * time.Millisecond)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := core.Set(ctx, a, fmt.Sprint("k-", i), "v2", opts...); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			proxy.SetLatency(0)
			waitFor(t, "a's recovery queue empty", func() bool { return a.Stats().RecoveryQueued == 0 })
			eventually(t, 3*time.Second, 20*time.Millisecond, func() string {
				var stale []int
				for i := range n {
					if redisGet(t, b, fmt.Sprint("k-", i)) != "v2" {
						stale = append(stale, i)
					}
				}
				if len(stale) == 0 {
					return ""
				}
				s := b.Stats()
				return fmt.Sprintf("b still serves v1 for %d keys (%v...); BackplaneRejected %d, LossEvents %d; a: %+v",
					len(stale), stale[:min(5, len(stale))], s.BackplaneRejected, s.LossEvents, a.Stats())
			})
			t.Logf("b: rejected %d, loss events %d, values installed %d", b.Stats().BackplaneRejected, b.Stats().LossEvents, b.Stats().BackplaneValues)
		})
	}
}

// TestAnnounceSignedValues: with signing keys, the message core hands to
// the one-round-trip script is sealed like any other: the other node
// installs the value and rejects nothing; a node with another key
// rejects it and serves nothing it carried.
func TestAnnounceSignedValues(t *testing.T) {
	ctx := context.Background()
	rc := newRedisCluster(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	signed := func(k []byte) func(*core.Options) {
		return func(o *core.Options) { o.BackplaneSigningKeys = [][]byte{k} }
	}
	a := rc.node(t, "a", "", signed(key))
	b := rc.node(t, "b", "", signed(key))
	x := rc.node(t, "x", "", signed([]byte("another key, thirty-two bytes...")))
	if err := core.Set(ctx, a, "warm", "w", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*core.Cache{b, x} { // a hit in L2: the Clear times are known
		if v, err := core.GetOrSet(ctx, c, "warm", failF(errSourceDown), core.WithDuration(time.Hour)); err != nil || v != "w" {
			t.Fatalf("warm: %q, %v", v, err)
		}
	}
	if err := core.Set(ctx, a, "k", "v1", core.WithDuration(time.Hour), core.WithValueOnBackplane(true)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, 5*time.Millisecond, func() string {
		if b.Stats().BackplaneValues == 1 {
			return ""
		}
		return fmt.Sprintf("b installed nothing: b %+v; a %+v; x %+v", b.Stats(), a.Stats(), x.Stats())
	})
	waitFor(t, "x rejects it", func() bool { return x.Stats().BackplaneRejected >= 1 })
	if s := b.Stats(); s.BackplaneRejected != 0 {
		t.Fatalf("b rejected %d messages", s.BackplaneRejected)
	}
	if s := x.Stats(); s.BackplaneValues != 0 {
		t.Fatalf("x installed %d values sealed with another key", s.BackplaneValues)
	}
	if v := redisGet(t, b, "k"); v != "v1" {
		t.Fatalf("b: %q", v)
	}
}

// bNewerEverywhere reports "" when a, b and L2 all hold b's newer change,
// else what each holds.
func bNewerEverywhere(ga, gb, gl string) string {
	if ga == "b-newer" && gb == "b-newer" && gl == "b-newer" {
		return ""
	}
	return fmt.Sprintf("after recovery a serves %q, b %q, L2 holds %q; want b's newer change everywhere", ga, gb, gl)
}
