package core_test

// Regression tests of issue 14: every read path keeps the staleness and
// no-lost-update promises (docs/consistency.md). Each test is named for what
// broke; each failed (or did not compile) on 9834907.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
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

// TestGetOrSetAfterChangeDoesNotJoinSupersededRun: a GetOrSet that starts
// after a change of the key has returned (or after a message about it was
// applied) never waits for, nor returns, a factory run that began before
// the change (defect 1).
func TestGetOrSetAfterChangeDoesNotJoinSupersededRun(t *testing.T) {
	ctx := context.Background()
	changes := []struct {
		name   string
		change func(t *testing.T, nodes []*node)
	}{
		{"Remove", func(t *testing.T, n []*node) { n[1].Remove(ctx, "k") }},
		{"Expire", func(t *testing.T, n []*node) { n[1].Expire(ctx, "k") }},
		{"RemoveByTag", func(t *testing.T, n []*node) { n[1].RemoveByTag(ctx, "t") }},
		{"ExpireByTag", func(t *testing.T, n []*node) { n[1].ExpireByTag(ctx, "t") }},
		{"ClearRemove", func(t *testing.T, n []*node) { n[1].Clear(ctx, false) }},
		{"ClearExpire", func(t *testing.T, n []*node) { n[1].Clear(ctx, true) }},
		{"RemoveMessage", func(t *testing.T, n []*node) { applied(t, n[1], func() { n[0].Remove(ctx, "k") }) }},
		{"SetMessage", func(t *testing.T, n []*node) {
			applied(t, n[1], func() { core.Set(ctx, n[0].Cache, "k", "v2", core.WithDuration(time.Hour)) })
		}},
		{"RemoveByTagMessage", func(t *testing.T, n []*node) { applied(t, n[1], func() { n[0].RemoveByTag(ctx, "t") }) }},
		{"ClearMessage", func(t *testing.T, n []*node) { applied(t, n[1], func() { n[0].Clear(ctx, true) }) }},
	}
	for _, ch := range changes {
		t.Run(ch.name, func(t *testing.T) {
			nodes := newCluster(t, 2, nil)
			src := newSource()
			opts := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("t"), core.WithFailSafe(time.Hour, time.Second)}
			started, release := src.holdNext()
			defer release()
			first := make(chan string, 1)
			go func() {
				v, _ := core.GetOrSet(ctx, nodes[1].Cache, "k", src.factory, opts...)
				first <- v
			}()
			<-started // the slow run read v1
			src.version.Store(2)
			ch.change(t, nodes)
			v, returned := getOrSetWithin(t, nodes[1].Cache, "k", src.factory, 2*time.Second, release, opts...)
			if !returned || v != "v2" {
				t.Fatalf("GetOrSet after the change returned %q (returned before the old run ended: %v); want v2", v, returned)
			}
			release()
			if v := <-first; v != "v1" {
				t.Fatalf("the slow run returned %q, want v1", v)
			}
			if v := mustGetOrSet(t, nodes[1].Cache, "k", src.factory, opts...); v != "v2" {
				t.Fatalf("after the old run ended, GetOrSet returned %q; want v2 (the old run must not be cached)", v)
			}
		})
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

// TestGetDoesNotCacheL2ValueSupersededDuringItsReads: a set message that
// arrives while Get reads the entry and then the tag and Clear markers from
// L2 keeps the entry read out of L1 (defect 2): the next read finds the new
// value, not the old one served fresh for the entry's duration.
func TestGetDoesNotCacheL2ValueSupersededDuringItsReads(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("%s-%d", t.Name(), clusterSeq.Add(1))
	bus := membackplane.NewBus()
	mk := func(id string, store *hookStore) *core.Cache {
		bp := bus.Connect(nil)
		t.Cleanup(func() { bp.Close() })
		c := newCache(t, core.Options{Name: "cluster", InstanceID: id, L2: store, Backplane: bp})
		waitFor(t, "connected", func() bool { return !c.Stats().Disconnected })
		return c
	}
	shared := func() *meml2.Store {
		s, err := meml2.NewShared(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := mk("a", &hookStore{Store: shared(), match: func(string) bool { return false }})
	bStore := &hookStore{Store: shared(), match: func(k string) bool { return bytes.Contains([]byte(k), []byte("clear-")) }}
	b := mk("b", bStore)
	applied(t, &node{Cache: b}, func() {
		if err := core.Set(ctx, a, "k", "v1", core.WithDuration(time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
	var once sync.Once
	bStore.onGet = func() {
		once.Do(func() {
			before := b.Stats().BackplaneReceived
			core.Set(ctx, a, "k", "v2", core.WithDuration(time.Hour))
			waitFor(t, "B applied the set", func() bool { return b.Stats().BackplaneReceived > before })
		})
	}
	if v, ok := get(t, b, "k"); !ok || v != "v1" {
		t.Fatalf("first Get = %q, %v; want v1 (read before the change)", v, ok)
	}
	if v, ok := get(t, b, "k"); !ok || v != "v2" {
		t.Fatalf("Get after the set message was applied = %q, %v; want v2", v, ok)
	}
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

// TestFirstSubscriptionExpiresWhatWasLoadedBefore: a node that loads a key
// before its first subscription is live, and so misses a change published
// meanwhile, does not serve the old value once connected (defect 3); Ready
// tells when the subscription is live.
func TestFirstSubscriptionExpiresWhatWasLoadedBefore(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("%s-%d", t.Name(), clusterSeq.Add(1))
	bus := membackplane.NewBus()
	storeA, _ := meml2.NewShared(name, nil)
	storeB, _ := meml2.NewShared(name, nil)
	bpA := bus.Connect(nil)
	gated := &gatedBackplane{Backplane: bus.Connect(nil), open: make(chan struct{})}
	t.Cleanup(func() { storeA.Close(); storeB.Close(); bpA.Close(); gated.Close() })
	a := newCache(t, core.Options{Name: "cluster", InstanceID: "a", L2: storeA, Backplane: bpA})
	waitFor(t, "A connected", func() bool { return !a.Stats().Disconnected })
	core.Set(ctx, a, "k", "v1", core.WithDuration(time.Hour))

	b := newCache(t, core.Options{Name: "cluster", InstanceID: "b", L2: storeB, Backplane: gated})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.Ready(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ready before the subscription = %v, want the context's deadline", err)
	}
	if v, _ := get(t, b, "k"); v != "v1" {
		t.Fatalf("B's first read = %q, want v1", v)
	}
	// A change B cannot hear of: its subscription is not live yet.
	core.Set(ctx, a, "k", "v2", core.WithDuration(time.Hour))
	close(gated.open)
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if v, _ := get(t, b, "k"); v != "v2" {
		t.Fatalf("B serves %q after its subscription went live; want v2 (what it loaded before may have missed changes)", v)
	}
}

// TestWaitForInitialSubscribe: New waits for the first subscription, and
// fails naming the backplane when it does not come in time.
func TestWaitForInitialSubscribe(t *testing.T) {
	bus := membackplane.NewBus()
	gated := &gatedBackplane{Backplane: bus.Connect(nil), open: make(chan struct{})}
	t.Cleanup(func() { gated.Close() })
	_, err := core.New(core.Options{Name: "w", Backplane: gated, WaitForInitialSubscribe: 100 * time.Millisecond})
	var se *core.SubscribeError
	if !errors.As(err, &se) || se.Backplane == "" || se.Timeout != 100*time.Millisecond {
		t.Fatalf("New with a subscription that never comes = %v, want a *SubscribeError naming the backplane", err)
	}
	if n := gated.live.Load(); n != 0 {
		t.Fatalf("%d subscriptions left after New failed", n)
	}
	close(gated.open)
	c := newCache(t, core.Options{Name: "w", Backplane: gated, WaitForInitialSubscribe: 5 * time.Second})
	if c.Stats().Disconnected {
		t.Fatal("New returned with WaitForInitialSubscribe before the subscription was live")
	}
	if err := c.Ready(context.Background()); err != nil {
		t.Fatalf("Ready = %v", err)
	}
	if _, err := core.New(core.Options{WaitForInitialSubscribe: -1}); err == nil {
		t.Fatal("a negative WaitForInitialSubscribe was accepted")
	}
}

// TestCloseDuringSubscribeLeavesNoSubscription: a subscription that the
// transport confirms after Close began is closed too (defect 5).
func TestCloseDuringSubscribeLeavesNoSubscription(t *testing.T) {
	bus := membackplane.NewBus()
	gated := &gatedBackplane{Backplane: bus.Connect(nil), open: make(chan struct{}), ignoreCtx: true}
	t.Cleanup(func() { gated.Close() })
	c, err := core.New(core.Options{Name: "leak", Backplane: gated})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "Subscribe called", func() bool { return gated.calls.Load() > 0 })
	go func() {
		time.Sleep(20 * time.Millisecond) // the server confirms while Close runs
		close(gated.open)
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := gated.live.Load(); n != 0 {
		t.Fatalf("%d subscriptions live after Close returned", n)
	}
	if err := c.Ready(context.Background()); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Ready after Close = %v, want ErrClosed", err)
	}
}

// TestGetOrSetManyTypeErrorLeavesNoFlight: a GetOrSetMany that fails on a
// key holding another type leaves no flight behind for the other keys
// (defect 4): a later GetOrSet of them does not hang.
func TestGetOrSetManyTypeErrorLeavesNoFlight(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	core.Set(ctx, c, "int", 42)
	_, err := core.GetOrSetMany(ctx, c, []string{"a", "b", "int"}, func(context.Context, []string) (map[string]string, error) {
		return map[string]string{"a": "A", "b": "B"}, nil
	})
	var te *core.TypeError
	if !errors.As(err, &te) {
		t.Fatalf("GetOrSetMany = %v, want a *TypeError", err)
	}
	if n := core.RunningFlights(c); n != 0 {
		t.Fatalf("%d flights left behind", n)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if v, err := core.GetOrSet(short, c, "a", constant("fresh")); err != nil || v != "fresh" {
		t.Fatalf("GetOrSet(a) after the failed batch = %q, %v", v, err)
	}
}

// TestEagerRefreshWithL2CallsTheFactory: an eager refresh reads L2 first
// but takes only a newer version from it; finding the same one, it calls
// the factory (defect 6), so callers do not wait for the source at expiry.
func TestEagerRefreshWithL2CallsTheFactory(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk, L2: meml2.New(nil)})
	var calls atomic.Int64
	factory := func(context.Context, *core.FactoryContext[string]) (string, error) {
		return fmt.Sprint("v", calls.Add(1)), nil
	}
	opts := []core.EntryOption{core.WithDuration(time.Second), core.WithEagerRefresh(0.5)}
	if v := mustGetOrSet(t, c, "k", factory, opts...); v != "v1" {
		t.Fatalf("first = %q", v)
	}
	clk.Advance(600 * time.Millisecond)
	if v := mustGetOrSet(t, c, "k", factory, opts...); v != "v1" {
		t.Fatalf("hit past the threshold = %q, want the cached v1", v)
	}
	waitFor(t, "the refresh to call the factory", func() bool { return calls.Load() == 2 })
	waitFor(t, "the refreshed value", func() bool {
		v, _, _ := core.Get[string](ctx, c, "k")
		return v == "v2"
	})
	clk.Advance(450 * time.Millisecond) // past the first entry's expiry, before the refreshed one's threshold
	if v := mustGetOrSet(t, c, "k", factory, opts...); v != "v2" || calls.Load() != 2 {
		t.Fatalf("at the old expiry = %q after %d factory calls; want v2 from the refresh, no wait", v, calls.Load())
	}
}

// TestHugeDurationsMeanForever: math.MaxInt64 as a duration means "never"
// (capped at core.MaxDuration), not an overflow that caches nothing or
// turns fail-safe off (defect 8).
func TestHugeDurationsMeanForever(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	c := newCache(t, core.Options{Clock: clk, L2: meml2.New(nil)})
	if err := core.Set(ctx, c, "k", "v", core.WithDuration(math.MaxInt64)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * 365 * 24 * time.Hour)
	if v, ok := get(t, c, "k"); !ok || v != "v" {
		t.Fatalf("Set with MaxInt64 duration: Get = %q, %v 50 years later", v, ok)
	}
	opts := []core.EntryOption{core.WithDuration(time.Second), core.WithFailSafe(math.MaxInt64, time.Second)}
	mustGetOrSet(t, c, "fs", constant("old"), opts...)
	clk.Advance(time.Hour)
	v, err := core.GetOrSet(ctx, c, "fs", failing[string](errors.New("down")), opts...)
	if err != nil || v != "old" {
		t.Fatalf("fail-safe with a MaxInt64 max duration = %q, %v; want the stale value", v, err)
	}
	newCache(t, core.Options{TombstoneTTL: math.MaxInt64, BackplaneStalenessBound: math.MaxInt64, CloseTimeout: math.MaxInt64})
}

// TestReplayedSignedMessageIsRejected: with signing on, replaying a
// captured message (a probe will do) is dropped and counted as rejected; it
// does not expire anybody's L1 (defect 9).
func TestReplayedSignedMessageIsRejected(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("k"), 32)
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneSigningKeys = [][]byte{key}
		o.BackplaneStalenessBound = 2 * time.Second // a scheduling hiccup on a loaded machine is not late
	})
	a, b := nodes[0], nodes[1]
	// Capture A's messages from a connection of the attacker's.
	spy := membackplaneSpy(t, a)
	core.Set(ctx, a.Cache, "k", "v1", core.WithDuration(time.Hour))
	mustGetOrSet(t, b.Cache, "k", constant("unused"), core.WithDuration(time.Hour))
	var captured [][]byte // A's messages: the set and probes
	kr, _ := backplane.NewKeyring(key)
	waitFor(t, "A's messages captured", func() bool {
		captured = captured[:0]
		for _, p := range spy.wait(t, 1) {
			body, err := kr.Open(nil, p)
			if err != nil {
				t.Fatal(err)
			}
			if m, err := backplane.DecodeMessage(body); err == nil && strings.HasPrefix(m.Source, "node-0/") {
				captured = append(captured, p)
			}
		}
		return len(captured) >= 2
	})
	time.Sleep(1200 * time.Millisecond) // the captured messages are now "late"
	losses, rejected := b.Stats().LossEvents, b.Stats().BackplaneRejected
	for range 5 {
		for _, p := range captured {
			if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := rejected + uint64(5*len(captured))
	waitFor(t, "every replay rejected", func() bool { return b.Stats().BackplaneRejected >= want })
	if l := b.Stats().LossEvents; l != losses {
		t.Fatalf("replays caused %d loss events (L1 expired)", l-losses)
	}
	if v, ok := get(t, b.Cache, "k"); !ok || v != "v1" {
		t.Fatalf("B serves %q, %v after the replays; want v1 untouched", v, ok)
	}
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

// TestTransientClockStepHeals: a sender's clock that jumps ahead for a
// moment and back makes its later messages look late for at most about one
// staleness bound, not forever (defect 10).
func TestTransientClockStepHeals(t *testing.T) {
	const bound = time.Second
	clocks := []*offsetClock{{}, {}}
	nodes := newCluster(t, 2, func(o *core.Options) {
		o.BackplaneStalenessBound = bound
		o.Clock = clocks[0]
		if o.InstanceID == "node-1" {
			o.Clock = clocks[1]
		}
	})
	b := nodes[1]
	time.Sleep(bound) // probes flow both ways
	clocks[0].off.Store(int64(3 * time.Second))
	time.Sleep(3 * bound / 2)
	clocks[0].off.Store(0)
	time.Sleep(5 * bound / 2) // the step is forgotten within about one bound
	before := b.Stats().LossEvents
	time.Sleep(3 * bound)
	// Before the fix, one every half bound (6 here); allow one for a
	// scheduling hiccup of a loaded machine.
	if n := b.Stats().LossEvents - before; n > 1 {
		t.Fatalf("%d loss events long after the sender's clock stepped back", n)
	}
}

// TestL2ErrorClassification: one rule (l2.Classify) for what an L2 error
// means (defect 7): a call the caller cancelled is no store failure; bytes
// that are not an entry are a corrupt miss; a key refused for good is final.
// None of them opens the breaker, so other keys go on being written.
func TestL2ErrorClassification(t *testing.T) {
	ctx := context.Background()
	store := meml2.New(nil)
	c := newCache(t, core.Options{L2: store, L2CircuitBreakerDuration: time.Hour})
	healthy := func(what string) {
		t.Helper()
		s := c.Stats()
		if s.L2Errors != 0 || s.RecoveryQueued != 0 {
			t.Fatalf("after %s: L2Errors %d, RecoveryQueued %d; want 0, 0", what, s.L2Errors, s.RecoveryQueued)
		}
		key := "other-" + what
		if err := core.Set(ctx, c, key, "x"); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := store.Get(ctx, key); !found {
			t.Fatalf("after %s the breaker stopped the writes of other keys", what)
		}
	}

	// a. The caller's context ends while L2 is slow.
	store.SetFault(meml2.Fault{Delay: time.Hour})
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, found, err := core.Get[string](cctx, c, "slow"); found || err != nil {
		t.Fatalf("Get with a context that ended = %v, %v", found, err)
	}
	cancel()
	store.ClearFault()
	healthy("a cancelled read")

	// b. A foreign writer's value under a cache key.
	if err := store.Set(ctx, "foreign", []byte("hello"), time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, c, "foreign"); found {
		t.Fatal("a foreign value was served")
	}
	if n := c.Stats().L2Corrupt; n != 1 {
		t.Fatalf("L2Corrupt = %d after a foreign value, want 1", n)
	}
	healthy("a foreign value")

	// c. A key holding a value of another type: final, not replayed.
	if err := store.SetWrongType("wrongtype", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, c, "wrongtype"); found {
		t.Fatal("a wrong-type key was served")
	}
	if err := core.Set(ctx, c, "wrongtype", "v"); err != nil {
		t.Fatal(err)
	}
	healthy("a wrong-type key")
	if v, ok := get(t, c, "wrongtype"); !ok || v != "v" {
		t.Fatalf("the value refused by L2 is not in L1: %q, %v", v, ok)
	}
}

// TestReadUnderWayAtLossIsNotConfirmedAfterIt: an L2 read that began before
// the node noticed it may have missed messages (its first subscription
// going live, a reconnection) and ends after it is confirmed as of its
// start, so the loss expires it: the value it read, replaced meanwhile by a
// change the node missed, is not served past the bound (adversarial review
// of issue 14, findings 1 and 2).
func TestReadUnderWayAtLossIsNotConfirmedAfterIt(t *testing.T) {
	const bound = 500 * time.Millisecond
	for _, how := range []string{"first subscription", "reconnection"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			name := fmt.Sprintf("%s-%d", t.Name(), clusterSeq.Add(1))
			bus := membackplane.NewBus()
			storeB, _ := meml2.NewShared(name, nil)
			inner, _ := meml2.NewShared(name, nil)
			bpB, bpA := bus.Connect(nil), bus.Connect(nil)
			gated := &gatedBackplane{Backplane: bpA, open: make(chan struct{})}
			if how == "reconnection" {
				close(gated.open)
			}
			t.Cleanup(func() { storeB.Close(); inner.Close(); bpB.Close(); bpA.Close() })
			b := newCache(t, core.Options{Name: "cluster", InstanceID: "b", L2: storeB, Backplane: bpB})
			hook := &hookStore{Store: inner, match: func(k string) bool { return k == "k" }}
			a := newCache(t, core.Options{Name: "cluster", InstanceID: "a", L2: hook, Backplane: gated, BackplaneStalenessBound: bound})
			if how == "reconnection" {
				if err := a.Ready(ctx); err != nil {
					t.Fatal(err)
				}
				bpA.Disconnect()
				waitFor(t, "A disconnected", func() bool { return a.Stats().Disconnected })
			}
			core.Set(ctx, b, "k", "v1", core.WithDuration(time.Hour))
			read, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			hook.afterGet = func() { once.Do(func() { close(read); <-release }) }
			first := make(chan string, 1)
			go func() { v, _ := get(t, a, "k"); first <- v }()
			<-read                                                    // A's read found v1 in L2 and is held
			core.Set(ctx, b, "k", "v2", core.WithDuration(time.Hour)) // A cannot hear of it
			changed := time.Now()
			if how == "reconnection" {
				losses := a.Stats().LossEvents
				bpA.Reconnect()
				waitFor(t, "A's loss event", func() bool { return a.Stats().LossEvents > losses })
			} else {
				close(gated.open)
				if err := a.Ready(ctx); err != nil {
					t.Fatal(err)
				}
			}
			close(release)
			<-first // v1: the read overlapped the change
			time.Sleep(bound + 100*time.Millisecond - time.Since(changed))
			if v, _ := get(t, a, "k"); v != "v2" {
				t.Fatalf("A serves %q %v after the change it missed (bound %v); want v2", v, time.Since(changed).Round(time.Millisecond), bound)
			}
		})
	}
}

// TestClockStepForwardKeepsLaterChangesLater: after a node's clock stepped
// forward and back, a change another node makes after hearing of its
// changes is newer than them (versions form a hybrid logical clock): a
// RemoveByTag applies to an entry the node produced after the step, and a
// later Set wins in L2 and on every node (adversarial review of issue 14,
// finding 3). Expiry and confirmation stay on the clock.
func TestClockStepForwardKeepsLaterChangesLater(t *testing.T) {
	ctx := context.Background()
	clk := &offsetClock{}
	nodes := newCluster(t, 3, func(o *core.Options) {
		o.BackplaneStalenessBound = 400 * time.Millisecond
		if o.InstanceID == "node-0" {
			o.Clock = clk
		}
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	clk.off.Store(int64(time.Hour))
	core.Set(ctx, a.Cache, "during", "x")
	a.RemoveByTag(ctx, "other")
	time.Sleep(50 * time.Millisecond)
	clk.off.Store(0)
	time.Sleep(200 * time.Millisecond) // A's messages reach B and C
	src := newSource()
	tagged := []core.EntryOption{core.WithDuration(time.Hour), core.WithTags("tg")}
	if v := mustGetOrSet(t, a.Cache, "k", src.factory, tagged...); v != "v1" {
		t.Fatal(v)
	}
	// B hears of A's entry (reading it adopts its version), then removes
	// its tag: a change made after hearing of the entry.
	waitFor(t, "B reads A's entry", func() bool { v, _ := get(t, b.Cache, "k"); return v == "v1" })
	src.version.Store(2)
	applied(t, a, func() { b.RemoveByTag(ctx, "tg") })
	if v := mustGetOrSet(t, a.Cache, "k", src.factory, tagged...); v != "v2" {
		t.Fatalf("A's entry produced after its clock came back survived B's later RemoveByTag: %q", v)
	}
	core.Set(ctx, a.Cache, "k2", "1", core.WithDuration(time.Hour))
	waitFor(t, "B reads A's k2", func() bool { v, _ := get(t, b.Cache, "k2"); return v == "1" })
	applied(t, c, func() { core.Set(ctx, b.Cache, "k2", "2", core.WithDuration(time.Hour)) })
	for i, n := range nodes {
		var v string
		deadline := time.Now().Add(5 * time.Second)
		for v != "2" && time.Now().Before(deadline) {
			v, _ = core.GetOrSet(ctx, n.Cache, "k2", constant("from the source"))
			time.Sleep(5 * time.Millisecond)
		}
		if v != "2" {
			raw, found, _ := n.l2.Get(ctx, "k2")
			env, _ := l2.DecodeEnvelope(raw)
			t.Fatalf("node %d serves %q after A's Set then B's later one; L2 holds %v (found %v), stats %+v", i, v, env, found, n.Stats())
		}
	}
	if _, ok := get(t, a.Cache, "during"); !ok {
		t.Fatal("the entry set during the step is gone: expiry must run on the clock, not on versions")
	}
}

// TestNilContextIsAnError: a nil context is an *OptionError naming ctx,
// not a panic (adversarial review of issue 14).
func TestNilContextIsAnError(t *testing.T) {
	c := newCache(t, core.Options{L2: meml2.New(nil)})
	var nilCtx context.Context
	calls := map[string]func() error{
		"GetOrSet": func() error { _, err := core.GetOrSet(nilCtx, c, "k", constant("v")); return err },
		"Get":      func() error { _, _, err := core.Get[string](nilCtx, c, "k"); return err },
		"Set":      func() error { return core.Set(nilCtx, c, "k", "v") },
		"GetOrSetMany": func() error {
			_, err := core.GetOrSetMany(nilCtx, c, []string{"k"}, func(context.Context, []string) (map[string]string, error) { return nil, nil })
			return err
		},
		"Remove":      func() error { return c.Remove(nilCtx, "k") },
		"Expire":      func() error { return c.Expire(nilCtx, "k") },
		"RemoveByTag": func() error { return c.RemoveByTag(nilCtx, "t") },
		"ExpireByTag": func() error { return c.ExpireByTag(nilCtx, "t") },
		"Clear":       func() error { return c.Clear(nilCtx, true) },
		"Ready":       func() error { return c.Ready(nilCtx) },
	}
	for name, call := range calls {
		var oe *core.OptionError
		if err := call(); !errors.As(err, &oe) || oe.Field != "ctx" {
			t.Errorf("%s with a nil context = %v, want an *OptionError naming ctx", name, err)
		}
	}
}

// TestSlowProductionIsNotLateElsewhere: a change whose message goes out
// long after its version (a slow factory, a slow L2 write) does not look
// like a late delivery to the other nodes, which would expire their whole
// L1 each time (adversarial review of issue 14, round 2).
func TestSlowProductionIsNotLateElsewhere(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, func(o *core.Options) { o.BackplaneStalenessBound = time.Second })
	a, b := nodes[0], nodes[1]
	time.Sleep(300 * time.Millisecond) // probes set the baselines
	losses := b.Stats().LossEvents
	slow := func(context.Context, *core.FactoryContext[string]) (string, error) {
		time.Sleep(700 * time.Millisecond)
		return "v", nil
	}
	for i := range 2 {
		applied(t, b, func() { mustGetOrSet(t, a.Cache, fmt.Sprint("slow-", i), slow) })
	}
	a.l2.SetFault(meml2.Fault{Delay: 700 * time.Millisecond})
	for i := range 2 {
		applied(t, b, func() { core.Set(ctx, a.Cache, fmt.Sprint("set-", i), "v") })
	}
	a.l2.ClearFault()
	if n := b.Stats().LossEvents - losses; n != 0 {
		t.Fatalf("slow factories and slow L2 writes on A made B expire its L1 %d times", n)
	}
}

// TestReplayOfAnEarlierRunIsRejected: a restarted node that keeps its
// InstanceID is a new sender (its run id differs), so replaying messages
// captured from its earlier run expires nothing (adversarial review of
// issue 14, round 2).
func TestReplayOfAnEarlierRunIsRejected(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("k"), 32)
	name := fmt.Sprintf("%s-%d", t.Name(), clusterSeq.Add(1))
	bus := membackplane.NewBus()
	mk := func(id string) (*core.Cache, *membackplane.Backplane) {
		store, _ := meml2.NewShared(name, nil)
		bp := bus.Connect(nil)
		c, err := core.New(core.Options{Name: "cluster", InstanceID: id, L2: store, Backplane: bp,
			BackplaneSigningKeys: [][]byte{key}, WaitForInitialSubscribe: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); store.Close(); bp.Close() })
		return c, bp
	}
	b, _ := mk("b")
	s1, bp1 := mk("s")
	var mu sync.Mutex
	var captured [][]byte
	sub, err := bp1.Subscribe(ctx, backplane.ChannelName("cluster"), func(p []byte) {
		mu.Lock()
		captured = append(captured, bytes.Clone(p))
		mu.Unlock()
	}, func(backplane.State, error) {})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		applied(t, &node{Cache: b}, func() { core.Set(ctx, s1, fmt.Sprint("k", i), "v") })
	}
	sub.Close()
	s1.Close()
	s2, bp2 := mk("s") // the same InstanceID, a new run
	applied(t, &node{Cache: b}, func() { core.Set(ctx, s2, "k0", "new") })
	losses, rejected := b.Stats().LossEvents, b.Stats().BackplaneRejected
	mu.Lock()
	last := captured[len(captured)-1] // the earlier run's highest number
	mu.Unlock()
	for range 3 {
		if err := bp2.Publish(ctx, backplane.ChannelName("cluster"), last); err != nil {
			t.Fatal(err)
		}
		applied(t, &node{Cache: b}, func() { core.Set(ctx, s2, "k0", "newer") })
	}
	if n := b.Stats().LossEvents - losses; n != 0 {
		t.Fatalf("replays of the earlier run expired B's L1 %d times", n)
	}
	if b.Stats().BackplaneRejected == rejected {
		t.Fatal("no replay was rejected")
	}
}

// TestFarFutureVersionsAreRejected: a message, an L2 entry or a marker
// whose version is more than a day ahead of the node's clock (a broken
// clock, a forgery without signing) is dropped and counted, not applied: its
// time would outlast every later change (adversarial review of issue 14,
// round 2).
func TestFarFutureVersionsAreRejected(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	future := time.Now().Add(25 * time.Hour).UnixNano()
	rejected := b.Stats().BackplaneRejected
	for i, act := range []backplane.Action{backplane.ActionClearRemove, backplane.ActionRemoveTag, backplane.ActionRemove} {
		m := backplane.Message{Cache: "cluster", Source: "forger/1", Seq: uint64(i + 1), Action: act, Key: "t", Timestamp: future}
		if act == backplane.ActionClearRemove {
			m.Key = ""
		}
		raw, _ := m.AppendBinary(nil)
		if err := a.bp.Publish(ctx, backplane.ChannelName("cluster"), raw); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the forgeries rejected", func() bool { return b.Stats().BackplaneRejected >= rejected+3 })
	var calls atomic.Int64
	counting := func(context.Context, *core.FactoryContext[string]) (string, error) { calls.Add(1); return "v", nil }
	for range 3 {
		mustGetOrSet(t, b.Cache, "t", counting, core.WithTags("t"))
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the factory ran %d times for 3 reads: caching is off", n)
	}
	// An L2 entry from far in the future is corrupt, not a version to beat.
	env := l2.Envelope{Created: future, Expires: future, Value: []byte(`"far"`)}
	raw, _ := env.AppendBinary(nil)
	if err := a.l2.Set(ctx, "future", raw, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, found := get(t, b.Cache, "future"); found {
		t.Fatal("an entry from far in the future was served")
	}
	if err := core.Set(ctx, b.Cache, "future", "now"); err != nil {
		t.Fatal(err)
	}
	if v, _ := get(t, a.Cache, "future"); v != "now" {
		t.Fatalf("A reads %q after B's Set over a far-future entry", v)
	}
}

// TestStampedeProtectionHoldsUnderOtherTagInvalidations: invalidations of
// tags a run does not carry, on this node or others, do not stop callers
// from joining it: the source is called once (adversarial review of issue
// 14, round 2: 19 calls for 40 callers before).
func TestStampedeProtectionHoldsUnderOtherTagInvalidations(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	var calls atomic.Int64
	slow := func(context.Context, *core.FactoryContext[string]) (string, error) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond)
		return "v", nil
	}
	stop := make(chan struct{})
	churn := make(chan struct{})
	go func() {
		defer close(churn)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			a.RemoveByTag(ctx, fmt.Sprint("other-", i))
			b.ExpireByTag(ctx, fmt.Sprint("else-", i))
		}
	}()
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := core.GetOrSet(ctx, a.Cache, "hot", slow, core.WithTags("mine")); err != nil || v != "v" {
				t.Errorf("GetOrSet = %q, %v", v, err)
			}
		}()
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	<-churn
	if n := calls.Load(); n != 1 {
		t.Fatalf("the factory ran %d times for 30 callers of one cold key", n)
	}
}

