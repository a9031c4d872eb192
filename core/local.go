package core

import (
	"sync"
	"sync/atomic"

	"github.com/stratacache/strata/backplane"
)

// local is what a node knows by itself: its L1, the tag and Clear times it
// has heard of, the factory runs under way, and whether it may be missing
// changes (the unsure gate, read by every hit). It does no I/O.
type local struct {
	l1      *otterL1 // concrete, so hits are not an interface call
	tags    *tagStore
	flights *flights
	gate    unsureGate
	// floors are the versions of the latest changes of each key this node
	// knows of (floors.go).
	floors floors
	// maxLife is the longest physical lifetime any entry got: tag times
	// older than that can be forgotten.
	maxLife atomic.Int64
	// lifeCap is Options.MarkerTTL: no entry lives longer after its
	// version.
	lifeCap int64
}

// unsureGate says since when this node may not have heard of changes: the
// earlier of when its backplane went down and since when its delivery lags
// (watermark.go); 0 when neither. The coherence side sets it, hits read it.
type unsureGate struct {
	// bound is Options.BackplaneStalenessBound (0: no backplane; set
	// before the sides that read it are made).
	bound int64
	// disconnectedAt is when the backplane went down (0: up); behindAt is
	// the watermark while the subscription lags (0: it does not).
	disconnectedAt, behindAt atomic.Int64
	// since is the earlier of the two (0: neither).
	since atomic.Int64
	mu    sync.Mutex // orders the updates of since
}

// refresh sets since from disconnectedAt and behindAt. Call it after
// changing either.
func (g *unsureGate) refresh() {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, b := g.disconnectedAt.Load(), g.behindAt.Load()
	switch {
	case d == 0:
		g.since.Store(b)
	case b == 0:
		g.since.Store(d)
	default:
		g.since.Store(min(d, b))
	}
}

// lookup returns key's L1 entry and its state at now.
func (l *local) lookup(key string, now int64) (*entry, entryState) {
	e, ok := l.l1.get(key)
	if !ok {
		return nil, stateAbsent
	}
	return l.entryState(e, now)
}

// lookupFor is lookup for a call with options eo: a stale value fail-safe
// re-cached for another call (served fresh for its throttle duration) is
// stale for a call without fail-safe.
func (l *local) lookupFor(key string, now int64, eo *EntryOptions) (*entry, entryState) {
	e, st := l.lookup(key, now)
	if st == stateFresh && e.stale && !eo.FailSafe {
		st = stateStale
	}
	return e, st
}

// entryState returns e's state at now (e itself, or nil when absent).
func (l *local) entryState(e *entry, now int64) (*entry, entryState) {
	if now >= e.physExpires {
		return nil, stateAbsent
	}
	stale := now >= e.expires || e.slid(now) || l.unconfirmed(e, now)
	switch l.tags.check(e) {
	case tagsRemoved:
		return nil, stateAbsent
	case tagsExpired:
		stale = true
	}
	if !stale {
		return e, stateFresh
	}
	if e.failSafe {
		return e, stateStale
	}
	return nil, stateAbsent
}

// unconfirmed reports whether e may have been replaced on another node
// longer ago than the staleness bound without this node knowing: the
// backplane has been down, or its delivery lags (watermark.go), and e was
// last confirmed (read, or known valid when the connection dropped or when
// the node last heard everything) longer ago than the bound.
func (l *local) unconfirmed(e *entry, now int64) bool {
	d := l.gate.since.Load()
	return d != 0 && now-max(e.confirmed, d) > l.gate.bound
}

// current reports whether no tag invalidation, Clear or possible loss has
// removed or expired e, and e is confirmed within the staleness bound if
// the node is unsure (read at now): what a run, or its result, must be for
// a caller that joined it.
func (l *local) current(e *entry, now int64) bool {
	return l.tags.verdict(e) == tagsValid && !l.unconfirmed(e, now)
}

