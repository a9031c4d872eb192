package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

func TestMultiNodePublishRecovery(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) { o.AutoRecoveryDelay = 50 * time.Millisecond })
	a, b := nodes[0], nodes[1]
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	mustGetOrSet(t, b.Cache, "k", constant("unused"), core.WithDuration(time.Hour))
	a.bp.SetFault(membackplane.Fault{PublishErr: errors.New("bus down")})
	if err := core.Set(ctx, a.Cache, "k", "v2", core.WithDuration(time.Hour)); err != nil {
		t.Fatalf("Set with the backplane down = %v, want no error", err)
	}
	if a.Stats().RecoveryQueued == 0 {
		t.Fatal("failed publish not queued")
	}
	a.bp.ClearFault()
	waitFor(t, "replayed publish reaches B", func() bool { v, _ := get(t, b.Cache, "k"); return v == "v2" })
}

// TestReplayedL2WriteIsStale: a write that waited for auto-recovery is
// replayed as a fail-safe fallback, not as a fresh value. While it waited
// another node may have replaced the key unheard (its own write queued
// too, or L2 restarted empty): the restart scenario of reliability/ saw
// nodes serve such an older replay as fresh.
func TestReplayedL2WriteIsStale(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 3, func(o *core.Options) { o.AutoRecoveryDelay = 20 * time.Millisecond })
	a, b, c := nodes[0], nodes[1], nodes[2]
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute)}
	a.l2.SetFault(meml2.Fault{Err: errors.New("l2 down")})
	if err := core.Set(ctx, a.Cache, "k", "written while L2 was down", opts...); err != nil {
		t.Fatal(err)
	}
	if a.Stats().RecoveryQueued == 0 {
		t.Fatal("the failed L2 write was not queued")
	}
	a.l2.ClearFault()
	waitFor(t, "recovery queue drained", func() bool { return a.Stats().RecoveryQueued == 0 })

	// The others find the replayed entry, but only as a stale one: with
	// the source failing, it is C's fail-safe fallback; with the source
	// up, B's factory runs.
	if v := mustGetOrSet(t, c.Cache, "k", failing[string](errors.New("db down")), opts...); v != "written while L2 was down" {
		t.Fatalf("C = %q with the source down, want the replayed value as a fallback", v)
	}
	if v := mustGetOrSet(t, b.Cache, "k", constant("from the source"), core.WithDuration(time.Hour)); v != "from the source" {
		t.Fatalf("B = %q: it served the replayed write as fresh", v)
	}
}

// TestReplayRetriesSoonAfterWake: when a component is back (here the
// backplane reconnects) but L2's client is not ready yet, the replay that
// the reconnection triggers fails; it is retried within milliseconds, not
// after AutoRecoveryDelay.
func TestReplayRetriesSoonAfterWake(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 1, func(o *core.Options) { o.AutoRecoveryDelay = time.Hour })
	a := nodes[0]
	a.l2.SetFault(meml2.Fault{Err: errors.New("l2 down")})
	if err := core.Set(ctx, a.Cache, "k", "v", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if a.Stats().RecoveryQueued == 0 {
		t.Fatal("the failed L2 write was not queued")
	}
	a.bp.Disconnect()
	a.bp.Reconnect() // wakes the replay, which fails: L2 is still down
	time.Sleep(30 * time.Millisecond)
	a.l2.ClearFault()
	start := time.Now()
	waitFor(t, "the queue replayed", func() bool { return a.Stats().RecoveryQueued == 0 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("replayed %v after L2 came back, want well under a second (AutoRecoveryDelay is an hour)", d)
	}
}

// TestReplayAnnouncesOnce: a change whose L2 write and publish both waited
// for auto-recovery reaches the others in one message, not two (the queued
// publish, sent after the L2 write, is the announcement).
func TestReplayAnnouncesOnce(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) { o.AutoRecoveryDelay = time.Hour })
	a, b := nodes[0], nodes[1]
	a.l2.SetFault(meml2.Fault{Err: errors.New("l2 down")})
	a.bp.SetFault(membackplane.Fault{PublishErr: errors.New("bus down")})
	if err := core.Set(ctx, a.Cache, "k", "v", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := a.Stats().RecoveryQueued; n != 2 {
		t.Fatalf("queued %d items, want the L2 write and the publish", n)
	}
	a.l2.ClearFault()
	a.bp.ClearFault()
	a.bp.Disconnect()
	a.bp.Reconnect() // wakes the replay
	waitFor(t, "the queue replayed", func() bool { return a.Stats().RecoveryQueued == 0 })
	waitFor(t, "B heard of k", func() bool { return b.Stats().BackplaneReceived >= 1 })
	time.Sleep(50 * time.Millisecond)
	if n := b.Stats().BackplaneReceived; n != 1 {
		t.Errorf("B received %d messages for one replayed change, want 1", n)
	}
}

// TestCloseWritesWhatRecoveryHolds: a Remove whose L2 write failed is
// queued; Close writes it before stopping (after Close it would be lost, and
// every node that reads L2 would serve the removed value).
func TestCloseWritesWhatRecoveryHolds(t *testing.T) {
	ctx := context.Background()
	mk := func(store *meml2.Store) *core.Cache {
		c, err := core.New(core.Options{Name: "flush", L2: store, AutoRecoveryDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	storeA, _ := meml2.NewShared(t.Name(), nil)
	storeB, _ := meml2.NewShared(t.Name(), nil)
	t.Cleanup(func() { storeA.Close(); storeB.Close() })
	a, b := mk(storeA), mk(storeB)
	defer b.Close()
	core.Set(ctx, b, "k", "old", core.WithDuration(time.Hour))
	storeA.SetFault(meml2.Fault{Err: errors.New("down")})
	a.Remove(ctx, "k")
	if a.Stats().RecoveryQueued == 0 {
		t.Fatal("the failed L2 write was not queued")
	}
	storeA.ClearFault()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c := newCache(t, core.Options{Name: "flush", L2: storeB})
	if v, ok := get(t, c, "k"); ok {
		t.Fatalf("a new node reads %q from L2 after the node that removed it closed", v)
	}
}