// TestJoinerChecksTagsTheFactoryAdded: a caller that joins a run after a
// RemoveByTag of a tag only the factory adds (unknown when the run started)
// does not return that run's result: it runs again (the rule of defect 1
// for tags known only at the end).
func TestJoinerChecksTagsTheFactoryAdded(t *testing.T) {
	ctx := context.Background()
	c := newCache(t, core.Options{})
	src := newSource()
	tagging := func(ctx context.Context, fc *core.FactoryContext[string]) (string, error) {
		fc.Options.Tags = append(fc.Options.Tags, "added")
		return src.factory(ctx, fc)
	}
	started, release := src.holdNext()
	defer release()
	first := make(chan string, 1)
	go func() { v, _ := core.GetOrSet(ctx, c, "k", tagging); first <- v }()
	<-started
	src.version.Store(2)
	if err := c.RemoveByTag(ctx, "added"); err != nil {
		t.Fatal(err)
	}
	second := make(chan string, 1)
	go func() { v, _ := core.GetOrSet(ctx, c, "k", tagging); second <- v }()
	time.Sleep(50 * time.Millisecond) // it joined the held run
	release()
	if v := <-first; v != "v1" {
		t.Fatalf("the run's own caller got %q", v)
	}
	if v := <-second; v != "v2" {
		t.Fatalf("a caller that joined after RemoveByTag(added) got %q; want v2", v)
	}
}

