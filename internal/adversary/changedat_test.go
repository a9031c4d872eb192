package adversary

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// WithChangedAt(t) with t far ahead of the invalidating node's clock (a
// source whose clock is ahead by just under a day, or a bug) used to be
// accepted: the Remove returned nil, a node whose clock was 2s behind saw
// the message's version as more than 24h ahead and dropped it, and every
// later change of the sender carried a version past that point, so the
// receiver dropped them all too. Now a t more than an hour ahead is an
// *OptionError, and the sender's versions stay on its clock.
func TestAdvChangedAtNear24hDropsMessagesOnSlowerNode(t *testing.T) {
	ctx := context.Background()
	for _, withL2 := range []bool{false, true} {
		name := "noL2"
		if withL2 {
			name = "L2"
		}
		t.Run(name, func(t *testing.T) {
			behind := &offsetClock{}
			behind.off.Store(int64(-2 * time.Second))
			nodes := newCluster(t, 2, withL2, func(i int, o *core.Options) {
				if i == 1 {
					o.Clock = behind
				} else {
					o.Clock = core.SystemClock
				}
			})
			a, b := nodes[0], nodes[1]
			opts := []core.EntryOption{core.WithDuration(time.Hour)}
			for _, k := range []string{"k", "k2"} {
				if err := core.Set(ctx, a.Cache, k, "old", opts...); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(50 * time.Millisecond) // A's set messages applied on B
			for _, k := range []string{"k", "k2"} {
				if v, err := core.GetOrSet(ctx, b.Cache, k, constF("old"), opts...); err != nil || v != "old" {
					t.Fatal(v, err)
				}
			}
			commit := time.Now().Add(24*time.Hour - time.Second)
			var oe *core.OptionError
			if err := a.Remove(ctx, "k", core.WithChangedAt(commit)); !errors.As(err, &oe) || oe.Field != "WithChangedAt" {
				t.Fatalf("Remove(WithChangedAt(now+24h-1s)) = %v, want an *OptionError for WithChangedAt", err)
			}
			// An ordinary later change on A, no WithChangedAt: B applies it.
			if err := core.Set(ctx, a.Cache, "k2", "new", opts...); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "B to apply A's later Set", func() bool {
				v, _ := core.GetOrSet(ctx, b.Cache, "k2", constF("from-source"), opts...)
				return v != "old"
			})
			if n := b.Stats().BackplaneRejected; n != 0 {
				t.Errorf("B rejected %d of A's messages", n)
			}
		})
	}
}

// A message whose version is more than 24h ahead of the receiver's clock
// (its sender's clock is broken) cannot be applied; it used to be dropped
// silently, so the receiver kept serving what it changed. Now the receiver
// counts it and expires its L1, as for a lost message.
func TestAdvFarFutureMessageExpiresReceiver(t *testing.T) {
	ctx := context.Background()
	ahead := &offsetClock{}
	ahead.off.Store(int64(24*time.Hour + time.Minute))
	nodes := newCluster(t, 2, false, func(i int, o *core.Options) {
		if i == 0 {
			o.Clock = ahead
		}
	})
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	if v, err := core.GetOrSet(ctx, b.Cache, "k", constF("old"), opts...); err != nil || v != "old" {
		t.Fatal(v, err)
	}
	if err := core.Set(ctx, a.Cache, "k", "new", opts...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject A's message", func() bool { return b.Stats().BackplaneRejected > 0 })
	if v, _ := core.GetOrSet(ctx, b.Cache, "k", constF("from-source"), opts...); v == "old" {
		t.Errorf("B serves %q after rejecting a change it could not apply (LossEvents=%d)", v, b.Stats().LossEvents)
	}
}

// A factory that read the DB before the commit at t, on a node whose clock is
// behind or ahead of the source's, finished before the invalidation
// (carrying t) arrived. Behind (or in sync): its entry's version is before t
// and the Remove wins everywhere. Ahead by more than the time between the
// factory's start and the commit, its version may be after t and win: the
// clock-skew limit of docs/consistency.md (keep clocks synchronised).
func TestAdvChangedAtFactoryOnNodeAhead(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration
	}{{"behind", -10 * time.Second}, {"in sync", 0}} {
		// Ahead is the documented skew limit, and not pinned: whether the
		// node ahead wins depends on whether the invalidating node heard
		// from it first (a probe moves its hybrid clock past it).
		t.Run(tc.name, func(t *testing.T) { changedAtFactoryOnSkewedNode(t, tc.skew) })
	}
}

func changedAtFactoryOnSkewedNode(t *testing.T, skew time.Duration) {
	ctx := context.Background()
	ahead := &offsetClock{}
	ahead.off.Store(int64(skew))
	nodes := newCluster(t, 2, true, func(i int, o *core.Options) {
		o.Clock = core.SystemClock
		if i == 1 {
			o.Clock = ahead
		}
	})
	a, b := nodes[0], nodes[1]
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	var commit time.Time
	v, err := core.GetOrSet(ctx, b.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
		v := "read before the commit"
		commit = time.Now() // the DB commits just after the factory's read
		return v, nil
	}, opts...)
	if err != nil || v != "read before the commit" {
		t.Fatal(v, err)
	}
	// The change-data-capture consumer on A invalidates with the commit time.
	if err := a.Remove(ctx, "k", core.WithChangedAt(commit)); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		waitFor(t, n.InstanceID()+" to drop k", func() bool {
			_, ok, _ := core.Get[string](ctx, n.Cache, "k")
			return !ok
		})
	}
}
