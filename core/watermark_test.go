package core_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/syncbuf"
	"github.com/stratacache/strata/l2/meml2"
)

// TestLaggingSubscriptionStopsServingOldEntries: a node whose subscription
// delivers late, without dropping anything (no gap, no disconnection, as a
// broker queueing for a slow consumer), notices it by its own messages
// coming back late, and stops serving entries older than the staleness
// bound as fresh long before the late invalidation arrives.
func TestLaggingSubscriptionStopsServingOldEntries(t *testing.T) {
	ctx := context.Background()
	const bound, delay = 200 * time.Millisecond, 3 * time.Second
	var recs []*recorder
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneStalenessBound = bound
		recs = append(recs, &recorder{})
		o.Observers = append(o.Observers, recs[len(recs)-1])
	})
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	mustGetOrSet(t, a.Cache, "k", constant("v1"), opts...)

	a.bp.SetFault(membackplane.Fault{Delay: delay})
	changed := time.Now()
	if err := core.Set(ctx, b.Cache, "k", "v2", opts...); err != nil {
		t.Fatal(err)
	}
	for {
		v, _ := get(t, a.Cache, "k")
		if v == "v2" {
			break
		}
		if time.Since(changed) > delay/2 {
			t.Fatalf("A still serves %q %v after the change, with its subscription %v late and a staleness bound of %v",
				v, time.Since(changed).Round(time.Millisecond), delay, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A served the new value %v after the change (bound %v, delivery %v late)", time.Since(changed).Round(time.Millisecond), bound, delay)
	if s := a.Stats(); !s.Behind || s.BehindEvents != 1 || s.LossEvents != 0 {
		t.Errorf("A's stats = %+v, want Behind, BehindEvents 1 and no loss (nothing was dropped)", s)
	}
	if s := b.Stats(); s.Behind || s.BehindEvents != 0 {
		t.Errorf("B's stats = %+v, want not behind", s)
	}

	a.bp.ClearFault() // the queued deliveries still come, late
	waitFor(t, "A caught up", func() bool { return !a.Stats().Behind })

	// Observers heard both: behind (with how far), then caught up.
	var got []string
	recs[0].mu.Lock()
	for _, ev := range recs[0].events {
		if ev.Kind == core.EventBackplaneBehind {
			got = append(got, ev.Key)
			if ev.Key == "behind" && (ev.Err == nil || !strings.Contains(ev.Err.Error(), "heard everything up to")) {
				t.Errorf("the behind event's error = %v, want how far behind", ev.Err)
			}
		}
	}
	recs[0].mu.Unlock()
	if strings.Join(got, ",") != "behind,caught_up" {
		t.Errorf("A's backplane_behind events = %v, want [behind caught_up]", got)
	}
	if recs[1].has(core.EventBackplaneBehind) {
		t.Error("B, never behind, reported backplane_behind")
	}
}

// TestIdleClusterProbes: idle nodes send probes, which keep their
// watermarks moving and are not counted or applied as changes by the
// others. (Whether a node counts as behind or late here depends on the
// machine's scheduling at this short bound: not asserted.)
func TestIdleClusterProbes(t *testing.T) {
	const bound = 200 * time.Millisecond
	nodes := newCluster(t, 3, func(o *core.Options) { o.BackplaneStalenessBound = bound })
	mustGetOrSet(t, nodes[0].Cache, "k", constant("v"), core.WithDuration(time.Hour))
	time.Sleep(10 * bound)
	for i, n := range nodes {
		// Node 0's miss published one set; nothing else changed.
		s, sent, received := n.Stats(), uint64(0), uint64(1)
		if i == 0 {
			sent, received = 1, 0
		}
		if s.BackplaneReceived != received || s.BackplaneSent != sent {
			t.Errorf("node %d: %+v, want %d sent and %d received (probes are not changes)", i, s, sent, received)
		}
		if p := n.bp.Stats().Published; p < 4 {
			t.Errorf("node %d published %d probes in %v idle, want one per quarter bound (%v)", i, p, 10*bound, bound/4)
		}
	}
	// The entry is still served from L1: probes do not invalidate.
	if v, ok := get(t, nodes[0].Cache, "k"); !ok || v != "v" {
		t.Errorf("node 0 = %q, %v after idling, want its entry", v, ok)
	}
}

// TestNoEchoKeepsNodeBehind: on a transport that does not deliver a node's
// own messages (NATS with NoEcho), the watermark cannot move: the node
// stays behind (the safe side: entries older than the bound are re-read)
// and says why, once.
func TestNoEchoKeepsNodeBehind(t *testing.T) {
	const bound = 100 * time.Millisecond
	bus := membackplane.NewBus()
	store := meml2.New(nil)
	var logs syncbuf.Buffer
	c := newCache(t, core.Options{Name: "noecho", InstanceID: "me", L2: store, BackplaneStalenessBound: bound,
		Backplane: noEcho{Backplane: bus.Connect(nil), self: "me"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	waitFor(t, "behind", func() bool { return c.Stats().Behind })
	time.Sleep(5 * bound)
	if n := strings.Count(logs.String(), "came back since it subscribed"); n != 1 {
		t.Errorf("the no-echo warning was logged %d times, want once:\n%s", n, logs.String())
	}
}

// noEcho drops the messages its node sent itself.
type noEcho struct {
	*membackplane.Backplane
	self string
}

func (n noEcho) Subscribe(ctx context.Context, channel string, onMsg backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	return n.Backplane.Subscribe(ctx, channel, func(p []byte) {
		if m, err := backplane.DecodeMessage(p); err == nil && strings.HasPrefix(m.Source, n.self+"/") {
			return
		}
		onMsg(p)
	}, onState)
}

// TestProbesOff: with a negative BackplaneProbeInterval an idle node sends
// nothing.
func TestProbesOff(t *testing.T) {
	const bound = 100 * time.Millisecond
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneStalenessBound, o.BackplaneProbeInterval = bound, -1
	})
	time.Sleep(5 * bound)
	for i, n := range nodes {
		if p := n.bp.Stats().Published; p != 0 {
			t.Errorf("node %d published %d messages while idle with probes off", i, p)
		}
	}
}
