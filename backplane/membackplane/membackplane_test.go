package membackplane_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
)

// log records the callbacks of one subscription as strings: "msg:PAYLOAD" or
// the state's name.
type log struct {
	mu      sync.Mutex
	entries []string
	errs    []error
}

func (l *log) onMessage(p []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, "msg:"+string(p))
}

func (l *log) onState(s backplane.State, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, s.String())
	l.errs = append(l.errs, err)
}

func (l *log) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

func (l *log) want(t *testing.T, want ...string) {
	t.Helper()
	if got := l.get(); !slices.Equal(got, want) {
		t.Fatalf("callbacks %q, want %q", got, want)
	}
}

func subscribe(t *testing.T, n *membackplane.Backplane, channel string) *log {
	t.Helper()
	l := &log{}
	if _, err := n.Subscribe(context.Background(), channel, l.onMessage, l.onState); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return l
}

func publish(t *testing.T, n *membackplane.Backplane, channel, payload string) {
	t.Helper()
	if err := n.Publish(context.Background(), channel, []byte(payload)); err != nil {
		t.Fatalf("Publish(%q): %v", payload, err)
	}
}

func closeAll(nodes ...*membackplane.Backplane) {
	for _, n := range nodes {
		_ = n.Close()
	}
}

func TestNodeReceivesItsOwnPublications(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := membackplane.New(nil)
		defer n.Close()
		l := subscribe(t, n, "ch")
		publish(t, n, "ch", "mine")
		synctest.Wait()
		l.want(t, "connected", "msg:mine")
		if got, want := n.Stats(), (membackplane.Stats{Published: 1, Delivered: 1}); got != want {
			t.Errorf("Stats() = %+v, want %+v", got, want)
		}
	})
}

func TestSubscribeRejectsNilMessageFunc(t *testing.T) {
	n := membackplane.New(nil)
	defer n.Close()
	if _, err := n.Subscribe(context.Background(), "ch", nil, nil); err == nil || !strings.HasPrefix(err.Error(), "membackplane: ") {
		t.Fatalf("Subscribe(nil MessageFunc) = %v, want a membackplane error", err)
	}
}

func TestNilStateFuncIsAllowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := membackplane.New(nil)
		defer n.Close()
		got := make(chan string, 1)
		if _, err := n.Subscribe(context.Background(), "ch", func(p []byte) { got <- string(p) }, nil); err != nil {
			t.Fatal(err)
		}
		n.Disconnect()
		n.Reconnect()
		publish(t, n, "ch", "x")
		if p := <-got; p != "x" {
			t.Fatalf("got %q", p)
		}
	})
}

func TestPublishErrFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := membackplane.NewBus()
		a, b := bus.Connect(nil), bus.Connect(nil)
		defer closeAll(a, b)
		l := subscribe(t, b, "ch")
		boom := errors.New("boom")
		a.SetFault(membackplane.Fault{PublishErr: boom})
		err := a.Publish(context.Background(), "ch", []byte("x"))
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "membackplane: ") {
			t.Fatalf("Publish with PublishErr = %v, want a membackplane error wrapping %v", err, boom)
		}
		b.SetFault(membackplane.Fault{PublishErr: boom}) // b's fault does not stop b receiving
		a.ClearFault()
		publish(t, a, "ch", "y")
		synctest.Wait()
		l.want(t, "connected", "msg:y")
		if got := a.Stats().Published; got != 1 {
			t.Errorf("Published = %d, want 1 (the failed Publish does not count)", got)
		}
	})
}

func TestDelayFault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := membackplane.NewBus()
		a, b := bus.Connect(nil), bus.Connect(nil)
		defer closeAll(a, b)
		la, lb := subscribe(t, a, "ch"), subscribe(t, b, "ch")
		b.SetFault(membackplane.Fault{Delay: time.Second})
		publish(t, a, "ch", "1")
		time.Sleep(100 * time.Millisecond)
		publish(t, a, "ch", "2")
		synctest.Wait()
		la.want(t, "connected", "msg:1", "msg:2")
		lb.want(t, "connected")
		time.Sleep(900 * time.Millisecond)
		synctest.Wait()
		lb.want(t, "connected", "msg:1")
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		lb.want(t, "connected", "msg:1", "msg:2")

		// Clearing the fault keeps order: a payload published after a
		// delayed one waits for it.
		publish(t, a, "ch", "3")
		b.ClearFault()
		publish(t, a, "ch", "4")
		synctest.Wait()
		lb.want(t, "connected", "msg:1", "msg:2")
		time.Sleep(time.Second)
		synctest.Wait()
		lb.want(t, "connected", "msg:1", "msg:2", "msg:3", "msg:4")
	})
}

