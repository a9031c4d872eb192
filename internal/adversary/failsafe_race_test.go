package adversary

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// A Remove that lands between GetOrSet's L1 lookup (which captured the stale
// fail-safe value) and its join of the flight: without L2 the removed value
// is re-cached by fail-safe's throttle and served to calls made after the
// Remove returned.
func TestAdvRemoveBetweenLookupAndJoinNoL2(t *testing.T) {
	for _, batch := range []bool{false, true} {
		name := "GetOrSet"
		if batch {
			name = "GetOrSetMany"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := newFakeClock()
			var c *core.Cache
			var armed atomic.Bool
			removed := make(chan error, 1)
			obs := &hookObs{hook: func(ctx context.Context, ev core.Event) {
				if ev.Kind == core.EventMiss && ev.Key == "k" && armed.CompareAndSwap(true, false) {
					removed <- c.Remove(context.Background(), "k")
				}
			}}
			c = newCache(t, core.Options{Clock: clk, Observers: []core.Observer{obs}})
			fs := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Minute)}
			if err := core.Set(ctx, c, "k", "old", fs...); err != nil {
				t.Fatal(err)
			}
			clk.Advance(2 * time.Second) // stale, kept for fail-safe
			armed.Store(true)
			boom := errors.New("source down")
			if batch {
				_, _ = core.GetOrSetMany(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) {
					return nil, boom
				}, fs...)
			} else {
				_, _ = core.GetOrSet(ctx, c, "k", failF(boom), fs...)
			}
			if err := <-removed; err != nil {
				t.Fatal(err)
			}
			// Remove has returned; the overlapping call is done. A new call must
			// not get the removed value, not even by fail-safe.
			v, err := core.GetOrSet(ctx, c, "k", failF(boom), fs...)
			clk.Advance(10 * time.Minute) // past the throttle window: the source is tried again, and fails
			if v2, err2 := core.GetOrSet(ctx, c, "k", failF(boom), fs...); err2 == nil {
				t.Logf("10 minutes later, still served by fail-safe: %q", v2)
			}
			if err == nil {
				t.Fatalf("GetOrSet after Remove returned %q, nil error: the removed value served by fail-safe (docs/consistency.md: Fail-safe \"never after a Remove of the key\")", v)
			}
			if v, ok, _ := core.Get[string](ctx, c, "k", core.WithAllowStaleOnRead()); ok {
				t.Fatalf("Get(AllowStaleOnRead) after Remove returned %q", v)
			}
		})
	}
}
