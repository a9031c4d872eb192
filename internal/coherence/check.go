package coherence

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Violation is a read that returned a value the checker's rules say no
// node may serve any more.
type Violation struct {
	Node    int
	Key     string
	Value   string    // what the read returned
	ReadAt  time.Time // when the read started
	Latest  int       // the source's version of the key at the check
	Allowed time.Time // until when the value could still be served
	Why     string
}

func (v Violation) String() string {
	s := fmt.Sprintf("%s node %d read %s = %q (latest version %d): %s", v.ReadAt.Format("15:04:05.000"),
		v.Node, v.Key, v.Value, v.Latest, v.Why)
	if !v.Allowed.IsZero() {
		s += fmt.Sprintf(" (allowed until %s, read %v later)", v.Allowed.Format("15:04:05.000"), v.ReadAt.Sub(v.Allowed).Round(time.Millisecond))
	}
	return s
}

// check applies the rule to a read by node, started at readAt, that
// returned version ver of key: if a newer version exists, the read is a
// violation when it started after the time the replacement allows the old
// value until (see allowedUntil).
func (c *Checker) check(node int, key, value string, ver int, readAt time.Time, newer []version, probe bool) {
	if len(newer) == 0 {
		return
	}
	if c.cfg.Healthy {
		c.checkHealthy(node, key, value, ver, readAt, newer)
	}
	c.mu.Lock()
	until, deferred, ok := c.allowedUntil(node, newer)
	c.mu.Unlock()
	if !ok || !readAt.After(until) {
		return
	}
	why := "served after its replacement"
	if deferred {
		why = "served after the replay of a change made while its writer was cut off"
	}
	if probe {
		why += " (recovery probe)"
	}
	v := Violation{Node: node, Key: key, Value: value, ReadAt: readAt, Latest: ver + len(newer), Allowed: until, Why: why}
	if deferred {
		c.late(v)
	} else {
		c.violate(v)
	}
}

// checkHealthy applies the rule of a run without faults to a read by node,
// started at readAt, that returned version ver of key, replaced by the
// versions newer: the node that made a change serves nothing older once
// its call returned (its own L1 was updated before), and another node
// nothing older once the change had Propagation to reach it. A change
// still running sets no limit, nor do the ones after it.
func (c *Checker) checkHealthy(node int, key, value string, ver int, readAt time.Time, newer []version) {
	for i, v := range newer {
		if v.done.IsZero() {
			return
		}
		own := v.writer == node
		limit := v.done
		if !own {
			limit = limit.Add(c.cfg.Propagation)
		}
		if !readAt.After(limit) {
			continue
		}
		why := fmt.Sprintf("version %d was written by node %d and returned %v before the read", ver+1+i, v.writer,
			readAt.Sub(v.done).Round(time.Millisecond))
		c.outdated(Violation{Node: node, Key: key, Value: value, ReadAt: readAt, Latest: ver + len(newer), Allowed: limit, Why: why}, own)
		return
	}
}

// outdated records a read breaking the rule of a run without faults; own:
// on the node that made the change.
func (c *Checker) outdated(v Violation, own bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Outdated++
	if own {
		c.rep.OutdatedOwn++
	}
	c.rep.WorstOutdated = max(c.rep.WorstOutdated, v.ReadAt.Sub(v.Allowed))
	if len(c.rep.FirstOutdated) < 10 {
		c.rep.FirstOutdated = append(c.rep.FirstOutdated, v)
	}
}

// allowedUntil returns the time until which node may serve a value that
// the versions newer replaced, whether that limit comes from a change made
// by a cut-off writer (deferred), and false while no limit applies yet.
// c.mu is held.
//
// A write that returned at t, made by a node whose backplane was not cut
// while it ran, or read by a node whose backplane was cut at t, allows the
// old value until t + Bound + Slack: a connected node hears of it within
// the delivery time, a disconnected one stops serving entries as fresh
// within Bound. A write made by a node whose backplane was cut, read by a
// node still connected, is announced only when the writer's cut ends
// (core's replay of its queue), so it allows the old value until that end
// + RecoveryDelay + Slack — or until the reader's own cut begins + Bound
// + Slack, if sooner. The earliest limit among the newer versions counts.
// A write still running sets no limit, nor do the versions after it (the
// key's writes are serialised).
func (c *Checker) allowedUntil(node int, newer []version) (until time.Time, deferred, found bool) {
	better := func(t time.Time, d bool) {
		if !found || t.Before(until) {
			until, deferred, found = t, d, true
		}
	}
	normal := c.cfg.Bound + c.cfg.Slack
	for _, v := range newer {
		if v.done.IsZero() {
			break
		}
		if v.writer < 0 || !c.cutDuring(v.writer, v.start, v.done) || c.cutDuring(node, v.done, v.done) {
			better(v.done.Add(normal), false)
			break
		}
		if end, healed := c.cutEnd(v.writer, v.done); healed {
			better(end.Add(c.cfg.RecoveryDelay+c.cfg.Slack), true)
		}
		if d, cut := c.nextCut(node, v.done); cut {
			better(d.Add(normal), false)
		}
	}
	return until, deferred, found
}

