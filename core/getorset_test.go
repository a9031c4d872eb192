package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestGetOrSetMissThenHit(t *testing.T) {
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	var n counter
	if v := mustGetOrSet(t, c, "k", n.factory); v != 1 {
		t.Fatalf("first call = %d, want 1 (from the factory)", v)
	}
	if v := mustGetOrSet(t, c, "k", n.factory); v != 1 {
		t.Fatalf("second call = %d, want the cached 1", v)
	}
	clock.Advance(core.DefaultDuration)
	if v := mustGetOrSet(t, c, "k", n.factory); v != 2 {
		t.Fatalf("after the default duration = %d, want 2 (expired, factory again)", v)
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		name      string
		opts      []core.EntryOption
		advance   time.Duration
		wantFresh bool
	}{
		{"default duration, just before", nil, core.DefaultDuration - time.Nanosecond, true},
		{"default duration, at expiry", nil, core.DefaultDuration, false},
		{"WithDuration", []core.EntryOption{core.WithDuration(time.Minute)}, 59 * time.Second, true},
		{"WithDuration expired", []core.EntryOption{core.WithDuration(time.Minute)}, time.Minute, false},
		{"L1Duration wins over Duration", []core.EntryOption{core.WithDuration(time.Hour), core.WithL1Duration(time.Second)}, time.Second, false},
		{"jitter only lengthens", []core.EntryOption{core.WithDuration(time.Minute), core.WithJitter(time.Minute)}, time.Minute - time.Nanosecond, true},
		{"jitter stays under its max", []core.EntryOption{core.WithDuration(time.Minute), core.WithJitter(time.Minute)}, 2 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c := newCache(t, core.Options{Clock: clock})
			var n counter
			mustGetOrSet(t, c, "k", n.factory, tt.opts...)
			clock.Advance(tt.advance)
			_, found, err := core.Get[int](context.Background(), c, "k")
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.wantFresh {
				t.Fatalf("found = %v after %v, want %v", found, tt.advance, tt.wantFresh)
			}
		})
	}
}

func TestJitterSpreadsExpiry(t *testing.T) {
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	for i := range 200 {
		core.Set(context.Background(), c, string(rune('a'+i%26))+string(rune(i)), i, core.WithDuration(time.Minute), core.WithJitter(time.Minute))
	}
	clock.Advance(90 * time.Second)
	alive := 0
	for i := range 200 {
		if _, ok, _ := core.Get[int](context.Background(), c, string(rune('a'+i%26))+string(rune(i))); ok {
			alive++
		}
	}
	// Expiries are uniform in [60s, 120s): about half are alive at 90s.
	if alive < 40 || alive > 160 {
		t.Fatalf("%d of 200 entries alive at 90s, want about half", alive)
	}
}

func TestGetSet(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	if v, ok, err := core.Get[string](ctx, c, "missing"); err != nil || ok || v != "" {
		t.Fatalf("Get missing = %q, %v, %v; want a miss without error", v, ok, err)
	}
	if err := core.Set(ctx, c, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := core.Get[string](ctx, c, "k"); err != nil || !ok || v != "v1" {
		t.Fatalf("Get = %q, %v, %v; want v1", v, ok, err)
	}
	// GetOrSet serves what Set stored without calling its factory.
	if v := mustGetOrSet(t, c, "k", failing[string](errors.New("must not be called"))); v != "v1" {
		t.Fatalf("GetOrSet after Set = %q", v)
	}
	if err := core.Set(ctx, c, "k", "v2"); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := core.Get[string](ctx, c, "k"); v != "v2" {
		t.Fatalf("Get after second Set = %q, want v2", v)
	}
}

func TestSetSkipL1WriteDropsOldValue(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	core.Set(ctx, c, "k", 1)
	if err := core.Set(ctx, c, "k", 2, core.WithSkipL1Write()); err != nil {
		t.Fatal(err)
	}
	if v, ok, _ := core.Get[int](ctx, c, "k"); ok {
		t.Fatalf("Get = %d: a value older than the last Set is still served", v)
	}
}

func TestSkipL1Read(t *testing.T) {
	c := newCache(t, core.Options{Clock: newFakeClock()})
	var n counter
	mustGetOrSet(t, c, "k", n.factory)
	if v := mustGetOrSet(t, c, "k", n.factory, core.WithSkipL1Read()); v != 2 {
		t.Fatalf("GetOrSet with SkipL1Read = %d, want 2 (factory called again)", v)
	}
	if v := mustGetOrSet(t, c, "k", n.factory); v != 2 {
		t.Fatalf("later hit = %d, want 2 (the skip-read result was stored)", v)
	}
}

func TestTypeMismatchIsAnError(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{Clock: newFakeClock()})
	core.Set(ctx, c, "k", 42)
	_, err := core.GetOrSet(ctx, c, "k", constant("x"))
	var te *core.TypeError
	if !errors.As(err, &te) || te.Got != "int" || te.Want != "string" {
		t.Fatalf("GetOrSet[string] on an int = %v, want a *TypeError int/string", err)
	}
	if _, _, err := core.Get[string](ctx, c, "k"); !errors.As(err, &te) {
		t.Fatalf("Get[string] on an int = %v, want a *TypeError", err)
	}
}

func TestNilValuesAreCached(t *testing.T) {
	c := newCache(t, core.Options{Clock: newFakeClock()})
	calls := 0
	f := func(context.Context, *core.FactoryContext[error]) (error, error) { calls++; return nil, nil }
	for range 3 {
		if v := mustGetOrSet(t, c, "k", f); v != nil {
			t.Fatalf("got %v, want nil", v)
		}
	}
	if calls != 1 {
		t.Fatalf("factory called %d times, want 1: a nil value is a value", calls)
	}
}

func TestFactoryErrorIsWrapped(t *testing.T) {
	c := newCache(t, core.Options{Clock: newFakeClock()})
	sentinel := errors.New("db down")
	_, err := core.GetOrSet(context.Background(), c, "k", failing[int](sentinel))
	var fe *core.FactoryError
	if !errors.Is(err, sentinel) || !errors.As(err, &fe) || fe.Key != "k" {
		t.Fatalf("err = %v, want a *FactoryError for k wrapping the factory's error", err)
	}
	// An error is not cached: the next call runs the factory again.
	if v := mustGetOrSet(t, c, "k", constant(7)); v != 7 {
		t.Fatalf("after an error = %d, want 7", v)
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	c, err := core.New(core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil (idempotent)", err)
	}
	checks := map[string]error{
		"Remove":      c.Remove(ctx, "k"),
		"Expire":      c.Expire(ctx, "k"),
		"RemoveByTag": c.RemoveByTag(ctx, "t"),
		"ExpireByTag": c.ExpireByTag(ctx, "t"),
		"Clear":       c.Clear(ctx, true),
		"Set":         core.Set(ctx, c, "k", 1),
	}
	_, checks["GetOrSet"] = core.GetOrSet(ctx, c, "k", constant(1))
	_, _, checks["Get"] = core.Get[int](ctx, c, "k")
	for name, err := range checks {
		if !errors.Is(err, core.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}
