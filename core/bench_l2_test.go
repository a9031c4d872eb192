package core_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// BenchmarkL2Hit: a key read from L2 on every call (L1 skipped): decoding
// the envelope, the tag and Clear checks, the floors, the run registration
// and the L1 write, over the in-memory store (no network).
func BenchmarkL2Hit(b *testing.B) {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()
	c, err := core.New(core.Options{Name: "bench-l2", L2: store})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := core.Set(ctx, c, "user:1", benchUserValue); err != nil {
		b.Fatal(err)
	}
	never := func(context.Context, *core.FactoryContext[benchUser]) (benchUser, error) {
		return benchUser{}, errors.New("the factory ran: L2 missed")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := core.GetOrSet(ctx, c, "user:1", never, core.WithSkipL1Read()); err != nil {
			b.Fatal(err)
		}
	}
}
