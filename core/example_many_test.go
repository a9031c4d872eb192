package core_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratacache/strata/core"
)

func ExampleSetMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	ctx := context.Background()

	// Each key is its own change, as if Set were called for each.
	err := core.SetMany(ctx, c, map[string]User{
		"user:1": {ID: 1, Name: "Ada"},
		"user:2": {ID: 2, Name: "Grace"},
	}, core.WithDuration(time.Minute), core.WithTags("team:compilers"))
	fmt.Println(err)
	u, found, _ := core.Get[User](ctx, c, "user:1")
	fmt.Println(u.Name, found)
	// Output:
	// <nil>
	// Ada true
}

// A key the cache refuses is not written, the others are; the error names
// each refused key. An empty key fails the call before anything is written.
func ExampleSetMany_partialFailure() {
	c, _ := core.New(core.Options{Name: "users", MaxKeyLength: 8})
	defer c.Close()
	ctx := context.Background()

	err := core.SetMany(ctx, c, map[string]string{"a": "1", "much-too-long": "2"})
	fmt.Println(err)
	_, found, _ := core.Get[string](ctx, c, "a")
	fmt.Println("a written:", found)

	err = core.SetMany(ctx, c, map[string]string{"b": "1", "": "2"})
	var oe *core.OptionError
	fmt.Println(errors.As(err, &oe), oe.Field)
	_, found, _ = core.Get[string](ctx, c, "b")
	fmt.Println("b written:", found)
	// Output:
	// core: SetMany: key "much-too-long": core: key must be at most 8 bytes (Options.MaxKeyLength), got "much-too-long"... (13 bytes)
	// a written: true
	// true key
	// b written: false
}

func ExampleCache_RemoveMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	ctx := context.Background()
	_ = core.SetMany(ctx, c, map[string]int{"a": 1, "b": 2, "c": 3})

	err := c.RemoveMany(ctx, []string{"a", "b"})
	fmt.Println(err, c.Len())
	// Output: <nil> 1
}

func ExampleCache_ExpireMany() {
	c, _ := core.New(core.Options{Name: "users"})
	defer c.Close()
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second)}
	_ = core.SetMany(ctx, c, map[string]string{"a": "old a", "b": "old b"}, opts...)

	_ = c.ExpireMany(ctx, []string{"a", "b"})
	// Expired, not removed: with the source down, fail-safe serves the
	// old value.
	v, err := core.GetOrSet(ctx, c, "a", core.Loader(func(context.Context) (string, error) {
		return "", errors.New("source down")
	}), opts...)
	fmt.Println(v, err)
	// Output: old a <nil>
}

func ExampleCache_RemoveByTags() {
	c, _ := core.New(core.Options{Name: "products"})
	defer c.Close()
	ctx := context.Background()
	_ = core.Set(ctx, c, "p1", "lamp", core.WithTags("brand:acme"))
	_ = core.Set(ctx, c, "p2", "desk", core.WithTags("category:office"))
	_ = core.Set(ctx, c, "p3", "sofa", core.WithTags("category:home"))

	// Removes every entry tagged with either tag.
	err := c.RemoveByTags(ctx, []string{"brand:acme", "category:office"})
	fmt.Println(err)
	for _, k := range []string{"p1", "p2", "p3"} {
		_, found, _ := core.Get[string](ctx, c, k)
		fmt.Println(k, found)
	}
	// Output:
	// <nil>
	// p1 false
	// p2 false
	// p3 true
}

func ExampleCache_ExpireByTags() {
	c, _ := core.New(core.Options{Name: "products"})
	defer c.Close()
	ctx := context.Background()
	opts := []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(time.Hour, 30*time.Second)}
	_ = core.Set(ctx, c, "p1", "lamp", append(opts, core.WithTags("brand:acme"))...)
	_ = core.Set(ctx, c, "p2", "desk", append(opts, core.WithTags("category:office"))...)

	_ = c.ExpireByTags(ctx, []string{"brand:acme", "category:office"})
	_, found, _ := core.Get[string](ctx, c, "p1")
	fmt.Println("fresh:", found)
	v, found, _ := core.Get[string](ctx, c, "p1", core.WithAllowStaleOnRead())
	fmt.Println("stale:", v, found)
	// Output:
	// fresh: false
	// stale: lamp true
}
