package redisl2_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/internal/redistest"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/l2test"
	"github.com/stratacache/strata/l2/redisl2"
)

// harness makes each store on a client of its own, closed when the subtest
// ends, with a key prefix unique to the run.
type harness struct {
	addr   string
	prefix string
}

func (h harness) MakeStore(_ context.Context, t *testing.T) (l2.Store, error) {
	c := redistest.NewClient(t, &redis.Options{Addr: h.addr})
	return redisl2.New(c, &redisl2.Options{KeyPrefix: h.prefix})
}

// MakeUnreachableStore points a store at a port where nothing listens.
func (h harness) MakeUnreachableStore(_ context.Context, t *testing.T) (l2.Store, error) {
	c := redistest.NewClient(t, &redis.Options{Addr: redistest.Unreachable, DialTimeout: time.Second})
	return redisl2.New(c, nil)
}

// urlHarness makes stores with l2.Open, each owning its client.
type urlHarness struct{ url string }

func (h urlHarness) MakeStore(ctx context.Context, _ *testing.T) (l2.Store, error) {
	return l2.Open(ctx, h.url)
}

func TestConformance(t *testing.T) {
	l2test.Run(t, harness{addr: redistest.Addr(t), prefix: redistest.Prefix()})
}

func TestConformanceURL(t *testing.T) {
	l2test.Run(t, urlHarness{url: "redis://" + redistest.Addr(t) + "/0?key_prefix=" + redistest.Prefix()})
}