func TestDropIncomingFaultIsSilent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := membackplane.NewBus()
		a, b, c := bus.Connect(nil), bus.Connect(nil), bus.Connect(nil)
		defer closeAll(a, b, c)
		lb, lc := subscribe(t, b, "ch"), subscribe(t, c, "ch")
		b.SetFault(membackplane.Fault{DropIncoming: true})
		publish(t, a, "ch", "missed")
		publish(t, b, "ch", "sent anyway")
		b.ClearFault()
		publish(t, a, "ch", "seen")
		synctest.Wait()
		lb.want(t, "connected", "msg:seen")
		lc.want(t, "connected", "msg:missed", "msg:sent anyway", "msg:seen")
		if got := b.Stats(); got.Dropped != 2 || got.Delivered != 1 || got.Published != 1 {
			t.Errorf("b.Stats() = %+v, want 2 dropped, 1 delivered, 1 published", got)
		}
	})
}

func TestDisconnectAndReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := membackplane.NewBus()
		a, b := bus.Connect(nil), bus.Connect(nil)
		defer closeAll(a, b)
		lb := subscribe(t, b, "ch")
		publish(t, a, "ch", "before")
		b.Disconnect()
		b.Disconnect() // no-op
		synctest.Wait()
		lb.want(t, "connected", "msg:before", "disconnected")
		if err := lb.errs[1]; !errors.Is(err, membackplane.ErrDisconnected) {
			t.Errorf("Disconnected reported with %v, want ErrDisconnected", err)
		}
		if err := b.Publish(context.Background(), "ch", []byte("x")); !errors.Is(err, membackplane.ErrDisconnected) {
			t.Errorf("Publish while disconnected = %v, want ErrDisconnected", err)
		}
		if _, err := b.Subscribe(context.Background(), "ch", func([]byte) {}, nil); !errors.Is(err, membackplane.ErrDisconnected) {
			t.Errorf("Subscribe while disconnected = %v, want ErrDisconnected", err)
		}
		publish(t, a, "ch", "while down")
		b.Reconnect()
		b.Reconnect() // no-op
		publish(t, a, "ch", "after")
		publish(t, b, "ch", "from b")
		synctest.Wait()
		lb.want(t, "connected", "msg:before", "disconnected", "reconnected", "msg:after", "msg:from b")
		if lb.errs[2] != nil {
			t.Errorf("Reconnected reported with error %v", lb.errs[2])
		}
		if got := b.Stats().Dropped; got != 1 {
			t.Errorf("Dropped = %d, want 1 (the payload published while disconnected)", got)
		}
		a.Reconnect() // no-op on a connected node
		publish(t, a, "ch", "end")
		synctest.Wait()
		lb.want(t, "connected", "msg:before", "disconnected", "reconnected", "msg:after", "msg:from b", "msg:end")
	})
}

func TestQueueOverflowReportsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := membackplane.NewBus()
		a, b := bus.Connect(nil), bus.Connect(&membackplane.Options{QueueSize: 2})
		defer closeAll(a, b)
		l := &log{}
		release := make(chan struct{})
		onMessage := func(p []byte) {
			if string(p) == "block" {
				<-release
			}
			l.onMessage(p)
		}
		if _, err := b.Subscribe(context.Background(), "ch", onMessage, l.onState); err != nil {
			t.Fatal(err)
		}
		publish(t, a, "ch", "block")
		synctest.Wait() // the subscription's goroutine is blocked in its callback
		for _, p := range []string{"1", "2", "dropped 1", "dropped 2"} {
			publish(t, a, "ch", p) // never blocks
		}
		if got := b.Stats().Dropped; got != 2 {
			t.Errorf("Dropped = %d, want 2", got)
		}
		close(release)
		synctest.Wait() // the queue drains
		publish(t, a, "ch", "3")
		synctest.Wait()
		l.want(t, "connected", "msg:block", "msg:1", "msg:2", "lost", "msg:3")

		// A second run of drops is reported again.
		release = make(chan struct{})
		for _, p := range []string{"block", "4", "5", "dropped 3"} {
			publish(t, a, "ch", p)
			synctest.Wait()
		}
		close(release)
		synctest.Wait()
		l.want(t, "connected", "msg:block", "msg:1", "msg:2", "lost", "msg:3", "msg:block", "msg:4", "msg:5", "lost")
		if got, want := b.Stats(), (membackplane.Stats{Delivered: 7, Dropped: 3}); got != want {
			t.Errorf("b.Stats() = %+v, want %+v", got, want)
		}
	})
}

func TestSubscriptionCloseWaitsForCallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := membackplane.New(nil)
		defer n.Close()
		inside, release := make(chan struct{}), make(chan struct{})
		var calls int
		sub, err := n.Subscribe(context.Background(), "ch", func([]byte) {
			calls++
			close(inside)
			<-release
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, n, "ch", "1")
		publish(t, n, "ch", "2")
		<-inside
		closed := make(chan struct{})
		go func() {
			_ = sub.Close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Subscription.Close returned while its callback was running")
		default:
		}
		close(release)
		<-closed
		if calls != 1 {
			t.Fatalf("callback called %d times, want once (none after Close)", calls)
		}
	})
}

func TestCloseDoesNotWaitForDelayedDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := membackplane.New(nil)
		l := subscribe(t, n, "ch")
		n.SetFault(membackplane.Fault{Delay: time.Hour})
		publish(t, n, "ch", "late")
		synctest.Wait()
		start := time.Now()
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close waited %v", d)
		}
		l.want(t, "connected")
	})
}

func TestUseAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := membackplane.New(nil)
		sub, err := n.Subscribe(context.Background(), "ch", func([]byte) {}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if err := sub.Close(); err != nil {
			t.Fatalf("Subscription.Close after Close: %v", err)
		}
		if err := n.Publish(context.Background(), "ch", nil); !errors.Is(err, backplane.ErrClosed) || !strings.HasPrefix(err.Error(), "membackplane: ") {
			t.Errorf("Publish after Close = %v", err)
		}
		if _, err := n.Subscribe(context.Background(), "ch", func([]byte) {}, nil); !errors.Is(err, backplane.ErrClosed) {
			t.Errorf("Subscribe after Close = %v", err)
		}
		// Fault controls are harmless after Close.
		n.SetFault(membackplane.Fault{Delay: time.Second})
		n.Disconnect()
		n.Reconnect()
		n.ClearFault()
	})
}

func TestPayloadIsCopiedPerSubscription(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := membackplane.New(nil)
		defer n.Close()
		var got []string
		var mu sync.Mutex
		for range 2 {
			if _, err := n.Subscribe(context.Background(), "ch", func(p []byte) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, string(p))
				p[0] = 'X' // a careless subscriber does not affect the others
			}, nil); err != nil {
				t.Fatal(err)
			}
		}
		buf := []byte("abc")
		publish(t, n, "ch", string(buf))
		if err := n.Publish(context.Background(), "ch", buf); err != nil {
			t.Fatal(err)
		}
		buf[0] = 'Z'
		synctest.Wait()
		slices.Sort(got)
		if want := []string{"abc", "abc", "abc", "abc"}; !slices.Equal(got, want) {
			t.Fatalf("subscribers got %q, want %q", got, want)
		}
	})
}

func TestEveryNodeSeesOneOrder(t *testing.T) {
	bus := membackplane.NewBus()
	nodes := []*membackplane.Backplane{bus.Connect(nil), bus.Connect(nil), bus.Connect(nil)}
	defer closeAll(nodes...)
	logs := make([]*log, len(nodes))
	for i, n := range nodes {
		logs[i] = subscribe(t, n, "ch")
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			for j := range 100 {
				if err := n.Publish(context.Background(), "ch", fmt.Appendf(nil, "%d-%d", i, j)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for _, l := range logs {
		for len(l.get()) < 301 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	for i, l := range logs[1:] {
		if !slices.Equal(l.get(), logs[0].get()) {
			t.Errorf("node %d saw another order than node 0", i+1)
		}
	}
}

// TestCloseStopsEveryGoroutine runs in a synctest bubble and counts the
// bubble's goroutines only: runtime.NumGoroutine counted the whole process,
// and a goroutine of an earlier test still exiting, or the runtime's own,
// made it fail on a loaded machine. A goroutine that Close left behind
// would also fail synctest.Test itself (blocked goroutines remain).
func TestCloseStopsEveryGoroutine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := bubbleGoroutines(t)
		bus := membackplane.NewBus()
		var nodes []*membackplane.Backplane
		for range 3 {
			n := bus.Connect(&membackplane.Options{QueueSize: 4})
			nodes = append(nodes, n)
			for i := range 10 {
				if _, err := n.Subscribe(context.Background(), fmt.Sprint("ch", i%3), func([]byte) { time.Sleep(time.Millisecond) }, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		nodes[1].SetFault(membackplane.Fault{Delay: time.Hour})
		for i := range 50 {
			publish(t, nodes[i%3], fmt.Sprint("ch", i%3), "x")
		}
		synctest.Wait()
		if n := bubbleGoroutines(t); n < before+30 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines with 30 subscriptions, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		closeAll(nodes...)
		// Close waited for the goroutines (wg.Done); let them return.
		synctest.Wait()
		if n := bubbleGoroutines(t); n != before {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// bubbleGoroutines counts the goroutines of the caller's synctest bubble,
// from their headers in runtime.Stack ("goroutine 7 [chan receive,
// synctest bubble 3]:"). Call it after synctest.Wait: the header of a
// goroutine running on another thread does not name its bubble.
func bubbleGoroutines(t *testing.T) int {
	t.Helper()
	buf := make([]byte, 1<<10)
	own := string(buf[:runtime.Stack(buf, false)])
	_, rest, ok := strings.Cut(own, "synctest bubble ")
	id, _, ok2 := strings.Cut(rest, "]")
	if !ok || !ok2 {
		t.Fatalf("not in a synctest bubble: %q", own[:min(len(own), 100)])
	}
	buf = make([]byte, 1<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	return strings.Count(all, ", synctest bubble "+id+"]:\n")
}

func TestContextDone(t *testing.T) {
	n := membackplane.New(nil)
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Publish(ctx, "ch", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish = %v", err)
	}
	if _, err := n.Subscribe(ctx, "ch", func([]byte) {}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe = %v", err)
	}
}
