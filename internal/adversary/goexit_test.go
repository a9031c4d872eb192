package adversary

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// A factory that ends its goroutine with runtime.Goexit (t.FailNow in a
// test helper, a library calling Goexit): recover() sees nil, the run is
// never finished, and the key is dead: every later caller joins the dead run
// and waits until its own ctx ends.
func TestAdvFactoryGoexitKillsKey(t *testing.T) {
	c := newCache(t, core.Options{CloseTimeout: 100 * time.Millisecond})
	ctx1, cancel1 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel1()
	_, err := core.GetOrSet(ctx1, c, "k", func(context.Context, *core.FactoryContext[string]) (string, error) {
		runtime.Goexit()
		return "", nil
	})
	t.Logf("first call: %v", err)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	v, err := core.GetOrSet(ctx2, c, "k", constF("fine"))
	if err != nil {
		t.Fatalf("a later GetOrSet with a working factory: %q, %v (the key is stuck on the dead run)", v, err)
	}
}
