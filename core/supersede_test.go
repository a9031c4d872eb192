package core_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

// A factory result never replaces a newer Set, Remove, Expire or tag
// invalidation of the same key: it is returned to its callers but not cached
// as fresh.
func TestFactoryResultDoesNotOverwriteNewerChange(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(c *core.Cache)
		want   int  // what Get returns after the factory finished
		found  bool // whether Get finds a fresh value
	}{
		{"Set during factory", func(c *core.Cache) { core.Set(ctx, c, "k", 99) }, 99, true},
		{"Remove during factory", func(c *core.Cache) { c.Remove(ctx, "k") }, 0, false},
		{"Expire during factory", func(c *core.Cache) { c.Expire(ctx, "k") }, 0, false},
		{"RemoveByTag during factory", func(c *core.Cache) { c.RemoveByTag(ctx, "t") }, 0, false},
		{"ExpireByTag during factory", func(c *core.Cache) { c.ExpireByTag(ctx, "t") }, 0, false},
		{"Clear during factory", func(c *core.Cache) { c.Clear(ctx, true) }, 0, false},
		{"change of another key", func(c *core.Cache) { c.Remove(ctx, "other"); c.RemoveByTag(ctx, "u") }, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCache(t, core.Options{Clock: core.SystemClock})
				got := make(chan int)
				go func() {
					v, _ := core.GetOrSet(ctx, c, "k", slowFactory(1, time.Second), core.WithTags("t"))
					got <- v
				}()
				time.Sleep(500 * time.Millisecond)
				tt.change(c)
				if v := <-got; v != 1 {
					t.Fatalf("caller got %d, want the factory's 1", v)
				}
				synctest.Wait()
				v, found, _ := core.Get[int](ctx, c, "k")
				if found != tt.found || v != tt.want {
					t.Fatalf("Get = %d, %v; want %d, %v", v, found, tt.want, tt.found)
				}
			})
		})
	}
}

func TestTimedOutFactoryDoesNotOverwriteNewerSet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newCache(t, core.Options{Clock: core.SystemClock})
		core.GetOrSet(ctx, c, "k", slowFactory(1, time.Second), core.WithFactoryTimeouts(0, 100*time.Millisecond))
		core.Set(ctx, c, "k", 2)
		time.Sleep(time.Second)
		synctest.Wait()
		if v, _, _ := core.Get[int](ctx, c, "k"); v != 2 {
			t.Fatalf("Get = %d: the background completion overwrote a newer Set", v)
		}
	})
}
