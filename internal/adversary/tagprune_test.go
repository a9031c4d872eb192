package adversary

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// B prunes tag times older than the longest lifetime *B* has seen
// (docs/tags-and-clear.md: "no entry that old can still be alive"). An entry
// written by A with a longer lifetime is alive in L2; once B has read the
// tag's L2 marker once (so it does not read it again) and pruned the tag's
// time after enough other tag invalidations, B reads the entry from L2 and
// serves it fresh although it was removed by tag.
var nOther = 1100

func TestAdvTagTimePrunedWhileLongerEntryLivesInL2(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	name := t.Name()
	bus := membackplane.NewBus()
	mk := func(id string) *core.Cache {
		store, _ := meml2.NewShared(name, &meml2.Options{Now: clk.Now})
		bp := bus.Connect(nil)
		c := newCache(t, core.Options{Name: "tp", InstanceID: id, L2: store, Backplane: bp, Clock: clk,
			WaitForInitialSubscribe: 5 * time.Second, BackplaneProbeInterval: -1})
		t.Cleanup(func() { store.Close(); bp.Close() })
		return c
	}
	a, b := mk("a"), mk("b")
	clk.Advance(time.Second)
	if err := core.Set(ctx, a, "long", "removed by tag", core.WithDuration(72*time.Hour), core.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	if err := core.Set(ctx, a, "short", "x", core.WithDuration(time.Minute), core.WithTags("t")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, ok, _ := core.Get[string](ctx, b, "short"); !ok { // B reads t's markers once
		t.Fatal("B: short not in L2")
	}
	if err := b.RemoveByTag(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Minute)
	for i := range nOther { // a busy system: other tags invalidated
		if err := b.RemoveByTag(ctx, fmt.Sprint("user:", i), core.WithSkipL2Write(), core.WithSkipBackplane()); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	if v, ok, _ := core.Get[string](ctx, b, "long"); ok {
		t.Fatalf("B serves %q fresh for a key whose tag was removed 5 minutes ago", v)
	}
}
