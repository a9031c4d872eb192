package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
)

// TestLateMessagesExpireL1: probes from a source that arrive much later
// than its quickest delivery (a slow consumer whose transport queues instead
// of dropping) are a possible loss: the node expires its L1 instead of
// serving entries whose invalidations may be queued behind them. A constant
// clock offset between the nodes is not lateness. (Only probes carry their
// send time: a change carries its version.)
func TestLateMessagesExpireL1(t *testing.T) {
	const bound = 200 * time.Millisecond
	bus := membackplane.NewBus()
	c := newCache(t, core.Options{Name: "late", Backplane: bus.Connect(nil), BackplaneStalenessBound: bound})
	other := bus.Connect(nil)
	defer other.Close()
	waitFor(t, "backplane connected", func() bool { return !c.Stats().Disconnected })
	ctx := context.Background()
	seq := uint64(0)
	send := func(at time.Time) {
		seq++
		m := backplane.Message{Cache: "late", Source: "other", Seq: seq, Action: backplane.ActionProbe, Timestamp: at.UnixNano()}
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := other.Publish(ctx, backplane.ChannelName("late"), b); err != nil {
			t.Fatal(err)
		}
	}
	// The other node's clock is an hour behind: every message looks an
	// hour late, which is its quickest delivery, not lateness.
	skew := -time.Hour
	for range 5 {
		send(time.Now().Add(skew))
		time.Sleep(20 * time.Millisecond) // as often as a real node probes, within the baseline's window
	}
	if n := c.Stats().LossEvents; n != 0 {
		t.Fatalf("%d loss events for messages with a constant clock offset, want 0", n)
	}
	send(time.Now().Add(skew - bound)) // queued for a whole bound somewhere
	waitFor(t, "the late probe's loss event", func() bool { return c.Stats().LossEvents > 0 })
	if n := c.Stats().LossEvents; n != 1 {
		t.Fatalf("%d loss events after a message %v later than the quickest, want 1", n, bound)
	}
}
