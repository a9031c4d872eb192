package core_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/core"
)

// versionedBatch returns "<version>:<key>" for every key after delay.
func versionedBatch(version string, delay time.Duration) core.ManyFactory[string] {
	return func(ctx context.Context, keys []string) (map[string]string, error) {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		out := map[string]string{}
		for _, k := range keys {
			out[k] = version + ":" + k
		}
		return out, nil
	}
}

func TestGetOrSetManySoftTimeout(t *testing.T) {
	const soft = 100 * time.Millisecond
	tests := []struct {
		name     string
		stale    []string // keys with a stale value; the others are new
		failSafe bool
		hard     time.Duration
		factory  time.Duration
		want     map[string]string
		wantErr  error
		took     time.Duration
		softOuts int // factory_soft_timeout events
	}{
		{"fast factory: no timeout", []string{"a", "b"}, true, 0, 10 * time.Millisecond,
			map[string]string{"a": "new:a", "b": "new:b"}, nil, 10 * time.Millisecond, 0},
		{"every key stale: stale values at the soft timeout", []string{"a", "b"}, true, 0, 5 * time.Second,
			map[string]string{"a": "old:a", "b": "old:b"}, nil, soft, 2},
		{"stale keys at the soft timeout, a new key waits", []string{"a", "b"}, true, 0, time.Second,
			map[string]string{"a": "old:a", "b": "old:b", "c": "new:c"}, nil, time.Second, 2},
		{"a new key times out at the hard timeout", []string{"a", "b"}, true, 500 * time.Millisecond, 5 * time.Second,
			map[string]string{"a": "old:a", "b": "old:b"}, core.ErrFactoryTimeout, 500 * time.Millisecond, 2},
		{"no soft timeout without fail-safe", []string{"a", "b"}, false, 0, time.Second,
			map[string]string{"a": "new:a", "b": "new:b"}, nil, time.Second, 0},
		{"no soft timeout without a stale value", nil, true, 0, time.Second,
			map[string]string{"a": "new:a", "b": "new:b"}, nil, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				rec := &recorder{}
				c := newCache(t, core.Options{Clock: core.SystemClock, Observers: []core.Observer{rec}})
				opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFactoryTimeouts(soft, tt.hard)}
				if tt.failSafe {
					opts = append(opts, core.WithFailSafe(time.Hour, time.Second))
				}
				if len(tt.stale) > 0 {
					if _, err := core.GetOrSetMany(ctx, c, tt.stale, versionedBatch("old", 0),
						core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)); err != nil {
						t.Fatal(err)
					}
					time.Sleep(time.Minute + time.Second) // past the stamps of every key
				}
				keys := []string{"a", "b"}
				if _, ok := tt.want["c"]; ok || tt.wantErr != nil {
					keys = append(keys, "c")
				}
				start := time.Now()
				got, err := core.GetOrSetMany(ctx, c, keys, versionedBatch("new", tt.factory), opts...)
				if took := time.Since(start); took != tt.took {
					t.Errorf("call took %v, want %v", took, tt.took)
				}
				if !errors.Is(err, tt.wantErr) || fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
				}
				if n := len(rec.eventsOf(core.EventFactorySoftTimeout)); n != tt.softOuts {
					t.Errorf("%d factory_soft_timeout events, want %d", n, tt.softOuts)
				}
				// The factory completes in the background and updates the
				// cache.
				time.Sleep(10 * time.Second)
				synctest.Wait()
				for _, k := range keys {
					if v, ok, _ := core.Get[string](ctx, c, k); !ok || v != "new:"+k {
						t.Errorf("after the factory ended Get(%q) = %q, %v; want %q", k, v, ok, "new:"+k)
					}
				}
				timedOut := tt.softOuts // keys that got their stale value at the soft timeout
				if tt.wantErr != nil {
					timedOut++ // and c, at the hard one
				}
				if n := len(rec.eventsOf(core.EventBackgroundCompletion)); n != timedOut {
					t.Errorf("events %v: %d background_completion, want %d (one per key that timed out)", rec.kinds(), n, timedOut)
				}
			})
		})
	}
}

// A key another call is producing is waited for with the batch's soft
// timeout too.
func TestGetOrSetManySoftTimeoutOnAJoinedKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newCache(t, core.Options{Clock: core.SystemClock})
		fs := core.WithFailSafe(time.Hour, time.Second)
		if _, err := core.GetOrSet(ctx, c, "a", func(context.Context, *core.FactoryContext[string]) (string, error) { return "old:a", nil }, fs, core.WithDuration(time.Minute)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute) // stale
		started := make(chan struct{})
		go core.GetOrSet(ctx, c, "a", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(started)
			time.Sleep(time.Second)
			return "new:a", nil
		}, fs)
		<-started
		start := time.Now()
		got, err := core.GetOrSetMany(ctx, c, []string{"a"}, versionedBatch("batch", time.Hour), fs,
			core.WithFactoryTimeouts(100*time.Millisecond, 0))
		if took := time.Since(start); err != nil || got["a"] != "old:a" || took != 100*time.Millisecond {
			t.Fatalf("got %v, %v after %v; want the stale old:a at the soft timeout", got, err, took)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if v, _, _ := core.Get[string](ctx, c, "a"); v != "new:a" {
			t.Fatalf("after the GetOrSet factory ended Get = %q, want new:a", v)
		}
	})
}
