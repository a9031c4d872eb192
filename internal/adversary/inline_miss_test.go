package adversary

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// Attacks on misses of a cache without L2 whose factory runs on the
// caller's goroutine (Background context, no factory timeout): stampedes
// over many keys, factories that keep their context, panics, recursion,
// changes during the run, conditional refresh, typed handles.

type ctxKey struct{}

// TestInlineMissStampedeEachCallerGetsItsKey: many goroutines miss 16 keys
// at once, round after round (each round removes the keys first). Every
// caller must get its own key's value of the current round, never another
// key's or an older round's; each key's factory must run once per round at
// most... as long as the callers overlap (not asserted: not deterministic).
func TestInlineMissStampedeEachCallerGetsItsKey(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	const keys, callers, rounds = 16, 64, 40
	var calls atomic.Int64
	for round := range rounds {
		if round > 0 {
			for k := range keys {
				if err := c.Remove(ctx, fmt.Sprint("k", k)); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range callers {
			wg.Go(func() {
				<-start
				key := fmt.Sprint("k", i%keys)
				want := fmt.Sprintf("%s@%d", key, round)
				v, err := core.GetOrSet(ctx, c, key, func(fctx context.Context, fc *core.FactoryContext[string]) (string, error) {
					calls.Add(1)
					if fc.Key != key {
						t.Errorf("factory for %q sees fc.Key %q", key, fc.Key)
					}
					if i%3 == 0 {
						time.Sleep(time.Millisecond)
					}
					return fmt.Sprintf("%s@%d", fc.Key, round), nil
				}, core.WithDuration(time.Hour))
				if err != nil || v != want {
					t.Errorf("round %d caller %d: got %q, %v; want %q", round, i, v, err, want)
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	if n := calls.Load(); n < keys*rounds {
		t.Fatalf("%d factory calls for %d key-rounds: some caller got a value without a run", n, keys*rounds)
	}
}

// TestInlineMissFactoryKeepsContext: a factory keeps its context and uses
// it after returning, while many other misses run (reusing whatever the
// cache pools). While it runs, its context is live and carries its own
// call's values. After it returns the context may be cancelled (it is: not
// documented, see the report), but it must behave as one context: it keeps
// its own call's values, once done it stays done (Done closed, Err and
// Cause set, its AfterFunc run once), and it is not revived or re-valued by
// a later run reusing it.
func TestInlineMissFactoryKeepsContext(t *testing.T) {
	c := newCache(t, core.Options{})
	type kept struct {
		ctx   context.Context
		want  string
		fired *atomic.Int32
		err   error // Err just after GetOrSet returned
	}
	var mu sync.Mutex
	var all []*kept
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				val := fmt.Sprintf("g%d-i%d", g, i)
				ctx := context.WithValue(context.Background(), ctxKey{}, val)
				key := fmt.Sprintf("key-%d-%d", g, i%7)
				_ = c.Remove(ctx, key)
				var k *kept
				v, err := core.GetOrSet(ctx, c, key, func(fctx context.Context, fc *core.FactoryContext[string]) (string, error) {
					fired := new(atomic.Int32)
					context.AfterFunc(fctx, func() { fired.Add(1) })
					k = &kept{ctx: fctx, want: val, fired: fired}
					if i%4 == 0 {
						time.Sleep(100 * time.Microsecond)
					}
					if err := fctx.Err(); err != nil {
						return "", fmt.Errorf("factory context done while it runs: %v (cause %v)", err, context.Cause(fctx))
					}
					got, _ := fctx.Value(ctxKey{}).(string)
					return got, nil
				})
				if err != nil || v != val {
					t.Errorf("%s: factory saw value %q, %v", val, v, err)
					continue
				}
				k.err = k.ctx.Err()
				mu.Lock()
				all = append(all, k)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	time.Sleep(20 * time.Millisecond) // AfterFunc runs on its own goroutine
	var done int
	for _, k := range all {
		if got, _ := k.ctx.Value(ctxKey{}).(string); got != k.want {
			t.Fatalf("a kept factory context now carries %q, want %q (reused for another call)", got, k.want)
		}
		err := k.ctx.Err()
		if k.err != nil && err == nil {
			t.Fatalf("%s: kept context was done (%v) and is live again", k.want, k.err)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: kept context's Err %v", k.want, err)
		}
		if (err == nil) != (context.Cause(k.ctx) == nil) {
			t.Fatalf("%s: Err %v but Cause %v", k.want, err, context.Cause(k.ctx))
		}
		select {
		case <-k.ctx.Done():
			if err == nil {
				t.Fatalf("%s: Done closed, Err nil", k.want)
			}
		default:
			if err != nil {
				t.Fatalf("%s: Err %v, Done open", k.want, err)
			}
		}
		if f := k.fired.Load(); (err != nil) != (f == 1) {
			t.Fatalf("%s: Err %v, AfterFunc ran %d times", k.want, err, f)
		}
		if err != nil {
			done++
		}
	}
	t.Logf("%d of %d kept factory contexts are cancelled after their factory returned (cache open)", done, len(all))
}

// TestInlineMissFactoryContextPointerCorrectUse: factories use their
// FactoryContext only while they run, but heavily: adaptive options (a
// per-key duration and tag), Stale, Modified. Under reuse, each result must
// be cached with its own key's options: RemoveByTag of one key's tag removes
// that key and no other.
func TestInlineMissFactoryContextPointerCorrectUse(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	const keys = 24
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				k := (g*31 + i) % keys
				key := fmt.Sprint("k", k)
				_, err := core.GetOrSet(ctx, c, key, func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
					if fc.Key != key {
						return "", fmt.Errorf("fc.Key %q for %q", fc.Key, key)
					}
					fc.Options.Tags = []string{"t-" + fc.Key}
					fc.Options.Duration = time.Hour
					if _, ok := fc.Stale(); ok {
						return "", fmt.Errorf("stale value for %q without fail-safe", key)
					}
					return fc.Modified(key, "etag-"+key, time.Unix(int64(k), 0))
				})
				if err != nil {
					t.Error(err)
					return
				}
				if i%5 == 0 {
					_ = c.Remove(ctx, fmt.Sprint("k", (k+1)%keys))
				}
			}
		})
	}
	wg.Wait()
	// Fill every key, then remove by one tag: only that key goes.
	for k := range keys {
		key := fmt.Sprint("k", k)
		if _, err := core.GetOrSet(ctx, c, key, func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
			fc.Options.Tags = []string{"t-" + fc.Key}
			return key, nil
		}, core.WithDuration(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	for victim := range keys {
		if err := c.RemoveByTag(ctx, fmt.Sprint("t-k", victim)); err != nil {
			t.Fatal(err)
		}
		for k := range keys {
			_, found, err := core.Get[string](ctx, c, fmt.Sprint("k", k))
			if err != nil {
				t.Fatal(err)
			}
			if want := k > victim; found != want {
				t.Fatalf("after RemoveByTag(t-k%d): k%d found=%v, want %v (a result cached with another run's tags)", victim, k, found, want)
			}
		}
	}
}

// TestInlineMissPanicStampede: a factory that panics on its caller's
// goroutine while other callers wait, and while other keys' factories run:
// every waiter of that key gets a *PanicError, the other keys are
// unaffected, and the key works again at once.
func TestInlineMissPanicStampede(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	for round := range 20 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		gate := make(chan struct{})
		for i := range 32 {
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					_, err := core.GetOrSet(ctx, c, "boom", func(context.Context, *core.FactoryContext[string]) (string, error) {
						<-gate
						panic(fmt.Sprint("boom ", round))
					})
					var pe *core.PanicError
					if !errors.As(err, &pe) {
						t.Errorf("round %d: boom caller got %v, want *PanicError", round, err)
					}
					return
				}
				key := fmt.Sprint("ok", i)
				v, err := core.GetOrSet(ctx, c, key, constF(key))
				if err != nil || v != key {
					t.Errorf("round %d: %s got %q, %v", round, key, v, err)
				}
			})
		}
		close(start)
		time.Sleep(2 * time.Millisecond)
		close(gate)
		wg.Wait()
		v, err := core.GetOrSet(ctx, c, "boom", constF("fine"), core.WithDuration(time.Hour))
		if err != nil || v != "fine" {
			t.Fatalf("round %d: after the panic: %q, %v", round, v, err)
		}
		_ = c.Remove(ctx, "boom")
		if t.Failed() {
			return
		}
	}
}

