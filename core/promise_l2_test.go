package core_test

// Regression tests of issue 14: every read path keeps the staleness and
// no-lost-update promises (docs/consistency.md). Each test is named for what
// broke; each failed (or did not compile) on 9834907.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// TestL2ErrorClassification: one rule (l2.Classify) for what an L2 error
// means (defect 7): a call the caller cancelled is no store failure; bytes
// that are not an entry are a corrupt miss; a key refused for good is final.
// None of them opens the breaker, so other keys go on being written.
func TestL2ErrorClassification(t *testing.T) {
	ctx := context.Background()
	store := meml2.New(nil)
	c := newCache(t, core.Options{L2: store, L2CircuitBreakerDuration: time.Hour})
	healthy := func(what string) {
		t.Helper()
		s := c.Stats()
		if s.L2Errors != 0 || s.RecoveryQueued != 0 {
			t.Fatalf("after %s: L2Errors %d, RecoveryQueued %d; want 0, 0", what, s.L2Errors, s.RecoveryQueued)
		}
		key := "other-" + what
		if err := core.Set(ctx, c, key, "x"); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := store.Get(ctx, key); !found {
			t.Fatalf("after %s the breaker stopped the writes of other keys", what)
		}
	}

	// a. The caller's context ends while L2 is slow.
	store.SetFault(meml2.Fault{Delay: time.Hour})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, found, err := core.Get[string](cctx, c, "slow"); found || err != nil {
		t.Fatalf("Get with a context that ended = %v, %v", found, err)
	}
	cancel()
	store.ClearFault()
	healthy("a cancelled read")

	// b. A foreign writer's value under a cache key.
	if err := store.Set(ctx, "foreign", []byte("hello"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, c, "foreign"); found {
		t.Fatal("a foreign value was served")
	}
	if n := c.Stats().L2Corrupt; n != 1 {
		t.Fatalf("L2Corrupt = %d after a foreign value, want 1", n)
	}
	healthy("a foreign value")

	// c. A key holding a value of another type: final, not replayed.
	if err := store.SetWrongType("wrongtype", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, c, "wrongtype"); found {
		t.Fatal("a wrong-type key was served")
	}
	if err := core.Set(ctx, c, "wrongtype", "v"); err != nil {
		t.Fatal(err)
	}
	healthy("a wrong-type key")
	if v, ok := get(t, c, "wrongtype"); !ok || v != "v" {
		t.Fatalf("the value refused by L2 is not in L1: %q, %v", v, ok)
	}
}

// TestFarFutureL2EntryIsReplaced: an L2 entry whose version is more than a
// day ahead (written by a node with a broken clock) is read as corrupt and
// replaced by the next write, which a conditional store would otherwise
// refuse for good: caching and later changes work again (adversarial
// review of issue 14, round 2).
func TestFarFutureL2EntryIsReplaced(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	future := time.Now().Add(25 * time.Hour).UnixNano()
	for _, tomb := range []bool{false, true} {
		env := l2.Envelope{Created: future, Expires: future, Value: []byte(`"far"`)}
		if tomb {
			env = l2.Envelope{Flags: l2.FlagTombstone, Created: future, Expires: future}
		}
		raw, _ := env.AppendBinary(nil)
		if err := a.l2.Set(ctx, "k", raw, time.Hour); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int64
		counting := func(context.Context, *core.FactoryContext[string]) (string, error) { calls.Add(1); return "v", nil }
		for range 3 {
			mustGetOrSet(t, b.Cache, "k", counting)
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("tombstone %v: the factory ran %d times for 3 reads", tomb, n)
		}
		if err := core.Set(ctx, a.Cache, "k", "set"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B serves A's Set", func() bool { v, _ := get(t, b.Cache, "k"); return v == "set" })
		applied(t, b, func() { a.Remove(ctx, "k") })
	}
}
