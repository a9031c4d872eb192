package core_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

// The options ported from FusionCache: each changes what its doc says and
// nothing else.

func TestSkipL2ReadWhenStale(t *testing.T) {
	ctx := context.Background()
	for _, skip := range []bool{false, true} {
		store, _ := meml2.NewShared(t.Name(), nil)
		t.Cleanup(func() { store.Close() })
		a := newCache(t, core.Options{Name: "skip", L2: store})
		b := newCache(t, core.Options{Name: "skip", L2: store})
		opts := []core.EntryOption{core.WithDuration(20 * time.Millisecond), core.WithFailSafe(time.Hour, time.Second)}
		if _, err := core.GetOrSet(ctx, a, "k", constant("v1"), opts...); err != nil {
			t.Fatal(err)
		}
		core.Set(ctx, b, "k", "v2 in L2", core.WithDuration(time.Hour)) // no backplane: A does not hear of it
		time.Sleep(40 * time.Millisecond)                               // A's copy is stale
		if skip {
			opts = append(opts, core.WithSkipL2ReadWhenStale())
		}
		gets := store.Stats().Gets
		v, err := core.GetOrSet(ctx, a, "k", constant("from the factory"), opts...)
		if err != nil {
			t.Fatal(err)
		}
		want, wantGets := "v2 in L2", true
		if skip {
			want, wantGets = "from the factory", false
		}
		if v != want || (store.Stats().Gets > gets) != wantGets {
			t.Errorf("skip=%v: got %q (L2 read: %v), want %q (L2 read: %v)", skip, v, store.Stats().Gets > gets, want, wantGets)
		}
		store.Delete(ctx, "k")
	}
}

// ttlStore records the TTL of the last conditional write.
type ttlStore struct {
	*meml2.Store
	ttl atomic.Int64
}

func (s *ttlStore) SetIfNewer(ctx context.Context, key string, value []byte, ttl time.Duration, version int64) (bool, error) {
	s.ttl.Store(int64(ttl))
	return s.Store.SetIfNewer(ctx, key, value, ttl, version)
}

func TestL2FailSafeMaxDuration(t *testing.T) {
	ctx := context.Background()
	store := &ttlStore{Store: meml2.New(nil)}
	t.Cleanup(func() { store.Close() })
	c := newCache(t, core.Options{L2: store})
	core.Set(ctx, c, "k", "v", core.WithFailSafe(time.Hour, time.Second))
	if got := time.Duration(store.ttl.Load()); got != time.Hour {
		t.Errorf("L2 TTL %v without WithL2FailSafeMaxDuration, want FailSafeMaxDuration (1h)", got)
	}
	core.Set(ctx, c, "k", "v", core.WithFailSafe(time.Hour, time.Second), core.WithL2FailSafeMaxDuration(3*time.Hour))
	if got := time.Duration(store.ttl.Load()); got != 3*time.Hour {
		t.Errorf("L2 TTL %v with WithL2FailSafeMaxDuration(3h)", got)
	}
	if err := core.Set(ctx, c, "k", "v", core.WithL2FailSafeMaxDuration(-1)); err == nil {
		t.Error("a negative WithL2FailSafeMaxDuration was accepted")
	}
}

// TestDistributedLockTimeoutAndSkip: a node waits for the distributed lock
// another node holds at most DistributedLockTimeout, or not at all with
// SkipDistributedLock, then runs its own factory.
func TestDistributedLockTimeoutAndSkip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  core.EntryOption
	}{
		{"DistributedLockTimeout", core.WithDistributedLockTimeout(50 * time.Millisecond)},
		{"SkipDistributedLock", core.WithSkipDistributedLock()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			storeA, _ := meml2.NewShared(t.Name(), nil)
			storeB, _ := meml2.NewShared(t.Name(), nil)
			t.Cleanup(func() { storeA.Close(); storeB.Close() })
			a := newCache(t, core.Options{Name: "lock", L2: storeA, DistributedStampedeLock: true})
			b := newCache(t, core.Options{Name: "lock", L2: storeB, DistributedStampedeLock: true})
			started, release := make(chan struct{}), make(chan struct{})
			go core.GetOrSet(ctx, a, "hot", func(context.Context, *core.FactoryContext[string]) (string, error) {
				close(started)
				<-release
				return "a", nil
			})
			<-started // A holds the lock (taken before its factory runs)
			defer close(release)
			begin := time.Now()
			v, err := core.GetOrSet(ctx, b, "hot", constant("b"), tc.opt)
			if err != nil || v != "b" || time.Since(begin) > 3*time.Second {
				t.Fatalf("B = %q, %v after %v; want its own factory's value soon", v, err, time.Since(begin))
			}
		})
	}
}

