package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratacache/strata/core"
)

type Order struct {
	ID    string
	Total int
}

func ExampleFor() {
	c, _ := core.New(core.Options{Name: "shop"})
	defer c.Close()
	ctx := context.Background()

	// One cache, one handle per value type. The handles are plain values:
	// make them once and keep them.
	users := core.For[User](c)
	orders := core.For[Order](c)

	u, err := users.GetOrSet(ctx, "user:42", core.Loader(func(ctx context.Context) (User, error) {
		return User{ID: 42, Name: "Ada"}, nil
	}))
	fmt.Println(u.Name, err)
	_ = orders.Set(ctx, "order:7", Order{ID: "7", Total: 1250})
	o, found, err := orders.Get(ctx, "order:7")
	fmt.Println(o.Total, found, err)

	// orders.Set(ctx, "order:8", u) does not compile: u is a User.
	// Output:
	// Ada <nil>
	// 1250 true <nil>
}

// A service keeps its handles in fields; the types of its values are
// checked where they are used.
func ExampleTyped() {
	type service struct {
		users core.Typed[User]
	}
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	s := service{users: core.For[User](c)}

	u, _ := s.users.GetOrSet(context.Background(), "user:1", core.Loader(func(context.Context) (User, error) {
		return User{ID: 1, Name: "Grace"}, nil
	}), core.WithDuration(time.Minute))
	fmt.Println(u.Name)
	// Output: Grace
}

func ExampleTyped_GetOrSet() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()

	// A full factory sees its FactoryContext: the key, the stale value,
	// the options its result is cached with. (Without a use for it, pass
	// core.Loader(f).)
	load := func(ctx context.Context, fc *core.FactoryContext[User]) (User, error) {
		fmt.Println("loading", fc.Key)
		return User{ID: 42, Name: "Ada"}, nil
	}
	for range 2 {
		u, err := users.GetOrSet(ctx, "user:42", load,
			core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second))
		fmt.Println(u.Name, err)
	}
	// Output:
	// loading user:42
	// Ada <nil>
	// Ada <nil>
}

func ExampleTyped_Get() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()

	_, found, err := users.Get(ctx, "user:1")
	fmt.Println(found, err)
	_ = users.Set(ctx, "user:1", User{ID: 1, Name: "Ada"})
	u, found, err := users.Get(ctx, "user:1")
	fmt.Println(u.Name, found, err)
	// Output:
	// false <nil>
	// Ada true <nil>
}

// A key holds one type. Reading it through a handle of another type is an
// error on a node that holds it in memory; give each type its own keys.
func ExampleTyped_Get_otherType() {
	c, _ := core.New(core.Options{Name: "shop"})
	defer c.Close()
	ctx := context.Background()

	_ = core.For[User](c).Set(ctx, "42", User{ID: 42})
	_, _, err := core.For[Order](c).Get(ctx, "42")
	var te *core.TypeError
	fmt.Println(errors.As(err, &te), te.Got, te.Want)
	// Output: true core_test.User core_test.Order
}

func ExampleTyped_GetOrSetMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()
	_ = users.Set(ctx, "user:1", User{ID: 1, Name: "Ada"})

	got, err := users.GetOrSetMany(ctx, []string{"user:1", "user:2"},
		func(ctx context.Context, keys []string) (map[string]User, error) {
			fmt.Println("loading", keys)
			return map[string]User{"user:2": {ID: 2, Name: "Grace"}}, nil
		})
	fmt.Println(got["user:1"].Name, got["user:2"].Name, err)
	// Output:
	// loading [user:2]
	// Ada Grace <nil>
}

func ExampleTyped_SetMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()

	err := users.SetMany(ctx, map[string]User{
		"user:1": {ID: 1, Name: "Ada"},
		"user:2": {ID: 2, Name: "Grace"},
	}, core.WithDuration(time.Minute))
	u, _, _ := users.Get(ctx, "user:2")
	fmt.Println(u.Name, err)
	// Output: Grace <nil>
}

func ExampleTyped_Remove() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()

	_ = users.Set(ctx, "user:1", User{ID: 1, Name: "Ada"})
	_ = users.Remove(ctx, "user:1")
	_, found, _ := users.Get(ctx, "user:1")
	fmt.Println(found)
	// Output: false
}

func ExampleLoader() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	ctx := context.Background()

	// A load function that needs nothing but a context, such as a
	// repository method value.
	loadAda := func(ctx context.Context) (User, error) {
		return User{ID: 42, Name: "Ada"}, nil
	}
	u, err := core.GetOrSet(ctx, c, "user:42", core.Loader(loadAda), core.WithDuration(time.Minute))
	fmt.Println(u.Name, err)
	// Output: Ada <nil>
}

// loadAdaFactory is made once: a hit through it allocates nothing, where
// core.Loader(f) written in the call allocates a small closure per call.
var loadAdaFactory = core.Loader(func(ctx context.Context) (User, error) {
	return User{ID: 42, Name: "Ada"}, nil
})

func ExampleLoader_madeOnce() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)

	u, err := users.GetOrSet(context.Background(), "user:42", loadAdaFactory)
	fmt.Println(u.Name, err)
	// Output: Ada <nil>
}

func ExampleTyped_Set() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()

	// After a write to the source, store the new value on every node.
	err := users.Set(ctx, "user:1", User{ID: 1, Name: "Ada Lovelace"},
		core.WithDuration(time.Minute), core.WithTags("team:compilers"))
	u, _, _ := users.Get(ctx, "user:1")
	fmt.Println(u.Name, err)
	// Output: Ada Lovelace <nil>
}

func ExampleTyped_Expire() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second)}
	_ = users.Set(ctx, "user:1", User{ID: 1, Name: "Ada"}, opts...)

	_ = users.Expire(ctx, "user:1")
	u, err := users.GetOrSet(ctx, "user:1", core.Loader(func(context.Context) (User, error) {
		return User{}, errors.New("database down")
	}), opts...)
	fmt.Println(u.Name, err) // fail-safe serves the expired value
	// Output: Ada <nil>
}

func ExampleTyped_RemoveMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()
	_ = users.SetMany(ctx, map[string]User{"user:1": {ID: 1}, "user:2": {ID: 2}})

	err := users.RemoveMany(ctx, []string{"user:1", "user:2"})
	_, found, _ := users.Get(ctx, "user:2")
	fmt.Println(found, err)
	// Output: false <nil>
}

func ExampleTyped_ExpireMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()
	_ = users.SetMany(ctx, map[string]User{"user:1": {ID: 1}, "user:2": {ID: 2}})

	err := users.ExpireMany(ctx, []string{"user:1", "user:2"})
	_, found, _ := users.Get(ctx, "user:1")
	fmt.Println(found, err)
	// Output: false <nil>
}

func ExampleTyped_Cache() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	users := core.For[User](c)
	ctx := context.Background()
	_ = users.Set(ctx, "user:1", User{ID: 1}, core.WithTags("team:compilers"))

	// Tags, Clear and Stats are the cache's.
	_ = users.Cache().RemoveByTag(ctx, "team:compilers")
	_, found, _ := users.Get(ctx, "user:1")
	fmt.Println(found)
	// Output: false
}
