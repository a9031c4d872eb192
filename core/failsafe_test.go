package core_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

func TestFailSafe(t *testing.T) {
	down := errors.New("source down")
	fs := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second)}
	tests := []struct {
		name    string
		opts    []core.EntryOption
		advance time.Duration
		want    int
		wantErr bool
	}{
		{"stale served after expiry", fs, time.Minute, 1, false},
		{"stale served until max duration", fs, time.Hour - time.Nanosecond, 1, false},
		{"nothing past max duration", fs, time.Hour, 0, true},
		{"fail-safe off: error", []core.EntryOption{core.WithDuration(time.Minute)}, time.Minute, 0, true},
		{"max duration shorter than duration: duration wins", []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Minute, time.Second)}, 59 * time.Minute, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c := newCache(t, core.Options{Clock: clock})
			mustGetOrSet(t, c, "k", constant(1), tt.opts...)
			clock.Advance(tt.advance)
			v, err := core.GetOrSet(context.Background(), c, "k", failing[int](down), tt.opts...)
			if tt.wantErr {
				if !errors.Is(err, down) {
					t.Fatalf("got %d, %v; want the factory's error", v, err)
				}
				return
			}
			if err != nil || v != tt.want {
				t.Fatalf("got %d, %v; want the stale %d", v, err, tt.want)
			}
		})
	}
}

func TestFailSafeThrottle(t *testing.T) {
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second)}
	mustGetOrSet(t, c, "k", constant(1), opts...)
	clock.Advance(time.Minute)

	var calls atomic.Int64
	broken := func(context.Context, *core.FactoryContext[int]) (int, error) {
		calls.Add(1)
		return 0, errors.New("down")
	}
	for range 10 {
		if v := mustGetOrSet(t, c, "k", broken, opts...); v != 1 {
			t.Fatalf("got %d, want the stale 1", v)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("failing source called %d times within the throttle, want 1", calls.Load())
	}
	clock.Advance(30 * time.Second)
	mustGetOrSet(t, c, "k", broken, opts...)
	if calls.Load() != 2 {
		t.Fatalf("failing source called %d times after the throttle, want 2", calls.Load())
	}
	// The source recovers: the next call after the throttle gets fresh data.
	clock.Advance(30 * time.Second)
	if v := mustGetOrSet(t, c, "k", constant(5), opts...); v != 5 {
		t.Fatalf("after recovery = %d, want 5", v)
	}
}

func TestFailSafeStaleReadIsReported(t *testing.T) {
	clock := newFakeClock()
	rec := &recorder{}
	c := newCache(t, core.Options{Clock: clock, Observers: []core.Observer{rec}})
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Minute)}
	mustGetOrSet(t, c, "k", constant(1), opts...)
	clock.Advance(time.Minute)
	mustGetOrSet(t, c, "k", failing[int](errors.New("down")), opts...)
	if !rec.has(core.EventFailSafeActivated) || !rec.has(core.EventFactoryError) {
		t.Fatalf("events %v, want factory_error and failsafe_activated", rec.kinds())
	}
	last := rec.lastOp(core.OpGetOrSet)
	if !last.Stale || !last.FailSafe || last.Source != core.SourceL1 {
		t.Fatalf("GetOrSet op = %+v, want Stale and FailSafe", last)
	}
	// A hit on the throttled stale value is a stale hit.
	mustGetOrSet(t, c, "k", failing[int](errors.New("down")), opts...)
	if !rec.has(core.EventStaleHit) {
		t.Fatalf("events %v, want a stale_hit", rec.kinds())
	}
}

func TestGetAllowStaleOnRead(t *testing.T) {
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	ctx := context.Background()
	core.Set(ctx, c, "k", 1, core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 0))
	clock.Advance(time.Minute)
	if _, ok, _ := core.Get[int](ctx, c, "k"); ok {
		t.Fatal("Get served an expired value without AllowStaleOnRead")
	}
	if v, ok, _ := core.Get[int](ctx, c, "k", core.WithAllowStaleOnRead()); !ok || v != 1 {
		t.Fatalf("Get with AllowStaleOnRead = %d, %v; want the stale 1", v, ok)
	}
}