func TestFailSafeDefault(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	failing := func(context.Context, *core.FactoryContext[string]) (string, error) { return "", errors.New("down") }
	var o core.Outcome
	v, err := core.GetOrSet(ctx, c, "k", failing, core.WithFailSafe(time.Hour, time.Second), core.WithFailSafeDefault("guest"), core.WithOutcome(&o))
	if err != nil || v != "guest" || !o.FailSafe {
		t.Fatalf("GetOrSet = %q, %v (outcome %+v); want the default, no error, fail-safe", v, err, o)
	}
	if _, found, _ := core.Get[string](ctx, c, "k"); found {
		t.Error("the default value was cached")
	}
	if _, err := core.GetOrSet(ctx, c, "k", failing, core.WithFailSafeDefault("guest")); err == nil {
		t.Error("without fail-safe the default was served")
	}
	var te *core.TypeError
	if _, err := core.GetOrSet(ctx, c, "k", failing, core.WithFailSafe(time.Hour, time.Second), core.WithFailSafeDefault(42)); !errors.As(err, &te) {
		t.Errorf("a default of another type: %v, want a *TypeError", err)
	}
}

func TestIgnoreIncomingBackplaneMessages(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) {
		if o.InstanceID == "node-1" {
			o.IgnoreIncomingBackplaneMessages = true
		}
	})
	a, b := nodes[0], nodes[1]
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	core.GetOrSet(ctx, b.Cache, "k", constant("unused"), core.WithDuration(time.Hour))
	core.Set(ctx, a.Cache, "k", "v2", core.WithDuration(time.Hour))
	core.Set(ctx, b.Cache, "other", "x", core.WithDuration(time.Hour))
	waitFor(t, "A to hear of B's change", func() bool { return a.Stats().BackplaneReceived > 0 })
	time.Sleep(50 * time.Millisecond)
	if v, _ := get(t, b.Cache, "k"); v != "v1" {
		t.Errorf("B, which ignores incoming messages, serves %q; want its own copy v1", v)
	}
	if _, err := core.New(core.Options{IgnoreIncomingBackplaneMessages: true}); err == nil {
		t.Error("IgnoreIncomingBackplaneMessages without a backplane was accepted")
	}
}

// TestSlidingExpiration: an entry read at least every slide stays fresh
// until its duration; one left unread for longer than slide is stale.
func TestSlidingExpiration(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	c := newCache(t, core.Options{Clock: clock})
	var calls atomic.Int32
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { calls.Add(1); return "v", nil }
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithSlidingExpiration(time.Minute)}
	core.GetOrSet(ctx, c, "k", load, opts...)
	for range 10 { // 10 reads, 40 s apart: 6.7 minutes in all
		clock.Advance(40 * time.Second)
		core.GetOrSet(ctx, c, "k", load, opts...)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("factory called %d times while the entry was read every 40 s with a 1 min slide", n)
	}
	clock.Advance(61 * time.Second)
	if _, found, _ := core.Get[string](ctx, c, "k"); found {
		t.Error("Get found the entry unread for 61 s with a 1 min slide")
	}
	core.GetOrSet(ctx, c, "k", load, opts...)
	if n := calls.Load(); n != 2 {
		t.Errorf("factory called %d times, want 2 after the slide expired", n)
	}
	// Never past the duration, however often it is read.
	for range 100 {
		clock.Advance(50 * time.Second)
		core.GetOrSet(ctx, c, "k", load, opts...)
	}
	if n := calls.Load(); n < 3 {
		t.Errorf("factory called %d times over 83 minutes of reads with a 1 h duration", n)
	}
}

