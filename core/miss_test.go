package core_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// maxMissAllocs pins what a GetOrSet miss allocates (no L2, no backplane,
// no observer, a context that cannot be cancelled, a trivial factory): the
// run (the factory's context and its FactoryContext in one allocation; the
// flight and the factory's copy of the options come from a pool), the entry,
// the value boxed in it, and otter's node and write task. docs/benchmarks.md ("Miss path") says what was removed; raise it only
// with a reason written there.
const maxMissAllocs = 5

// maxMissAllocsWithOptions: per-call options add their resolved copy.
const maxMissAllocsWithOptions = maxMissAllocs + 1

func TestMissAllocations(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts []core.EntryOption
		max  float64
	}{
		{"no per-call options", nil, maxMissAllocs},
		{"per-call options", []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(24*time.Hour, 30*time.Second)}, maxMissAllocsWithOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, core.Options{})
			load := constant(benchUserValue)
			keys := make([]string, 1001) // AllocsPerRun runs once more than asked
			for i := range keys {
				keys[i] = "user:" + strconv.Itoa(i)
			}
			i := 0
			allocs := testing.AllocsPerRun(len(keys)-1, func() {
				if _, err := core.GetOrSet(ctx, c, keys[i], load, tt.opts...); err != nil {
					t.Fatal(err)
				}
				i++
			})
			if i != len(keys) {
				t.Fatalf("%d calls, want %d", i, len(keys))
			}
			if allocs > tt.max {
				t.Fatalf("a GetOrSet miss allocates %v times, want at most %v", allocs, tt.max)
			}
		})
	}
}

type ctxKey struct{}

// The factory's context, run on the caller's goroutine (a context that
// cannot be cancelled) or on its own (a cancellable one): the caller's
// values, no deadline, not done while the factory runs, done (Canceled) once
// it returned, and so are contexts derived from it.
func TestFactoryContextLifetime(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
	}{
		{"not cancellable (inline run)", func(*testing.T) context.Context { return context.Background() }},
		{"cancellable", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return ctx
		}},
		{"with a deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			t.Cleanup(cancel)
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCache(t, core.Options{})
			ctx := context.WithValue(tt.ctx(t), ctxKey{}, "request-7")
			var fctx, child context.Context
			var childCancel context.CancelFunc
			_, err := core.GetOrSet(ctx, c, "k", func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
				fctx = ctx
				if got := ctx.Value(ctxKey{}); got != "request-7" {
					return 0, fmt.Errorf("the caller's value is %v, want request-7", got)
				}
				if _, ok := ctx.Deadline(); ok {
					return 0, errors.New("the factory's context has a deadline")
				}
				if err := ctx.Err(); err != nil {
					return 0, err
				}
				child, childCancel = context.WithCancel(ctx)
				select {
				case <-ctx.Done():
					return 0, errors.New("the factory's context is done while it runs")
				default:
				}
				return 1, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			defer childCancel()
			for name, x := range map[string]context.Context{"factory's": fctx, "derived": child} {
				select {
				case <-x.Done():
				case <-time.After(5 * time.Second):
					t.Fatalf("the %s context is not done after the factory returned", name)
				}
				if !errors.Is(x.Err(), context.Canceled) || !errors.Is(context.Cause(x), context.Canceled) {
					t.Fatalf("the %s context: Err %v, Cause %v; want context.Canceled", name, x.Err(), context.Cause(x))
				}
			}
		})
	}
}

// A factory that never calls Done, only Err, still sees Close cancel its
// context; one blocked on Done is released by Close.
func TestFactoryContextCancelledByClose(t *testing.T) {
	for _, byDone := range []bool{false, true} {
		t.Run("by Done "+strconv.FormatBool(byDone), func(t *testing.T) {
			c, err := core.New(core.Options{})
			if err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{})
			result := make(chan error, 1)
			go func() {
				_, err := core.GetOrSet(context.Background(), c, "k", func(ctx context.Context, _ *core.FactoryContext[int]) (int, error) {
					close(started)
					if byDone {
						<-ctx.Done()
					} else {
						for ctx.Err() == nil {
							time.Sleep(time.Millisecond)
						}
					}
					return 0, context.Cause(ctx)
				})
				result <- err
			}()
			<-started
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-result:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("GetOrSet = %v, want the factory's context.Canceled", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the factory did not see Close cancel its context")
			}
		})
	}
}

// TestRunContextCancelledTwiceUnused: runs whose factories never look at
// their context are cancelled twice (at their caller's hard timeout without
// background completion, then at their end): concurrent runs doing so must
// not share state (the race detector caught a write to a shared link).
func TestRunContextCancelledTwiceUnused(t *testing.T) {
	c := newCache(t, core.Options{})
	release := make(chan struct{})
	factory := func(context.Context, *core.FactoryContext[int]) (int, error) {
		<-release
		return 1, nil
	}
	ctx := context.Background()
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			_, err := core.GetOrSet(ctx, c, "k"+strconv.Itoa(i), factory,
				core.WithFactoryTimeouts(0, time.Millisecond), core.WithBackgroundFactoryCompletion(false))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; !errors.Is(err, core.ErrFactoryTimeout) {
			t.Errorf("GetOrSet = %v, want ErrFactoryTimeout", err)
		}
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for core.RunningFlights(c) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs still running 10 s after their factories were released", core.RunningFlights(c))
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReusedRunsKeepEachCallersValue: runs on their callers' goroutines
// reuse their flights once no other caller joined them; many callers missing
// overlapping keys at once (some joining others' runs) each get their key's
// value, and a caller that joined a run is never handed a later run's.
func TestReusedRunsKeepEachCallersValue(t *testing.T) {
	c := newCache(t, core.Options{})
	ctx := context.Background()
	var calls atomic.Int64
	factory := func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
		if calls.Add(1)%3 == 0 {
			time.Sleep(50 * time.Microsecond) // let others join some runs
		}
		return "v:" + fc.Key, nil
	}
	const goroutines, keys, rounds = 8, 64, 20
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				for k := range keys {
					key := "r" + strconv.Itoa(r) + ":k" + strconv.Itoa((k+g)%keys)
					v, err := core.GetOrSet(ctx, c, key, factory)
					if err != nil || v != "v:"+key {
						t.Errorf("GetOrSet(%q) = %q, %v; want %q", key, v, err, "v:"+key)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n < keys*rounds || n > goroutines*keys*rounds {
		t.Errorf("%d factory calls for %d keys", n, keys*rounds)
	}
}
