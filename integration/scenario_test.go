package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// propagationDeadline bounds how long a change may take to reach the other
// nodes: generous, for loaded CI machines.
const propagationDeadline = 5 * time.Second

// TestPropagation: node A changes a profile (Set, Remove, RemoveByTag,
// Clear) and nodes B and C, which hold the previous value in L1, stop
// serving it within the deadline: with a Redis L2 they serve A's new value,
// without one they miss (nothing else could tell them the new value).
func TestPropagation(t *testing.T) {
	for _, bp := range backplanes {
		for _, withL2 := range []bool{true, false} {
			l2name := "no-l2"
			if withL2 {
				l2name = "redis-l2"
			}
			t.Run(bp+"/"+l2name, func(t *testing.T) {
				t.Parallel()
				testPropagation(t, bp, withL2)
			})
		}
	}
}

func testPropagation(t *testing.T, bp string, withL2 bool) {
	ctx := context.Background()
	nodes := newCluster(t, clusterConfig{backplane: bp, redisL2: withL2, nodes: 3})
	a, others := nodes[0], nodes[1:]
	const key = "profile:42"
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("tenant:7")}

	if err := core.Set(ctx, a.Cache, key, "v1", opts...); err != nil {
		t.Fatal(err)
	}
	last := "v1" // the value B and C are made to hold before each change
	steps := []struct {
		name   string
		change func() error
		want   string // "" means a miss
	}{
		{"Set", func() error { return core.Set(ctx, a.Cache, key, "v2", opts...) }, "v2"},
		{"Remove", func() error { return a.Remove(ctx, key) }, ""},
		{"Set again", func() error { return core.Set(ctx, a.Cache, key, "v3", opts...) }, "v3"},
		{"RemoveByTag", func() error { return a.RemoveByTag(ctx, "tenant:7") }, ""},
		{"Set after tag", func() error { return core.Set(ctx, a.Cache, key, "v4", opts...) }, "v4"},
		{"Clear(false)", func() error { return a.Clear(ctx, false) }, ""},
		{"Set after clear", func() error { return core.Set(ctx, a.Cache, key, "v5", opts...) }, "v5"},
	}
	for _, st := range steps {
		// B and C hold a value in L1 before the change: with L2, the
		// current one read from it; without, the last one A set.
		held := map[*node]string{}
		for _, n := range others {
			if withL2 {
				v, ok := get(t, n.Cache, key)
				if ok {
					held[n] = v
				}
			} else {
				v, err := core.GetOrSet(ctx, n.Cache, key, constant(last), opts...)
				if err != nil {
					t.Fatalf("%s: GetOrSet on %s: %v", st.name, n.InstanceID(), err)
				}
				held[n] = v
			}
		}
		if err := st.change(); err != nil {
			t.Fatalf("%s on A: %v", st.name, err)
		}
		if st.want != "" {
			last = st.want
		}
		for _, n := range others {
			waitFor(t, propagationDeadline, fmt.Sprintf("%s to reach %s (held %q)", st.name, n.InstanceID(), held[n]), func() bool {
				v, ok := get(t, n.Cache, key)
				if !withL2 {
					return !ok || v == st.want
				}
				return st.want == "" && !ok || ok && v == st.want
			})
		}
	}
}

// TestReconnect: a node whose backplane connection is cut serves nothing
// older than Options.BackplaneStalenessBound meanwhile (it rereads the
// Redis L2, which it still reaches), and once the connection is restored
// it hears invalidations again.
func TestReconnect(t *testing.T) {
	for _, bp := range backplanes {
		t.Run(bp+"/redis-l2", func(t *testing.T) {
			t.Parallel()
			testReconnect(t, bp)
		})
	}
}

func testReconnect(t *testing.T, bp string) {
	ctx := context.Background()
	const bound = 300 * time.Millisecond
	nodes := newCluster(t, clusterConfig{backplane: bp, redisL2: true, nodes: 3,
		mod: func(o *core.Options) { o.BackplaneStalenessBound = bound }})
	a, b, c := nodes[0], nodes[1], nodes[2]
	const key = "profile:42"
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	if err := core.Set(ctx, a.Cache, key, "v1", opts...); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{b, c} {
		if v, _ := get(t, n.Cache, key); v != "v1" {
			t.Fatalf("%s got %q, want v1 from L2", n.InstanceID(), v)
		}
	}

	b.cut()
	waitFor(t, 5*time.Second, "B to see its backplane down", func() bool { return b.Stats().Disconnected })
	cutAt := time.Now()
	if err := core.Set(ctx, a.Cache, key, "v2", opts...); err != nil { // B cannot hear this
		t.Fatal(err)
	}
	// C, still connected, hears it.
	waitFor(t, propagationDeadline, "v2 on C", func() bool { v, _ := get(t, c.Cache, key); return v == "v2" })
	// B serves v1 at most until the bound has passed since it last heard
	// the backplane (before cutAt); the slack covers polling and L2 reads.
	for {
		v, _ := get(t, b.Cache, key)
		if v == "v2" {
			break
		}
		if since := time.Since(cutAt); since > bound+time.Second {
			t.Fatalf("B still serves %q %v after its backplane went down (bound %v)", v, since, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}

	b.restore()
	waitFor(t, 10*time.Second, "B's backplane to reconnect", func() bool { return !b.Stats().Disconnected })
	// B holds v2 as fresh again; only a message can tell it about v3.
	if v, _ := get(t, b.Cache, key); v != "v2" {
		t.Fatalf("B got %q after reconnecting, want v2", v)
	}
	received := b.Stats().BackplaneReceived
	if err := core.Set(ctx, a.Cache, key, "v3", opts...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, propagationDeadline, "v3 on B after reconnecting", func() bool { v, _ := get(t, b.Cache, key); return v == "v3" })
	if got := b.Stats().BackplaneReceived; got <= received {
		t.Errorf("B received %d backplane messages before A's Set and %d after: the invalidation did not come through the backplane", received, got)
	}
}

// TestDistributedStampedeLock: 3 nodes × 5 goroutines ask for one missing
// key at once with a slow factory; with Options.DistributedStampedeLock on
// a Redis L2 the factory runs once in total, and everyone gets its value.
func TestDistributedStampedeLock(t *testing.T) {
	t.Parallel()
	nodes := newCluster(t, clusterConfig{backplane: "redis", redisL2: true, nodes: 3,
		mod: func(o *core.Options) { o.DistributedStampedeLock = true }})
	var calls atomic.Int64
	factory := func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond)
		return "computed", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 15)
	for _, n := range nodes {
		for range 5 {
			wg.Go(func() {
				<-start
				v, err := core.GetOrSet(ctx, n.Cache, "missing", factory, core.WithDuration(time.Minute))
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", n.InstanceID(), err)
				case v != "computed":
					errs <- fmt.Errorf("%s got %q", n.InstanceID(), v)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("the factory ran %d times across 3 nodes × 5 goroutines, want 1", got)
	}
}
