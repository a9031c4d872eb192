package adversary

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// A restarts with the same InstanceID: its new messages (numbers from 1 again)
// are applied by B; a replay of its earlier run's messages is dropped and
// changes nothing.
func TestAdvRestartSameInstanceIDAndReplay(t *testing.T) {
	ctx := context.Background()
	name := t.Name()
	bus := membackplane.NewBus()
	// a raw tap records every payload on the channel
	tap := bus.Connect(nil)
	defer tap.Close()
	var mu sync.Mutex
	var captured [][]byte
	if _, err := tap.Subscribe(ctx, "strata.v1.rs", func(p []byte) {
		mu.Lock()
		captured = append(captured, append([]byte(nil), p...))
		mu.Unlock()
	}, func(_ backplane.State, _ error) {}); err != nil {
		t.Fatal(err)
	}
	mk := func(id string) (*core.Cache, func()) {
		store, _ := meml2.NewShared(name, nil)
		bp := bus.Connect(nil)
		c, err := core.New(core.Options{Name: "rs", InstanceID: id, L2: store, Backplane: bp, WaitForInitialSubscribe: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c, func() { _ = c.Close(); store.Close(); bp.Close() }
	}
	a, closeA := mk("a")
	b, closeB := mk("b")
	defer closeB()
	opts := []core.EntryOption{core.WithDuration(time.Hour)}
	for _, v := range []string{"v1", "v2", "v3"} {
		_ = core.Set(ctx, a, "k", v, opts...)
	}
	_ = a.Remove(ctx, "k")
	_ = a.Clear(ctx, false)
	time.Sleep(50 * time.Millisecond)
	closeA()
	a2, closeA2 := mk("a")
	defer closeA2()
	before := b.Stats().BackplaneReceived
	if err := core.Set(ctx, a2, "k", "after restart", opts...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B applied the restarted A's message", func() bool { return b.Stats().BackplaneReceived > before })
	if v, _ := core.GetOrSet(ctx, b, "k", constF("src"), opts...); v != "after restart" {
		t.Fatalf("B: %q", v)
	}
	// replay everything captured from A's first run
	mu.Lock()
	old := captured
	mu.Unlock()
	rej := b.Stats().BackplaneRejected
	for _, p := range old {
		_ = tap.Publish(ctx, "strata.v1.rs", p)
	}
	time.Sleep(100 * time.Millisecond)
	t.Logf("replayed %d, B rejected %d more, loss events %d", len(old), b.Stats().BackplaneRejected-rej, b.Stats().LossEvents)
	if v, _ := core.GetOrSet(ctx, b, "k", constF("src"), opts...); v != "after restart" {
		t.Fatalf("after replay B: %q", v)
	}
	if v, _ := core.GetOrSet(ctx, a2, "k", constF("src"), opts...); v != "after restart" {
		t.Fatalf("after replay A: %q", v)
	}
}
