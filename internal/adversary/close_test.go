package adversary

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// Close while every kind of operation is under way: nothing is left running
// once Close returned (the factories honour ctx).
func TestAdvCloseDuringOperationsLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	store, _ := meml2.NewShared(t.Name(), nil)
	bus := membackplane.NewBus()
	bp := bus.Connect(nil)
	bp2 := bus.Connect(nil)
	other, err := core.New(core.Options{Name: "x", L2: store, Backplane: bp2, CloseTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Options{Name: "x", L2: store, Backplane: bp, CloseTimeout: 2 * time.Second,
		L2CircuitBreakerDuration: time.Second, AutoRecoveryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	slow := func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	slowMany := func(ctx context.Context, keys []string) (map[string]string, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	fs := []core.EntryOption{core.WithDuration(50 * time.Millisecond), core.WithFailSafe(time.Hour, time.Second), core.WithEagerRefresh(0.1)}
	for i := range 5 {
		_ = core.Set(ctx, c, fmt.Sprint("s", i), "v", fs...)
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint("k", i%5)
			switch i % 5 {
			case 0:
				_, _ = core.GetOrSet(ctx, c, k, slow, core.WithFactoryTimeouts(10*time.Millisecond, 20*time.Millisecond))
			case 1:
				_, _ = core.GetOrSetMany(ctx, c, []string{k, "k0", "m1"}, slowMany, core.WithFactoryTimeouts(0, 20*time.Millisecond))
			case 2:
				_, _ = core.GetOrSet(ctx, c, fmt.Sprint("s", i%5), slow, fs...) // eager refresh
			case 3:
				cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
				_, _ = core.GetOrSet(cctx, c, k, slow, core.WithLockTimeout(time.Millisecond))
				cancel()
			case 4:
				_ = core.Set(ctx, other, k, "x")
				_ = c.Remove(ctx, k)
			}
		}()
	}
	time.Sleep(30 * time.Millisecond)
	store.SetFault(meml2.Fault{Err: errors.New("down")})
	_ = core.Set(ctx, c, "q", "v") // queued for recovery
	bp.SetFault(membackplane.Fault{Delay: 50 * time.Millisecond})
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	_ = other.Close()
	store.Close()
	bp.Close()
	bp2.Close()
}
