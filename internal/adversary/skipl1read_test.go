package adversary

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
)

// docs/options.md, SkipL1Read: "With an L2, `Set` having returned on another
// node, this reads its value (read-your-writes across nodes)". A GetOrSet
// with SkipL1Read on B joins a factory run B started before A's Set (A's
// message not delivered to B yet) and returns that run's older value.
func TestAdvSkipL1ReadJoinsOlderRun(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, true, nil)
	a, b := nodes[0], nodes[1]
	b.bp.SetFault(membackplane.Fault{Delay: 300 * time.Millisecond}) // a slow consumer: messages arrive late
	started, release := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = core.GetOrSet(ctx, b.Cache, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(started)
			<-release
			return "old (read before the Set)", nil
		}, core.WithDuration(time.Hour))
	}()
	<-started
	if err := core.Set(ctx, a.Cache, "k", "new", core.WithDuration(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A's Set returned; the user reads on B with SkipL1Read to get it.
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	v, err := core.GetOrSet(ctx, b.Cache, "k", constF("from B's source"), core.WithSkipL1Read(), core.WithDuration(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if v != "new" {
		t.Fatalf("GetOrSet(SkipL1Read) on B after A's Set(new) returned = %q, want %q (read-your-writes across nodes)", v, "new")
	}
}
