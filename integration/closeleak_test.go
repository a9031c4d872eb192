package integration

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/internal/redistest"
)

// Caches made and closed at once by each of closeLeakWorkers goroutines,
// each Close after a random delay of up to twice the time a cache takes to
// subscribe (at least closeLeakMinWindow): before its Subscribe is sent,
// while it is under way, just after it returned. The window that leaked is
// a few microseconds wide; with the race detector's slowdown, 300 caches
// made one after the other rarely hit it, four goroutines doing so nearly
// always did (Redis and NATS, before the fix).
const (
	closeLeakWorkers   = 4
	closeLeakCaches    = 300
	closeLeakMinWindow = 1500 * time.Microsecond
)

// TestCloseDuringSubscribeLeavesNothing: a cache closed while its first
// Subscribe is under way leaves nothing running once Close returns. core
// subscribes on a goroutine of its own; when Subscribe returned just as
// Close ran, the subscription was stored after Close had looked for it, and
// never closed (issue 14, defect 5): 300 New+Close pairs on one backplane
// took the process from 2 to 21 goroutines on Redis (and left Redis
// connections open), from 6 to 19 on NATS. The backplane is shared, as a
// service shares one between its caches, so only the caches' own leftovers
// count.
func TestCloseDuringSubscribeLeavesNothing(t *testing.T) {
	for _, kind := range backplanes {
		t.Run(kind, func(t *testing.T) { testCloseDuringSubscribe(t, kind) })
	}
}

func testCloseDuringSubscribe(t *testing.T, kind string) {
	name := "strata-it-" + redistest.Unique()
	if kind == "amqp" {
		url := rabbittest.URL(t)
		t.Cleanup(func() { rabbittest.DeleteExchanges(t, url, []string{backplane.ChannelName(name)}) })
	}
	bp, _, _ := newBackplane(t, kind, name)
	opts := core.Options{Name: name, Backplane: bp}
	// A few caches that subscribe and close: what the backplane keeps for
	// itself (a pooled connection, a goroutine started on first use) is
	// there before the count. They time a subscription.
	var took []time.Duration
	for range 5 {
		c, err := core.New(opts)
		if err != nil {
			t.Fatalf("core.New: %v", err)
		}
		start := time.Now()
		for c.Stats().Disconnected {
			if time.Since(start) > 10*time.Second {
				t.Fatal("a cache's backplane did not connect within 10s")
			}
			time.Sleep(50 * time.Microsecond)
		}
		took = append(took, time.Since(start))
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	slices.Sort(took)
	window := max(closeLeakMinWindow, 2*took[len(took)/2])

	var admin *redis.Client
	var connsBefore int
	if kind == "redis" {
		admin = redistest.NewClient(t, nil)
		connsBefore = redisConns(t, admin, name)
	}
	ignore := goleak.IgnoreCurrent()
	before := runtime.NumGoroutine()

	start := time.Now()
	var wg sync.WaitGroup
	for range closeLeakWorkers {
		wg.Go(func() {
			for range closeLeakCaches {
				c, err := core.New(opts)
				if err != nil {
					t.Errorf("core.New: %v", err)
					return
				}
				time.Sleep(rand.N(window))
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d×%d caches made and closed in %v, each within %v of New (a cache subscribes in %v)",
		closeLeakWorkers, closeLeakCaches, time.Since(start).Round(time.Millisecond),
		window.Round(10*time.Microsecond), took[len(took)/2].Round(10*time.Microsecond))

	deadline := time.Now().Add(10 * time.Second)
	for {
		err := goleak.Find(ignore)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d 10s after the caches were closed: %v", before, runtime.NumGoroutine(), err)
		}
	}
	t.Logf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
	if kind == "redis" {
		// The server sees a closed connection go a moment later; one
		// still open at the first count only makes it higher.
		waitFor(t, 10*time.Second, "the server's connections from the backplane to come back", func() bool {
			return redisConns(t, admin, name) <= connsBefore
		})
		t.Logf("Redis connections from the backplane: %d before, %d after", connsBefore, redisConns(t, admin, name))
	}
}

// redisConns returns the number of connections Redis has from clients
// named name (newBackplane names its Redis client after its connName).
func redisConns(t *testing.T, admin *redis.Client, name string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	n := 0
	for line := range strings.Lines(list) {
		if strings.Contains(line, " name="+name+" ") {
			n++
		}
	}
	return n
}
