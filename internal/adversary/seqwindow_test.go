package adversary

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// TestSlowWriteOvertakenByManyMessages: A sets k while its L2 is slow;
// meanwhile 100 other changes on A (SkipL2Write: no L2 call) are published
// at once. If k's message took its sequence number before the slow write,
// it reaches the others behind more than 64 later numbers and is dropped
// as a replay ("older than the last 64"): B would never hear of k's change
// and serve its old copy for the entry's duration. B must serve the new
// value (or read it again) once A's Set returned and B heard A's later
// messages.
func TestSlowWriteOvertakenByManyMessages(t *testing.T) {
	for _, values := range []bool{false, true} {
		t.Run(fmt.Sprint("values=", values), func(t *testing.T) {
			ctx := context.Background()
			nodes := newCluster(t, 2, true, nil)
			a, b := nodes[0], nodes[1]
			warmUp(t, a, b)
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithValueOnBackplane(values)}
			if err := core.Set(ctx, a.Cache, "k", "v1", opts...); err != nil {
				t.Fatal(err)
			}
			if v := readOrFresh(t, b, "k"); v != "v1" {
				t.Fatalf("b: %q", v)
			}
			received := b.Stats().BackplaneReceived + b.Stats().BackplaneRejected
			a.l2.SetFault(meml2.Fault{Delay: 300 * time.Millisecond})
			setDone := make(chan error, 1)
			go func() { setDone <- core.Set(ctx, a.Cache, "k", "v2", opts...) }()
			time.Sleep(50 * time.Millisecond)
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := core.Set(ctx, a.Cache, fmt.Sprint("other-", i), "x", core.WithSkipL2Write()); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if err := <-setDone; err != nil {
				t.Fatal(err)
			}
			a.l2.ClearFault()
			// A marker with its value: b installs it once it has got
			// every message a sent before.
			installed := b.Stats().BackplaneValues
			if err := core.Set(ctx, a.Cache, "marker", "m", core.WithDuration(time.Hour), core.WithValueOnBackplane(true)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "b gets a's marker", func() bool { return b.Stats().BackplaneValues > installed })
			t.Logf("b: %d messages received or rejected since", b.Stats().BackplaneReceived+b.Stats().BackplaneRejected-received)
			if v := readOrFresh(t, b, "k"); v != "v2" {
				s := b.Stats()
				t.Fatalf("b serves %q after a's Set of v2 returned and b heard a's later messages (BackplaneRejected %d, LossEvents %d)",
					v, s.BackplaneRejected, s.LossEvents)
			}
		})
	}
}
