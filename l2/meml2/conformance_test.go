package meml2_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

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

// WriteRaw writes raw with Set: meml2 adds no framing to what it stores, so
// a foreign writer's bytes and its own are the same.
func (newHarness) WriteRaw(ctx context.Context, _ *testing.T, st l2.Store, key string, raw []byte, ttl time.Duration) error {
	return st.Set(ctx, key, raw, ttl)
}

func (newHarness) MakeWrongType(_ context.Context, _ *testing.T, st l2.Store, key string, ttl time.Duration) error {
	return st.(*meml2.Store).SetWrongType(key, ttl)
}

func (urlHarness) WriteRaw(ctx context.Context, t *testing.T, st l2.Store, key string, raw []byte, ttl time.Duration) error {
	return newHarness{}.WriteRaw(ctx, t, st, key, raw, ttl)
}

func (urlHarness) MakeWrongType(ctx context.Context, t *testing.T, st l2.Store, key string, ttl time.Duration) error {
	return newHarness{}.MakeWrongType(ctx, t, st, key, ttl)
}

func TestConformanceNew(t *testing.T) {
	l2test.Run(t, newHarness{})
}

func TestConformanceURL(t *testing.T) {
	l2test.Run(t, urlHarness{url: "mem://conformance-" + rand.Text()})
}