// TestInlineMissRecursiveFactories: factories that call GetOrSet on other
// keys (a chain, on the caller's goroutine), concurrently from many
// goroutines entering the chain at different depths. Every value must be
// its own key's.
func TestInlineMissRecursiveFactories(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	const depth = 6
	var factory func(n int) core.Factory[string]
	factory = func(n int) core.Factory[string] {
		return func(fctx context.Context, fc *core.FactoryContext[string]) (string, error) {
			if n == 0 {
				return "chain0", nil
			}
			below, err := core.GetOrSet(fctx, c, fmt.Sprint("chain", n-1), factory(n-1), core.WithDuration(time.Millisecond*time.Duration(1+n)))
			if err != nil {
				return "", err
			}
			if below != fmt.Sprint("chain", n-1) {
				return "", fmt.Errorf("chain%d got %q below", n, below)
			}
			return fc.Key, nil
		}
	}
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Go(func() {
			for i := range 100 {
				n := (g + i) % depth
				key := fmt.Sprint("chain", n)
				v, err := core.GetOrSet(ctx, c, key, factory(n), core.WithDuration(time.Millisecond*time.Duration(1+n)))
				if err != nil || v != key {
					t.Errorf("%s: %q, %v", key, v, err)
					return
				}
				if i%10 == 0 {
					_ = c.Remove(ctx, fmt.Sprint("chain", (n+2)%depth))
				}
			}
		})
	}
	wg.Wait()
}

