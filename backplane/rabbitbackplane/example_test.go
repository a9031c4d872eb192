package rabbitbackplane_test

import (
	"context"
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
)

func amqpURL() string {
	if u := os.Getenv("STRATA_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// deleteExchange removes what an example declared.
func deleteExchange(name string) {
	conn, err := amqp.Dial(amqpURL())
	if err != nil {
		return
	}
	defer conn.Close()
	if ch, err := conn.Channel(); err == nil {
		_ = ch.ExchangeDelete(name, false, false)
	}
}

func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bp, err := rabbitbackplane.New(ctx, amqpURL(), &rabbitbackplane.Options{ConnectionName: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bp.Close()

	channel := backplane.ChannelName(fmt.Sprintf("example-new-%d", time.Now().UnixNano()))
	defer deleteExchange(channel)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// In a service: backplane.Open(ctx, os.Getenv("CACHE_BACKPLANE_URL")).
	bp, err := backplane.Open(ctx, amqpURL()+"?confirm=true&heartbeat=10")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bp.Close()
	fmt.Printf("%T\n", bp)

	_, err = backplane.Open(ctx, "amqp://guest:secret@127.0.0.1:1/?prefetch=0")
	fmt.Println(err)
	// Output:
	// *rabbitbackplane.Backplane
	// rabbitbackplane: bad URL "amqp://guest:xxxxx@127.0.0.1:1/?prefetch=0": prefetch "0" is not a positive integer
}
