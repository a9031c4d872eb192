package redisbackplane_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/internal/redistest"
)

// TestSentinelFailover: when Sentinel promotes the replica, the
// subscription reports Disconnected (Sentinel closes the demoted primary's
// pub/sub clients), then Reconnected once go-redis has resubscribed on the
// new primary, and payloads published there reach it.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the Sentinel failover (about 15s) in -short mode")
	}
	t.Parallel() // mostly waits for Sentinel, on servers of its own
	master, sentinels := redistest.StartSentinel(t)
	failoverClient := func() *redis.Client {
		c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: master, SentinelAddrs: sentinels})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	node, pub := onClient(t, failoverClient()), onClient(t, failoverClient())
	ch := backplane.ChannelName("failover-" + redistest.Unique())
	r := subscribe(t, node, ch)
	publishUntil(t, pub, ch, r, "before")

	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before, err := sc.GetMasterAddrByName(ctx, master).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The Sentinel learns of the replica from the primary's INFO, every ten
	// seconds at first: retry the failover until it has a replica to promote.
	for {
		err := sc.Failover(ctx, master).Err()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("SENTINEL FAILOVER: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitFor(t, "the Sentinel to name a new primary", func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, master).Result()
		return err == nil && addr[1] != before[1]
	})
	waitFor(t, "Disconnected", func() bool { return r.stateAfter(backplane.Disconnected, 1) })
	waitFor(t, "Reconnected", func() bool { return r.stateAfter(backplane.Reconnected, 2) })
	publishUntil(t, pub, ch, r, "after")
}

// onClient returns a backplane on c, closed when the test ends.
func onClient(t *testing.T, c redis.UniversalClient) *redisbackplane.Backplane {
	t.Helper()
	b, err := redisbackplane.New(c, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