type mutable struct{ Names []string }

// TestAutoClone: with AutoClone, a caller changing what it got does not
// change what the cache holds, on every read path.
func TestAutoClone(t *testing.T) {
	ctx := context.Background()
	for _, on := range []bool{false, true} {
		c := newCache(t, core.Options{AutoClone: on})
		load := func(context.Context, *core.FactoryContext[*mutable]) (*mutable, error) {
			return &mutable{Names: []string{"ada"}}, nil
		}
		got, _ := core.GetOrSet(ctx, c, "k", load)
		got.Names[0] = "changed by the caller"
		hit, _ := core.GetOrSet(ctx, c, "k", load)
		hit.Names[0] = "changed again"
		viaGet, _, _ := core.Get[*mutable](ctx, c, "k")
		many, _ := core.GetOrSetMany(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]*mutable, error) { return nil, nil })
		unchanged := viaGet.Names[0] == "ada" && many["k"].Names[0] == "ada"
		if unchanged != on {
			t.Errorf("AutoClone=%v: the cache holds %q after callers changed their values", on, viaGet.Names[0])
		}
	}
	if _, err := core.New(core.Options{Serializer: jsonserializer.New()}); err == nil {
		t.Error("a Serializer without L2 or AutoClone was accepted")
	}
	c := newCache(t, core.Options{AutoClone: true})
	if _, err := core.GetOrSet(ctx, c, "ch", constant(make(chan int))); err == nil {
		t.Error("a value that cannot be encoded was returned without an error under AutoClone")
	}
}

// TestDefaultEntryOptionsFor: the calls about a key start from the options
// the provider gives for it, hits included; With... options still adjust
// them; invalid ones are an *OptionError.
func TestDefaultEntryOptionsFor(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	hot := core.DefaultEntryOptions()
	hot.Duration = time.Hour
	bad := core.DefaultEntryOptions()
	bad.Duration = -1
	skip := core.DefaultEntryOptions()
	skip.SkipL1Read = true
	c := newCache(t, core.Options{Clock: clock, DefaultEntryOptionsFor: func(key string) *core.EntryOptions {
		switch key {
		case "hot":
			return &hot
		case "bad":
			return &bad
		case "skip":
			return &skip
		}
		return nil
	}})
	var calls atomic.Int32
	load := func(context.Context, *core.FactoryContext[string]) (string, error) { calls.Add(1); return "v", nil }
	core.GetOrSet(ctx, c, "hot", load)
	core.GetOrSet(ctx, c, "cold", load)
	clock.Advance(time.Minute) // past the default 30 s, within the hour
	core.GetOrSet(ctx, c, "hot", load)
	core.GetOrSet(ctx, c, "cold", load)
	if n := calls.Load(); n != 3 {
		t.Errorf("factory called %d times; want 3 (hot kept for its hour, cold reloaded after 30 s)", n)
	}
	core.GetOrSet(ctx, c, "hot2", load, core.WithDuration(time.Second)) // not the provider's key: defaults
	var oe *core.OptionError
	if _, err := core.GetOrSet(ctx, c, "bad", load); !errors.As(err, &oe) {
		t.Errorf("invalid provider options: %v, want an *OptionError", err)
	}
	if _, err := core.GetOrSet(ctx, c, "bad", load, core.WithDuration(time.Minute)); err != nil {
		t.Errorf("a With... option fixing the provider's options: %v", err)
	}
	core.Set(ctx, c, "skip", "in L1")
	before := calls.Load()
	core.GetOrSet(ctx, c, "skip", load) // the provider says SkipL1Read: the hit path honours it
	if calls.Load() != before+1 {
		t.Error("a key whose provider options skip L1 reads was served from L1")
	}
}
