package core_test

import (
	"context"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
)

// BenchmarkSetPublish is the CPU a Set costs its caller on a node with a
// backplane, the transport aside: an in-memory backplane with no other
// node, so the figure is core's own work per change (entry, L1, message
// encoding, publish hand-off).
func BenchmarkSetPublish(b *testing.B) {
	bus := membackplane.NewBus()
	c, err := core.New(core.Options{Backplane: bus.Connect(nil)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := core.Set(ctx, c, "profile:42", "v", core.WithDuration(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
}
