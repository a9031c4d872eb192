package core_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// With values on the backplane, a Set's message carries the new entry: the
// other nodes install it and serve it without reading L2.
func ExampleWithValueOnBackplane() {
	ctx := context.Background()
	bus := membackplane.NewBus()
	var nodes [2]*core.Cache
	var stores [2]*meml2.Store
	for i := range nodes {
		stores[i], _ = meml2.NewShared("example-values", nil)
		nodes[i], _ = core.New(core.Options{Name: "users", L2: stores[i], Backplane: bus.Connect(nil), WaitForInitialSubscribe: time.Second})
		defer nodes[i].Close()
	}
	a, b := nodes[0], nodes[1]
	_ = core.Set(ctx, a, "user:42", "ada")
	v, _, _ := core.Get[string](ctx, b, "user:42") // b reads L2 once

	_ = core.Set(ctx, a, "user:42", "grace", core.WithValueOnBackplane(true))
	for i := 0; b.Stats().BackplaneValues == 0 && i < 5000; i++ { // the message is on its way
		time.Sleep(time.Millisecond)
	}
	gets := stores[1].Stats().Gets
	v2, _, _ := core.Get[string](ctx, b, "user:42")
	fmt.Println(v, v2, stores[1].Stats().Gets-gets)
	// Output: ada grace 0
}