// TestInlineMissChangeDuringRun: Remove, Expire, Clear(false) and
// RemoveByTag of the key while its factory runs on the caller's goroutine:
// the caller gets the result, but it must not be cached as fresh: the next
// GetOrSet calls the factory again (and for Remove and RemoveByTag, a
// failing factory with fail-safe gets no stale value).
func TestInlineMissChangeDuringRun(t *testing.T) {
	changes := map[string]func(c *core.Cache) error{
		"Remove":          func(c *core.Cache) error { return c.Remove(context.Background(), "k") },
		"Expire":          func(c *core.Cache) error { return c.Expire(context.Background(), "k") },
		"ClearRemove":     func(c *core.Cache) error { return c.Clear(context.Background(), false) },
		"ClearExpire":     func(c *core.Cache) error { return c.Clear(context.Background(), true) },
		"RemoveByTagCall": func(c *core.Cache) error { return c.RemoveByTag(context.Background(), "call-tag") },
		"RemoveByTagFc":   func(c *core.Cache) error { return c.RemoveByTag(context.Background(), "fc-tag") },
		"Set": func(c *core.Cache) error {
			return core.Set(context.Background(), c, "k", "set", core.WithDuration(time.Hour))
		},
	}
	for name, change := range changes {
		for _, failSafe := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/failsafe=%v", name, failSafe), func(t *testing.T) {
				ctx := context.Background()
				c := newCache(t, core.Options{})
				opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("call-tag")}
				if failSafe {
					opts = append(opts, core.WithFailSafe(time.Hour, time.Minute))
				}
				inside := make(chan struct{})
				release := make(chan struct{})
				done := make(chan error, 1)
				go func() {
					v, err := core.GetOrSet(ctx, c, "k", func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
						fc.Options.Tags = append(fc.Options.Tags, "fc-tag")
						close(inside)
						<-release
						return "old", nil
					}, opts...)
					if err == nil && v != "old" {
						err = fmt.Errorf("caller got %q", v)
					}
					done <- err
				}()
				<-inside
				if err := change(c); err != nil {
					t.Fatal(err)
				}
				close(release)
				if err := <-done; err != nil {
					t.Fatalf("the caller of the running factory: %v", err)
				}
				var called bool
				v, err := core.GetOrSet(ctx, c, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
					called = true
					return "", errSourceDown
				}, opts...)
				if name == "Set" {
					if called || v != "set" || err != nil {
						t.Fatalf("after Set during the run: %q, %v, factory called %v (want the Set's value)", v, err, called)
					}
					return
				}
				if !called {
					t.Fatalf("after %s during the run, the run's result was cached fresh: served %q", name, v)
				}
				if v == "old" && (name == "Remove" || name == "ClearRemove" || name == "RemoveByTagCall" || name == "RemoveByTagFc") {
					t.Fatalf("after %s during the run, fail-safe served the run's result %q", name, v)
				}
			})
		}
	}
}

