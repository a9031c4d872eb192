package adversary

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2/redisl2"
)

// Attacks on redisl2's conditional write: foreign values and foreign Redis
// types under strata's keys, replaced by strata's writes; versions that
// differ by one across the 32-bit halves the script compares; concurrent
// Sets from two nodes.

type foreign struct {
	name  string
	write func(ctx context.Context, rdb *redis.Client, key string) error
}

var foreigners = []foreign{
	{"list", func(ctx context.Context, r *redis.Client, k string) error { return r.RPush(ctx, k, "a", "b").Err() }},
	{"hash", func(ctx context.Context, r *redis.Client, k string) error { return r.HSet(ctx, k, "f", "v").Err() }},
	{"set", func(ctx context.Context, r *redis.Client, k string) error { return r.SAdd(ctx, k, "m").Err() }},
	{"zset", func(ctx context.Context, r *redis.Client, k string) error {
		return r.ZAdd(ctx, k, redis.Z{Score: 1, Member: "m"}).Err()
	}},
	{"stream", func(ctx context.Context, r *redis.Client, k string) error {
		return r.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"f", "v"}}).Err()
	}},
	{"garbage", func(ctx context.Context, r *redis.Client, k string) error {
		return r.Set(ctx, k, "not an entry", 0).Err()
	}},
	{"empty", func(ctx context.Context, r *redis.Client, k string) error { return r.Set(ctx, k, "", 0).Err() }},
	{"short-hex", func(ctx context.Context, r *redis.Client, k string) error { return r.Set(ctx, k, "ffff", 0).Err() }},
	{"15hex+g", func(ctx context.Context, r *redis.Client, k string) error {
		return r.Set(ctx, k, "fffffffffffffffgxyz", 0).Err()
	}},
	{"min-version", func(ctx context.Context, r *redis.Client, k string) error {
		return r.Set(ctx, k, "0000000000000000garbage", 0).Err()
	}},
	{"binary", func(ctx context.Context, r *redis.Client, k string) error {
		return r.Set(ctx, k, "\xff\xfe\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e", 0).Err()
	}},
}

// redisNodes starts n nodes on one Redis L2 (a client each) and an
// in-memory bus (so writes are not announced in the script), plus a raw
// client on the same server.
func redisNodes(t *testing.T, n int) (nodes []*core.Cache, raw *redis.Client, prefix string) {
	t.Helper()
	addr := redistest.Addr(t)
	prefix = redistest.Prefix()
	name := "adv-rc-" + redistest.Unique()
	bus := membackplane.NewBus()
	for i := range n {
		client := redistest.NewClient(t, &redis.Options{Addr: addr})
		store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		bp := bus.Connect(nil)
		c, err := core.New(core.Options{Name: name, InstanceID: fmt.Sprint("n", i), L2: store, Backplane: bp,
			WaitForInitialSubscribe: 5 * time.Second, CloseTimeout: 2 * time.Second, AutoRecoveryDelay: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(); bp.Close(); _ = store.Close() })
		nodes = append(nodes, c)
	}
	return nodes, redistest.NewClient(t, &redis.Options{Addr: addr}), prefix
}

// l2Value reads key through a fresh node with no L1 (what L2 holds).
func l2Value(t *testing.T, addr, prefix, key string) (string, bool) {
	t.Helper()
	store, err := redisl2.New(redistest.NewClient(t, &redis.Options{Addr: addr}), &redisl2.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Options{Name: "observer", L2: store})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, found, err := core.Get[string](context.Background(), c, key)
	if err != nil {
		t.Fatalf("observer Get %s: %v", key, err)
	}
	return v, found
}

