package adversary

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }
func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}
func (f *fakeClock) Advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

// offsetClock is the system clock shifted by off.
type offsetClock struct{ off atomic.Int64 }

func (o *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(o.off.Load())) }

// hookObs calls hook for every event.
type hookObs struct {
	hook func(ctx context.Context, ev core.Event)
}

func (h *hookObs) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }
func (h *hookObs) OpEnd(context.Context, *core.OpInfo)                         {}
func (h *hookObs) Event(ctx context.Context, ev core.Event) {
	if h.hook != nil {
		h.hook(ctx, ev)
	}
}

func newCache(t testing.TB, o core.Options) *core.Cache {
	t.Helper()
	c, err := core.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type node struct {
	*core.Cache
	l2 *meml2.Store
	bp *membackplane.Backplane
}

var seq atomic.Int64

func newCluster(t *testing.T, n int, withL2 bool, mod func(i int, o *core.Options)) []*node {
	t.Helper()
	name := fmt.Sprintf("%s-%d", t.Name(), seq.Add(1))
	bus := membackplane.NewBus()
	nodes := make([]*node, n)
	for i := range nodes {
		var store *meml2.Store
		o := core.Options{Name: "cl", InstanceID: fmt.Sprint("node-", i)}
		if withL2 {
			s, err := meml2.NewShared(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			store = s
			o.L2 = s
		}
		bp := bus.Connect(nil)
		o.Backplane = bp
		if mod != nil {
			mod(i, &o)
		}
		c := newCache(t, o)
		t.Cleanup(func() {
			if store != nil {
				store.Close()
			}
			bp.Close()
		})
		nodes[i] = &node{Cache: c, l2: store, bp: bp}
	}
	for _, nd := range nodes {
		waitFor(t, "connected", func() bool { return !nd.Stats().Disconnected })
	}
	return nodes
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, 5*time.Second, 2*time.Millisecond, func() string {
		if cond() {
			return ""
		}
		return "timed out waiting for " + what
	})
}

// eventually calls check every step until it reports "" (done) or within
// has passed, then fails the test with check's last report. check may also
// fail the test at once.
func eventually(t *testing.T, within, step time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(step)
	}
}

func constF(v string) core.Factory[string] {
	return func(context.Context, *core.FactoryContext[string]) (string, error) { return v, nil }
}

func failF(err error) core.Factory[string] {
	return func(context.Context, *core.FactoryContext[string]) (string, error) { return "", err }
}

var errSourceDown = fmt.Errorf("source down")