// TestInlineMissConditionalRefreshExtremeValidators: entries cached with
// Modified and zero, epoch, far past, far future and sub-second
// LastModified times (and empty, long, odd ETags) hand exactly those
// validators to the next factory after Expire, and NotModified keeps them,
// round after round.
func TestInlineMissConditionalRefreshExtremeValidators(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk})
	times := []time.Time{
		{},
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(1<<40, 0),
		time.Unix(-1<<40, 0),
		time.Unix(1_700_000_000, 123456789).In(time.FixedZone("x", 3600)),
	}
	etags := []string{"", "W/\"x\"", string(make([]byte, 1000)), "\xff\x00"}
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)}
	for i, lm := range times {
		etag := etags[i%len(etags)]
		key := fmt.Sprint("k", i)
		if _, err := core.GetOrSet(ctx, c, key, func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
			return fc.Modified(key, etag, lm)
		}, opts...); err != nil {
			t.Fatal(err)
		}
		for round := range 3 {
			if err := c.Expire(ctx, key); err != nil {
				t.Fatal(err)
			}
			v, err := core.GetOrSet(ctx, c, key, func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
				if fc.ETag != etag || !fc.LastModified.Equal(lm) || fc.LastModified.IsZero() != lm.IsZero() {
					return "", fmt.Errorf("validators %q %v, want %q %v", fc.ETag, fc.LastModified, etag, lm)
				}
				if s, ok := fc.Stale(); !ok || s != key {
					return "", fmt.Errorf("stale %q %v", s, ok)
				}
				return fc.NotModified()
			}, append(opts, core.WithoutFailSafe(), core.WithFailSafe(time.Hour, time.Second))...)
			if err != nil || v != key {
				t.Fatalf("%s round %d (LastModified %v): %q, %v", key, round, lm, v, err)
			}
		}
		// NotModified made it fresh again: a hit, no factory.
		if v, err := core.GetOrSet(ctx, c, key, failF(errSourceDown), opts...); err != nil || v != key {
			t.Fatalf("%s after NotModified: %q, %v", key, v, err)
		}
		// Expired by time, a plain value replaces it without validators.
		clk.Advance(2 * time.Minute)
		if _, err := core.GetOrSet(ctx, c, key, constF("plain"), opts...); err != nil {
			t.Fatal(err)
		}
		_ = c.Expire(ctx, key)
		if _, err := core.GetOrSet(ctx, c, key, func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
			if fc.ETag != "" || !fc.LastModified.IsZero() {
				return "", fmt.Errorf("validators carried over a plain result: %q %v", fc.ETag, fc.LastModified)
			}
			return "plain2", nil
		}, opts...); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	// NotModified without a stale value.
	_, err := core.GetOrSet(ctx, c, "none", func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
		return fc.NotModified()
	})
	if !errors.Is(err, core.ErrNoStaleValue) {
		t.Fatalf("NotModified without a stale value: %v", err)
	}
	if _, found, _ := core.Get[string](ctx, c, "none"); found {
		t.Fatal("NotModified without a stale value cached something")
	}
}

