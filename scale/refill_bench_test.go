package scale

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// refillKeys and refillFactoryTime shape one round of BenchmarkColdRefill:
// that many hot keys, each from a source answering after that long.
const (
	refillKeys        = 100
	refillFactoryTime = time.Millisecond
)

// BenchmarkColdRefill plays the herd that follows a Clear (or a cold start)
// with a shared Redis L2: every node reads the same 100 keys at once, none
// of which L1 or L2 holds, from a source that takes 1 ms. It reports, per
// key, the factory calls, the backplane messages published (each factory
// result is written to L2 and published) and delivered, and the round's
// wall time; without and with Options.DistributedStampedeLock. Run it with
// a few rounds:
//
//	go test -run '^$' -bench ColdRefill -benchtime 3x ./scale
func BenchmarkColdRefill(b *testing.B) {
	n := benchNodes(b)
	for _, bp := range []string{"redis", "nats"} {
		for _, lock := range []bool{false, true} {
			s := setup{backplane: bp, redisL2: true, nodes: n, stampedeLock: lock}
			b.Run(s.String(), func(b *testing.B) { benchColdRefill(b, s) })
		}
	}
}

func benchColdRefill(b *testing.B, s setup) {
	cl := newCluster(b, s)
	var calls atomic.Int64
	factory := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		calls.Add(1)
		time.Sleep(refillFactoryTime)
		return "v:" + fc.Key, nil
	}
	sent0, recv0 := cl.backplaneCounts()
	var wall time.Duration
	rounds := 0
	for b.Loop() {
		start := time.Now()
		errs := make([]error, len(cl.nodes))
		var wg sync.WaitGroup
		for i, c := range cl.nodes {
			wg.Go(func() {
				ctx := context.Background()
				for k := range refillKeys {
					key := fmt.Sprintf("hot:%d:%d", rounds, k)
					v, err := core.GetOrSet(ctx, c, key, factory, core.WithDuration(time.Hour))
					if err == nil && v != "v:"+key {
						err = fmt.Errorf("got %q", v)
					}
					if err != nil {
						errs[i] = fmt.Errorf("GetOrSet(%q) on %s: %w", key, c.InstanceID(), err)
						return
					}
				}
			})
		}
		wg.Wait()
		wall += time.Since(start)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		rounds++
	}
	// Let the last publishes arrive before counting deliveries.
	time.Sleep(500 * time.Millisecond)
	sent, recv := cl.backplaneCounts()
	keys := float64(rounds * refillKeys)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(calls.Load())/keys, "factory-calls/key")
	b.ReportMetric(float64(sent-sent0)/keys, "published/key")
	b.ReportMetric(float64(recv-recv0)/keys, "delivered/key")
	b.ReportMetric(float64(wall.Milliseconds())/float64(rounds), "ms/round")
}

// backplaneCounts returns the messages the cluster's nodes have published
// and received so far.
func (cl *cluster) backplaneCounts() (sent, received uint64) {
	for _, c := range cl.nodes {
		st := c.Stats()
		sent += st.BackplaneSent
		received += st.BackplaneReceived
	}
	return sent, received
}
