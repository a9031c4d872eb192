package backplane_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"

	"github.com/stratacache/strata/backplane"
	_ "github.com/stratacache/strata/backplane/membackplane" // registers mem://
)

// A service picks its backplane per environment from configuration.
func ExampleOpen() {
	ctx := context.Background()
	rawURL := os.Getenv("CACHE_BACKPLANE_URL") // e.g. redis://cache:6379/0 in production
	if rawURL == "" {
		rawURL = "mem://local"
	}
	bp, err := backplane.Open(ctx, rawURL)
	if err != nil {
		panic(err)
	}
	defer bp.Close()
	fmt.Printf("%T\n", bp)

	_, err = backplane.Open(ctx, "foo://x")
	fmt.Println(err != nil)
	// Output:
	// *membackplane.Backplane
	// true
}

// An adapter package registers its scheme in init.
func ExampleRegister() {
	// In package examplebackplane:
	//
	//	func init() { backplane.Register("example", open) }
	open := func(ctx context.Context, u *url.URL) (backplane.Backplane, error) {
		return nil, errors.New("examplebackplane: not implemented")
	}
	backplane.Register("example", open)

	_, err := backplane.Open(context.Background(), "example://host")
	fmt.Println(err)
	// Output: examplebackplane: not implemented
}

// Schemes lists what the imported adapter packages registered, sorted.
func ExampleSchemes() {
	fmt.Println(slices.Contains(backplane.Schemes(), "mem")) // membackplane is imported
	// Output: true
}

// A node announces a change: encode the message, publish it on the cache's
// channel.
func ExampleMessage_AppendBinary() {
	m := backplane.Message{
		Cache:     "users",
		Source:    "node-1",
		Seq:       1,
		Action:    backplane.ActionRemove,
		Key:       "user:42",
		Timestamp: 1700000000000000000,
	}
	payload, err := m.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes on %s\n", len(payload), backplane.ChannelName(m.Cache))
	// Output: 42 bytes on strata.v1.users
}

// A receiver decodes each payload; a corrupt one is an error, never a panic.
func ExampleDecodeMessage() {
	m := backplane.Message{Cache: "users", Source: "node-1", Seq: 7, Action: backplane.ActionExpireTag, Key: "tenant:7"}
	payload, _ := m.AppendBinary(nil)

	got, err := backplane.DecodeMessage(payload)
	fmt.Println(got.Action, got.Key, got.Seq, err)

	_, err = backplane.DecodeMessage(payload[:10])
	fmt.Println(errors.Is(err, backplane.ErrCorrupt), err)
	// Output:
	// expire_tag tenant:7 7 <nil>
	// true backplane: corrupt message: truncated: 10 bytes, a message has at least 26 at offset 10
}

func ExampleChannelName() {
	fmt.Println(backplane.ChannelName("users"))
	fmt.Println(backplane.ChannelName("user_sessions"))
	fmt.Println(backplane.ChannelName("orders.eu west"))
	// Output:
	// strata.v1.users
	// strata.v1.user__sessions
	// strata.v1.orders_2Eeu_20west
}

func ExampleAction_String() {
	fmt.Println(backplane.ActionSet, backplane.ActionClearExpire, backplane.Action(0))
	// Output: set clear_expire action(0)
}
