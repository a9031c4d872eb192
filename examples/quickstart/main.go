// Command quickstart is a guided tour of strata's in-memory cache: it runs
// each core feature once, with short real durations, and prints what happens
// and why. It needs no services and finishes in a few seconds:
//
//	go run ./examples/quickstart
//
// It also checks every claim it prints: if something does not behave as
// described, it says what and exits with status 1 (CI runs it as a smoke
// test).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/core"
)

func main() {
	// Fail clearly instead of hanging if something blocks for good.
	time.AfterFunc(30*time.Second, func() {
		fmt.Fprintln(os.Stderr, "quickstart: FAILED: still running after 30s")
		os.Exit(1)
	})

	// The zero Options are a valid L1-only cache; the name shows in logs
	// and traces.
	c, err := core.New(core.Options{Name: "quickstart"})
	must(err, "core.New")
	ctx := context.Background()

	getOrSet(ctx, c)
	stampede(ctx, c)
	failSafe(ctx, c)
	softTimeout(ctx, c)
	eagerRefresh(ctx, c)
	tags(ctx, c)
	expireVsRemove(ctx, c)

	// Close stops background work; every later call returns core.ErrClosed.
	must(c.Close(), "Close")
	_, _, err = core.Get[string](ctx, c, "user:1")
	check(errors.Is(err, core.ErrClosed), "Get after Close = %v, want core.ErrClosed", err)
	fmt.Println("\nCache closed. Every step behaved as described.")
}

// 1. GetOrSet: a miss calls the factory, a hit does not.
func getOrSet(ctx context.Context, c *core.Cache) {
	step("1. GetOrSet: miss, then hit")
	var calls atomic.Int32
	loadUser := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		calls.Add(1)
		return "Ada Lovelace", nil // a database query, in real life
	}

	v, err := core.GetOrSet(ctx, c, "user:1", loadUser, core.WithDuration(time.Minute))
	must(err, "GetOrSet user:1")
	check(v == "Ada Lovelace" && calls.Load() == 1, "first GetOrSet = %q with %d factory calls, want 1 call", v, calls.Load())
	say("miss: the factory ran and %q was cached for 1 minute", v)

	v, err = core.GetOrSet(ctx, c, "user:1", loadUser, core.WithDuration(time.Minute))
	must(err, "GetOrSet user:1")
	check(v == "Ada Lovelace" && calls.Load() == 1, "second GetOrSet = %q with %d factory calls, want still 1", v, calls.Load())
	say("hit:  %q came from memory; the factory was not called again", v)
}

// 2. Stampede protection: concurrent misses of one key share one factory call.
func stampede(ctx context.Context, c *core.Cache) {
	step("2. Stampede protection: 100 goroutines miss the same key at once")
	var calls atomic.Int32
	slowReport := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		calls.Add(1)
		if err := sleep(ctx, 200*time.Millisecond); err != nil { // a slow query
			return "", err
		}
		return "daily report", nil
	}

	var wg sync.WaitGroup
	var served atomic.Int32
	for range 100 {
		wg.Go(func() {
			v, err := core.GetOrSet(ctx, c, "report:daily", slowReport, core.WithDuration(time.Minute))
			must(err, "GetOrSet report:daily")
			if v == "daily report" {
				served.Add(1)
			}
		})
	}
	wg.Wait()
	check(served.Load() == 100, "%d of 100 callers got the report", served.Load())
	check(calls.Load() == 1, "the factory ran %d times for 100 concurrent callers, want 1", calls.Load())
	say("100 callers got %q from %d factory call: the others waited for it and shared its result", "daily report", calls.Load())
}

// errSourceDown is what the price service returns while it is down.
var errSourceDown = errors.New("price service unavailable")

