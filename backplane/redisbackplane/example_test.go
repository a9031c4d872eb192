package redisbackplane_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/redisbackplane"
)

// The examples need a Redis server, so they are compiled but not run.

func ExampleNew() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close() // the backplane never closes the user's client

	bp, err := redisbackplane.New(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer bp.Close()

	ch := backplane.ChannelName("users")
	sub, err := bp.Subscribe(ctx, ch,
		func(payload []byte) { fmt.Printf("received %d bytes\n", len(payload)) },
		func(state backplane.State, err error) { fmt.Println("subscription", state, err) },
	)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	if err := bp.Publish(ctx, ch, []byte("hello")); err != nil {
		log.Print(err) // core queues the message and retries
	}
}

func ExampleNew_cluster() {
	// Sharded pub/sub keeps each channel's traffic within the shard that
	// owns its hash slot instead of broadcasting it to every node.
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"},
	})
	defer client.Close()
	bp, err := redisbackplane.New(client, &redisbackplane.Options{Sharded: true})
	if err != nil {
		log.Fatal(err)
	}
	defer bp.Close()
}

func ExampleOptions() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	// Ping a silent subscription connection every 5s; report it lost when
	// the PING is not answered within another 5s.
	bp, err := redisbackplane.New(client, &redisbackplane.Options{HealthCheckInterval: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer bp.Close()
}

func Example_open() {
	// In a service, the URL comes from configuration; importing
	// redisbackplane registers the redis:// and rediss:// schemes. The
	// backplane owns its client and closes it with Close.
	ctx := context.Background()
	url := os.Getenv("CACHE_BACKPLANE_URL") // e.g. "rediss://:secret@cache:6380/0?health_check_interval=2s"
	bp, err := backplane.Open(ctx, url)
	if err != nil {
		log.Fatal(err)
	}
	defer bp.Close()
}
