package core_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// typedUser, typedOrder and typedBadge are three value types for the same
// keys. typedBadge has the JSON shape of a subset of typedUser; typedOrder's
// ID is a string where typedUser's is a number.
type typedUser struct {
	ID   int
	Name string
}

type typedOrder struct {
	ID    string
	Total int
}

type typedBadge struct {
	ID    int
	Level int
}

func TestTypedForwardsToTheGenericFunctions(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	users := core.For[typedUser](c)
	if users.Cache() != c {
		t.Fatal("Cache() is not the cache the handle was made with")
	}
	ada := typedUser{ID: 1, Name: "Ada"}
	calls := 0
	load := func(context.Context, *core.FactoryContext[typedUser]) (typedUser, error) {
		calls++
		return ada, nil
	}
	opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithFailSafe(time.Hour, time.Minute)}

	for range 2 {
		if u, err := users.GetOrSet(ctx, "user:1", load, opts...); err != nil || u != ada {
			t.Fatalf("GetOrSet = %v, %v; want %v", u, err, ada)
		}
	}
	if calls != 1 {
		t.Fatalf("factory called %d times, want 1 (the second call is an L1 hit)", calls)
	}
	// The handle and the generic functions see the same entries.
	if u, ok, err := core.Get[typedUser](ctx, c, "user:1"); err != nil || !ok || u != ada {
		t.Fatalf("core.Get after the handle's GetOrSet = %v, %v, %v", u, ok, err)
	}
	bob := typedUser{ID: 1, Name: "Bob"}
	if err := users.Set(ctx, "user:1", bob, opts...); err != nil {
		t.Fatal(err)
	}
	if u, ok, err := users.Get(ctx, "user:1"); err != nil || !ok || u != bob {
		t.Fatalf("Get after Set = %v, %v, %v; want %v", u, ok, err, bob)
	}

	// Expire keeps the value for fail-safe; Remove does not.
	if err := users.Expire(ctx, "user:1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := users.Get(ctx, "user:1"); ok {
		t.Fatal("Get found an expired entry")
	}
	down := failing[typedUser](errors.New("down"))
	if u, err := users.GetOrSet(ctx, "user:1", down, opts...); err != nil || u != bob {
		t.Fatalf("GetOrSet after Expire with a failing factory = %v, %v; want fail-safe's %v", u, err, bob)
	}
	if err := users.Remove(ctx, "user:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := users.GetOrSet(ctx, "user:1", down, opts...); err == nil {
		t.Fatal("GetOrSet after Remove served a value; fail-safe must not serve a removed one")
	}

	// The many-key calls.
	if err := users.SetMany(ctx, map[string]typedUser{"user:2": {ID: 2}, "user:3": {ID: 3}}); err != nil {
		t.Fatal(err)
	}
	got, err := users.GetOrSetMany(ctx, []string{"user:2", "user:3", "user:4"},
		func(_ context.Context, keys []string) (map[string]typedUser, error) {
			if !reflect.DeepEqual(keys, []string{"user:4"}) {
				t.Errorf("the many-factory was asked for %q, want only user:4", keys)
			}
			return map[string]typedUser{"user:4": {ID: 4}}, nil
		})
	want := map[string]typedUser{"user:2": {ID: 2}, "user:3": {ID: 3}, "user:4": {ID: 4}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetOrSetMany = %v, %v; want %v", got, err, want)
	}
	if err := users.RemoveMany(ctx, []string{"user:2", "user:3"}); err != nil {
		t.Fatal(err)
	}
	if err := users.ExpireMany(ctx, []string{"user:4"}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user:2", "user:3", "user:4"} {
		if _, ok, _ := users.Get(ctx, k); ok {
			t.Fatalf("%s still found after RemoveMany/ExpireMany", k)
		}
	}
}

func TestTypedZeroValueIsAnErrorNotAPanic(t *testing.T) {
	ctx := context.Background()
	var users core.Typed[typedUser]
	calls := map[string]error{}
	_, calls["GetOrSet"] = users.GetOrSet(ctx, "k", constant(typedUser{}))
	_, _, calls["Get"] = users.Get(ctx, "k")
	calls["Set"] = users.Set(ctx, "k", typedUser{})
	calls["Remove"] = users.Remove(ctx, "k")
	calls["Expire"] = users.Expire(ctx, "k")
	_, calls["GetOrSetMany"] = users.GetOrSetMany(ctx, []string{"k"}, func(context.Context, []string) (map[string]typedUser, error) { return nil, nil })
	calls["SetMany"] = users.SetMany(ctx, map[string]typedUser{"k": {}})
	calls["RemoveMany"] = users.RemoveMany(ctx, []string{"k"})
	calls["ExpireMany"] = users.ExpireMany(ctx, []string{"k"})
	for name, err := range calls {
		var oe *core.OptionError
		if !errors.As(err, &oe) || oe.Field != "cache" {
			t.Errorf("%s on the zero Typed: %v, want an *OptionError for the field cache", name, err)
		}
	}
}

