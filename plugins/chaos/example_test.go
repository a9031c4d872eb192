package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/plugins/chaos"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

func ExampleNewStore() {
	ctx := context.Background()
	store, err := chaos.NewStore(meml2.New(nil), &chaos.Options{Mode: chaos.Always})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	err = store.Set(ctx, "k", []byte("v"), time.Minute)
	fmt.Println(err, errors.Is(err, chaos.ErrInjected))

	store.SetMode(chaos.Never)
	fmt.Println(store.Set(ctx, "k", []byte("v"), time.Minute))

	// meml2 can write conditionally, so the wrapper can too.
	_, conditional := store.(l2.ConditionalStore)
	fmt.Println("conditional:", conditional)
	// Output:
	// chaos: injected failure of l2 Set true
	// <nil>
	// conditional: true
}

func ExampleNewBackplane() {
	ctx := context.Background()
	bus := membackplane.NewBus()
	node := func(id string, drop float64) *core.Cache {
		bp, err := chaos.NewBackplane(bus.Connect(nil), &chaos.Options{DropRate: drop, Seed: 1})
		if err != nil {
			panic(err)
		}
		// Wait for the subscription: a node that loads entries before it is
		// live expires them once it is (they may have missed changes).
		c, err := core.New(core.Options{Name: "users", InstanceID: id, Backplane: bp, WaitForInitialSubscribe: 5 * time.Second})
		if err != nil {
			panic(err)
		}
		return c
	}
	a, b := node("a", 0), node("b", 1) // b loses every message
	defer a.Close()
	defer b.Close()
	core.Set(ctx, b, "user:1", "Ada")
	core.Set(ctx, a, "user:1", "Grace") // b does not hear of it
	time.Sleep(50 * time.Millisecond)
	v, _, _ := core.Get[string](ctx, b, "user:1")
	fmt.Println(v)
	// Output:
	// Ada
}

func ExampleNewSerializer() {
	s, err := chaos.NewSerializer(jsonserializer.New(), &chaos.Options{FailureRate: 0.5, Seed: 42})
	if err != nil {
		panic(err)
	}
	// The same seed gives the same faults, run after run.
	outcomes := ""
	for range 8 {
		if _, err := s.Marshal("v"); err != nil {
			outcomes += "x"
		} else {
			outcomes += "."
		}
	}
	fmt.Println(outcomes)
	fmt.Printf("%+v\n", s.Stats())
	// Output:
	// .x.x....
	// {Calls:8 Failures:2 Delayed:0 Messages:0 Dropped:0}
}
