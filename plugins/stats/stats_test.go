package stats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
	"github.com/stratacache/strata/plugins/stats"
)

func newCache(t testing.TB, st *stats.Plugin, o core.Options) *core.Cache {
	t.Helper()
	o.Plugins = append(o.Plugins, st)
	c, err := core.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if errs := c.PluginErrors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	return c
}

func value(v string) core.Factory[string] {
	return func(context.Context, *core.FactoryContext[string]) (string, error) { return v, nil }
}

func loadV(context.Context, *core.FactoryContext[string]) (string, error) { return "v", nil }

func failing(context.Context, *core.FactoryContext[string]) (string, error) {
	return "", errors.New("source down")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCountsLookups(t *testing.T) {
	ctx := context.Background()
	st := stats.New()
	c := newCache(t, st, core.Options{Name: "users"})
	core.GetOrSet(ctx, c, "a", value("A")) // miss
	for range 5 {
		core.GetOrSet(ctx, c, "a", value("A")) // hits, on the fast path
	}
	core.Get[string](ctx, c, "a")       // hit, through Event
	core.Get[string](ctx, c, "missing") // miss
	s := st.Snapshot()
	if s.Hits != 6 || s.Misses != 2 || s.StaleHits != 0 {
		t.Fatalf("hits %d, misses %d, stale %d; want 6, 2, 0", s.Hits, s.Misses, s.StaleHits)
	}
	if s.HitRatio != 0.75 {
		t.Fatalf("hit ratio %v, want 0.75", s.HitRatio)
	}
	if s.Cache != "users" || s.Status != stats.StatusOK || s.InstanceID == "" {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestCountsFailSafeAndFactoryTrouble(t *testing.T) {
	ctx := context.Background()
	st := stats.New()
	c := newCache(t, st, core.Options{})
	fs := core.WithFailSafe(time.Hour, time.Minute)
	core.GetOrSet(ctx, c, "k", value("v1"), core.WithDuration(10*time.Millisecond), fs)
	time.Sleep(20 * time.Millisecond)
	// The factory fails: the stale value is served.
	if v, err := core.GetOrSet(ctx, c, "k", failing, fs); err != nil || v != "v1" {
		t.Fatalf("GetOrSet = %q, %v", v, err)
	}
	// A factory without a stale value fails.
	core.GetOrSet(ctx, c, "other", failing)
	// Soft and hard timeouts.
	slow := func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
		time.Sleep(200 * time.Millisecond)
		return "late", nil
	}
	core.GetOrSet(ctx, c, "soft", value("s"), core.WithDuration(10*time.Millisecond), fs)
	time.Sleep(20 * time.Millisecond)
	core.GetOrSet(ctx, c, "soft", slow, fs, core.WithFactoryTimeouts(10*time.Millisecond, 0))
	core.GetOrSet(ctx, c, "hard", slow, core.WithFactoryTimeouts(0, 10*time.Millisecond))
	// Eager refresh.
	core.GetOrSet(ctx, c, "eager", value("e"), core.WithDuration(100*time.Millisecond), core.WithEagerRefresh(0.1))
	time.Sleep(20 * time.Millisecond)
	core.GetOrSet(ctx, c, "eager", value("e2"), core.WithDuration(100*time.Millisecond), core.WithEagerRefresh(0.1))
	// A stale read.
	if _, ok, _ := core.Get[string](ctx, c, "k", core.WithAllowStaleOnRead()); !ok {
		t.Fatal("no stale value to read")
	}
	waitFor(t, "counts", func() bool {
		s := st.Snapshot()
		return s.BackgroundCompletions >= 2 && s.EagerRefreshes == 1
	})
	s := st.Snapshot()
	for name, got := range map[string]uint64{
		"failsafe activations":  s.FailSafeActivations,
		"factory errors":        s.FactoryErrors,
		"soft timeouts":         s.FactorySoftTimeouts,
		"hard timeouts":         s.FactoryHardTimeouts,
		"eager refreshes":       s.EagerRefreshes,
		"stale hits":            s.StaleHits,
		"background completion": s.BackgroundCompletions,
	} {
		if got == 0 {
			t.Errorf("%s: 0; snapshot %+v", name, s)
		}
	}
	if s.FactoryErrors != 2 || s.FactoryHardTimeouts != 1 || s.FactorySoftTimeouts != 1 {
		t.Errorf("factory errors %d, soft %d, hard %d; want 2, 1, 1", s.FactoryErrors, s.FactorySoftTimeouts, s.FactoryHardTimeouts)
	}
}

func TestCountsDistributedParts(t *testing.T) {
	ctx := context.Background()
	bus := membackplane.NewBus()
	name := "stats-" + t.Name()
	node := func(id string) (*core.Cache, *stats.Plugin, *meml2.Store, *membackplane.Backplane) {
		store, err := meml2.NewShared(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		bp := bus.Connect(nil)
		st := stats.New()
		c := newCache(t, st, core.Options{Name: "c", InstanceID: id, L2: store, Backplane: bp, AutoRecoveryDelay: time.Hour})
		t.Cleanup(func() { store.Close(); bp.Close() })
		return c, st, store, bp
	}
	a, sa, al2, abp := node("a")
	b, sb, _, _ := node("b")
	waitFor(t, "connected", func() bool { return !a.Stats().Disconnected && !b.Stats().Disconnected })
	core.Set(ctx, a, "k", "v")
	waitFor(t, "b receives", func() bool { return sb.Snapshot().BackplaneReceived == 1 })
	if s := sa.Snapshot(); s.BackplaneSent != 1 || s.BackplaneSendErrors != 0 {
		t.Fatalf("a: sent %d, errors %d", s.BackplaneSent, s.BackplaneSendErrors)
	}
	abp.SetFault(membackplane.Fault{PublishErr: errors.New("bus down")})
	al2.SetFault(meml2.Fault{Err: errors.New("l2 down")})
	core.Set(ctx, a, "k", "v2")
	s := sa.Snapshot()
	if s.BackplaneSendErrors != 1 || s.L2Errors == 0 || s.RecoveryQueued == 0 || s.Status != stats.StatusDegraded || len(s.Problems) == 0 {
		t.Fatalf("after failures: %+v", s)
	}
	_ = b
}

// TestCountsDroppedMessages: messages dropped for a bad signature or as
// undecodable are counted apart from those applied.
func TestCountsDroppedMessages(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte("s"), 32)
	ring, _ := backplane.NewKeyring(key)
	bus := membackplane.NewBus()
	bp, attacker := bus.Connect(nil), bus.Connect(nil)
	t.Cleanup(func() { bp.Close(); attacker.Close() })
	st := stats.New()
	c := newCache(t, st, core.Options{Name: "c", Backplane: bp, BackplaneSigningKeys: [][]byte{key}})
	waitFor(t, "connected", func() bool { return !c.Stats().Disconnected })
	m := backplane.Message{Cache: "c", Source: "attacker", Seq: 1, Action: backplane.ActionRemove, Key: "k", Timestamp: 1}
	raw, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	truncated, _ := ring.Seal(bytes.Clone(raw[:len(raw)-1]))
	for _, p := range [][]byte{raw, raw, raw, truncated} {
		if err := attacker.Publish(ctx, backplane.ChannelName("c"), p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "drops counted", func() bool {
		s := st.Snapshot()
		return s.BackplaneRejected == 3 && s.BackplaneCorrupt == 1
	})
	if s := st.Snapshot(); s.BackplaneReceived != 0 || s.Status != stats.StatusOK {
		t.Errorf("after dropped messages: received %d, status %q; want 0, ok", s.BackplaneReceived, s.Status)
	}
}

// TestCountsBehind: a node whose own messages come back late is behind
// (degraded, with a problem saying so) and counted once per episode.
func TestCountsBehind(t *testing.T) {
	bus := membackplane.NewBus()
	bp := bus.Connect(nil)
	t.Cleanup(func() { bp.Close() })
	st := stats.New()
	c := newCache(t, st, core.Options{Name: "c", Backplane: bp, BackplaneStalenessBound: 100 * time.Millisecond})
	waitFor(t, "connected", func() bool { return !c.Stats().Disconnected })
	bp.SetFault(membackplane.Fault{Delay: time.Second})
	waitFor(t, "behind", func() bool { return c.Stats().Behind })
	if s := st.Snapshot(); s.BackplaneBehind != 1 || !s.BackplaneBehindNow || s.Status != stats.StatusDegraded {
		t.Errorf("while behind: behind %d, now %v, status %q; want 1, true, degraded", s.BackplaneBehind, s.BackplaneBehindNow, s.Status)
	}
	bp.ClearFault()
	waitFor(t, "caught up", func() bool { return !c.Stats().Behind })
	if s := st.Snapshot(); s.BackplaneBehind != 1 || s.BackplaneBehindNow || s.Status != stats.StatusOK {
		t.Errorf("caught up: behind %d, now %v, status %q; want 1, false, ok", s.BackplaneBehind, s.BackplaneBehindNow, s.Status)
	}
}

func TestCountsEvictions(t *testing.T) {
	ctx := context.Background()
	st := stats.New()
	c := newCache(t, st, core.Options{L1MaxEntries: 10})
	for i := range 1000 {
		core.Set(ctx, c, fmt.Sprint("k", i), i)
	}
	waitFor(t, "evictions", func() bool { return st.Snapshot().Evictions > 0 })
}

func TestOnePluginPerCache(t *testing.T) {
	ctx := context.Background()
	st := stats.New()
	newCache(t, st, core.Options{Name: "first"})
	second, err := core.New(core.Options{Name: "second", Plugins: []core.Plugin{st}})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if errs := second.PluginErrors(); len(errs) != 1 || !strings.Contains(errs[0].Error(), `already counts cache "first"`) {
		t.Fatalf("PluginErrors = %v", errs)
	}
	core.GetOrSet(ctx, second, "k", value("v"))
	core.GetOrSet(ctx, second, "k", value("v"))
	if s := st.Snapshot(); s.Hits != 0 || s.Misses != 0 {
		t.Fatalf("the second cache's lookups were counted: %+v", s)
	}
}

func TestHitAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	st := stats.New()
	c := newCache(t, st, core.Options{})
	core.GetOrSet(ctx, c, "k", loadV)
	allocs := testing.AllocsPerRun(1000, func() {
		core.GetOrSet(ctx, c, "k", loadV, core.WithDuration(time.Hour))
	})
	if allocs != 0 {
		t.Fatalf("an L1 hit with the stats plugin allocates %v times", allocs)
	}
	if st.Snapshot().Hits < 1000 {
		t.Fatal("hits not counted")
	}
}

func TestHandler(t *testing.T) {
	st := stats.New()
	srv := httptest.NewServer(st)
	defer srv.Close()
	get := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	if code, body := get(); code != http.StatusServiceUnavailable || body["status"] != stats.StatusNotStarted {
		t.Fatalf("before Start: %d %v", code, body)
	}
	c, err := core.New(core.Options{Name: "users", Plugins: []core.Plugin{st}})
	if err != nil {
		t.Fatal(err)
	}
	core.GetOrSet(context.Background(), c, "k", value("v"))
	core.GetOrSet(context.Background(), c, "k", value("v"))
	code, body := get()
	if code != http.StatusOK || body["status"] != stats.StatusOK || body["cache"] != "users" || body["hits"] != 1.0 || body["misses"] != 1.0 {
		t.Fatalf("running: %d %v", code, body)
	}
	c.Close()
	if code, body := get(); code != http.StatusServiceUnavailable || body["status"] != stats.StatusStopped || body["hits"] != 1.0 {
		t.Fatalf("after Close: %d %v", code, body)
	}
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

// TestSnapshotWhileBusy reads snapshots while many goroutines hit and miss
// (run with -race), and checks nothing is lost.
func TestSnapshotWhileBusy(t *testing.T) {
	ctx := context.Background()
	st := stats.New()
	c := newCache(t, st, core.Options{})
	core.GetOrSet(ctx, c, "hot", value("v"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				core.GetOrSet(ctx, c, "hot", value("v"))
				if i%100 == 0 {
					core.Get[string](ctx, c, fmt.Sprint("cold", g, i))
				}
				if i%250 == 0 {
					_ = st.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	if s := st.Snapshot(); s.Hits != 8000 || s.Misses != 1+80 {
		t.Fatalf("hits %d, misses %d; want 8000, 81", s.Hits, s.Misses)
	}
}