func TestRedisForeignValuesReplacedByStrataWrites(t *testing.T) {
	nodes, raw, prefix := redisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	addr := redistest.Addr(t)
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	for _, f := range foreigners {
		for _, op := range []string{"Set", "GetOrSet", "GetOrSetFailSafe", "Remove", "SetMany", "Expire"} {
			t.Run(f.name+"/"+op, func(t *testing.T) {
				key := fmt.Sprintf("%s-%s", f.name, op)
				if err := f.write(ctx, raw, prefix+key); err != nil {
					t.Fatal(err)
				}
				before := a.Stats().L2Errors
				want := "strata-" + key
				switch op {
				case "Set":
					if err := core.Set(ctx, a, key, want, opts...); err != nil {
						t.Fatal(err)
					}
				case "SetMany":
					if err := core.SetMany(ctx, a, map[string]string{key: want, key + "-other": "x"}, opts...); err != nil {
						t.Fatal(err)
					}
				case "GetOrSet", "GetOrSetFailSafe":
					o := opts
					if op == "GetOrSetFailSafe" {
						o = append(o, core.WithFailSafe(time.Hour, time.Second))
					}
					if v, found, err := core.Get[string](ctx, a, key); err != nil || found {
						t.Fatalf("Get of a foreign %s: %q %v %v (want a miss)", f.name, v, found, err)
					}
					v, err := core.GetOrSet(ctx, a, key, constF(want), o...)
					if err != nil || v != want {
						t.Fatalf("GetOrSet over a foreign %s: %q, %v", f.name, v, err)
					}
				case "Remove", "Expire":
					var err error
					if op == "Remove" {
						err = a.Remove(ctx, key)
					} else {
						err = a.Expire(ctx, key)
					}
					if err != nil {
						t.Fatal(err)
					}
					if st := a.Stats(); st.RecoveryQueued != 0 {
						t.Fatalf("%s of a key holding a foreign %s queued for recovery (%d): the tombstone was refused", op, f.name, st.RecoveryQueued)
					}
					if v, found := l2Value(t, addr, prefix, key); found {
						t.Fatalf("after %s, L2 still serves %q for a key that held a foreign %s", op, v, f.name)
					}
					if v, err := core.GetOrSet(ctx, b, key, constF(want), opts...); err != nil || v != want {
						t.Fatalf("GetOrSet after %s: %q, %v", op, v, err)
					}
				}
				if st := a.Stats(); st.RecoveryQueued != 0 || st.L2Errors != before {
					t.Fatalf("a write over a foreign %s: %d queued, %d L2 errors", f.name, st.RecoveryQueued, st.L2Errors-before)
				}
				// A key of another type is a miss, not a failing L2
				// (docs/consistency.md): the write is done when the call
				// returns.
				if typ := raw.Type(ctx, prefix+key).Val(); typ != "string" {
					t.Fatalf("when strata's %s over a foreign %s returned, the key is a %s", op, f.name, typ)
				}
				if ttl := raw.PTTL(ctx, prefix+key).Val(); ttl <= 0 {
					t.Fatalf("after strata's %s over a foreign %s, the key has no TTL (%v)", op, f.name, ttl)
				}
				if v, found := l2Value(t, addr, prefix, key); !found || v != want {
					t.Fatalf("after %s over a foreign %s, L2 holds %q, %v; want %q", op, f.name, v, found, want)
				}
				if v, err := core.GetOrSet(ctx, b, key, failF(errSourceDown), opts...); err != nil || v != want {
					t.Fatalf("the other node after %s over a foreign %s: %q, %v", op, f.name, v, err)
				}
			})
		}
	}
}

// TestRedisForeignHeaderLikeValuesReplaced: foreign strings whose first 16
// bytes are NOT 16 lower-case hex digits, and so are no version header
// (docs/redis.md: "a value under the prefix that lacks a valid header ...
// Set and SetIfNewer replace it"; only "a foreign value that happens to
// start with 16 lower-case hex digits cannot be told from an entry"), but
// that a lenient hex parser reads as a number: upper-case hex, a sign, a
// space inside. Strata's Set (and a GetOrSet's result) must replace them.
func TestRedisForeignHeaderLikeValuesReplaced(t *testing.T) {
	nodes, raw, prefix := redisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	addr := redistest.Addr(t)
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	var broken []string
	for _, foreignValue := range []string{
		"FFFFFFFFFFFFFFFFxyz",   // upper-case hex
		"FFFFFFFFffffffffxyz",   // upper-case first half
		"-0000001-0000001xyz",   // a sign
		"fffffffffffffff fffff", // a space in the second half
		"fffffff\tffffffff xyz",
	} {
		key := fmt.Sprintf("hdr-%q", foreignValue)
		if err := raw.Set(ctx, prefix+key, foreignValue, 0).Err(); err != nil {
			t.Fatal(err)
		}
		setErr := core.Set(ctx, a, key, "mine", opts...)
		calls := 0
		for range 3 {
			_, _ = core.GetOrSet(ctx, b, key, func(context.Context, *core.FactoryContext[string]) (string, error) {
				calls++
				return "mine", nil
			}, opts...)
		}
		_, foundA, _ := core.Get[string](ctx, a, key)
		l2v, l2found := l2Value(t, addr, prefix, key)
		if !l2found || l2v != "mine" {
			broken = append(broken, fmt.Sprintf("%q: after Set (err %v) L2 holds %q (found %v), Redis holds %q with TTL %v; a's Get found=%v; b's 3 GetOrSets ran the factory %d times",
				foreignValue, setErr, l2v, l2found, raw.Get(ctx, prefix+key).Val(), raw.PTTL(ctx, prefix+key).Val(), foundA, calls))
		}
	}
	for _, s := range broken {
		t.Error(s)
	}
}