// A wrong-type read through the untyped API fails as it did before typed
// handles, and through a handle of the wrong type with the same error.
func TestWrongTypeReadIsTheSameTypeErrorTypedOrNot(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	if err := core.Set(ctx, c, "k", "a string"); err != nil {
		t.Fatal(err)
	}
	want := &core.TypeError{Key: "k", Got: "string", Want: "int"}
	const wantMsg = `core: key "k" holds a string, not a int`
	called := false
	f := func(context.Context, *core.FactoryContext[int]) (int, error) { called = true; return 1, nil }

	_, errGetOrSet := core.GetOrSet(ctx, c, "k", f)
	_, _, errGet := core.Get[int](ctx, c, "k")
	_, errMany := core.GetOrSetMany(ctx, c, []string{"k"}, func(context.Context, []string) (map[string]int, error) { return nil, nil })
	ints := core.For[int](c)
	_, errTypedGetOrSet := ints.GetOrSet(ctx, "k", f)
	_, _, errTypedGet := ints.Get(ctx, "k")
	for name, err := range map[string]error{
		"core.GetOrSet": errGetOrSet, "core.Get": errGet, "core.GetOrSetMany": errMany,
		"Typed.GetOrSet": errTypedGetOrSet, "Typed.Get": errTypedGet,
	} {
		var te *core.TypeError
		if !errors.As(err, &te) || *te != *want || err.Error() != wantMsg {
			t.Errorf("%s: %v, want %q", name, err, wantMsg)
		}
	}
	if called {
		t.Error("the factory ran for a key holding another type")
	}
	if v, ok, err := core.Get[string](ctx, c, "k"); err != nil || !ok || v != "a string" {
		t.Errorf("the entry changed after wrong-type reads: %q, %v, %v", v, ok, err)
	}
}

// Two handles of two types using one key do not silently read each other's
// values on a node that holds the key in L1.
func TestTypedHandlesOfTwoTypesOnOneKey(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	users, orders := core.For[typedUser](c), core.For[typedOrder](c)
	if _, err := users.GetOrSet(ctx, "42", constant(typedUser{ID: 42, Name: "Ada"})); err != nil {
		t.Fatal(err)
	}
	_, err := orders.GetOrSet(ctx, "42", constant(typedOrder{ID: "o-1"}))
	var te *core.TypeError
	if !errors.As(err, &te) || te.Key != "42" || !strings.HasSuffix(te.Got, "typedUser") || !strings.HasSuffix(te.Want, "typedOrder") {
		t.Fatalf("orders.GetOrSet of a key holding a user: %v, want a *TypeError", err)
	}
	if _, _, err := orders.Get(ctx, "42"); !errors.As(err, &te) {
		t.Fatalf("orders.Get of a key holding a user: %v, want a *TypeError", err)
	}
	// Separate keys per type: no collision.
	if o, err := orders.GetOrSet(ctx, "order:42", constant(typedOrder{ID: "o-1"})); err != nil || o.ID != "o-1" {
		t.Fatalf("orders.GetOrSet(order:42) = %v, %v", o, err)
	}
}

