package integration

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

// benchProfile is the value the L2 benchmark reads: a user profile of
// about 200 bytes of JSON.
type benchProfile struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	Email       string   `json:"email"`
	Role        string   `json:"role"`
	Permissions []string `json:"permissions"`
	Flags       []string `json:"flags"`
	UpdatedAt   int64    `json:"updated_at"`
}

func newBenchProfile(i int) benchProfile {
	return benchProfile{ID: i, Name: "Ada Lovelace", Email: "ada" + strconv.Itoa(i) + "@example.com", Role: "admin",
		Permissions: []string{"orders:read", "orders:delete", "users:read"}, Flags: []string{"beta_checkout"},
		UpdatedAt: time.Now().Unix()}
}

// BenchmarkL2ColdHitPaired measures a read on a node whose L1 has never
// seen the key while the shared Redis L2 holds it (core.GetOrSet: L1 miss,
// L2 GET, envelope and JSON decode, L1 store), next to the raw go-redis
// GET of the same value's JSON plus json.Unmarshal, one of each in turn so
// that the load of a shared machine falls on both alike. It reports both
// distributions and the ratio of the medians (the target is at most 1.2).
// Run it with -benchtime 3000x.
func BenchmarkL2ColdHitPaired(b *testing.B) {
	ctx := context.Background()
	prefix := redistest.Prefix()
	node := func() *core.Cache {
		client := redistest.NewClient(b, &redis.Options{ContextTimeoutEnabled: true})
		store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
		c, err := core.New(core.Options{Name: "strata-it-l2bench", L2: l2.Store(store)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	writer, reader := node(), node()
	raw := redistest.NewClient(b, nil)
	rawPrefix := prefix + "raw:"
	b.Cleanup(func() {
		keys, _ := raw.Keys(context.Background(), prefix+"*").Result()
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			raw.Del(context.Background(), keys[:n]...)
			keys = keys[n:]
		}
	})
	for i := range b.N {
		p := newBenchProfile(i)
		key := "profile:" + strconv.Itoa(i)
		if err := core.Set(ctx, writer, key, p, core.WithDuration(time.Hour)); err != nil {
			b.Fatal(err)
		}
		js, _ := json.Marshal(p)
		if err := raw.Set(ctx, rawPrefix+key, js, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
	}
	never := func(context.Context, *core.FactoryContext[benchProfile]) (benchProfile, error) {
		b.Fatal("the factory ran: the L2 entry was not found")
		return benchProfile{}, nil
	}
	ls := make([]time.Duration, 0, b.N)
	lr := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		key := "profile:" + strconv.Itoa(i)
		start := time.Now()
		p, err := core.GetOrSet(ctx, reader, key, never, core.WithDuration(time.Hour))
		ls = append(ls, time.Since(start))
		if err != nil || p.ID != i {
			b.Fatalf("GetOrSet(%q) = %+v, %v", key, p, err)
		}
		start = time.Now()
		bs, err := raw.Get(ctx, rawPrefix+key).Bytes()
		var q benchProfile
		if err == nil {
			err = json.Unmarshal(bs, &q)
		}
		lr = append(lr, time.Since(start))
		if err != nil || q.ID != i {
			b.Fatalf("raw GET %q = %+v, %v", key, q, err)
		}
	}
	b.StopTimer()
	reportPaired(b, ls, lr)
}