// TestInlineMissMixedEntryKinds: plain, sliding and eager-refresh entries
// read concurrently while the fake clock moves: every read returns its own
// key's value of a generation no older than the clock allows.
func TestInlineMissMixedEntryKinds(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk})
	kinds := [][]core.EntryOption{
		{core.WithDuration(10 * time.Second)},
		{core.WithDuration(10 * time.Second), core.WithSlidingExpiration(2 * time.Second)},
		{core.WithDuration(10 * time.Second), core.WithEagerRefresh(0.5)},
		{core.WithDuration(10 * time.Second), core.WithEagerRefresh(0.5), core.WithFailSafe(time.Hour, time.Second)},
		{core.WithDuration(10 * time.Second), core.WithSlidingExpiration(time.Second), core.WithFailSafe(time.Hour, time.Second)},
	}
	var gen atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 6 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (g + i) % 20
				key := fmt.Sprint("k", k)
				opts := kinds[k%len(kinds)]
				minGen := gen.Load()
				v, err := core.GetOrSet(ctx, c, key, func(_ context.Context, fc *core.FactoryContext[string]) (string, error) {
					return fmt.Sprintf("%s/%d", fc.Key, gen.Load()), nil
				}, opts...)
				if err != nil {
					t.Error(err)
					return
				}
				var gotGen int64
				var kk int
				if n, _ := fmt.Sscanf(v, "k%d/%d", &kk, &gotGen); n != 2 || kk != k {
					t.Errorf("%s got %q (another key's value)", key, v)
					return
				}
				// An entry lasts 10s at most = 20 generations of 500ms.
				if gotGen < minGen-22 {
					t.Errorf("%s got generation %d at generation %d: older than its duration", key, gotGen, minGen)
					return
				}
			}
		})
	}
	for range 100 {
		time.Sleep(time.Millisecond)
		clk.Advance(500 * time.Millisecond)
		gen.Add(1)
	}
	close(stop)
	wg.Wait()
}

