package meml2_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

func ExampleNew() {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()

	_ = store.Set(ctx, "user:42", []byte(`{"name":"Ada"}`), time.Minute)
	v, found, _ := store.Get(ctx, "user:42")
	fmt.Println(string(v), found)
	// Output: {"name":"Ada"} true
}

func ExampleOptions() {
	// A fake clock expires entries without sleeping.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	store := meml2.New(&meml2.Options{Now: func() time.Time { return now }})
	defer store.Close()

	ctx := context.Background()
	_ = store.Set(ctx, "k", []byte("v"), 10*time.Second)
	now = now.Add(10 * time.Second)
	_, found, _ := store.Get(ctx, "k")
	fmt.Println(found)
	// Output: false
}

func ExampleNewShared() {
	ctx := context.Background()
	// Two handles on the shared table "orders", as two nodes would see one
	// Redis. l2.Open(ctx, "mem://orders") gives the same.
	node1, _ := meml2.NewShared("orders", nil)
	node2, _ := l2.Open(ctx, "mem://orders")
	defer node2.Close()

	_ = node1.Set(ctx, "order:1", []byte("paid"), time.Minute)
	node1.Close() // the other handle keeps working

	v, _, _ := node2.Get(ctx, "order:1")
	fmt.Println(string(v))
	// Output: paid
}

func ExampleStore_SetFault() {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()

	down := errors.New("connection refused")
	store.SetFault(meml2.Fault{Err: down})
	_, _, err := store.Get(ctx, "k")
	fmt.Println(errors.Is(err, down), err)

	// A slow store: calls wait, but give up when their ctx is done.
	store.SetFault(meml2.Fault{Delay: time.Hour})
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, _, err = store.Get(short, "k")
	fmt.Println(errors.Is(err, context.DeadlineExceeded))

	store.ClearFault()
	_, _, err = store.Get(ctx, "k")
	fmt.Println(err)
	// Output:
	// true meml2: get: connection refused
	// true
	// <nil>
}

func ExampleStore_Stats() {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()

	_ = store.Set(ctx, "a", []byte("1"), time.Minute)
	_, _, _ = store.Get(ctx, "a")
	_, _ = store.GetMany(ctx, []string{"a", "b"})
	_ = store.Delete(ctx, "a")
	fmt.Printf("%+v\n", store.Stats())
	// Output: {Gets:3 Hits:2 Sets:1 Deletes:1}
}

func ExampleStore_SetIfNewer() {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()

	stored, _ := store.SetIfNewer(ctx, "k", []byte("v2"), time.Minute, 2)
	fmt.Println(stored)
	stored, _ = store.SetIfNewer(ctx, "k", []byte("v1"), time.Minute, 1) // a slower, older writer
	fmt.Println(stored)
	v, _, _ := store.Get(ctx, "k")
	fmt.Println(string(v))
	// Output:
	// true
	// false
	// v2
}

func ExampleStore_GetMany() {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()

	_ = store.Set(ctx, "a", []byte("1"), time.Minute)
	vals, _ := store.GetMany(ctx, []string{"a", "missing"})
	fmt.Println(string(vals[0]), vals[1] == nil)
	// Output: 1 true
}

func ExampleStore_SetWrongType() {
	ctx := context.Background()
	store := meml2.New(nil)
	defer store.Close()

	// As if another program had made "k" a Redis list.
	_ = store.SetWrongType("k", time.Minute)
	_, _, err := store.Get(ctx, "k")
	fmt.Println(l2.Classify(ctx, err), err)
	vals, _ := store.GetMany(ctx, []string{"k"})
	fmt.Println(vals[0] == nil)

	stored, _ := store.SetIfNewer(ctx, "k", []byte("v"), time.Minute, 1)
	fmt.Println(stored)
	// Output:
	// permanent meml2: get: l2: permanent error: the key holds a value of another type
	// true
	// true
}
