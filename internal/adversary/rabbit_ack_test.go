package adversary

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/rabbitbackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/internal/rabbittest"
	"github.com/stratacache/strata/l2/meml2"
)

// Attacks on the RabbitMQ subscription's batched acknowledgements (half
// the prefetch, or a second after a delivery): small prefetch values,
// bursts larger than the prefetch, a quiet channel then a burst, Close
// during a burst, and two core nodes exchanging updates.

func newRabbit(t *testing.T, url string, prefetch int) *rabbitbackplane.Backplane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bp, err := rabbitbackplane.New(ctx, url, &rabbitbackplane.Options{Prefetch: prefetch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bp.Close() })
	return bp
}

// collector records payloads in order.
type collector struct {
	mu  sync.Mutex
	got []string
}

func (c *collector) on(p []byte) { c.mu.Lock(); c.got = append(c.got, string(p)); c.mu.Unlock() }
func (c *collector) n() int      { c.mu.Lock(); defer c.mu.Unlock(); return len(c.got) }

// TestRabbitSmallPrefetchBursts: with prefetch 1, 2, 3 and 4, bursts far
// larger than the prefetch, then a quiet channel (longer than the second
// after which a delivery is acknowledged), then single messages and a
// burst again: every message arrives, in order, and none waits on an
// acknowledgement timer per message (300 messages within 10s).
func TestRabbitSmallPrefetchBursts(t *testing.T) {
	url := rabbittest.URL(t)
	for _, prefetch := range []int{1, 2, 3, 4} {
		t.Run(fmt.Sprint("prefetch=", prefetch), func(t *testing.T) {
			t.Parallel() // an exchange of its own: mostly waiting
			ch := backplane.ChannelName(fmt.Sprintf("adv-rabbit-%s", rabbitUnique()))
			t.Cleanup(func() { rabbittest.DeleteExchanges(t, url, []string{ch}) })
			sub := newRabbit(t, url, prefetch)
			pub := newRabbit(t, url, 0)
			col := &collector{}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := sub.Subscribe(ctx, ch, col.on, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var sent []string
			send := func(n int) {
				for range n {
					p := fmt.Sprint("m", len(sent))
					if err := pub.Publish(ctx, ch, []byte(p)); err != nil {
						t.Fatal(err)
					}
					sent = append(sent, p)
				}
			}
			wait := func(what string, within time.Duration) {
				deadline := time.Now().Add(within)
				for col.n() < len(sent) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: %d of %d messages arrived within %v (prefetch %d)", what, col.n(), len(sent), within, prefetch)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			send(150)
			wait("first burst", 10*time.Second)
			// Leave a partial batch unacknowledged, then a quiet channel.
			send(prefetch)
			wait("partial batch", 3*time.Second)
			time.Sleep(2500 * time.Millisecond)
			start := time.Now()
			send(1)
			wait("one message after a quiet channel", 3*time.Second)
			t.Logf("prefetch %d: one message after 2.5s of quiet took %v", prefetch, time.Since(start))
			send(150)
			wait("burst after quiet", 10*time.Second)
			col.mu.Lock()
			defer col.mu.Unlock()
			for i, p := range sent {
				if col.got[i] != p {
					t.Fatalf("message %d is %q, want %q: out of order", i, col.got[i], p)
				}
			}
			if len(col.got) != len(sent) {
				t.Fatalf("%d messages received, %d sent: redelivered?", len(col.got), len(sent))
			}
		})
	}
}

func rabbitUnique() string { return fmt.Sprintf("%d-%d", time.Now().UnixNano(), seq.Add(1)) }

// TestRabbitCloseDuringBurst: Close of the subscribing Backplane (and of a
// subscription alone) while a burst is being delivered with a small
// prefetch: Close returns promptly, no callback runs after it, no goroutine
// is left behind.
func TestRabbitCloseDuringBurst(t *testing.T) {
	url := rabbittest.URL(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, prefetch := range []int{1, 3} {
		for _, whole := range []bool{false, true} {
			ch := backplane.ChannelName(fmt.Sprintf("adv-rabbit-%s", rabbitUnique()))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			sub, err := rabbitbackplane.New(ctx, url, &rabbitbackplane.Options{Prefetch: prefetch})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := rabbitbackplane.New(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			var closed atomic.Bool
			var after atomic.Int64
			var got atomic.Int64
			s, err := sub.Subscribe(ctx, ch, func([]byte) {
				got.Add(1)
				if closed.Load() {
					after.Add(1)
				}
				time.Sleep(time.Millisecond) // a slow consumer: the prefetch fills
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_ = pub.Publish(ctx, ch, []byte(fmt.Sprint(i)))
				}
			})
			for got.Load() < 20 {
				time.Sleep(time.Millisecond)
			}
			start := time.Now()
			if whole {
				_ = sub.Close()
			} else {
				_ = s.Close()
			}
			closed.Store(true)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("prefetch %d, whole=%v: Close took %v during a burst", prefetch, whole, d)
			}
			time.Sleep(50 * time.Millisecond)
			if n := after.Load(); n > 0 {
				t.Errorf("prefetch %d, whole=%v: %d callbacks after Close returned", prefetch, whole, n)
			}
			close(stop)
			wg.Wait()
			_ = s.Close()
			_ = sub.Close()
			_ = pub.Close()
			cancel()
			rabbittest.DeleteExchanges(t, url, []string{ch})
		}
	}
}

// TestRabbitTwoNodesExchangeUpdates: two core nodes on one meml2, each
// with its own RabbitMQ backplane with a small prefetch, exchange bursts
// of Sets (more keys than the prefetch), with quiet spells between them.
// Promised: every update reaches the other node (it serves the new value),
// and no read that starts later than the staleness bound after a Set
// returned serves the value it replaced.
func TestRabbitTwoNodesExchangeUpdates(t *testing.T) {
	url := rabbittest.URL(t)
	for _, prefetch := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("prefetch=", prefetch), func(t *testing.T) {
			t.Parallel() // an exchange of its own: mostly waiting
			name := "adv-rabbit-" + rabbitUnique()
			t.Cleanup(func() { rabbittest.DeleteExchanges(t, url, []string{backplane.ChannelName(name)}) })
			const bound = 2 * time.Second
			var nodes [2]*core.Cache
			for i := range nodes {
				store, err := meml2.NewShared(name, nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { store.Close() })
				c, err := core.New(core.Options{Name: name, InstanceID: fmt.Sprint("n", i), L2: store,
					Backplane: newRabbit(t, url, prefetch), BackplaneStalenessBound: bound,
					WaitForInitialSubscribe: 10 * time.Second, CloseTimeout: 2 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				nodes[i] = c
			}
			ctx := context.Background()
			opts := []core.EntryOption{core.WithDuration(time.Hour)}
			const keys = 12
			// Each node caches every key.
			for k := range keys {
				key := fmt.Sprint("k", k)
				if err := core.Set(ctx, nodes[0], key, "v0", opts...); err != nil {
					t.Fatal(err)
				}
			}
			for k := range keys {
				key := fmt.Sprint("k", k)
				waitServes(t, nodes[1], key, "v0", bound+time.Second)
			}
			var maxLag time.Duration
			for round := 1; round <= 6; round++ {
				w, r := nodes[round%2], nodes[(round+1)%2]
				val := fmt.Sprint("v", round)
				setAt := make([]time.Time, keys)
				for k := range keys {
					if err := core.Set(ctx, w, fmt.Sprint("k", k), val, opts...); err != nil {
						t.Fatal(err)
					}
					setAt[k] = time.Now()
				}
				for k := range keys {
					key := fmt.Sprint("k", k)
					for {
						readStart := time.Now()
						v, err := core.GetOrSet(ctx, r, key, failF(errSourceDown), opts...)
						if err == nil && v == val {
							if lag := readStart.Sub(setAt[k]); lag > maxLag {
								maxLag = lag
							}
							break
						}
						if readStart.Sub(setAt[k]) > bound {
							t.Fatalf("round %d: %s read %v after the Set returned serves %q, %v (want %q): past the bound %v",
								round, key, readStart.Sub(setAt[k]), v, err, val, bound)
						}
						time.Sleep(2 * time.Millisecond)
					}
				}
				if round == 3 {
					time.Sleep(2500 * time.Millisecond) // a quiet channel
				}
			}
			t.Logf("prefetch %d: slowest update seen %v after its Set returned; stats %+v / %+v", prefetch, maxLag, nodes[0].Stats(), nodes[1].Stats())
		})
	}
}

func waitServes(t *testing.T, c *core.Cache, key, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, err := core.GetOrSet(context.Background(), c, key, failF(errSourceDown), core.WithDuration(time.Hour))
		if err == nil && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: serves %q, %v; want %q", key, v, err, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
