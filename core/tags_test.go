package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestInvalidation(t *testing.T) {
	ctx := context.Background()
	down := errors.New("down")
	type state int
	const (
		fresh   state = iota // served by Get
		stale                // not fresh, but fail-safe serves it
		removed              // gone: fail-safe has nothing
	)
	tests := []struct {
		name     string
		failSafe bool
		tags     []string
		op       func(c *core.Cache) error
		want     state
	}{
		{"Remove", true, nil, func(c *core.Cache) error { return c.Remove(ctx, "k") }, removed},
		{"Expire with fail-safe", true, nil, func(c *core.Cache) error { return c.Expire(ctx, "k") }, stale},
		{"Expire without fail-safe is Remove", false, nil, func(c *core.Cache) error { return c.Expire(ctx, "k") }, removed},
		{"RemoveByTag", true, []string{"a", "b"}, func(c *core.Cache) error { return c.RemoveByTag(ctx, "b") }, removed},
		{"ExpireByTag", true, []string{"a", "b"}, func(c *core.Cache) error { return c.ExpireByTag(ctx, "a") }, stale},
		{"RemoveByTag of another tag", true, []string{"a"}, func(c *core.Cache) error { return c.RemoveByTag(ctx, "z") }, fresh},
		{"Clear expire", true, nil, func(c *core.Cache) error { return c.Clear(ctx, true) }, stale},
		{"Clear expire without fail-safe", false, nil, func(c *core.Cache) error { return c.Clear(ctx, true) }, removed},
		{"Clear remove", true, nil, func(c *core.Cache) error { return c.Clear(ctx, false) }, removed},
		{"Remove of another key", true, nil, func(c *core.Cache) error { return c.Remove(ctx, "other") }, fresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, core.Options{Clock: newFakeClock()})
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags(tt.tags...)}
			if tt.failSafe {
				opts = append(opts, core.WithFailSafe(24*time.Hour, time.Minute))
			}
			mustGetOrSet(t, c, "k", constant(1), opts...)
			if err := tt.op(c); err != nil {
				t.Fatal(err)
			}
			_, found, _ := core.Get[int](ctx, c, "k")
			v, err := core.GetOrSet(ctx, c, "k", failing[int](down), opts...)
			var got state
			switch {
			case found:
				got = fresh
			case err == nil && v == 1:
				got = stale
			case errors.Is(err, down):
				got = removed
			default:
				t.Fatalf("unexpected GetOrSet result %d, %v", v, err)
			}
			if got != tt.want {
				t.Fatalf("state after %s = %d, want %d (0 fresh, 1 stale, 2 removed)", tt.name, got, tt.want)
			}
		})
	}
}

func TestEntriesWrittenAfterInvalidationAreValid(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock() // frozen: ordering must not depend on the clock moving
	c := newCache(t, core.Options{Clock: clock})
	core.Set(ctx, c, "k", 1, core.WithTags("t"))
	c.RemoveByTag(ctx, "t")
	core.Set(ctx, c, "k", 2, core.WithTags("t"))
	if v, ok, _ := core.Get[int](ctx, c, "k"); !ok || v != 2 {
		t.Fatalf("Get = %d, %v; a Set after RemoveByTag must be served", v, ok)
	}
	c.Clear(ctx, false)
	core.Set(ctx, c, "k", 3)
	if v, ok, _ := core.Get[int](ctx, c, "k"); !ok || v != 3 {
		t.Fatalf("Get = %d, %v; a Set after Clear must be served", v, ok)
	}
}

func TestRemoveByTagHitsOnlyTagged(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	for i := range 100 {
		core.Set(ctx, c, fmt.Sprint("k", i), i, core.WithTags(fmt.Sprint("tenant:", i%3), "all-users"))
	}
	c.RemoveByTag(ctx, "tenant:1")
	for i := range 100 {
		_, ok, _ := core.Get[int](ctx, c, fmt.Sprint("k", i))
		if ok == (i%3 == 1) {
			t.Fatalf("k%d found = %v after RemoveByTag(tenant:1)", i, ok)
		}
	}
}

func TestTagTimesArePruned(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	core.Set(ctx, c, "k", 1, core.WithDuration(time.Minute))
	for i := range 5000 {
		c.RemoveByTag(ctx, fmt.Sprint("t", i))
		clock.Advance(time.Second)
	}
	// Only the last minute's tags can still matter (the longest lifetime).
	if n := core.TagTimesLen(c); n > 2048 {
		t.Fatalf("%d tag times kept, want them pruned to about the last minute's", n)
	}
}
