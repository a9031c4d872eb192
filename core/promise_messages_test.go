package core_test

// Regression tests of issue 14: every read path keeps the staleness and
// no-lost-update promises (docs/consistency.md). Each test is named for what
// broke; each failed (or did not compile) on 9834907.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// TestReplayedSignedMessageIsRejected: with signing on, replaying a
// captured message (a probe will do) is dropped and counted as rejected; it
// does not expire anybody's L1 (defect 9).
func TestReplayedSignedMessageIsRejected(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("k"), 32)
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneSigningKeys = [][]byte{key}
		o.BackplaneStalenessBound = 2 * time.Second // a scheduling hiccup on a loaded machine is not late
	})
	a, b := nodes[0], nodes[1]
	// Capture A's messages from a connection of the attacker's.
	spy := membackplaneSpy(t, a)
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	mustGetOrSet(t, b.Cache, "k", constant("unused"), core.WithDuration(time.Hour))
	var captured [][]byte // A's messages: the set and probes
	kr, _ := backplane.NewKeyring(key)
	waitFor(t, "A's messages captured", func() bool {
		captured = captured[:0]
		for _, p := range spy.wait(t, 1) {
			body, err := kr.Open(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := backplane.DecodeMessage(body); err == nil && strings.HasPrefix(m.Source, "node-0/") {
				captured = append(captured, p)
			}
		}
		return len(captured) >= 2
	})
	time.Sleep(1200 * time.Millisecond) // the captured messages are now "late"
	losses, rejected := b.Stats().LossEvents, b.Stats().BackplaneRejected
	for range 5 {
		for _, p := range captured {
			if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := rejected + uint64(5*len(captured))
	waitFor(t, "every replay rejected", func() bool { return b.Stats().BackplaneRejected >= want })
	if l := b.Stats().LossEvents; l != losses {
		t.Fatalf("replays caused %d loss events (L1 expired)", l-losses)
	}
	if v, ok := get(t, b.Cache, "k"); !ok || v != "v1" {
		t.Fatalf("B serves %q, %v after the replays; want v1 untouched", v, ok)
	}
}

// TestReplayOfAnEarlierRunIsRejected: a restarted node that keeps its
// InstanceID is a new sender (its run id differs), so replaying messages
// captured from its earlier run expires nothing (adversarial review of
// issue 14, round 2).
func TestReplayOfAnEarlierRunIsRejected(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("k"), 32)
	name := fmt.Sprintf("%s-%d", t.Name(), clusterSeq.Add(1))
	bus := membackplane.NewBus()
	mk := func(id string) (*core.Cache, *membackplane.Backplane) {
		store, _ := meml2.NewShared(name, nil)
		bp := bus.Connect(nil)
		c, err := core.New(core.Options{Name: "cluster", InstanceID: id, L2: store, Backplane: bp,
			BackplaneSigningKeys: [][]byte{key}, WaitForInitialSubscribe: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); store.Close(); bp.Close() })
		return c, bp
	}
	b, _ := mk("b")
	s1, bp1 := mk("s")
	var mu sync.Mutex
	var captured [][]byte
	sub, err := bp1.Subscribe(ctx, backplane.ChannelName("cluster"), func(p []byte) {
		mu.Lock()
		captured = append(captured, bytes.Clone(p))
		mu.Unlock()
	}, func(backplane.State, error) {})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		applied(t, &node{Cache: b}, func() { core.Set(ctx, s1, fmt.Sprint("k", i), "v") })
	}
	sub.Close()
	s1.Close()
	s2, bp2 := mk("s") // the same InstanceID, a new run
	applied(t, &node{Cache: b}, func() { core.Set(ctx, s2, "k0", "new") })
	losses, rejected := b.Stats().LossEvents, b.Stats().BackplaneRejected
	mu.Lock()
	last := captured[len(captured)-1] // the earlier run's highest number
	mu.Unlock()
	for range 3 {
		if err := bp2.Publish(ctx, backplane.ChannelName("cluster"), last); err != nil {
			t.Fatal(err)
		}
		applied(t, &node{Cache: b}, func() { core.Set(ctx, s2, "k0", "newer") })
	}
	if n := b.Stats().LossEvents - losses; n != 0 {
		t.Fatalf("replays of the earlier run expired B's L1 %d times", n)
	}
	if b.Stats().BackplaneRejected == rejected {
		t.Fatal("no replay was rejected")
	}
}
