package backplanetest_test

import (
	"testing"

	"github.com/stratacache/strata/backplane/backplanetest"
	"github.com/stratacache/strata/backplane/membackplane"
)

// An adapter's test file runs the suite with a Harness that connects new
// nodes to one transport; memHarness (in this package's tests) does it for
// membackplane:
//
//	type memHarness struct{ bus *membackplane.Bus }
//
//	func (h memHarness) MakeBackplane(context.Context, *testing.T) (backplane.Backplane, error) {
//		return h.bus.Connect(nil), nil
//	}
//
// and implements Disconnector with the node's Disconnect and Reconnect. A
// real adapter's harness dials a test server (and calls t.Skip when it is
// not configured).
func ExampleRun() {
	testConformance := func(t *testing.T) {
		backplanetest.Run(t, memHarness{membackplane.NewBus()})
	}
	_ = testConformance // in a _test.go file: func TestConformance(t *testing.T) { ... }
}