// TestInlineMissTypedHandlesSameKey: string and int handles miss the same
// key at once, round after round. Each caller gets a value of its own type
// that its own factory or the other type's... never: a caller gets either
// its own factory's value or a *TypeError, never a panic or a zero value
// without an error.
func TestInlineMissTypedHandlesSameKey(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	strs, ints := core.For[string](c), core.For[int](c)
	for round := range 50 {
		_ = c.Remove(ctx, "k")
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 16 {
			wg.Go(func() {
				<-start
				var te *core.TypeError
				if i%2 == 0 {
					v, err := strs.GetOrSet(ctx, "k", constF("s"))
					if !(err == nil && v == "s") && !errors.As(err, &te) {
						t.Errorf("round %d string: %q, %v", round, v, err)
					}
					return
				}
				v, err := ints.GetOrSet(ctx, "k", func(context.Context, *core.FactoryContext[int]) (int, error) { return 7, nil })
				if !(err == nil && v == 7) && !errors.As(err, &te) {
					t.Errorf("round %d int: %d, %v", round, v, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// TestInlineMissCloseDuringInlineFactory: Close while a factory runs on its
// caller's goroutine: Close returns (it does not wait for the caller's
// goroutine) within its timeout, the caller gets its result or ErrClosed,
// and later calls get ErrClosed.
func TestInlineMissCloseDuringInlineFactory(t *testing.T) {
	c, err := core.New(core.Options{CloseTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	inside := make(chan struct{})
	release := make(chan struct{})
	var fctxErr atomic.Value
	done := make(chan error, 1)
	go func() {
		_, err := core.GetOrSet(context.Background(), c, "k", func(fctx context.Context, _ *core.FactoryContext[string]) (string, error) {
			close(inside)
			<-release
			fctxErr.Store(fmt.Sprint(fctx.Err()))
			return "v", nil
		})
		done <- err
	}()
	<-inside
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close returned %v while the inline factory runs", err)
	case <-time.After(3 * time.Second):
		close(release)
		t.Fatal("Close did not return within 3s while an inline factory runs")
	}
	close(release)
	if err := <-done; err != nil && !errors.Is(err, core.ErrClosed) {
		t.Fatalf("caller: %v", err)
	}
	t.Logf("factory context after Close: %v", fctxErr.Load())
	if _, err := core.GetOrSet(context.Background(), c, "k", constF("x")); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestInlineMissNoJoinAfterChange: an inline run (Background caller) is
// blocked; Remove, Set or Clear of the key is made; a caller arriving after
// the change must not join the older run (docs/consistency.md, "Joined
// run"): it runs its own factory (or gets the Set's value), never the older
// run's result.
func TestInlineMissNoJoinAfterChange(t *testing.T) {
	for _, change := range []string{"Remove", "Expire", "Set", "ClearRemove", "RemoveByTag"} {
		t.Run(change, func(t *testing.T) {
			ctx := context.Background()
			c := newCache(t, core.Options{})
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("tg")}
			inside := make(chan struct{})
			release := make(chan struct{})
			first := make(chan string, 1)
			go func() {
				v, _ := core.GetOrSet(ctx, c, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
					close(inside)
					<-release
					return "old-run", nil
				}, opts...)
				first <- v
			}()
			<-inside
			var err error
			switch change {
			case "Remove":
				err = c.Remove(ctx, "k")
			case "Expire":
				err = c.Expire(ctx, "k")
			case "Set":
				err = core.Set(ctx, c, "k", "set", opts...)
			case "ClearRemove":
				err = c.Clear(ctx, false)
			case "RemoveByTag":
				err = c.RemoveByTag(ctx, "tg")
			}
			if err != nil {
				t.Fatal(err)
			}
			// Callers after the change, inline and cancellable.
			results := make(chan string, 2)
			go func() {
				v, err := core.GetOrSet(ctx, c, "k", constF("new-run"), opts...)
				results <- fmt.Sprint(v, err)
			}()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			go func() {
				v, err := core.GetOrSet(cctx, c, "k", constF("new-run"), opts...)
				results <- fmt.Sprint(v, err)
			}()
			want := "new-run<nil>"
			if change == "Set" {
				want = "set<nil>"
			}
			for range 2 {
				select {
				case got := <-results:
					if got != want {
						close(release)
						t.Fatalf("a caller after %s got %q, want %q", change, got, want)
					}
				case <-time.After(3 * time.Second):
					close(release)
					t.Fatalf("a caller after %s waits for the older run (still blocked after 3s)", change)
				}
			}
			close(release)
			if v := <-first; v != "old-run" {
				t.Fatalf("the run's own caller got %q", v)
			}
			if v, err := core.GetOrSet(ctx, c, "k", failF(errSourceDown), opts...); err != nil || v == "old-run" {
				t.Fatalf("after the older run ended: %q, %v", v, err)
			}
		})
	}
}

// TestInlineMissJoinersWithTheirOwnLimits: an inline run is slow; joiners
// with a cancellable context, a lock timeout, or a soft timeout with a
// stale value stop waiting by their own limits while the inline run goes on,
// and the inline caller still gets (and caches) its result.
func TestInlineMissJoinersWithTheirOwnLimits(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk})
	fs := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(time.Hour, time.Millisecond)}
	if err := core.Set(ctx, c, "k", "stale", fs...); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	inside := make(chan struct{})
	release := make(chan struct{})
	first := make(chan string, 1)
	go func() {
		v, err := core.GetOrSet(ctx, c, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
			close(inside)
			<-release
			return "fresh", nil
		}, fs...)
		first <- fmt.Sprint(v, err)
	}()
	<-inside
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := core.GetOrSet(cctx, c, "k", constF("x"), fs...)
		errc <- err
	}()
	time.Sleep(5 * time.Millisecond)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled joiner: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a cancelled joiner of an inline run did not return")
	}
	// Soft timeout with a stale value: served stale. (The fake clock does
	// not drive real timers; the soft timeout is real time.)
	done := make(chan string, 1)
	go func() {
		v, err := core.GetOrSet(ctx, c, "k", constF("x"), append(fs, core.WithFactoryTimeouts(20*time.Millisecond, 0))...)
		done <- fmt.Sprint(v, err)
	}()
	select {
	case got := <-done:
		if got != "stale<nil>" {
			t.Fatalf("joiner with a soft timeout: %q", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a joiner with a soft timeout waited for the inline run")
	}
	// Lock timeout without fail-safe: runs its own factory.
	go func() {
		v, err := core.GetOrSet(ctx, c, "k", constF("own"), core.WithLockTimeout(20*time.Millisecond), core.WithoutFailSafe())
		done <- fmt.Sprint(v, err)
	}()
	select {
	case got := <-done:
		if got != "own<nil>" {
			t.Fatalf("joiner with a lock timeout: %q", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a joiner with a lock timeout waited for the inline run")
	}
	close(release)
	if got := <-first; got != "fresh<nil>" {
		t.Fatalf("the inline caller: %q", got)
	}
}
