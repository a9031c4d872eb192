package core

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/backplane"
)

// env is what every component of a Cache shares: its identity, its clock and
// versions, its logger, its observers and its counters. It is built once by
// New and its fields other than the atomics never change.
type env struct {
	name       string
	instanceID string
	// source names this run of this node on the backplane: the instance
	// id and a random run id, so that a restarted node that keeps its
	// InstanceID is a new sender whose numbers start afresh, and a replay
	// of an earlier run's messages is told from its own.
	source string
	logger *slog.Logger
	clock  Clock
	coarse *coarseClock
	obs    observers
	// hitRec is set when every observer is a HitObserver: hits then take
	// the fast path.
	hitRec HitRecorder
	stats  counters
	// lastStamp makes stamp strictly increasing; lastClock makes the
	// clock readings non-decreasing (monotonic).
	lastStamp, lastClock atomic.Int64
}

// now returns the current time in Unix nanoseconds. It never goes back
// (see monotonic).
func (v *env) now() int64 {
	if v.coarse != nil {
		return v.coarse.now.Load() // monotonic itself
	}
	return v.clockNow()
}

// clockNow is now with Options.Clock, apart so that now inlines (every L1
// hit reads it).
func (v *env) clockNow() int64 { return v.monotonic(v.clock.Now().UnixNano()) }

// preciseNow returns the current time from the system clock itself (or
// Options.Clock), not the coarse one: versions compared across nodes must not
// tie at the coarse clock's resolution. It is read on writes and misses only.
// It never goes back (see monotonic).
func (v *env) preciseNow() int64 {
	return v.monotonic(v.rawNow())
}

// rawNow reads the clock as it is, steps back included: for what compares
// two nodes' clocks (lateness), where holding a reading would look like a
// delay.
func (v *env) rawNow() int64 {
	if v.clock == nil {
		return time.Now().UnixNano()
	}
	return v.clock.Now().UnixNano()
}

// monotonic returns t, or the latest time this cache read if t is before
// it: when the clock steps back, the node's time stands still until the
// clock catches up. Confirmations, loss times and expiry are compared on
// it: read on a clock that went back, a value read before a loss of
// messages could seem confirmed after it.
func (v *env) monotonic(t int64) int64 {
	for {
		last := v.lastClock.Load()
		if t <= last {
			return last
		}
		if v.lastClock.CompareAndSwap(last, t) {
			return t
		}
	}
}

// stamp returns a new version: the current time, strictly after every
// earlier stamp of this cache and every version it has seen from other nodes
// (observe), so writes and invalidations on one node are totally ordered
// even with a coarse or frozen clock, and a change made after hearing of
// another is newer than it whatever the two clocks say (a hybrid logical
// clock). Versions order changes; how long an entry lives, and since when it
// is confirmed, are measured on the clock itself (preciseNow, now): after a
// clock step forward and back, versions stay ahead of the clock by the step
// until the clock catches up, but nothing expires late and nothing is lost.
func (v *env) stamp() int64 { return v.stampFrom(v.preciseNow()) }

// stampFrom is stamp with now, a reading of preciseNow just taken.
func (v *env) stampFrom(now int64) int64 {
	for {
		last := v.lastStamp.Load()
		s := max(now, last+1)
		if v.lastStamp.CompareAndSwap(last, s) {
			return s
		}
	}
}

// maxChangedAtLead is MaxChangedAtLead in nanoseconds.
const maxChangedAtLead = int64(MaxChangedAtLead)

// stampChange returns the version of a change made with eo: a new stamp,
// after eo's WithChangedAt time if it has one.
func (v *env) stampChange(eo *EntryOptions) (int64, error) {
	if eo.changedAt > 0 {
		if lead := eo.changedAt - v.preciseNow(); lead > maxChangedAtLead {
			return 0, &OptionError{Field: "WithChangedAt", Value: time.Unix(0, eo.changedAt).UTC(),
				Why: fmt.Sprintf("must not be more than %v ahead of this node's clock (it is %v ahead)", time.Duration(maxChangedAtLead), time.Duration(lead).Round(time.Millisecond))}
		}
		v.observe(eo.changedAt)
	}
	return v.stamp(), nil
}

// runIDLen is the length of the run id a node adds to its InstanceID on the
// backplane ("id/run"), and maxInstanceIDLen the longest InstanceID that
// leaves room for it in a message's source.
const (
	runIDLen         = 16
	maxInstanceIDLen = backplane.MaxSourceLen - 1 - runIDLen
)

// maxClockLead bounds how far ahead of this node's clock a version seen
// from another node may move its versions (observe): a node whose clock is
// further ahead than that orders its own changes only (its versions win, as
// with any skew), and a forged time cannot push versions to overflow.
const maxClockLead = int64(24 * time.Hour)

// observe makes later stamps newer than v, a version seen from another node
// (a message, an L2 entry or marker), unless v is more than maxClockLead
// ahead of this node's clock.
func (v *env) observe(version int64) {
	for {
		last := v.lastStamp.Load()
		if version <= last || v.tooFarAhead(version) {
			return
		}
		if v.lastStamp.CompareAndSwap(last, version) {
			return
		}
	}
}

// tooFarAhead reports whether version is more than maxClockLead ahead of
// this node's clock: from a broken clock, or forged.
func (v *env) tooFarAhead(version int64) bool {
	return version-v.preciseNow() > maxClockLead
}

// event reports an event to observers, if any.
func (v *env) event(ctx context.Context, kind EventKind, key string, err error) {
	if v.obs != nil {
		v.obs.event(ctx, kind, v.name, key, err)
	}
}

// begin starts an operation for the observers: it returns nil (and ctx) when
// there are none. end ends it; both take the nil info of an unobserved call.
func (v *env) begin(ctx context.Context, op Operation, key string) (context.Context, *OpInfo) {
	if v.obs == nil {
		return ctx, nil
	}
	info := &OpInfo{Op: op, Cache: v.name, Key: key, Start: time.Now()}
	return v.obs.start(ctx, info), info
}

// end ends an operation begun with begin, with its error.
func (v *env) end(ctx context.Context, info *OpInfo, err error) {
	if info != nil {
		info.Err = err
		v.obs.end(ctx, info)
	}
}

// hit reports an L1 hit to observers.
func (v *env) hit(ctx context.Context, info *OpInfo, key string, e *entry) {
	if info == nil {
		return
	}
	info.Hit, info.Source, info.Stale = true, SourceL1, e.stale
	if e.stale {
		v.event(ctx, EventStaleHit, key, nil)
	} else {
		v.event(ctx, EventHit, key, nil)
	}
}
