package adversary

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// A RemoveByTag's L2 marker is kept max(longest lifetime the *invalidating*
// node used, 24h) (docs/tags-and-clear.md). An entry written by another node
// with a longer lifetime outlives the marker in L2: a node that starts after
// the marker expired reads the entry and serves it, fresh, although it was
// removed by tag ("Removed, as by Remove: the next read misses").
func TestAdvTagMarkerExpiresBeforeTaggedEntry(t *testing.T) {
	for _, tc := range []struct{ failSafe, clear bool }{{false, false}, {true, false}, {false, true}} {
		failSafe := tc.failSafe
		t.Run(map[bool]string{false: "fresh", true: "failsafe"}[failSafe]+map[bool]string{false: "-RemoveByTag", true: "-Clear"}[tc.clear], func(t *testing.T) {
			ctx := context.Background()
			clk := newFakeClock()
			name := t.Name()
			bus := membackplane.NewBus()
			mk := func(id string) *core.Cache {
				store, err := meml2.NewShared(name, &meml2.Options{Now: clk.Now})
				if err != nil {
					t.Fatal(err)
				}
				bp := bus.Connect(nil)
				c := newCache(t, core.Options{Name: "tm", InstanceID: id, L2: store, Backplane: bp, Clock: clk,
					WaitForInitialSubscribe: 5 * time.Second})
				t.Cleanup(func() { store.Close(); bp.Close() })
				return c
			}
			writer, admin := mk("writer"), mk("admin")
			opts := []core.EntryOption{core.WithDuration(72 * time.Hour), core.WithTags("tenant:7")}
			if failSafe {
				opts = []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(7*24*time.Hour, time.Minute), core.WithTags("tenant:7")}
			}
			if err := core.Set(ctx, writer, "k", "tenant 7 data", opts...); err != nil {
				t.Fatal(err)
			}
			invalidate := func() error { return admin.RemoveByTag(ctx, "tenant:7") }
			if tc.clear {
				invalidate = func() error { return admin.Clear(ctx, false) }
			}
			if err := invalidate(); err != nil {
				t.Fatal(err)
			}
			clk.Advance(25 * time.Hour)
			late := mk("late") // a node started (or restarted) a day later
			clk.Advance(time.Second)
			if v, ok, _ := core.Get[string](ctx, late, "k", core.WithAllowStaleOnRead()); ok {
				t.Errorf("new node Get(k) = %q: an entry removed by RemoveByTag/Clear(false) is served again after its L2 marker expired", v)
			}
			v, err := core.GetOrSet(ctx, late, "k", failF(errSourceDown), opts...)
			if err == nil {
				t.Errorf("new node GetOrSet(k) with a failing source = %q, nil: removed value served", v)
			}
		})
	}
}
