package membackplane_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
)

// A node alone on its bus receives its own publications.
func ExampleNew() {
	ctx := context.Background()
	bp := membackplane.New(nil)
	defer bp.Close()

	got := make(chan string)
	sub, err := bp.Subscribe(ctx, "news", func(p []byte) { got <- string(p) }, nil)
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	_ = bp.Publish(ctx, "news", []byte("hello"))
	fmt.Println(<-got)
	// Output: hello
}

// A test holds a private bus and connects several nodes to it.
func ExampleBus_Connect() {
	ctx := context.Background()
	bus := membackplane.NewBus()
	a, b := bus.Connect(nil), bus.Connect(&membackplane.Options{QueueSize: 64})
	defer a.Close()
	defer b.Close()

	got := make(chan string)
	_, _ = b.Subscribe(ctx, "news", func(p []byte) { got <- string(p) }, nil)
	_ = a.Publish(ctx, "news", []byte("from a"))
	fmt.Println(<-got)
	// Output: from a
}

// Every node opened with mem://NAME in one process is on the bus NAME, so
// several caches in one test act as several nodes.
func Example_open() {
	ctx := context.Background()
	a, err := backplane.Open(ctx, "mem://example-cluster")
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b, _ := backplane.Open(ctx, "mem://example-cluster?queue_size=256")
	defer b.Close()

	got := make(chan string)
	_, _ = b.Subscribe(ctx, "news", func(p []byte) { got <- string(p) }, nil)
	_ = a.Publish(ctx, "news", []byte("same bus"))
	fmt.Println(<-got)
	// Output: same bus
}

// SetFault makes a node fail in a chosen way until ClearFault.
func ExampleBackplane_SetFault() {
	ctx := context.Background()
	bp := membackplane.New(nil)
	defer bp.Close()

	bp.SetFault(membackplane.Fault{PublishErr: errors.New("injected")})
	fmt.Println(bp.Publish(ctx, "news", []byte("x")))
	bp.ClearFault()
	fmt.Println(bp.Publish(ctx, "news", []byte("x")))
	// Output:
	// membackplane: publish on "news": injected
	// <nil>
}

// Disconnect and Reconnect simulate a dropped connection, reported to the
// node's subscriptions.
func ExampleBackplane_Disconnect() {
	ctx := context.Background()
	bp := membackplane.New(nil)
	defer bp.Close()

	states := make(chan backplane.State, 3)
	_, _ = bp.Subscribe(ctx, "news", func([]byte) {}, func(s backplane.State, err error) { states <- s })
	bp.Disconnect()
	fmt.Println(errors.Is(bp.Publish(ctx, "news", nil), membackplane.ErrDisconnected))
	bp.Reconnect()
	fmt.Println(<-states, <-states, <-states)
	// Output:
	// true
	// connected disconnected reconnected
}

func ExampleBackplane_Stats() {
	ctx := context.Background()
	bp := membackplane.New(nil)
	defer bp.Close()

	done := make(chan struct{})
	_, _ = bp.Subscribe(ctx, "news", func([]byte) { close(done) }, nil)
	_ = bp.Publish(ctx, "news", []byte("x"))
	<-done
	fmt.Printf("%+v\n", bp.Stats())
	// Output: {Published:1 Delivered:1 Dropped:0}
}
