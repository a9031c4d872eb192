package coherence

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2/meml2"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestAllowedUntil: the staleness rule, one case per clause.
func TestAllowedUntil(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const bound, slack, recovery = time.Second, 500 * time.Millisecond, 2 * time.Second
	cases := []struct {
		name   string
		cuts   map[int][]interval
		reader int
		newer  []version
		want   time.Time // zero: no limit yet
		late   bool      // the limit comes from a cut-off writer
	}{
		{name: "connected writer: done + bound + slack",
			newer: []version{{writer: 1, start: at(1), done: at(2)}}, want: at(3.5)},
		{name: "write still running: no limit",
			newer: []version{{writer: 1, start: at(1)}}},
		{name: "the earliest completed replacement counts",
			newer: []version{{writer: 1, start: at(1), done: at(2)}, {writer: 2, start: at(3), done: at(4)}}, want: at(3.5)},
		{name: "cut-off writer, connected reader: the cut's end + recovery + slack",
			cuts:  map[int][]interval{1: {{start: at(0), end: at(10)}}},
			newer: []version{{writer: 1, start: at(1), done: at(2)}}, want: at(12.5), late: true},
		{name: "cut-off writer still cut: no limit",
			cuts:  map[int][]interval{1: {{start: at(0)}}},
			newer: []version{{writer: 1, start: at(1), done: at(2)}}},
		{name: "cut-off writer, reader cut too: the bound applies",
			cuts:  map[int][]interval{0: {{start: at(0), end: at(10)}}, 1: {{start: at(0), end: at(10)}}},
			newer: []version{{writer: 1, start: at(1), done: at(2)}}, want: at(3.5)},
		{name: "cut-off writer, reader cut later: that cut + bound + slack",
			cuts:  map[int][]interval{0: {{start: at(5), end: at(20)}}, 1: {{start: at(0), end: at(30)}}},
			newer: []version{{writer: 1, start: at(1), done: at(2)}}, want: at(6.5)},
		{name: "cut-off writer then a connected one: the earlier limit",
			cuts:  map[int][]interval{1: {{start: at(0), end: at(10)}}},
			newer: []version{{writer: 1, start: at(1), done: at(2)}, {writer: 2, start: at(3), done: at(4)}},
			want:  at(5.5)},
		{name: "writer cut during its write only",
			cuts:  map[int][]interval{1: {{start: at(1.5), end: at(3)}}},
			newer: []version{{writer: 1, start: at(1), done: at(2)}}, want: at(5.5), late: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{cfg: Config{Bound: bound, Slack: slack, RecoveryDelay: recovery}, cuts: make([][]interval, 3)}
			for n, ivs := range tc.cuts {
				c.cuts[n] = ivs
			}
			got, late, ok := c.allowedUntil(tc.reader, tc.newer)
			if ok != !tc.want.IsZero() || !got.Equal(tc.want) || late != tc.late {
				t.Errorf("allowedUntil = %v, late %v, %v; want %v, late %v (a limit: %v)", got.Sub(t0), late, ok,
					tc.want.Sub(t0), tc.late, !tc.want.IsZero())
			}
		})
	}
}

// TestCheckHealthy: the rule of a run without faults, one case per clause.
func TestCheckHealthy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const reader = 0
	cases := []struct {
		name   string
		newer  []version
		readAt time.Time
		own    int64 // -1: not outdated
	}{
		{name: "own change returned before the read", newer: []version{{writer: reader, start: at(0), done: at(10)}},
			readAt: at(11), own: 1},
		{name: "own change returned as the read started", newer: []version{{writer: reader, start: at(0), done: at(10)}},
			readAt: at(10), own: -1},
		{name: "own change still running", newer: []version{{writer: reader, start: at(0)}}, readAt: at(500), own: -1},
		{name: "other node's change within propagation", newer: []version{{writer: 1, start: at(0), done: at(10)}},
			readAt: at(110), own: -1},
		{name: "other node's change past propagation", newer: []version{{writer: 1, start: at(0), done: at(10)}},
			readAt: at(111), own: 0},
		{name: "a later own change counts", readAt: at(30), own: 1,
			newer: []version{{writer: 1, start: at(0), done: at(10)}, {writer: reader, start: at(20), done: at(25)}}},
		{name: "nothing after a running change", readAt: at(500), own: -1,
			newer: []version{{writer: 1, start: at(0)}, {writer: reader, start: at(20), done: at(25)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{cfg: Config{Propagation: 100 * time.Millisecond}}
			c.checkHealthy(reader, "item:0", "item:0#0", 0, tc.readAt, tc.newer)
			want := int64(1)
			if tc.own < 0 {
				want = 0
			}
			if c.rep.Outdated != want || c.rep.OutdatedOwn != max(tc.own, 0) {
				t.Errorf("outdated %d (own %d), want %d (own %d): %v", c.rep.Outdated, c.rep.OutdatedOwn, want, max(tc.own, 0),
					c.rep.FirstOutdated)
			}
		})
	}
}