// cutDuring reports whether node's backplane was cut at some time in
// [from, to]. c.mu is held.
func (c *Checker) cutDuring(node int, from, to time.Time) bool {
	for _, iv := range c.cuts[node] {
		if !iv.start.After(to) && (iv.end.IsZero() || !iv.end.Before(from)) {
			return true
		}
	}
	return false
}

// cutEnd returns the end of node's last cut that began no later than t,
// and false if it has not ended. c.mu is held.
func (c *Checker) cutEnd(node int, t time.Time) (time.Time, bool) {
	var end time.Time
	for _, iv := range c.cuts[node] {
		if !iv.start.After(t) {
			end = iv.end
		}
	}
	return end, !end.IsZero()
}

// nextCut returns the start of node's first cut after t. c.mu is held.
func (c *Checker) nextCut(node int, t time.Time) (time.Time, bool) {
	for _, iv := range c.cuts[node] {
		if iv.start.After(t) {
			return iv.start, true
		}
	}
	return time.Time{}, false
}

// late records a read breaking the convergence promise for a change made
// by a cut-off writer.
func (c *Checker) late(v Violation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Late++
	if len(c.rep.FirstLate) < 10 {
		c.rep.FirstLate = append(c.rep.FirstLate, v)
	}
}

func (c *Checker) violate(v Violation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Violations++
	if !v.Allowed.IsZero() {
		c.rep.Worst = max(c.rep.Worst, v.ReadAt.Sub(v.Allowed))
	}
	if len(c.rep.FirstViolations) < 10 {
		c.rep.FirstViolations = append(c.rep.FirstViolations, v)
	}
	for _, f := range c.faults {
		if !v.ReadAt.Before(f.start) && (f.next.IsZero() || v.ReadAt.Before(f.next)) {
			f.violations++
		}
	}
}

// Fault is one fault window, begun by BeginFault and ended by End.
type Fault struct {
	c          *Checker
	name       string
	cut        []int
	start, end time.Time
	next       time.Time // start of the next fault: violations until then count here
	recovery   time.Duration
	converged  bool
	lag        string // the last read that was not current before convergence
	violations int64
}

// BeginFault records that a fault named name begins now; cut lists the
// nodes whose backplane it cuts (their changes reach the others only once
// they are back). Call it just before injecting the fault.
func (c *Checker) BeginFault(name string, cut ...int) *Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	f := &Fault{c: c, name: name, cut: cut, start: now}
	if n := len(c.faults); n > 0 {
		c.faults[n-1].next = now
	}
	c.faults = append(c.faults, f)
	for _, n := range cut {
		c.cuts[n] = append(c.cuts[n], interval{start: now})
	}
	return f
}

// End records that the fault ended now (call it once the fault is
// removed), then waits until every node serves the latest value of every
// key (see Config.Propagation), and returns how long that took after the
// end; the last lagging read before that is in the fault's report. It gives up after
// Config.RecoveryTimeout (or when ctx ends) and returns an error.
func (f *Fault) End(ctx context.Context) (time.Duration, error) {
	c := f.c
	c.mu.Lock()
	f.end = time.Now()
	for _, n := range f.cut {
		c.cuts[n][len(c.cuts[n])-1].end = f.end
	}
	c.mu.Unlock()
	deadline := f.end.Add(c.cfg.RecoveryTimeout)
	var lag string
	for {
		// A round reads every key on every node at once, so that its
		// length is that of the slowest read, not of their sum.
		var mu sync.Mutex
		var wg sync.WaitGroup
		clean := true
		for node := range c.cfg.Nodes {
			for k := range c.keys {
				wg.Go(func() {
					if l := c.read(ctx, node, k, true); l != "" {
						mu.Lock()
						clean, lag = false, l
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		now := time.Now()
		if clean {
			c.mu.Lock()
			f.recovery, f.converged, f.lag = now.Sub(f.end), true, lag
			c.mu.Unlock()
			return now.Sub(f.end), nil
		}
		if now.After(deadline) || ctx.Err() != nil {
			return now.Sub(f.end), fmt.Errorf("coherence: after %s, the nodes did not all serve the latest values within %v; last lagging read: %s",
				f.name, c.cfg.RecoveryTimeout, lag)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
