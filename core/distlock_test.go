package core_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestDistributedStampedeLock(t *testing.T) {
	for _, lock := range []bool{true, false} {
		t.Run(fmt.Sprint("lock=", lock), func(t *testing.T) {
			nodes := newCluster(t, 3, func(o *core.Options) { o.DistributedStampedeLock = lock })
			var calls atomic.Int64
			// Without the lock each node runs its own factory: hold them
			// until all three started, so none finds another's value in
			// L2 first. With it, the one factory waits a little to give
			// the other nodes time to miss.
			hold := 5 * time.Second
			if lock {
				hold = 300 * time.Millisecond
			}
			factory := func(context.Context, *core.FactoryContext[string]) (string, error) {
				calls.Add(1)
				for deadline := time.Now().Add(hold); calls.Load() < 3 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				return "v", nil
			}
			var wg sync.WaitGroup
			for _, n := range nodes {
				for range 5 {
					wg.Go(func() {
						if v, err := core.GetOrSet(context.Background(), n.Cache, "hot", factory); err != nil || v != "v" {
							t.Errorf("got %q, %v", v, err)
						}
					})
				}
			}
			wg.Wait()
			if lock && calls.Load() != 1 {
				t.Fatalf("3 nodes ran the factory %d times with the distributed lock, want 1", calls.Load())
			}
			if !lock && calls.Load() != 3 {
				t.Fatalf("3 nodes ran the factory %d times without the lock, want one per node (3)", calls.Load())
			}
		})
	}
}
