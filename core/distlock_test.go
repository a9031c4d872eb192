package core_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
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

// racingLocker is a node's L2 whose first TryLock lets another node write
// the key's value and release its lock just before: as when this node's
// flight read L2 before the other node's factory ended and takes the lock
// after it.
type racingLocker struct {
	*meml2.Store
	before func()
	once   sync.Once
}

func (r *racingLocker) TryLock(ctx context.Context, key string, ttl time.Duration) (string, bool, error) {
	r.once.Do(r.before)
	return r.Store.TryLock(ctx, key, ttl)
}

// TestDistributedLockRereadsL2: a node that gets the lock after another
// node wrote the value finds it in L2 and does not run its factory again.
func TestDistributedLockRereadsL2(t *testing.T) {
	name := t.Name()
	storeA, err := meml2.NewShared(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer storeA.Close()
	storeB, err := meml2.NewShared(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer storeB.Close()
	a := newCache(t, core.Options{Name: "c", InstanceID: "a", L2: storeA, DistributedStampedeLock: true})
	racing := &racingLocker{Store: storeB, before: func() {
		if err := core.Set(context.Background(), a, "hot", "from-a"); err != nil {
			t.Error(err)
		}
	}}
	b := newCache(t, core.Options{Name: "c", InstanceID: "b", L2: racing, DistributedStampedeLock: true})
	v, err := core.GetOrSet(context.Background(), b, "hot", func(context.Context, *core.FactoryContext[string]) (string, error) {
		return "from-b", nil
	})
	if err != nil || v != "from-a" {
		t.Fatalf("GetOrSet on B = %q, %v; want A's value from L2, B's factory not run", v, err)
	}
}
