package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
)

type User struct {
	ID   int
	Name string
}

func ExampleNew() {
	c, err := core.New(core.Options{Name: "users", L1MaxEntries: 10_000})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(c.Name())
	// Output: users
}

func ExampleNew_invalidOptions() {
	_, err := core.New(core.Options{L1MaxEntries: -1})
	fmt.Println(err)
	// Output: core: Options.L1MaxEntries must not be negative, got -1
}

func ExampleGetOrSet() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	ctx := context.Background()

	load := func(ctx context.Context, fc *core.FactoryContext[User]) (User, error) {
		fmt.Println("loading", fc.Key)
		return User{ID: 42, Name: "Ada"}, nil
	}
	for range 2 {
		u, err := core.GetOrSet(ctx, c, "user:42", load,
			core.WithDuration(time.Minute),
			core.WithFailSafe(time.Hour, 30*time.Second),
			core.WithFactoryTimeouts(100*time.Millisecond, 2*time.Second),
			core.WithEagerRefresh(0.8),
			core.WithTags("tenant:7"))
		fmt.Println(u.Name, err)
	}
	// Output:
	// loading user:42
	// Ada <nil>
	// Ada <nil>
}

func ExampleGetOrSet_failSafe() {
	clock := newFakeClock()
	c, _ := core.New(core.Options{Clock: clock})
	defer c.Close()
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second)}

	core.GetOrSet(ctx, c, "price", constant(10), opts...)
	clock.Advance(2 * time.Minute) // expired, but kept for fail-safe
	v, err := core.GetOrSet(ctx, c, "price", failing[int](errors.New("db down")), opts...)
	fmt.Println(v, err)
	// Output: 10 <nil>
}

func ExampleGet() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	_, found, _ := core.Get[string](ctx, c, "greeting")
	fmt.Println(found)
	core.Set(ctx, c, "greeting", "hello")
	v, found, _ := core.Get[string](ctx, c, "greeting")
	fmt.Println(v, found)
	// Output:
	// false
	// hello true
}

func ExampleSet() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	err := core.Set(ctx, c, "user:1", User{ID: 1, Name: "Grace"}, core.WithDuration(time.Hour), core.WithTags("tenant:1"))
	u, _, _ := core.Get[User](ctx, c, "user:1")
	fmt.Println(u.Name, err)
	// Output: Grace <nil>
}

func ExampleCache_Remove() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	core.Set(ctx, c, "k", 1)
	c.Remove(ctx, "k")
	_, found, _ := core.Get[int](ctx, c, "k")
	fmt.Println(found)
	// Output: false
}

func ExampleCache_Expire() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	opts := []core.EntryOption{core.WithFailSafe(time.Hour, time.Minute)}
	core.Set(ctx, c, "k", 1, opts...)
	c.Expire(ctx, "k")
	_, fresh, _ := core.Get[int](ctx, c, "k")
	// The source fails: fail-safe still serves the expired value.
	v, err := core.GetOrSet(ctx, c, "k", failing[int](errors.New("down")), opts...)
	fmt.Println(fresh, v, err)
	// Output: false 1 <nil>
}

func ExampleCache_RemoveByTag() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	core.Set(ctx, c, "user:1", "a", core.WithTags("tenant:7"))
	core.Set(ctx, c, "user:2", "b", core.WithTags("tenant:8"))
	c.RemoveByTag(ctx, "tenant:7")
	_, found1, _ := core.Get[string](ctx, c, "user:1")
	_, found2, _ := core.Get[string](ctx, c, "user:2")
	fmt.Println(found1, found2)
	// Output: false true
}

func ExampleCache_ExpireByTag() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	core.Set(ctx, c, "user:1", "a", core.WithTags("tenant:7"), core.WithFailSafe(time.Hour, time.Minute))
	c.ExpireByTag(ctx, "tenant:7")
	_, fresh, _ := core.Get[string](ctx, c, "user:1")
	v, stale, _ := core.Get[string](ctx, c, "user:1", core.WithAllowStaleOnRead())
	fmt.Println(fresh, v, stale)
	// Output: false a true
}

