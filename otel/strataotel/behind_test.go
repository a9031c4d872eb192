package strataotel_test

import (
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/otel/strataotel"
)

// TestBehindCountedAndReported: a node whose own backplane messages come
// back late counts as behind: strata.cache.backplane.behind counts the
// episode and strata.cache.backplane.current reads 0 until it catches up.
func TestBehindCountedAndReported(t *testing.T) {
	h := newHarness(t)
	bus := membackplane.NewBus()
	bp := bus.Connect(nil)
	t.Cleanup(func() { bp.Close() })
	c := newCache(t, core.Options{Name: "lagging", Backplane: bp, BackplaneStalenessBound: 100 * time.Millisecond,
		Observers: []core.Observer{h.observer(t)}})
	reg, err := strataotel.RegisterCacheMetrics(c, h.mp)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Unregister()
	waitFor(t, "backplane connected", func() bool { return !c.Stats().Disconnected })
	name := strataotel.AttrCacheName.String("lagging")
	if n := intValue(t, h.collect(t), strataotel.MetricBackplaneCurrent, name); n != 1 {
		t.Fatalf("%s = %d before any lag, want 1", strataotel.MetricBackplaneCurrent, n)
	}

	bp.SetFault(membackplane.Fault{Delay: time.Second})
	waitFor(t, "behind", func() bool { return c.Stats().Behind })
	// The node counts as behind a moment before it reports it: wait for
	// the report.
	waitFor(t, "the behind event counted", func() bool {
		return intValue(t, h.collect(t), strataotel.MetricBackplaneBehind, name) >= 1
	})
	rm := h.collect(t)
	if n := intValue(t, rm, strataotel.MetricBackplaneBehind, name); n != 1 {
		t.Errorf("%s = %d, want 1", strataotel.MetricBackplaneBehind, n)
	}
	if n := intValue(t, rm, strataotel.MetricBackplaneCurrent, name); n != 0 {
		t.Errorf("%s = %d while behind, want 0", strataotel.MetricBackplaneCurrent, n)
	}
	bp.ClearFault()
	waitFor(t, "caught up", func() bool { return !c.Stats().Behind })
	if n := intValue(t, h.collect(t), strataotel.MetricBackplaneBehind, name); n != 1 {
		t.Errorf("%s = %d after catching up, want still 1 (episodes, not transitions)", strataotel.MetricBackplaneBehind, n)
	}
}
