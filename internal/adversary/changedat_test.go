package adversary

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// WithChangedAt(t) with t less than 24h ahead of the invalidating node's
// clock is accepted (the doc: only "more than 24 hours ahead ... is
// ignored"), and the Remove returns nil. A node whose clock is 2s behind
// sees the message's version as more than 24h ahead and drops it: it keeps
// serving the removed value. Worse, every later change of the sender carries
// a version past that point, so the receiver drops them all too.
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
			// The commit's time from a source whose clock is ahead by just under a day (or a bug).
			commit := time.Now().Add(24*time.Hour - time.Second)
			if err := a.Remove(ctx, "k", core.WithChangedAt(commit)); err != nil {
				t.Fatal(err)
			}
			// An ordinary later change on A, no WithChangedAt.
			if err := core.Set(ctx, a.Cache, "k2", "new", opts...); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			if v, ok, _ := core.Get[string](ctx, b.Cache, "k"); ok {
				t.Errorf("B still serves %q for k after A's Remove(WithChangedAt(now+24h-1s)) returned nil; BackplaneRejected=%d",
					v, b.Stats().BackplaneRejected)
			}
			if v, _ := core.GetOrSet(ctx, b.Cache, "k2", constF("from-source"), opts...); v == "old" {
				t.Errorf("B still serves %q for k2 after A's later plain Set(k2, new): every later message of A is dropped; BackplaneRejected=%d",
					v, b.Stats().BackplaneRejected)
			}
			start := time.Now()
			for time.Since(start) < 10*time.Second {
				if _, ok, _ := core.Get[string](ctx, b.Cache, "k"); !ok {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("B stopped serving the removed k %v later (LossEvents=%d)", time.Since(start), b.Stats().LossEvents)
		})
	}
}

// WithChangedAt's doc: "a factory that started before t ... cannot cache its
// result over the change on any node". B's clock is 10s ahead; B's factory
// read the DB before the commit at t and finished before the invalidation
// (carrying t) arrived; its entry's version is B's clock (t+~10s), so the
// Remove (version ~t) neither deletes B's copy nor wins in L2.
func TestAdvChangedAtFactoryOnNodeAhead(t *testing.T) {
	ctx := context.Background()
	ahead := &offsetClock{}
	ahead.off.Store(int64(10 * time.Second))
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
	time.Sleep(50 * time.Millisecond)
	for _, n := range nodes {
		if v, ok, _ := core.Get[string](ctx, n.Cache, "k"); ok {
			t.Errorf("%s serves %q after Remove(WithChangedAt(commit)) was applied everywhere", n.InstanceID(), v)
		}
	}
}
