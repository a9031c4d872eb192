package scale

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// TestFanout: on 50 nodes per backplane (and once with a shared Redis L2),
// 100 changes, alternately core.Set and Cache.Remove, each from another
// node, on keys every node holds in L1. Every other node must apply every
// change (its observer tells), exactly once, with no loss reported, and
// must then no longer serve its old copy: with no L2 it misses, with the
// Redis L2 it reads the new value (or misses after a Remove). Every change
// must have gone out on the first publish and arrived as sent: no publish
// error (a retry), nothing queued for or dropped by auto-recovery, no loss
// (a replay). It logs the fan-out latency and asserts none: a bound on
// it (first 150 ms, then 1 s for the p99) judged the machine's load as
// much as delivery, and failed on a busy one with every change delivered.
func TestFanout(t *testing.T) {
	for _, s := range []setup{
		{backplane: "redis", nodes: 50},
		{backplane: "redis", redisL2: true, nodes: 50},
		{backplane: "nats", nodes: 50},
		{backplane: "amqp", nodes: 50},
	} {
		t.Run(s.String(), func(t *testing.T) { testFanout(t, s, 100) })
	}
}

func testFanout(t *testing.T, s setup, changes int) {
	cl := newCluster(t, s)
	var lat latencies
	sent := make([]uint64, s.nodes)
	for i := range changes {
		key := fmt.Sprintf("user:%d", i)
		cl.seed(t, key, "old")
		sender := (i * 7) % s.nodes // 7 and 50 are coprime: every node sends
		remove := i%2 == 1
		value := fmt.Sprintf("v%d", i)
		ch := cl.change(t, sender, key, value, remove)
		cl.wait(t, ch, 10*time.Second)
		lat.add(ch)
		sent[sender]++
		senderWant, othersWant := value, value // "" is a miss
		if remove {
			senderWant, othersWant = "", ""
		} else if !s.redisL2 {
			othersWant = "" // nothing can tell them the new value
		}
		cl.checkServes(t, key, sender, senderWant, othersWant)
	}
	if n := cl.rec.untracked.Load(); n != 0 {
		t.Errorf("%d receipts of keys no change made", n)
	}
	if n := cl.rec.repeats.Load(); n != 0 {
		t.Errorf("%d changes applied twice by a node", n)
	}
	if n := cl.rec.own.Load(); n != 0 {
		t.Errorf("%d changes applied by their own sender", n)
	}
	if n := cl.rec.losses.Load(); n != 0 {
		t.Errorf("%d backplane losses reported on a healthy server", n)
	}
	for i, c := range cl.nodes {
		st := c.Stats()
		if want := uint64(changes) - sent[i]; st.BackplaneReceived != want || st.BackplaneSent != sent[i] || st.BackplaneErrors != 0 {
			t.Errorf("%s: received %d (want %d), sent %d (want %d), %d publish errors",
				c.InstanceID(), st.BackplaneReceived, want, st.BackplaneSent, sent[i], st.BackplaneErrors)
		}
		if st.RecoveryQueued != 0 || st.RecoveryDropped != 0 || st.LossEvents != 0 {
			t.Errorf("%s: %d writes queued for auto-recovery, %d dropped, %d losses; want none on a healthy server",
				c.InstanceID(), st.RecoveryQueued, st.RecoveryDropped, st.LossEvents)
		}
	}
	t.Logf("%s, %d nodes, %d changes: %v", s, s.nodes, changes, lat.summary())
}

// checkServes checks what every node serves for key after a change from
// sender: the sender senderWant, the others othersWant ("" is a miss).
// Every node held "old" in L1 before the change.
func (cl *cluster) checkServes(t *testing.T, key string, sender int, senderWant, othersWant string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, c := range cl.nodes {
		want := othersWant
		if i == sender {
			want = senderWant
		}
		v, ok, err := core.Get[string](ctx, c, key)
		switch {
		case err != nil:
			t.Fatalf("Get(%q) on %s: %v", key, c.InstanceID(), err)
		case want == "" && ok:
			t.Fatalf("%s serves %q for %q after the change from n%d: want a miss", c.InstanceID(), v, key, sender)
		case want != "" && (!ok || v != want):
			t.Fatalf("%s serves %q (found %v) for %q after the change from n%d: want %q", c.InstanceID(), v, ok, key, sender, want)
		}
	}
}
