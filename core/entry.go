package core

import (
	"sync/atomic"
	"time"
)

// entry is one cached value with its metadata. All times are Unix
// nanoseconds. Fields are set before the entry is stored and never changed
// after, except the atomic bookkeeping.
type entry struct {
	value any
	// created is when the value was read from its source (a factory's start,
	// a Set's time): the version that orders writes and tag invalidations.
	created int64
	// confirmed is when the value was last known current: read from L2, or
	// produced (the factory's start, the Set). While the backplane is down,
	// an entry confirmed longer ago than the staleness bound is not fresh.
	confirmed int64
	// expires is the logical expiry: fresh before it.
	expires int64
	// physExpires is when the entry is gone for good: expires, or created +
	// FailSafeMaxDuration with fail-safe.
	physExpires int64
	// eagerAt is when a hit starts an eager refresh; 0 for never.
	eagerAt      int64
	tags         []string
	etag         string
	lastModified int64
	// failSafe: after expires the value may still be served stale.
	failSafe bool
	// stale: a stale value re-cached by fail-safe for its throttle duration.
	stale bool
	// wire: value is an *encoded, received on the backplane: reads decode
	// it (as), so the inline hit path leaves it to them.
	wire bool

	// tagEpoch is the tag-store epoch at which the tags were last found
	// valid; while it matches, the tags need no new check.
	tagEpoch atomic.Uint64
	// eagerStarted: this entry already started its one eager refresh.
	eagerStarted atomic.Bool
	// slide, when > 0, is the sliding expiration: the entry is fresh only
	// while it is read at least that often (and until expires); accessed
	// is when it was last read.
	slide    int64
	accessed atomic.Int64
}

type entryState uint8

const (
	stateAbsent entryState = iota
	stateFresh
	// stateStale: logically expired (or expired by tag), usable by fail-safe.
	stateStale
)

func (e *entry) lastModifiedTime() time.Time {
	if e.lastModified == 0 {
		return time.Time{}
	}
	return time.Unix(0, e.lastModified)
}

// staleCopy returns a copy of e marked expired at now: fail-safe may still
// serve it until its physical expiry.
func (e *entry) expiredCopy(now int64) *entry {
	return &entry{
		value: e.value, created: e.created, confirmed: e.confirmed, expires: min(e.expires, now), physExpires: e.physExpires,
		tags: e.tags, etag: e.etag, lastModified: e.lastModified, failSafe: e.failSafe, wire: e.wire,
	}
}

// throttledCopy returns e re-cached by fail-safe: served stale until
// now + throttle, without looking at expiring tags again.
func (e *entry) throttledCopy(now int64, throttle time.Duration) *entry {
	return &entry{
		value: e.value, created: e.created, confirmed: e.confirmed, expires: min(now+int64(throttle), e.physExpires), physExpires: e.physExpires,
		tags: e.tags, etag: e.etag, lastModified: e.lastModified, failSafe: true, stale: true, wire: e.wire,
	}
}

// slid reports whether e, a sliding entry, went unread longer than its
// sliding expiration at now.
func (e *entry) slid(now int64) bool {
	return e.slide != 0 && now >= e.accessed.Load()+e.slide
}

// touch records a read of e at now, for its sliding expiration.
func (e *entry) touch(now int64) {
	if e.slide != 0 && now > e.accessed.Load() {
		e.accessed.Store(now)
	}
}

// slideFor gives e the sliding expiration of eo, counted from now.
func (e *entry) slideFor(eo *EntryOptions, now int64) {
	if eo.SlidingExpiration > 0 {
		e.slide = int64(eo.SlidingExpiration)
		e.accessed.Store(now)
	}
}

// decodedCopy returns e, an entry received serialized (wire), holding v,
// its decoded value.
func (e *entry) decodedCopy(v any) *entry {
	cp := &entry{
		value: v, created: e.created, confirmed: e.confirmed, expires: e.expires, physExpires: e.physExpires,
		eagerAt: e.eagerAt, tags: e.tags, etag: e.etag, lastModified: e.lastModified, failSafe: e.failSafe,
		stale: e.stale, slide: e.slide,
	}
	cp.tagEpoch.Store(e.tagEpoch.Load())
	cp.eagerStarted.Store(e.eagerStarted.Load())
	cp.accessed.Store(e.accessed.Load())
	return cp
}