func ExampleCache_Clear() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	ctx := context.Background()
	core.Set(ctx, c, "a", 1)
	core.Set(ctx, c, "b", 2)
	c.Clear(ctx, false) // remove all; Clear(ctx, true) expires all, keeping them for fail-safe
	_, found, _ := core.Get[int](ctx, c, "a")
	fmt.Println(found)
	// Output: false
}

func ExampleCache_Close() {
	c, _ := core.New(core.Options{})
	fmt.Println(c.Close())
	_, err := core.GetOrSet(context.Background(), c, "k", constant(1))
	fmt.Println(errors.Is(err, core.ErrClosed))
	// Output:
	// <nil>
	// true
}

func ExampleFactoryContext_NotModified() {
	clock := newFakeClock()
	c, _ := core.New(core.Options{Clock: clock})
	defer c.Close()
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, time.Second)}
	fetch := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		if fc.ETag == `"v1"` { // the source says: unchanged since that ETag
			fmt.Println("not modified")
			return fc.NotModified()
		}
		fmt.Println("downloaded")
		return fc.Modified("<html>v1</html>", `"v1"`, time.Time{})
	}
	core.GetOrSet(ctx, c, "page", fetch, opts...)
	clock.Advance(time.Minute)
	page, _ := core.GetOrSet(ctx, c, "page", fetch, opts...)
	fmt.Println(page)
	// Output:
	// downloaded
	// not modified
	// <html>v1</html>
}

func ExampleFactoryContext_Options() {
	c, _ := core.New(core.Options{})
	defer c.Close()
	// Adaptive caching: the factory decides from the data how long to cache it.
	v, _ := core.GetOrSet(context.Background(), c, "rate", func(ctx context.Context, fc *core.FactoryContext[float64]) (float64, error) {
		rate := 1.08
		if rate > 1 {
			fc.Options.Duration = 5 * time.Second // volatile: cache briefly
		}
		return rate, nil
	})
	fmt.Println(v)
	// Output: 1.08
}

func ExampleCache_Ready() {
	bp := membackplane.New(nil)
	defer bp.Close()
	c, err := core.New(core.Options{Name: "users", Backplane: bp})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	// Until its first subscription is live, the node may miss changes made
	// elsewhere: it counts as disconnected. Ready waits for the
	// subscription (Options.WaitForInitialSubscribe makes New wait).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ready(ctx); err != nil {
		panic(err)
	}
	fmt.Println("disconnected:", c.Stats().Disconnected)
	// Output: disconnected: false
}

func ExampleNew_waitForInitialSubscribe() {
	bp := membackplane.New(nil)
	defer bp.Close()
	c, err := core.New(core.Options{Name: "users", Backplane: bp, WaitForInitialSubscribe: 5 * time.Second})
	var se *core.SubscribeError
	if errors.As(err, &se) {
		fmt.Println("no subscription:", se.Backplane)
		return
	}
	defer c.Close()
	fmt.Println("subscribed:", !c.Stats().Disconnected)
	// Output: subscribed: true
}

// A change read from a database's change log is applied with its commit
// time, so that no factory that read the row before the commit caches the
// old row over the invalidation, on any node.
func ExampleWithChangedAt() {
	c, _ := core.New(core.Options{Name: "profiles"})
	defer c.Close()
	ctx := context.Background()
	core.Set(ctx, c, "profile:42", "Ada, admin")

	commitTime := time.Now() // from the change log
	err := c.Remove(ctx, "profile:42", core.WithChangedAt(commitTime))
	_, found, _ := core.Get[string](ctx, c, "profile:42")
	fmt.Println(err, found)
	// Output: <nil> false
}

// A caller that wants to know where its value came from asks for the
// outcome of its call; no Observer is needed.
func ExampleWithOutcome() {
	c, _ := core.New(core.Options{Name: "profiles"})
	defer c.Close()
	ctx := context.Background()
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { return "Ada", nil }

	var o core.Outcome
	core.GetOrSet(ctx, c, "profile:42", load, core.WithOutcome(&o))
	fmt.Println(o.Source, o.Hit)
	core.GetOrSet(ctx, c, "profile:42", load, core.WithOutcome(&o))
	fmt.Println(o.Source, o.Hit, o.Age < time.Minute)
	// Output:
	// factory false
	// l1 true true
}

