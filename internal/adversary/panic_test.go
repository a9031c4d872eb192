package adversary

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestAdvFactoryPanics(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk})
	boom := func(context.Context, *core.FactoryContext[string]) (string, error) { panic("boom") }
	var pe *core.PanicError
	// inline (Background ctx, no timeouts)
	if _, err := core.GetOrSet(ctx, c, "a", boom); !errors.As(err, &pe) {
		t.Fatalf("inline: %v", err)
	}
	// launched (timeouts)
	if _, err := core.GetOrSet(ctx, c, "b", boom, core.WithFactoryTimeouts(0, time.Second)); !errors.As(err, &pe) {
		t.Fatalf("launched: %v", err)
	}
	// batch
	if _, err := core.GetOrSetMany(ctx, c, []string{"c", "d"}, func(context.Context, []string) (map[string]string, error) { panic(42) }); !errors.As(err, &pe) {
		t.Fatalf("batch: %v", err)
	}
	// panic(nil)
	if _, err := core.GetOrSet(ctx, c, "e", func(context.Context, *core.FactoryContext[string]) (string, error) { panic(nil) }); err == nil {
		t.Fatalf("panic(nil): nil error")
	}
	// fail-safe: stale served, and no panic poisoning
	fs := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Millisecond)}
	_ = core.Set(ctx, c, "f", "old", fs...)
	clk.Advance(2 * time.Second)
	if v, err := core.GetOrSet(ctx, c, "f", boom, fs...); v != "old" || err != nil {
		t.Fatalf("fail-safe: %q %v", v, err)
	}
	clk.Advance(time.Second)
	if v, err := core.GetOrSet(ctx, c, "f", constF("new"), fs...); v != "new" || err != nil {
		t.Fatalf("after: %q %v", v, err)
	}
	// a factory that panics inside runtime.Goexit-like paths is out of scope
}
