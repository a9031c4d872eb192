package redisl2_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/redisl2"
)

// harness makes each store on a client of its own, closed when the subtest
// ends, with a key prefix unique to the run.
type harness struct {
	addr   string
	prefix string
}

func (h harness) MakeStore(_ context.Context, t *testing.T) (l2.Store, error) {
	c := redistest.NewClient(t, &redis.Options{Addr: h.addr})
	return redisl2.New(c, &redisl2.Options{KeyPrefix: h.prefix})
}

// MakeUnreachableStore points a store at a port where nothing listens.
func (h harness) MakeUnreachableStore(_ context.Context, t *testing.T) (l2.Store, error) {
	c := redistest.NewClient(t, &redis.Options{Addr: redistest.Unreachable, DialTimeout: time.Second})
	return redisl2.New(c, nil)
}

// WriteRaw writes raw as a plain Redis string, without the version header.
func (h harness) WriteRaw(ctx context.Context, t *testing.T, _ l2.Store, key string, raw []byte, ttl time.Duration) error {
	return redistest.NewClient(t, &redis.Options{Addr: h.addr}).Set(ctx, h.prefix+key, raw, ttl).Err()
}

// MakeWrongType makes key a Redis list.
func (h harness) MakeWrongType(ctx context.Context, t *testing.T, _ l2.Store, key string, ttl time.Duration) error {
	return makeList(ctx, redistest.NewClient(t, &redis.Options{Addr: h.addr}), h.prefix+key, ttl)
}

// makeList replaces key with a list of one element that expires after ttl.
func makeList(ctx context.Context, c redis.Cmdable, key string, ttl time.Duration) error {
	if err := c.Del(ctx, key).Err(); err != nil {
		return err
	}
	if err := c.RPush(ctx, key, "not a string").Err(); err != nil {
		return err
	}
	return c.PExpire(ctx, key, ttl).Err()
}

// urlHarness makes stores with l2.Open, each owning its client.
type urlHarness struct{ url string }

func (h urlHarness) MakeStore(ctx context.Context, _ *testing.T) (l2.Store, error) {
	return l2.Open(ctx, h.url)
}

func TestConformance(t *testing.T) {
	l2test.Run(t, harness{addr: redistest.Addr(t), prefix: redistest.Prefix()})
}

func TestConformanceURL(t *testing.T) {
	l2test.Run(t, urlHarness{url: "redis://" + redistest.Addr(t) + "/0?key_prefix=" + redistest.Prefix()})
}

// clusterHarness makes each store on a Redis Cluster client of its own.
type clusterHarness struct {
	addrs  []string
	prefix string
}

func (h clusterHarness) MakeStore(_ context.Context, t *testing.T) (l2.Store, error) {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: h.addrs})
	t.Cleanup(func() { _ = c.Close() })
	return redisl2.New(c, &redisl2.Options{KeyPrefix: h.prefix})
}

// WriteRaw and MakeWrongType, as harness's, through a cluster client: on a
// cluster GetMany pipelines GETs, which meet WRONGTYPE per key.
func (h clusterHarness) WriteRaw(ctx context.Context, t *testing.T, _ l2.Store, key string, raw []byte, ttl time.Duration) error {
	return h.client(t).Set(ctx, h.prefix+key, raw, ttl).Err()
}

func (h clusterHarness) MakeWrongType(ctx context.Context, t *testing.T, _ l2.Store, key string, ttl time.Duration) error {
	return makeList(ctx, h.client(t), h.prefix+key, ttl)
}

func (h clusterHarness) client(t *testing.T) *redis.ClusterClient {
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: h.addrs})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCluster runs the suite, and a check of GetMany across hash slots, on
// a three-node Redis Cluster started for the test.
func TestCluster(t *testing.T) {
	h := clusterHarness{addrs: redistest.StartCluster(t), prefix: redistest.Prefix()}
	t.Run("Conformance", func(t *testing.T) { l2test.Run(t, h) })
	t.Run("GetManyAcrossSlots", func(t *testing.T) {
		st, err := h.MakeStore(t.Context(), t)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ctx := ctxFor(t)
		keys := []string{"a", "b", "c", "d", "missing"}
		for _, k := range keys[:4] {
			if err := st.Set(ctx, k, []byte("v"+k), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		// A plain MGET of these keys is refused: they are on several slots.
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: h.addrs})
		defer c.Close()
		full := make([]string, len(keys))
		for i, k := range keys {
			full[i] = h.prefix + k
		}
		if err := c.MGet(ctx, full...).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Logf("MGET across slots = %v (go-redis may route it itself)", err)
		}
		vals, err := st.(l2.MultiGetter).GetMany(ctx, keys)
		if err != nil {
			t.Fatalf("GetMany across slots: %v", err)
		}
		for i, k := range keys[:4] {
			if string(vals[i]) != "v"+k {
				t.Errorf("GetMany: %q = %q, want %q", k, vals[i], "v"+k)
			}
		}
		if vals[4] != nil {
			t.Errorf("GetMany: missing key = %q, want nil", vals[4])
		}
	})
}

// sentinelHarness makes each store on a failover client of its own.
type sentinelHarness struct {
	master    string
	sentinels []string
	prefix    string
}

func (h sentinelHarness) MakeStore(_ context.Context, t *testing.T) (l2.Store, error) {
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: h.master, SentinelAddrs: h.sentinels})
	t.Cleanup(func() { _ = c.Close() })
	return redisl2.New(c, &redisl2.Options{KeyPrefix: h.prefix})
}

// TestSentinel runs the suite through a Sentinel-managed failover client,
// against a primary and a Sentinel started for the test.
func TestSentinel(t *testing.T) {
	master, sentinels := redistest.StartSentinel(t)
	l2test.Run(t, sentinelHarness{master: master, sentinels: sentinels, prefix: redistest.Prefix()})
}
