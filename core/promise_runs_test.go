package core_test

// Regression tests of issue 14: every read path keeps the staleness and
// no-lost-update promises (docs/consistency.md). Each test is named for what
// broke; each failed (or did not compile) on 9834907.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

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
