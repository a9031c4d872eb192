package backplanetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
)

// Cancelled Subscribe calls: how many, and from how many goroutines at
// once. Each one's context is cancelled after a random delay of up to twice
// the time a Subscribe takes on the transport (at least minCancelWindow), so
// that cancellations land before the server is asked, while it confirms and
// just after.
const (
	cancelledSubscribes = 200
	cancelWorkers       = 4
	minCancelWindow     = 1500 * time.Microsecond
)

// testCancelledSubscribe: Subscribe calls whose context is cancelled at a
// random moment (before the server is asked, while it confirms, just after)
// leave nothing behind once each one that succeeded is closed: every
// goroutine they started ends, no callback runs after Close, and what an
// Inspector counts on the server comes back. core cancels a Subscribe this
// way when a cache is closed while it is still subscribing.
func (s suite) testCancelledSubscribe(t *testing.T) {
	a, b := s.node(t), s.node(t)
	ch := newChannel()
	// What the transport holds for a node that has not subscribed yet.
	in, inspect := s.h.(Inspector)
	var held map[string]int
	if inspect {
		held = holdings(t, in, a, ch)
	}
	// What a node starts once and keeps (a pooled connection, a goroutine
	// started on first use) exists before the count begins. Meanwhile,
	// time a Subscribe under the same load as below.
	var took []time.Duration
	for round := range 5 {
		recs := make([]*recorder, cancelWorkers)
		subs := make([]backplane.Subscription, cancelWorkers)
		errs := make([]error, cancelWorkers)
		times := make([]time.Duration, cancelWorkers)
		var wg sync.WaitGroup
		for w := range cancelWorkers {
			recs[w] = newRecorder(fmt.Sprintf("subscription %d of round %d before the count", w, round))
			wg.Go(func() {
				ctx, cancel := callCtx()
				defer cancel()
				start := time.Now()
				subs[w], errs[w] = a.Subscribe(ctx, ch, recs[w].onMessage, recs[w].onState)
				times[w] = time.Since(start)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		took = append(took, times...)
		payload := fmt.Appendf(nil, "warm-%d", round)
		publish(t, b, ch, payload)
		for w, r := range recs {
			r.waitPayload(t, payload)
			if err, ok := returnsWithin(prompt, subs[w].Close); !ok || err != nil {
				t.Fatalf("Subscription.Close = %v (returned: %v), want nil within %v", err, ok, prompt)
			}
			r.markClosed()
			r.check(t)
		}
	}
	slices.Sort(took)
	window := max(minCancelWindow, 2*took[len(took)/2])

	ignore := goleak.IgnoreCurrent()

	recs := make([][]*recorder, cancelWorkers)
	var ok, gone atomic.Int64
	var wg sync.WaitGroup
	for w := range cancelWorkers {
		wg.Go(func() {
			for i := range cancelledSubscribes / cancelWorkers {
				r := newRecorder(fmt.Sprintf("subscription %d of worker %d, cancelled midway", i, w))
				recs[w] = append(recs[w], r)
				ctx, cancel := context.WithCancel(context.Background())
				timer := time.AfterFunc(rand.N(window), cancel)
				sub, err := a.Subscribe(ctx, ch, r.onMessage, r.onState)
				timer.Stop()
				cancel()
				switch {
				case err == nil:
					ok.Add(1)
					if err, done := returnsWithin(prompt, sub.Close); !done || err != nil {
						t.Errorf("Subscription.Close = %v (returned: %v), want nil within %v", err, done, prompt)
					}
				case errors.Is(err, context.Canceled):
					gone.Add(1)
				default:
					t.Errorf("Subscribe cancelled midway = %v, want success or an error wrapping context.Canceled", err)
				}
				r.markClosed()
			}
		})
	}
	wg.Wait()
	t.Logf("%d Subscribe calls cancelled within %v (a Subscribe takes %v): %d succeeded (then closed), %d failed with the context's error",
		cancelledSubscribes, window, took[len(took)/2], ok.Load(), gone.Load())

	deadline := time.Now().Add(waitTimeout)
	for {
		err := goleak.Find(ignore)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines still running %v after the cancelled Subscribe calls returned and the successful ones were closed: %v", waitTimeout, err)
		}
	}
	if inspect {
		t.Logf("the transport's holdings before any subscription: %v", held)
		var now map[string]int
		for deadline := time.Now().Add(waitTimeout); ; time.Sleep(100 * time.Millisecond) {
			if now = holdings(t, in, a, ch); maps.Equal(now, held) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the transport's holdings are %v %v after the cancelled Subscribe calls returned and the successful ones were closed, want %v as before any subscription",
					now, waitTimeout, held)
			}
		}
	}

	// No subscription that was closed or abandoned delivers, and the node
	// still subscribes.
	r := newRecorder("subscription after the cancelled ones")
	subscribe(t, a, ch, r)
	publish(t, b, ch, []byte("after"))
	r.waitPayload(t, []byte("after"))
	for _, r := range slices.Concat(recs...) {
		r.check(t)
	}
}

func holdings(t *testing.T, in Inspector, b backplane.Backplane, channel string) map[string]int {
	t.Helper()
	ctx, cancel := callCtx()
	defer cancel()
	h, err := in.Holdings(ctx, t, b, channel)
	if err != nil {
		t.Fatalf("Inspector.Holdings: %v", err)
	}
	return h
}
