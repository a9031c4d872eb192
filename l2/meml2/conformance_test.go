package meml2_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/meml2"
)

// newHarness makes private stores with New.
type newHarness struct{}

func (newHarness) MakeStore(context.Context, *testing.T) (l2.Store, error) {
	return meml2.New(nil), nil
}

// urlHarness makes handles on one shared table with l2.Open, so that the
// suite's stores share their data as stores on one server do.
type urlHarness struct{ url string }

func (h urlHarness) MakeStore(ctx context.Context, _ *testing.T) (l2.Store, error) {
	return l2.Open(ctx, h.url)
}

func TestConformanceNew(t *testing.T) {
	l2test.Run(t, newHarness{})
}

func TestConformanceURL(t *testing.T) {
	l2test.Run(t, urlHarness{url: "mem://conformance-" + rand.Text()})
}
