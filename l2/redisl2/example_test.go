package redisl2_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane/redisbackplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/redisl2"
)

// The examples need a Redis server, so they are compiled but not run.

func ExampleNew() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close() // the store never closes the user's client

	store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: "users:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if err := store.Set(ctx, "42", []byte(`{"name":"Ada"}`), time.Minute); err != nil {
		log.Fatal(err)
	}
	v, found, err := store.Get(ctx, "42") // Redis key "users:42"
	fmt.Println(string(v), found, err)
}

func ExampleNew_cluster() {
	// On Redis Cluster every command touches one key; GetMany pipelines one
	// GET per key, which go-redis sends to each node in one round trip.
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
	})
	defer client.Close()
	store, err := redisl2.New(client, &redisl2.Options{KeyPrefix: "users:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
}

func ExampleNew_sentinel() {
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    "cache",
		SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
	})
	defer client.Close()
	store, err := redisl2.New(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
}

func ExampleStore_SetIfNewer() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, _ := redisl2.New(client, nil)

	created := time.Now().UnixNano()
	stored, _ := store.SetIfNewer(ctx, "k", []byte("new"), time.Minute, created)
	fmt.Println(stored) // true: the key was missing
	stored, _ = store.SetIfNewer(ctx, "k", []byte("old"), time.Minute, created-1)
	fmt.Println(stored) // false: a newer entry is there
}

func ExampleStore_GetMany() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	store, _ := redisl2.New(client, nil)

	_ = store.Set(ctx, "a", []byte("1"), time.Minute)
	vals, _ := store.GetMany(ctx, []string{"a", "missing"})
	fmt.Printf("%q\n", vals) // ["1" ""]: the second is nil (missing)
}

func Example_open() {
	// In a service, the URL comes from configuration; importing redisl2
	// registers the redis:// and rediss:// schemes. The store owns its
	// client and closes it with Close.
	ctx := context.Background()
	url := os.Getenv("CACHE_L2_URL") // e.g. "redis://:secret@cache:6379/0?key_prefix=app:&dial_timeout=2s"
	store, err := l2.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
}

// With redisbackplane on the same client (or the same server), core writes
// each change and publishes its message in one round trip.
func ExampleStore_AnnouncesOn() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redisl2.New(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	bp, err := redisbackplane.New(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer bp.Close()
	fmt.Println(store.AnnouncesOn(bp))
}