// TestRedisForeignValuesWithAnnounce: the same with store and backplane on
// one client (the write and the publish in one script).
func TestRedisForeignValuesWithAnnounce(t *testing.T) {
	rc := newRedisCluster(t)
	a := rc.node(t, "a", "", nil)
	b := rc.node(t, "b", "", nil)
	raw := redistest.NewClient(t, &redis.Options{Addr: rc.addr})
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	for _, f := range foreigners {
		key := "ann-" + f.name
		// b caches a value first, so that a's write must reach it by message.
		if err := core.Set(ctx, b, key, "b-old", opts...); err != nil {
			t.Fatal(err)
		}
		if err := raw.Del(ctx, rc.prefix+key).Err(); err != nil {
			t.Fatal(err)
		}
		if err := f.write(ctx, raw, rc.prefix+key); err != nil {
			t.Fatal(err)
		}
		if err := core.Set(ctx, a, key, "a-new", opts...); err != nil {
			t.Fatal(err)
		}
		if st := a.Stats(); st.RecoveryQueued != 0 {
			t.Fatalf("%s: Set over a foreign value queued (%d)", f.name, st.RecoveryQueued)
		}
		if got := rc.observe(t, key); got != "a-new" {
			t.Fatalf("%s: L2 holds %q after a's Set", f.name, got)
		}
		waitFor(t, f.name+": b serves a's value", func() bool { return redisGet(t, b, key) == "a-new" })
	}
}

// TestRedisSetIfNewerAdjacentVersions: two writers race SetIfNewer with
// versions one apart (at the borders of the 32-bit halves the script
// compares, around 0, 2^53, today's time and the extremes). The newer must
// always win, and an equal version must be refused.
func TestRedisSetIfNewerAdjacentVersions(t *testing.T) {
	addr := redistest.Addr(t)
	prefix := redistest.Prefix()
	store, err := redisl2.New(redistest.NewClient(t, &redis.Options{Addr: addr, PoolSize: 8}), &redisl2.Options{KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	bases := []int64{
		math.MinInt64, -1 << 32, -2, -1, 0, 1<<32 - 1, 1<<32 - 2, 1 << 31, 1<<31 - 1, 1 << 53, 1<<53 - 1,
		now, now | 0xffffffff, now &^ 0xffffffff, math.MaxInt64 - 1, -1<<32 - 1,
	}
	ctx := context.Background()
	for _, v := range bases {
		for round := range 20 {
			key := fmt.Sprintf("adj-%d-%d", v, round)
			var wg sync.WaitGroup
			var errs [2]error
			order := rand.IntN(2)
			for i := range 2 {
				wg.Go(func() {
					ver := v + int64(i^order)
					_, errs[i] = store.SetIfNewer(ctx, key, fmt.Append(nil, ver), time.Minute, ver)
				})
			}
			wg.Wait()
			if errs[0] != nil || errs[1] != nil {
				t.Fatal(errs)
			}
			got, _, err := store.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint(v + 1); string(got) != want {
				t.Fatalf("versions %d and %d raced: L2 holds %q, want %q", v, v+1, got, want)
			}
			if stored, err := store.SetIfNewer(ctx, key, []byte("same"), time.Minute, v+1); err != nil || stored {
				t.Fatalf("an equal version %d was stored (%v, %v)", v+1, stored, err)
			}
			if stored, err := store.SetIfNewer(ctx, key, []byte("older"), time.Minute, v); err != nil || stored {
				t.Fatalf("an older version %d was stored over %d (%v, %v)", v, v+1, stored, err)
			}
		}
	}
}

// TestRedisConcurrentSetsTwoNodesConverge: two nodes (separate clients, no
// announce) set one key at the same moment, and set and remove it, many
// times. After each round both nodes and L2 agree.
func TestRedisConcurrentSetsTwoNodesConverge(t *testing.T) {
	nodes, _, prefix := redisNodes(t, 2)
	addr := redistest.Addr(t)
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	for round := range 40 {
		va, vb := fmt.Sprint("a-", round), fmt.Sprint("b-", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		removes := round%4 == 3
		wg.Go(func() {
			<-start
			if err := core.Set(ctx, a, "k", va, opts...); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			<-start
			var err error
			if removes {
				err = b.Remove(ctx, "k")
			} else {
				err = core.Set(ctx, b, "k", vb, opts...)
			}
			if err != nil {
				t.Error(err)
			}
		})
		close(start)
		wg.Wait()
		deadline := time.Now().Add(3 * time.Second)
		for {
			ga, gb := redisGet(t, a, "k"), redisGet(t, b, "k")
			gl, _ := l2Value(t, addr, prefix, "k")
			ok := ga == gb && gb == gl && (gl == va || gl == vb || (removes && gl == ""))
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: a serves %q, b %q, L2 %q: no convergence in 3s", round, ga, gb, gl)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