// TestFarFutureL2EntryIsReplaced: an L2 entry whose version is more than a
// day ahead (written by a node with a broken clock) is read as corrupt and
// replaced by the next write, which a conditional store would otherwise
// refuse for good: caching and later changes work again (adversarial
// review of issue 14, round 2).
func TestFarFutureL2EntryIsReplaced(t *testing.T) {
	ctx := context.Background()
	nodes := newCluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	future := time.Now().Add(25 * time.Hour).UnixNano()
	for _, tomb := range []bool{false, true} {
		env := l2.Envelope{Created: future, Expires: future, Value: []byte(`"far"`)}
		if tomb {
			env = l2.Envelope{Flags: l2.FlagTombstone, Created: future, Expires: future}
		}
		raw, _ := env.AppendBinary(nil)
		if err := a.l2.Set(ctx, "k", raw, time.Hour); err != nil {
			t.Fatal(err)
		}
		var calls atomic.Int64
		counting := func(context.Context, *core.FactoryContext[string]) (string, error) { calls.Add(1); return "v", nil }
		for range 3 {
			mustGetOrSet(t, b.Cache, "k", counting)
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("tombstone %v: the factory ran %d times for 3 reads", tomb, n)
		}
		if err := core.Set(ctx, a.Cache, "k", "set"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "B serves A's Set", func() bool { v, _ := get(t, b.Cache, "k"); return v == "set" })
		applied(t, b, func() { a.Remove(ctx, "k") })
	}
}