// newEntry builds the entry for a value of version created, read from its
// source at confirmed and stored at now (where its durations start; both
// times on the clock) under eo.
func (l *local) newEntry(value any, created, confirmed, now int64, eo *EntryOptions) *entry {
	d := eo.l1Duration()
	if eo.Jitter > 0 {
		d += jitter(eo.Jitter)
	}
	e := &entry{value: value, created: created, confirmed: confirmed, expires: now + int64(d), failSafe: eo.FailSafe}
	e.physExpires = e.expires
	if eo.FailSafe {
		e.physExpires = max(e.expires, now+int64(eo.FailSafeMaxDuration))
	}
	l.capLife(e)
	if eo.EagerRefreshThreshold > 0 {
		e.eagerAt = now + int64(float64(d)*eo.EagerRefreshThreshold)
	}
	if len(eo.Tags) > 0 {
		e.tags = eo.Tags
	}
	e.slideFor(eo, now)
	l.noteLifetime(e.physExpires - min(confirmed, created))
	return e
}

// capLife cuts e's lifetime to lifeCap after its version (markers, which
// invalidate it, live that long).
func (l *local) capLife(e *entry) {
	if l.lifeCap > 0 {
		e.physExpires = min(e.physExpires, e.created+l.lifeCap)
		e.expires = min(e.expires, e.physExpires)
	}
}

// noteLifetime records the longest time from an entry's version to its
// physical expiry, so tag times are kept at least that long.
func (l *local) noteLifetime(life int64) {
	for {
		m := l.maxLife.Load()
		if life <= m || l.maxLife.CompareAndSwap(m, life) {
			return
		}
	}
}

// storeIfNewer writes e for key unless L1 holds an entry created after it.
func (l *local) storeIfNewer(key string, e *entry) {
	if _, stored := l.l1.c.SetIfAbsent(key, e); stored {
		return // the common case after a miss: nothing to compare with
	}
	l.l1.compute(key, func(old *entry) (*entry, bool) {
		if old != nil && old.created > e.created {
			return nil, true
		}
		return e, false
	})
}

// expireIfOlder makes key's L1 copy stale if it is older than version at
// (fail-safe may still serve it), or drops it (no fail-safe, or removed).
// The same version or a newer one stays.
func (l *local) expireIfOlder(key string, at int64, removed bool, now int64) {
	l.l1.compute(key, func(old *entry) (*entry, bool) {
		switch {
		case old == nil || old.created >= at:
			return nil, true
		case removed || !old.failSafe:
			return nil, false
		}
		return old.expiredCopy(now), false
	})
}

// applyL1 applies change ch (its runs already superseded) to what this node
// holds: L1, and the tag and Clear times.
func (l *local) applyL1(ch *change, now int64) {
	switch ch.action {
	case backplane.ActionSet:
		if ch.e != nil && ch.storeL1 {
			l.storeIfNewer(ch.key, ch.e)
			return
		}
		// Without the entry (a message, or a Set that skips L1), the
		// older copy goes: a local Set drops it, as a Remove would; a
		// message expires it, as for Expire.
		l.expireIfOlder(ch.key, ch.at, ch.e != nil, now)
	case backplane.ActionExpire:
		l.expireIfOlder(ch.key, ch.at, false, now)
	case backplane.ActionRemove:
		l.expireIfOlder(ch.key, ch.at, true, now)
	case backplane.ActionRemoveTag, backplane.ActionExpireTag:
		l.tags.invalidate(ch.key, ch.at, ch.action == backplane.ActionRemoveTag, now-l.maxLife.Load())
	case backplane.ActionClearRemove, backplane.ActionClearExpire:
		l.tags.clear(ch.at, ch.action == backplane.ActionClearRemove)
	}
}

// expireAll expires every L1 entry confirmed until now, and the results of
// the runs under way (confirmed as of their start), and forgets which tag
// times were read from L2: this node may not have heard of changes made
// before now.
func (l *local) expireAll(now int64) {
	l.tags.loss(now)
	l.tags.resetKnown(now)
}
