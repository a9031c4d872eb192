package adversary

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// A's clock steps 25h ahead for a moment (a bad NTP answer) and back. A's
// versions (and its held clock) stay there; B drops every later message of
// A as "more than 24h ahead" before its sequence number is checked, so B
// never sees a gap: a plain Remove made by A a while later never reaches B,
// which serves the removed value until its L1 duration ends (here: an hour).
func TestAdvForwardClockStepSilencesNode(t *testing.T) {
	ctx := context.Background()
	clkA := &offsetClock{}
	nodes := newCluster(t, 2, true, func(i int, o *core.Options) {
		o.Clock = core.SystemClock
		if i == 0 {
			o.Clock = clkA
		}
	})
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	if err := core.Set(ctx, a.Cache, "k", "old", opts...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("src"), opts...); v != "old" {
		t.Fatal(v)
	}
	clkA.off.Store(int64(25 * time.Hour))
	_ = core.Set(ctx, a.Cache, "other", "x", opts...) // one write during the step
	clkA.off.Store(0)
	time.Sleep(100 * time.Millisecond)
	if err := a.Remove(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // > a probe interval (1.25s) and more
	t.Logf("B: %+v", b.Stats())
	if v, ok, _ := core.Get[string](ctx, b.Cache, "k"); ok {
		t.Fatalf("B serves removed %q 3s after A's Remove; B: rejected=%d lossEvents=%d", v, b.Stats().BackplaneRejected, b.Stats().LossEvents)
	}
}
