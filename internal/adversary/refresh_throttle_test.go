package adversary

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// A Set on A applied on B while B's eager refresh runs: the refresh's result
// (read before the Set) must not replace it.
func TestAdvSetDuringEagerRefresh(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.Clock = core.SystemClock })
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(400 * time.Millisecond), core.WithEagerRefresh(0.25)}
	if err := core.Set(ctx, a.Cache, "k", "v1", opts...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("src"), opts...); v != "v1" {
		t.Fatal(v)
	}
	time.Sleep(150 * time.Millisecond)
	started, release := make(chan struct{}), make(chan struct{})
	refresh := func(context.Context, *core.FactoryContext[string]) (string, error) {
		close(started)
		<-release
		return "refreshed before the Set", nil
	}
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", refresh, opts...); v != "v1" {
		t.Fatal(v)
	}
	<-started
	before := b.Stats().BackplaneReceived
	if err := core.Set(ctx, a.Cache, "k", "v2", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B applied", func() bool { return b.Stats().BackplaneReceived > before })
	close(release)
	time.Sleep(50 * time.Millisecond)
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("src"), opts...); v != "v2" {
		t.Fatalf("B serves %q after A's Set(v2) was applied and the refresh ended", v)
	}
}

// B serves a stale value by fail-safe (throttled for a minute); a Set on A
// that B applies must end that: B's next read finds the new value in L2.
func TestAdvSetDuringThrottle(t *testing.T) {
	for _, race := range []bool{false, true} {
		t.Run(map[bool]string{false: "SetDuringWindow", true: "SetWhileFactoryFails"}[race], func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 2, true, func(_ int, o *core.Options) { o.Clock = core.SystemClock })
			a, b := nodes[0], nodes[1]
			fs := []core.EntryOption{core.WithDuration(50 * time.Millisecond), core.WithFailSafe(time.Hour, time.Minute)}
			if err := core.Set(ctx, a.Cache, "k", "old", fs...); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("src"), fs...); v != "old" {
				t.Fatal(v)
			}
			time.Sleep(80 * time.Millisecond) // stale
			setOnA := func() {
				before := b.Stats().BackplaneReceived
				if err := core.Set(ctx, a.Cache, "k", "new", core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute)); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "B applied", func() bool { return b.Stats().BackplaneReceived > before })
			}
			failing := func(context.Context, *core.FactoryContext[string]) (string, error) {
				if race {
					setOnA()
				}
				return "", errors.New("source down")
			}
			if v, err := core.GetOrSet(ctx, b.Cache, "k", failing, fs...); v != "old" || err != nil {
				t.Fatal(v, err)
			}
			if !race {
				setOnA()
			}
			v, err := core.GetOrSet(ctx, b.Cache, "k", failF(errSourceDown), fs...)
			if v != "new" {
				t.Fatalf("B serves %q (%v) after A's Set(new) was applied on B (L2 holds new, fresh)", v, err)
			}
		})
	}
}