// 3. Fail-safe: when the source fails, the last value is served stale.
func failSafe(ctx context.Context, c *core.Cache) {
	step("3. Fail-safe: the source starts failing")
	var calls atomic.Int32
	var down atomic.Bool
	loadPrice := func(ctx context.Context, fc *core.FactoryContext[float64]) (float64, error) {
		calls.Add(1)
		if down.Load() {
			return 0, errSourceDown
		}
		return 1.10, nil
	}
	// Fresh for 100ms; kept for an hour as a fallback; once served stale, the
	// stale value is reused for 5s before the source is tried again.
	opts := []core.EntryOption{core.WithDuration(100 * time.Millisecond), core.WithFailSafe(time.Hour, 5*time.Second)}

	v, err := core.GetOrSet(ctx, c, "price:EUR", loadPrice, opts...)
	must(err, "GetOrSet price:EUR")
	check(v == 1.10, "first price = %v, want 1.10", v)
	say("cached price %.2f, fresh for 100ms", v)

	time.Sleep(150 * time.Millisecond)
	down.Store(true)
	v, err = core.GetOrSet(ctx, c, "price:EUR", loadPrice, opts...)
	must(err, "GetOrSet price:EUR while the source is down")
	check(v == 1.10 && calls.Load() == 2, "price while down = %v after %d calls, want the stale 1.10 after 2", v, calls.Load())
	say("150ms later the entry has expired and the source fails: fail-safe served the stale %.2f, no error", v)

	v, err = core.GetOrSet(ctx, c, "price:EUR", loadPrice, opts...)
	must(err, "GetOrSet price:EUR (throttled)")
	check(v == 1.10 && calls.Load() == 2, "throttled price = %v after %d calls, want 1.10 without a new call", v, calls.Load())
	say("asked again: %.2f without calling the failing source (throttled for 5s)", v)

	_, err = core.GetOrSet(ctx, c, "price:GBP", loadPrice, opts...)
	var fe *core.FactoryError
	check(errors.As(err, &fe) && errors.Is(err, errSourceDown), "GetOrSet price:GBP = %v, want a *core.FactoryError wrapping errSourceDown", err)
	say("a key never cached has no stale value: the error comes back as a *core.FactoryError:\n     %v", err)
}

// 4. Soft timeout: a slow source is answered with the stale value, and its
// result is cached when it arrives.
func softTimeout(ctx context.Context, c *core.Cache) {
	step("4. Soft timeout: the source becomes slow")
	var calls atomic.Int32
	var slow atomic.Bool
	loadForecast := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		n := calls.Add(1)
		if slow.Load() {
			if err := sleep(ctx, 400*time.Millisecond); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("forecast #%d", n), nil
	}
	// The soft timeout (50ms) applies only when fail-safe has a stale value
	// to serve; the hard timeout (2s) always applies.
	opts := []core.EntryOption{
		core.WithDuration(time.Second),
		core.WithFailSafe(time.Hour, time.Second),
		core.WithFactoryTimeouts(50*time.Millisecond, 2*time.Second),
	}

	v, err := core.GetOrSet(ctx, c, "weather:oslo", loadForecast, opts...)
	must(err, "GetOrSet weather:oslo")
	check(v == "forecast #1", "first forecast = %q, want forecast #1", v)
	say("cached %q, fresh for 1s", v)

	time.Sleep(1100 * time.Millisecond)
	slow.Store(true)
	start := time.Now()
	v, err = core.GetOrSet(ctx, c, "weather:oslo", loadForecast, opts...)
	must(err, "GetOrSet weather:oslo with a slow source")
	check(v == "forecast #1", "forecast with a slow source = %q, want the stale forecast #1", v)
	say("1.1s later it has expired and the source takes 400ms: after the 50ms soft timeout the stale %q was returned (in %v)",
		v, time.Since(start).Round(10*time.Millisecond))

	waitFor("the background factory to cache forecast #2", func() bool {
		v, ok, err := core.Get[string](ctx, c, "weather:oslo")
		return err == nil && ok && v == "forecast #2"
	})
	v, err = core.GetOrSet(ctx, c, "weather:oslo", loadForecast, opts...)
	must(err, "GetOrSet weather:oslo after the background completion")
	check(v == "forecast #2" && calls.Load() == 2, "forecast = %q after %d calls, want forecast #2 after 2", v, calls.Load())
	say("the factory kept running in the background; the next read got %q without a new call", v)
}

// 5. Eager refresh: a hit late in an entry's life refreshes it in the
// background, so callers never wait for an expired entry.
func eagerRefresh(ctx context.Context, c *core.Cache) {
	step("5. Eager refresh: refresh hot entries before they expire")
	var calls atomic.Int32
	loadConfig := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		n := calls.Add(1)
		if n > 1 {
			if err := sleep(ctx, 200*time.Millisecond); err != nil { // refreshes are slow
				return "", err
			}
		}
		return fmt.Sprintf("config v%d", n), nil
	}
	// Fresh for 2s; the first hit after 50% of that (1s) starts a refresh.
	opts := []core.EntryOption{core.WithDuration(2 * time.Second), core.WithEagerRefresh(0.5)}

	v, err := core.GetOrSet(ctx, c, "config", loadConfig, opts...)
	must(err, "GetOrSet config")
	check(v == "config v1", "first config = %q, want config v1", v)
	say("cached %q, fresh for 2s, eager refresh threshold 0.5", v)

	time.Sleep(1100 * time.Millisecond)
	v, err = core.GetOrSet(ctx, c, "config", loadConfig, opts...)
	must(err, "GetOrSet config past the threshold")
	check(v == "config v1", "config past the threshold = %q, want the cached config v1 at once", v)
	say("1.1s later (past the threshold, still fresh): the hit returned %q at once and started a refresh", v)

	waitFor("the eager refresh to cache config v2", func() bool {
		v, ok, err := core.Get[string](ctx, c, "config")
		return err == nil && ok && v == "config v2"
	})
	check(calls.Load() == 2, "the factory ran %d times, want 2 (one refresh)", calls.Load())
	say("the background refresh (200ms) cached %q before the old entry expired: no caller waited", "config v2")
}

