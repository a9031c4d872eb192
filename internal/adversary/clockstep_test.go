package adversary

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// docs/consistency.md: "Transport reports `Disconnected` | `BackplaneStalenessBound`
// after the report", and "a step back holds the node's time until the clock
// catches up (expiry may come early by the step, never late)". With B's
// clock stepping back by a minute just after B is disconnected, B's time
// stands still, and B serves a replaced value as fresh for far longer than
// the bound (real time) after the disconnection.
func TestAdvClockStepBackStretchesStalenessBound(t *testing.T) {
	ctx := context.Background()
	clkB := &offsetClock{}
	const bound = 200 * time.Millisecond
	nodes := newCluster(t, 2, true, func(i int, o *core.Options) {
		o.BackplaneStalenessBound = bound
		o.Clock = core.SystemClock
		if i == 1 {
			o.Clock = clkB
		}
	})
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	if err := core.Set(ctx, a.Cache, "k", "old", opts...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("src-old"), opts...); v != "old" {
		t.Fatal(v)
	}
	b.bp.Disconnect()
	waitFor(t, "B disconnected", func() bool { return b.Stats().Disconnected })
	clkB.off.Store(int64(-time.Minute)) // NTP steps B's clock back a minute
	if err := core.Set(ctx, a.Cache, "k", "new", opts...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * bound)
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("src-new"), opts...); v == "old" {
		t.Fatalf("B, disconnected %v ago (bound %v), still serves the replaced value %q as fresh: its clock stepped back and its time stands still", 3*bound, bound, v)
	}
}

// An entry with Duration d, set just before the clock steps back by Δ, is
// served fresh ~Δ after d has passed: expiry comes late, contrary to
// "expiry may come early by the step, never late".
func TestAdvClockStepBackExpiryLate(t *testing.T) {
	ctx := context.Background()
	clk := &offsetClock{}
	c := newCache(t, core.Options{Clock: clk})
	if err := core.Set(ctx, c, "k", "v", core.WithDuration(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	clk.off.Store(int64(-time.Minute))
	time.Sleep(300 * time.Millisecond)
	if v, ok, _ := core.Get[string](ctx, c, "k"); ok {
		t.Fatalf("entry with Duration 100ms still fresh (%q) 300ms later after a clock step back of 1m", v)
	}
}