// With fail-safe on and no stale value to fall back on, a failing factory
// can still give callers a default value (not cached).
func ExampleWithFailSafeDefault() {
	c, _ := core.New(core.Options{Name: "settings"})
	defer c.Close()
	down := func(context.Context, *core.FactoryContext[string]) (string, error) {
		return "", errors.New("settings service down")
	}
	theme, err := core.GetOrSet(context.Background(), c, "theme:42", down,
		core.WithFailSafe(time.Hour, 10*time.Second), core.WithFailSafeDefault("light"))
	fmt.Println(theme, err)
	// Output: light <nil>
}

// A node that only writes (a batch job) can publish its changes without
// applying the other nodes'.
func ExampleOptions_ignoreIncomingBackplaneMessages() {
	bus := membackplane.NewBus()
	writer, _ := core.New(core.Options{Name: "users", Backplane: bus.Connect(nil), IgnoreIncomingBackplaneMessages: true})
	defer writer.Close()
	fmt.Println(writer.Name())
	// Output: users
}

// The copy in L2 may be kept longer than the nodes' own fail-safe copies, and
// a call holding a stale value can skip the L2 read before its factory.
func ExampleWithL2FailSafeMaxDuration() {
	c, _ := core.New(core.Options{Name: "prices"})
	defer c.Close()
	load := func(context.Context, *core.FactoryContext[int]) (int, error) { return 42, nil }
	v, err := core.GetOrSet(context.Background(), c, "price:7", load,
		core.WithFailSafe(time.Hour, 10*time.Second), core.WithL2FailSafeMaxDuration(24*time.Hour),
		core.WithSkipL2ReadWhenStale())
	fmt.Println(v, err)
	// Output: 42 <nil>
}

// A hot key's run waits at most 100 ms for another node's distributed lock;
// a key whose source is cheap skips the distributed lock altogether.
func ExampleWithDistributedLockTimeout() {
	c, _ := core.New(core.Options{Name: "reports"})
	defer c.Close()
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { return "report", nil }
	v, _ := core.GetOrSet(context.Background(), c, "report:q3", load, core.WithDistributedLockTimeout(100*time.Millisecond))
	w, _ := core.GetOrSet(context.Background(), c, "cheap:1", load, core.WithSkipDistributedLock())
	fmt.Println(v, w)
	// Output: report report
}

// An entry nobody reads for 5 minutes leaves L1 early; one read more often
// stays until its hour is up.
func ExampleWithSlidingExpiration() {
	c, _ := core.New(core.Options{Name: "sessions"})
	defer c.Close()
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { return "session data", nil }
	v, err := core.GetOrSet(context.Background(), c, "session:abc", load,
		core.WithDuration(time.Hour), core.WithSlidingExpiration(5*time.Minute))
	fmt.Println(v, err)
	// Output: session data <nil>
}

// With AutoClone every read returns a copy: a caller may change it without
// changing what the other callers get.
func ExampleOptions_autoClone() {
	c, _ := core.New(core.Options{Name: "users", AutoClone: true})
	defer c.Close()
	ctx := context.Background()
	load := func(context.Context, *core.FactoryContext[*User]) (*User, error) {
		return &User{ID: 1, Name: "Ada"}, nil
	}
	u, _ := core.GetOrSet(ctx, c, "user:1", load)
	u.Name = "changed by one caller"
	again, _ := core.GetOrSet(ctx, c, "user:1", load)
	fmt.Println(again.Name)
	// Output: Ada
}

// Keys of one kind can get their own defaults, without a With... option at
// every call site.
func ExampleOptions_defaultEntryOptionsFor() {
	sessions := core.DefaultEntryOptions()
	sessions.Duration = 20 * time.Minute
	sessions.SlidingExpiration = 5 * time.Minute
	c, _ := core.New(core.Options{Name: "web", DefaultEntryOptionsFor: func(key string) *core.EntryOptions {
		if strings.HasPrefix(key, "session:") {
			return &sessions
		}
		return nil // the cache's defaults
	}})
	defer c.Close()
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { return "data", nil }
	v, err := core.GetOrSet(context.Background(), c, "session:abc", load)
	fmt.Println(v, err)
	// Output: data <nil>
}
