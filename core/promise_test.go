package core_test

// Regression tests of issue 14: every read path keeps the staleness and
// no-lost-update promises (docs/consistency.md). Each test is named for what
// broke; each failed (or did not compile) on 9834907.

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

// source is a versioned source of truth whose reads can be held: a factory
// reading it returns the version it read at its start.
type source struct {
	version atomic.Int64
	// hold, when set, is waited on by the factory after it read.
	mu      sync.Mutex
	hold    chan struct{}
	started chan struct{}
}

func newSource() *source {
	s := &source{}
	s.version.Store(1)
	return s
}

// holdNext makes the next factory call wait until the returned func is
// called; started is closed once it has read its version.
func (s *source) holdNext() (started <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.started = make(chan struct{}), make(chan struct{})
	h := s.hold
	var once sync.Once
	return s.started, func() { once.Do(func() { close(h) }) }
}

func (s *source) factory(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
	v := fmt.Sprint("v", s.version.Load())
	s.mu.Lock()
	hold, started := s.hold, s.started
	s.hold, s.started = nil, nil
	s.mu.Unlock()
	if hold != nil {
		close(started)
		<-hold
	}
	return v, nil
}

// getOrSetWithin runs GetOrSet and, if it has not returned within d, calls
// unblock (so that a test of the old behaviour ends) and reports it.
func getOrSetWithin(t *testing.T, c *core.Cache, key string, f core.Factory[string], d time.Duration, unblock func(), opts ...core.EntryOption) (string, bool) {
	t.Helper()
	type res struct {
		v   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		v, err := core.GetOrSet(context.Background(), c, key, f, opts...)
		ch <- res{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("GetOrSet(%q): %v", key, r.err)
		}
		return r.v, true
	case <-time.After(d):
		unblock()
		r := <-ch
		return r.v, false
	}
}

// applied runs change and waits until nd has applied a message about it.
func applied(t *testing.T, nd *node, change func()) {
	t.Helper()
	before := nd.Stats().BackplaneReceived
	change()
	waitFor(t, "the message applied", func() bool { return nd.Stats().BackplaneReceived > before })
}

// hookStore is a meml2 store that calls onGet before a Get of a key
// for which match is true.
type hookStore struct {
	*meml2.Store
	match func(key string) bool
	onGet func()
	// afterGet, when set, is called once the store has answered a matching
	// Get, before the answer goes back.
	afterGet func()
}

func (h *hookStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if h.match(key) && h.onGet != nil {
		h.onGet()
	}
	b, found, err := h.Store.Get(ctx, key)
	if h.match(key) && h.afterGet != nil {
		h.afterGet()
	}
	return b, found, err
}

// gatedBackplane delays Subscribe until open is closed (or its ctx ends,
// unless ignoreCtx), and counts the subscriptions not yet closed.
type gatedBackplane struct {
	*membackplane.Backplane
	open      chan struct{}
	ignoreCtx bool
	live      atomic.Int64
	calls     atomic.Int64
}

type countedSub struct {
	backplane.Subscription
	g    *gatedBackplane
	once sync.Once
}

func (s *countedSub) Close() error {
	s.once.Do(func() { s.g.live.Add(-1) })
	return s.Subscription.Close()
}

func (g *gatedBackplane) Subscribe(ctx context.Context, channel string, onMessage backplane.MessageFunc, onState backplane.StateFunc) (backplane.Subscription, error) {
	g.calls.Add(1)
	if g.ignoreCtx {
		<-g.open
	} else {
		select {
		case <-g.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	sub, err := g.Backplane.Subscribe(context.Background(), channel, onMessage, onState)
	if err != nil {
		return nil, err
	}
	g.live.Add(1)
	return &countedSub{Subscription: sub, g: g}, nil
}

type spy struct {
	mu   sync.Mutex
	msgs [][]byte
}

func membackplaneSpy(t *testing.T, nd *node) *spy {
	s := &spy{}
	sub, err := nd.bp.Subscribe(context.Background(), backplane.ChannelName("cluster"), func(p []byte) {
		s.mu.Lock()
		s.msgs = append(s.msgs, bytes.Clone(p))
		s.mu.Unlock()
	}, func(backplane.State, error) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return s
}

func (s *spy) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	waitFor(t, "messages captured", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.msgs) >= n })
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.msgs...)
}

// offsetClock is the system clock plus an offset that can step.
type offsetClock struct{ off atomic.Int64 }

func (o *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(o.off.Load())) }