// TestMixPick: each operation is picked for as many numbers as its weight.
func TestMixPick(t *testing.T) {
	m := Mix{GetOrSet: 3, Get: 0, Set: 2, Remove: 1, RemoveByTag: 1}
	got := map[op]int{}
	for n := range m.total() {
		got[m.pick(n)]++
	}
	want := map[op]int{opGetOrSet: 3, opSet: 2, opRemove: 1, opRemoveByTag: 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("picks %v, want %v", got, want)
	}
	if err := (Mix{Get: -1}).validate(); err == nil {
		t.Error("a negative weight was accepted")
	}
}

// memNodes returns n caches sharing an in-process L2, and a backplane
// unless withBackplane is false.
func memNodes(t *testing.T, n int, withBackplane bool) []*core.Cache {
	t.Helper()
	name := fmt.Sprintf("coherence-%s-%d", t.Name(), time.Now().UnixNano())
	bus := membackplane.NewBus()
	var caches []*core.Cache
	for i := range n {
		store, err := meml2.NewShared(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		o := core.Options{Name: "c", InstanceID: NodeName(i), L2: store, BackplaneStalenessBound: time.Second}
		if withBackplane {
			bp := bus.Connect(nil)
			t.Cleanup(func() { _ = bp.Close() })
			o.Backplane = bp
		}
		c, err := core.New(o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		caches = append(caches, c)
	}
	return caches
}

// run runs a checker on caches for d with one fault in the middle (no
// fault is injected: the run only checks the bookkeeping) and returns the
// report.
func run(t *testing.T, caches []*core.Cache, d, bound time.Duration) Report {
	t.Helper()
	c, err := New(Config{Nodes: caches, Keys: 16, Groups: 4, Workers: 2, Pause: 5 * time.Millisecond, Bound: bound,
		Slack: bound, RecoveryDelay: time.Second, RecoveryTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c.Start(ctx)
	time.Sleep(d / 2)
	f := c.BeginFault("nothing")
	if _, err := f.End(ctx); err != nil {
		t.Logf("convergence: %v", err)
	}
	time.Sleep(d / 2)
	return c.Stop()
}

// TestCoherentNodesPass: nodes sharing L2 and a backplane serve nothing
// replaced, with no errors, and converge.
func TestCoherentNodesPass(t *testing.T) {
	rep := run(t, memNodes(t, 3, true), 2*time.Second, time.Second)
	t.Log(rep)
	if rep.Violations != 0 || rep.Errors != 0 || rep.Panics != 0 {
		t.Errorf("%d violations, %d errors, %d panics; want none: %v %v", rep.Violations, rep.Errors, rep.Panics,
			rep.FirstViolations, rep.FirstErrors)
	}
	if rep.Reads == 0 || rep.Sets == 0 || rep.Removes == 0 {
		t.Errorf("workload too thin: %+v", rep)
	}
	if len(rep.Faults) != 1 || !rep.Faults[0].Converged {
		t.Errorf("faults = %+v, want one that converged", rep.Faults)
	}
}

// TestIncoherentNodesAreCaught: without a backplane nothing tells a node
// about another node's change, so nodes serve replaced values for their
// L1 duration (a minute), far beyond a bound of 50 ms (+ 50 ms slack):
// the checker must report violations and no convergence.
func TestIncoherentNodesAreCaught(t *testing.T) {
	rep := run(t, memNodes(t, 3, false), 3*time.Second, 50*time.Millisecond)
	t.Log(rep)
	if rep.Violations == 0 {
		t.Error("no violation reported for nodes that never hear of each other's changes")
	}
	if len(rep.Faults) != 1 || rep.Faults[0].Converged {
		t.Errorf("faults = %+v, want one that did not converge", rep.Faults)
	}
}