// 6. Tags: invalidate a group of entries at once.
func tags(ctx context.Context, c *core.Cache) {
	step("6. Tags: RemoveByTag")
	must(core.Set(ctx, c, "user:7:profile", "profile of 7", core.WithTags("user:7")), "Set")
	must(core.Set(ctx, c, "user:7:orders", "orders of 7", core.WithTags("user:7", "orders")), "Set")
	must(core.Set(ctx, c, "user:8:profile", "profile of 8", core.WithTags("user:8")), "Set")
	say("cached user:7:profile and user:7:orders tagged user:7, user:8:profile tagged user:8")

	must(c.RemoveByTag(ctx, "user:7"), "RemoveByTag")
	for key, want := range map[string]bool{"user:7:profile": false, "user:7:orders": false, "user:8:profile": true} {
		_, found, err := core.Get[string](ctx, c, key)
		must(err, "Get "+key)
		check(found == want, "after RemoveByTag(user:7), Get(%s) found = %v, want %v", key, found, want)
	}
	say("RemoveByTag(\"user:7\"): both user:7 entries are gone, user:8:profile is still there")
}

// 7. Expire vs Remove: an expired entry is still a fail-safe fallback, a
// removed one is gone.
func expireVsRemove(ctx context.Context, c *core.Cache) {
	step("7. Expire vs Remove")
	failing := func(ctx context.Context, fc *core.FactoryContext[int]) (int, error) { return 0, errSourceDown }
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)}
	must(core.Set(ctx, c, "stock:42", 7, opts...), "Set stock:42")
	say("cached stock:42 = 7 with fail-safe on")

	must(c.Expire(ctx, "stock:42"), "Expire")
	_, found, err := core.Get[int](ctx, c, "stock:42")
	must(err, "Get stock:42")
	check(!found, "Get after Expire found the value, want a miss (it is stale)")
	v, found, err := core.Get[int](ctx, c, "stock:42", core.WithAllowStaleOnRead())
	must(err, "Get stock:42 with AllowStaleOnRead")
	check(found && v == 7, "Get with AllowStaleOnRead after Expire = %d, %v, want the stale 7", v, found)
	v, err = core.GetOrSet(ctx, c, "stock:42", failing, opts...)
	must(err, "GetOrSet stock:42 after Expire")
	check(v == 7, "GetOrSet after Expire with a failing source = %d, want the stale 7", v)
	say("Expire: no longer fresh (Get misses, GetOrSet calls the factory), but when the source fails fail-safe still serves %d", v)

	must(c.Remove(ctx, "stock:42"), "Remove")
	_, found, err = core.Get[int](ctx, c, "stock:42", core.WithAllowStaleOnRead())
	must(err, "Get stock:42 after Remove")
	check(!found, "Get with AllowStaleOnRead after Remove found the value, want it gone")
	_, err = core.GetOrSet(ctx, c, "stock:42", failing, opts...)
	check(errors.Is(err, errSourceDown), "GetOrSet after Remove with a failing source = %v, want errSourceDown", err)
	say("Remove: gone for good; with the source down, GetOrSet now returns the error")
}

// step prints a section title.
func step(title string) { fmt.Printf("\n%s\n", title) }

// say prints one line of a section.
func say(format string, args ...any) { fmt.Printf("   - "+format+"\n", args...) }

// check stops the tour with a clear message when something did not behave as
// described.
func check(ok bool, format string, args ...any) {
	if !ok {
		fmt.Fprintf(os.Stderr, "quickstart: FAILED: "+format+"\n", args...)
		os.Exit(1)
	}
}

// must stops the tour on an unexpected error.
func must(err error, what string) { check(err == nil, "%s: unexpected error: %v", what, err) }

// waitFor polls cond until it holds, for at most 3s: background work is
// observed by polling, never by a fixed sleep.
func waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		check(time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(10 * time.Millisecond)
	}
}

// sleep waits for d, or until ctx is done, as a slow source would.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
