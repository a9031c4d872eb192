package l2test_test

import (
	"context"
	"testing"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/meml2"
)

// memHarness makes the stores under test. A real adapter's harness connects
// to its server, for example with a client made from $STRATA_REDIS_ADDR.
type memHarness struct{}

func (memHarness) MakeStore(ctx context.Context, t *testing.T) (l2.Store, error) {
	return meml2.New(nil), nil
}

func ExampleRun() {
	// In the adapter's conformance_test.go:
	//
	//	func TestConformance(t *testing.T) {
	//		l2test.Run(t, memHarness{})
	//	}
	_ = func(t *testing.T) { l2test.Run(t, memHarness{}) }
}
