package natskvl2_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/natskvl2"
)

func natsURL() string {
	if u := os.Getenv("STRATA_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(natsURL(), nats.MaxReconnects(-1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close() // the application's connection: the Store leaves it open
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := natskvl2.New(ctx, js, &natskvl2.Options{Bucket: "strata_example", MaxTTL: time.Hour, Storage: jetstream.MemoryStorage})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer js.DeleteKeyValue(ctx, "strata_example") // an example cleans up after itself
	defer store.Close()

	_ = store.Set(ctx, "user:42", []byte("Ada"), time.Minute)
	v, found, err := store.Get(ctx, "user:42")
	fmt.Println(string(v), found, err)

	stored, err := store.SetIfNewer(ctx, "user:42", []byte("Grace"), time.Minute, time.Now().UnixNano())
	fmt.Println(stored, err)
	stored, err = store.SetIfNewer(ctx, "user:42", []byte("older"), time.Minute, 1)
	fmt.Println(stored, err)
	// Output:
	// Ada true <nil>
	// true <nil>
	// false <nil>
}

func Example_open() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// In a service: l2.Open(ctx, os.Getenv("CACHE_L2_URL")).
	store, err := l2.Open(ctx, natsURL()+"?bucket=strata_example_open&storage=memory&max_ttl=1h")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close() // also closes the connection Open made
	defer func() {      // an example cleans up after itself
		nc, _ := nats.Connect(natsURL())
		defer nc.Close()
		js, _ := jetstream.New(nc)
		_ = js.DeleteKeyValue(ctx, "strata_example_open")
	}()
	_ = store.Set(ctx, "k", []byte("v"), time.Minute)
	v, found, _ := store.Get(ctx, "k")
	fmt.Println(string(v), found)
	// Output: v true
}
