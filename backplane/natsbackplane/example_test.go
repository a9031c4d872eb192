package natsbackplane_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/natsbackplane"
)

// natsURL is the server the examples use.
func natsURL() string {
	if u := os.Getenv("STRATA_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func ExampleNew() {
	nc, err := nats.Connect(natsURL(), nats.MaxReconnects(-1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close() // the application's connection: the Backplane leaves it open

	bp, err := natsbackplane.New(nc, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bp.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	channel := backplane.ChannelName(fmt.Sprintf("example-new-%d", time.Now().UnixNano()))
	got := make(chan string, 1)
	sub, err := bp.Subscribe(ctx, channel, func(p []byte) { got <- string(p) }, func(s backplane.State, err error) {})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()

	if err := bp.Publish(ctx, channel, []byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	// Output: hello
}

func Example_open() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// In a service: backplane.Open(ctx, os.Getenv("CACHE_BACKPLANE_URL")).
	bp, err := backplane.Open(ctx, natsURL()+"?name=example&reconnect_wait=1s")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bp.Close() // also closes the connection Open made
	fmt.Printf("%T\n", bp)

	_, err = backplane.Open(ctx, "nats://127.0.0.1:4222?bucket=x")
	fmt.Println(err)
	// Output:
	// *natsbackplane.Backplane
	// natsbackplane: bad URL "nats://127.0.0.1:4222?bucket=x": unknown parameter "bucket" (known: connect_timeout, creds, flush_timeout, max_reconnects, name, queue_size, reconnect_wait, tls, tls_ca, tls_cert, tls_key)
}
