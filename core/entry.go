package core

import (
	"sync/atomic"
	"time"
)

// entry is one cached value with its metadata. All times are Unix
// nanoseconds. Fields are set before the entry is stored and never changed
// after, except the atomic bookkeeping. It is 104 bytes (the 112-byte size
// class): what few entries have is in rare.
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
	eagerAt int64
	tags    []string
	// rare holds the validator of a conditional refresh and the sliding
	// expiration; nil when the entry has neither.
	rare *entryRare

	// tagEpoch is the tag-store epoch at which the tags were last found
	// valid; while it matches, the tags need no new check.
	tagEpoch atomic.Uint64
	// eagerStarted: this entry already started its one eager refresh.
	eagerStarted atomic.Bool
	// failSafe: after expires the value may still be served stale.
	failSafe bool
	// stale: a stale value re-cached by fail-safe for its throttle duration.
	stale bool
	// wire: value is an *encoded, received on the backplane: reads decode
	// it (as), so the inline hit path leaves it to them.
	wire bool
}

// entryRare is what few entries have.
type entryRare struct {
	// etag and lastModified validate a conditional refresh
	// (FactoryContext.Modified); lastModified is 0 for none.
	etag         string
	lastModified int64
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

// etag returns e's ETag ("" for none).
func (e *entry) etag() string {
	if e.rare == nil {
		return ""
	}
	return e.rare.etag
}

// lastModified returns e's LastModified in Unix nanoseconds (0 for none).
func (e *entry) lastModified() int64 {
	if e.rare == nil {
		return 0
	}
	return e.rare.lastModified
}

func (e *entry) lastModifiedTime() time.Time {
	lm := e.lastModified()
	if lm == 0 {
		return time.Time{}
	}
	return time.Unix(0, lm)
}

// setValidator gives e, not yet stored, the validator of a conditional
// refresh.
func (e *entry) setValidator(etag string, lastModified int64) {
	if etag == "" && lastModified == 0 {
		if e.rare != nil {
			e.rare.etag, e.rare.lastModified = "", 0
		}
		return
	}
	if e.rare == nil {
		e.rare = new(entryRare)
	}
	e.rare.etag, e.rare.lastModified = etag, lastModified
}

// validatorOnly returns e's rare part without the sliding expiration, for a
// copy of e that does not slide (nil when nothing is left).
func (e *entry) validatorOnly() *entryRare {
	if e.rare == nil || (e.rare.etag == "" && e.rare.lastModified == 0) {
		return nil
	}
	if e.rare.slide == 0 {
		return e.rare // immutable once stored when it does not slide
	}
	return &entryRare{etag: e.rare.etag, lastModified: e.rare.lastModified}
}

// staleCopy returns a copy of e marked expired at now: fail-safe may still
// serve it until its physical expiry.
func (e *entry) expiredCopy(now int64) *entry {
	return &entry{
		value: e.value, created: e.created, confirmed: e.confirmed, expires: min(e.expires, now), physExpires: e.physExpires,
		tags: e.tags, rare: e.validatorOnly(), failSafe: e.failSafe, wire: e.wire,
	}
}

// throttledCopy returns e re-cached by fail-safe: served stale until
// now + throttle, without looking at expiring tags again.
func (e *entry) throttledCopy(now int64, throttle time.Duration) *entry {
	return &entry{
		value: e.value, created: e.created, confirmed: e.confirmed, expires: min(now+int64(throttle), e.physExpires), physExpires: e.physExpires,
		tags: e.tags, rare: e.validatorOnly(), failSafe: true, stale: true, wire: e.wire,
	}
}

// slid reports whether e, a sliding entry, went unread longer than its
// sliding expiration at now.
func (e *entry) slid(now int64) bool {
	r := e.rare
	return r != nil && r.slide != 0 && now >= r.accessed.Load()+r.slide
}

// touch records a read of e at now, for its sliding expiration.
func (e *entry) touch(now int64) {
	if r := e.rare; r != nil && r.slide != 0 && now > r.accessed.Load() {
		r.accessed.Store(now)
	}
}

// slideFor gives e, not yet stored, the sliding expiration of eo, counted
// from now.
func (e *entry) slideFor(eo *EntryOptions, now int64) {
	if eo.SlidingExpiration > 0 {
		if e.rare == nil {
			e.rare = new(entryRare)
		}
		e.rare.slide = int64(eo.SlidingExpiration)
		e.rare.accessed.Store(now)
	}
}

// decodedCopy returns e, an entry received serialized (wire), holding v,
// its decoded value.
func (e *entry) decodedCopy(v any) *entry {
	cp := &entry{
		value: v, created: e.created, confirmed: e.confirmed, expires: e.expires, physExpires: e.physExpires,
		eagerAt: e.eagerAt, tags: e.tags, failSafe: e.failSafe, stale: e.stale,
	}
	if r := e.rare; r != nil {
		cp.rare = &entryRare{etag: r.etag, lastModified: r.lastModified, slide: r.slide}
		cp.rare.accessed.Store(r.accessed.Load())
	}
	cp.tagEpoch.Store(e.tagEpoch.Load())
	cp.eagerStarted.Store(e.eagerStarted.Load())
	return cp
}
