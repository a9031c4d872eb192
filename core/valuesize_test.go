package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// limitedStore is an L2 store that refuses values longer than max with an
// error wrapping l2.ErrValueTooLarge (as redisl2 and natskvl2 do), or every
// write when down; it counts the writes it is asked for.
type limitedStore struct {
	l2.Store
	max    int
	down   atomic.Bool
	writes atomic.Int64
}

func (s *limitedStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.writes.Add(1)
	if s.down.Load() {
		return errors.New("limitedstore: down")
	}
	if len(value) > s.max {
		return fmt.Errorf("limitedstore: %w: %d bytes, limit %d", l2.ErrValueTooLarge, len(value), s.max)
	}
	return s.Store.Set(ctx, key, value, ttl)
}

func newSized(t *testing.T, store l2.Store) *Cache {
	t.Helper()
	c, err := New(Options{
		Name: "sized", L2: store, L2CircuitBreakerDuration: time.Minute,
		AutoRecoveryDelay: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestEntryOverTheSizeLimitStaysInL1: an entry whose envelope is longer
// than the L2 value size limit is not written to L2 nor queued: it is
// served from L1, counted as not storable, and does not open the L2 circuit
// breaker (another key's Set right after still reaches L2).
func TestEntryOverTheSizeLimitStaysInL1(t *testing.T) {
	ctx := context.Background()
	store := &limitedStore{Store: meml2.New(nil), max: 1 << 30}
	c := newSized(t, store)
	big := strings.Repeat("x", c.l2.maxValueSize+1)
	if err := Set(ctx, c, "big", big); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if n := store.writes.Load(); n != 0 {
		t.Errorf("the store was asked %d times to write an entry over the %d-byte limit", n, c.l2.maxValueSize)
	}
	if v, ok, err := Get[string](ctx, c, "big"); err != nil || !ok || len(v) != len(big) {
		t.Errorf("Get from L1: %d bytes, found %v, err %v; want the %d-byte value", len(v), ok, err, len(big))
	}
	if err := Set(ctx, c, "other", "v"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := store.Get(ctx, "other"); err != nil || !found {
		t.Errorf("Set of another key after the oversized one did not reach L2 (found %v, err %v)", found, err)
	}
	s := c.Stats()
	if s.SerializationErrors != 1 || s.L2Errors != 0 || s.RecoveryQueued != 0 {
		t.Errorf("stats: SerializationErrors %d, L2Errors %d, RecoveryQueued %d; want 1, 0, 0", s.SerializationErrors, s.L2Errors, s.RecoveryQueued)
	}
}

// TestStoreRefusalForSizeIsNotReplayed: a write the store refuses with
// l2.ErrValueTooLarge is final: not queued for auto-recovery (the store is
// asked once), not an L2 error, and the circuit breaker stays closed.
func TestStoreRefusalForSizeIsNotReplayed(t *testing.T) {
	ctx := context.Background()
	store := &limitedStore{Store: meml2.New(nil), max: 1 << 10}
	c := newSized(t, store)
	if err := Set(ctx, c, "big", strings.Repeat("x", 4<<10)); err != nil {
		t.Fatalf("Set: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // 20 recovery rounds
	if n := store.writes.Load(); n != 1 {
		t.Errorf("the store was asked %d times to write a value it refuses as too large; want 1", n)
	}
	if err := Set(ctx, c, "other", "v"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := store.Get(ctx, "other"); err != nil || !found {
		t.Errorf("Set of another key after the refused one did not reach L2 (found %v, err %v): the breaker opened", found, err)
	}
	s := c.Stats()
	if s.SerializationErrors != 1 || s.L2Errors != 0 || s.RecoveryQueued != 0 {
		t.Errorf("stats: SerializationErrors %d, L2Errors %d, RecoveryQueued %d; want 1, 0, 0", s.SerializationErrors, s.L2Errors, s.RecoveryQueued)
	}
}

// TestRecoveryQueueBoundInBytes: while L2 is down, failed writes wait in
// the recovery queue; past its byte bound the oldest are dropped (counted
// in RecoveryDropped), never the newest.
func TestRecoveryQueueBoundInBytes(t *testing.T) {
	ctx := context.Background()
	store := &limitedStore{Store: meml2.New(nil), max: 1 << 30}
	store.down.Store(true)
	c, err := New(Options{Name: "bytes", L2: store, AutoRecoveryDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.rec.q.maxBytes = 10 << 10
	value := strings.Repeat("x", 3<<10) // 3 KiB and a little more once encoded: 3 fit in 10 KiB
	for i := range 10 {
		if err := Set(ctx, c, fmt.Sprint("k", i), value); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.RecoveryQueued != 3 || s.RecoveryDropped != 7 {
		t.Errorf("after 10 failed writes of about 3 KiB into a queue of 10 KiB: queued %d, dropped %d; want 3, 7", s.RecoveryQueued, s.RecoveryDropped)
	}
	if b := c.rec.q.bytes; b > c.rec.q.maxBytes {
		t.Errorf("the queue holds %d bytes, over its bound of %d", b, c.rec.q.maxBytes)
	}
	for _, it := range c.rec.q.take() {
		if it.key != "k7" && it.key != "k8" && it.key != "k9" {
			t.Errorf("queued %q; want only the newest three (k7, k8, k9)", it.key)
		}
	}
}

// TestRecoveryQueueDropsSeveralForOneLargeItem: one item may need several
// older ones dropped to fit; each is counted, and the new one is kept.
func TestRecoveryQueueDropsSeveralForOneLargeItem(t *testing.T) {
	q := newRecoveryQueue(100)
	q.maxBytes = 100
	for i := range 5 {
		q.add(&recoveryItem{kind: recoverL2Set, key: fmt.Sprint(i), storeKey: fmt.Sprint(i), value: make([]byte, 20)})
	}
	if ok := q.add(&recoveryItem{kind: recoverL2Set, key: "big", storeKey: "big", value: make([]byte, 90)}); ok {
		t.Error("add of a 90-byte item into a full 100-byte queue reported no drop")
	}
	if q.len() != 1 || q.bytes != 90 || q.extra() != 4 {
		t.Errorf("after the 90-byte item: %d items, %d bytes, %d drops beyond the first; want 1, 90, 4", q.len(), q.bytes, q.extra())
	}
	// Replacing an item in its slot counts the size difference.
	q.add(&recoveryItem{kind: recoverL2Set, key: "big", storeKey: "big", value: make([]byte, 10), at: 1})
	if q.bytes != 10 {
		t.Errorf("after replacing the 90-byte item by a 10-byte one: %d bytes; want 10", q.bytes)
	}
	q.supersede("big", 2)
	if q.len() != 0 || q.bytes != 0 {
		t.Errorf("after supersede: %d items, %d bytes; want 0, 0", q.len(), q.bytes)
	}
}

// TestMaxL2ValueSizeOption: Options.MaxL2ValueSize sets the limit (and the
// recovery queue's byte bound); a negative value is an *OptionError naming
// it.
func TestMaxL2ValueSizeOption(t *testing.T) {
	_, err := New(Options{MaxL2ValueSize: -1})
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Field != "Options.MaxL2ValueSize" {
		t.Errorf("New with MaxL2ValueSize -1: err = %v, want an *OptionError for Options.MaxL2ValueSize", err)
	}
	ctx := context.Background()
	store := &limitedStore{Store: meml2.New(nil), max: 1 << 30}
	c, err := New(Options{Name: "limit", L2: store, MaxL2ValueSize: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, want := c.rec.q.maxBytes, recoveryMaxBytes(1<<10); got != want {
		t.Errorf("recovery queue byte bound %d; want %d", got, want)
	}
	if err := Set(ctx, c, "big", strings.Repeat("x", 2<<10)); err != nil {
		t.Fatal(err)
	}
	if err := Set(ctx, c, "small", "v"); err != nil {
		t.Fatal(err)
	}
	if n := store.writes.Load(); n != 1 {
		t.Errorf("with MaxL2ValueSize 1 KiB, a 2 KiB and a 3-byte Set made %d store writes; want 1 (the small one)", n)
	}
	if s := c.Stats(); s.SerializationErrors != 1 {
		t.Errorf("SerializationErrors %d; want 1", s.SerializationErrors)
	}
}