// What Typed's doc says of one key read with two types across nodes: the
// node reading it from L2 decodes the bytes into the type it asks for.
func TestTypedHandlesOfTwoTypesOnOneKeyAcrossNodes(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if err := core.For[typedUser](a.Cache).Set(ctx, "42", typedUser{ID: 42, Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	// An incompatible shape (ID a number, not a string) is a miss,
	// counted as a corrupt L2 entry.
	before := b.Stats().L2Corrupt
	if o, ok, err := core.For[typedOrder](b.Cache).Get(ctx, "42"); err != nil || ok {
		t.Fatalf("B's orders.Get of a user in L2 = %v, %v, %v; want a miss", o, ok, err)
	}
	if got := b.Stats().L2Corrupt; got != before+1 {
		t.Fatalf("L2Corrupt = %d, want %d", got, before+1)
	}
	// A compatible shape decodes silently: the reason to keep one type
	// per key.
	if g, ok, err := core.For[typedBadge](b.Cache).Get(ctx, "42"); err != nil || !ok || g != (typedBadge{ID: 42}) {
		t.Fatalf("B's badges.Get of a user in L2 = %v, %v, %v; want {42 0} decoded from the user's JSON", g, ok, err)
	}

	// A GetOrSet with the incompatible type misses, and its factory's
	// result replaces the entry on every node.
	if _, err := core.For[typedUser](a.Cache).GetOrSet(ctx, "43", constant(typedUser{ID: 43})); err != nil {
		t.Fatal(err)
	}
	// B hears of A's writes first (user 42 and 43): heard while B's
	// factory runs, a message would keep B's result out of the caches (a
	// change during a run supersedes it), and A would never be told.
	sent := a.Stats().BackplaneSent
	waitFor(t, "B heard of A's writes", func() bool { return b.Stats().BackplaneReceived >= sent })
	o, err := core.For[typedOrder](b.Cache).GetOrSet(ctx, "43", constant(typedOrder{ID: "o-43"}))
	if err != nil || o.ID != "o-43" {
		t.Fatalf("B's orders.GetOrSet of a user in L2 = %v, %v; want the factory's o-43", o, err)
	}
	waitFor(t, "A's user 43 replaced", func() bool {
		_, ok, err := core.For[typedUser](a.Cache).Get(ctx, "43")
		return !ok && err == nil // dropped from L1; L2 holds an order, a miss for a user
	})
	if o, ok, err := core.For[typedOrder](a.Cache).Get(ctx, "43"); err != nil || !ok || o.ID != "o-43" {
		t.Fatalf("A's orders.Get(43) = %v, %v, %v; want B's o-43 from L2", o, ok, err)
	}
}

func TestLoader(t *testing.T) {
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "request-7")
	c := newCache(t, core.Options{})
	users := core.For[typedUser](c)

	var sawValue any
	load := func(ctx context.Context) (typedUser, error) {
		sawValue = ctx.Value(ctxKey{})
		return typedUser{ID: 7}, nil
	}
	if u, err := users.GetOrSet(ctx, "user:7", core.Loader(load)); err != nil || u.ID != 7 {
		t.Fatalf("GetOrSet with a Loader = %v, %v", u, err)
	}
	if sawValue != "request-7" {
		t.Fatalf("the loader's context carries %v, want the caller's value request-7", sawValue)
	}

	// Errors and panics are a factory's.
	boom := errors.New("boom")
	_, err := users.GetOrSet(ctx, "user:8", core.Loader(func(context.Context) (typedUser, error) { return typedUser{}, boom }))
	var fe *core.FactoryError
	if !errors.Is(err, boom) || !errors.As(err, &fe) || fe.Key != "user:8" {
		t.Fatalf("a failing loader: %v, want a *FactoryError for user:8 wrapping boom", err)
	}
	_, err = users.GetOrSet(ctx, "user:9", core.Loader(func(context.Context) (typedUser, error) { panic("oops") }))
	var pe *core.PanicError
	if !errors.As(err, &pe) || pe.Value != "oops" {
		t.Fatalf("a panicking loader: %v, want a *PanicError", err)
	}

	// A nil loader is a nil factory.
	if f := core.Loader[typedUser](nil); f != nil {
		t.Fatal("Loader(nil) is not nil")
	}
	_, err = users.GetOrSet(ctx, "user:10", core.Loader[typedUser](nil))
	var oe *core.OptionError
	if !errors.As(err, &oe) || oe.Field != "factory" {
		t.Fatalf("GetOrSet with Loader(nil): %v, want an *OptionError for the field factory", err)
	}
}

func TestTypedL1HitAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	users := core.For[typedUser](c)
	load := constant(typedUser{ID: 1})
	if _, err := users.GetOrSet(ctx, "user:1", load); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := users.GetOrSet(ctx, "user:1", load, core.WithDuration(time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("an L1 hit through a Typed allocates %v times, want 0", allocs)
	}
}

// The typed handle against the generic function on an L1 hit, and the
// Loader adapter made per call against made once (docs/typed.md quotes
// these).
func BenchmarkTypedL1Hit(b *testing.B) {
	ctx := context.Background()
	c := newBenchCache(b)
	users := core.For[benchUser](c)
	if _, err := core.GetOrSet(ctx, c, "user:42", loadBenchUser); err != nil {
		b.Fatal(err)
	}
	plain := func(context.Context) (benchUser, error) { return benchUserValue, nil }
	hoisted := core.Loader(plain)
	run := func(b *testing.B, get func() (benchUser, error)) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := get(); err != nil || v.ID != 42 {
				b.Fatal(v, err)
			}
		}
	}
	b.Run("direct-GetOrSet", func(b *testing.B) {
		run(b, func() (benchUser, error) { return core.GetOrSet(ctx, c, "user:42", loadBenchUser) })
	})
	b.Run("typed-GetOrSet", func(b *testing.B) {
		run(b, func() (benchUser, error) { return users.GetOrSet(ctx, "user:42", loadBenchUser) })
	})
	b.Run("direct-Loader-per-call", func(b *testing.B) {
		run(b, func() (benchUser, error) { return core.GetOrSet(ctx, c, "user:42", core.Loader(plain)) })
	})
	b.Run("typed-Loader-per-call", func(b *testing.B) {
		run(b, func() (benchUser, error) { return users.GetOrSet(ctx, "user:42", core.Loader(plain)) })
	})
	b.Run("typed-Loader-made-once", func(b *testing.B) {
		run(b, func() (benchUser, error) { return users.GetOrSet(ctx, "user:42", hoisted) })
	})
}
