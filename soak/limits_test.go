package soak

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// sizeLimitedStore refuses values longer than max with an error wrapping
// l2.ErrValueTooLarge, as real stores do (redisl2 past Redis's
// proto-max-bulk-len, natskvl2 past a bucket's max value size), and counts
// the writes it was asked for.
type sizeLimitedStore struct {
	l2.Store
	max    int
	writes atomic.Int64
}

func (s *sizeLimitedStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.writes.Add(1)
	if len(value) > s.max {
		return fmt.Errorf("sizelimited: %w: %d bytes, limit %d", l2.ErrValueTooLarge, len(value), s.max)
	}
	return s.Store.Set(ctx, key, value, ttl)
}

// TestOversizedValueIsNotReplayedForever: a value the L2 store refuses as
// too large fails the same way on every retry; core's auto-recovery used to
// queue it like a transient failure and write it again every
// AutoRecoveryDelay, for as long as the key was not changed again, holding
// the oversized bytes in the queue meanwhile (a core bug this test found,
// fixed: l2.ErrValueTooLarge is final, and core has a size limit of its
// own, DefaultMaxL2ValueSize).
func TestOversizedValueIsNotReplayedForever(t *testing.T) {
	store := &sizeLimitedStore{Store: meml2.New(nil), max: 1 << 10}
	c, err := core.New(core.Options{Name: "oversized", L2: store, AutoRecoveryDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := core.Set(context.Background(), c, "big", strings.Repeat("x", 4<<10)); err != nil {
		t.Fatalf("Set: %v (L2 failures are not returned to callers)", err)
	}
	time.Sleep(500 * time.Millisecond) // 25 recovery rounds
	if n := store.writes.Load(); n != 1 {
		t.Errorf("the store was asked %d times in 500 ms to write a value it refuses as too large; queued now: %d", n, c.Stats().RecoveryQueued)
	}
}

// TestUnencodableEntryDoesNotOpenTheL2Breaker: an entry core cannot encode
// for L2 (here an ETag longer than l2.MaxETagLen) is a fault of that one
// entry: it must not open the L2 circuit breaker, which would keep every
// other key's writes from L2 for L2CircuitBreakerDuration (a core bug this
// test found, fixed).
func TestUnencodableEntryDoesNotOpenTheL2Breaker(t *testing.T) {
	ctx := context.Background()
	store := meml2.New(nil)
	c, err := core.New(core.Options{Name: "unencodable", L2: store, L2CircuitBreakerDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	etag := strings.Repeat("e", l2.MaxETagLen+1)
	if _, err := core.GetOrSet(ctx, c, "huge-etag", func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
		return fc.Modified("v", etag, time.Time{})
	}); err != nil {
		t.Fatalf("GetOrSet: %v", err)
	}
	if err := core.Set(ctx, c, "other", "w"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := store.Get(ctx, "other"); err != nil || !found {
		t.Errorf("after one entry with a %d-byte ETag, a Set of another key did not reach L2 (found %v, %v); L2 errors: %d",
			len(etag), found, err, c.Stats().L2Errors)
	}
}

// TestPerKeyStateIsBoundedByL1: a cache whose L1 holds at most 1,000
// entries does not keep per-key state (core's version floors) for the
// 100,000 distinct keys it was given (a core bug this test found, fixed:
// floors are now bounded in proportion to L1, and kept only with an L2).
func TestPerKeyStateIsBoundedByL1(t *testing.T) {
	ctx := context.Background()
	c, err := core.New(core.Options{Name: "floors", L1MaxEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := liveHeap()
	pad := strings.Repeat("k", 56)
	for i := range 100_000 {
		if err := core.Set(ctx, c, fmt.Sprintf("%s%08d", pad, i), i); err != nil {
			t.Fatal(err)
		}
	}
	if grew := int64(liveHeap()) - int64(before); grew > 2<<20 {
		t.Errorf("after 100,000 Sets of distinct 64-byte keys into an L1 of 1,000 entries, the live heap grew by %.1f MiB", float64(grew)/(1<<20))
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
