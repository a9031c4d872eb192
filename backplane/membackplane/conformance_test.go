package membackplane_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/membackplane"
)

// busHarness makes nodes on one private Bus.
type busHarness struct{ bus *membackplane.Bus }

func (h busHarness) MakeBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
	return h.bus.Connect(nil), nil
}

func (busHarness) Disconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(*membackplane.Backplane).Disconnect()
	return nil
}

func (busHarness) Reconnect(_ context.Context, _ *testing.T, b backplane.Backplane) error {
	b.(*membackplane.Backplane).Reconnect()
	return nil
}

// MakeUnreachableBackplane returns a node that is disconnected from the
// start, the closest the reference has to a server that is not there.
func (h busHarness) MakeUnreachableBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
	n := h.bus.Connect(nil)
	n.Disconnect()
	return n, nil
}

func TestConformance(t *testing.T) {
	backplanetest.Run(t, busHarness{membackplane.NewBus()})
}

// urlHarness makes nodes with backplane.Open on one mem:// URL.
type urlHarness struct{ url string }

func (h urlHarness) MakeBackplane(ctx context.Context, _ *testing.T) (backplane.Backplane, error) {
	return backplane.Open(ctx, h.url)
}

func TestConformanceOpenedByURL(t *testing.T) {
	backplanetest.Run(t, urlHarness{fmt.Sprintf("mem://conformance-%x?queue_size=4096", rand.Uint64())})
}
