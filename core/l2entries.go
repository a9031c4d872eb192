package core

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/stratacache/strata/l2"
)

// readL2 reads key's entry from L2 into an entry of type T: nil on a miss, a
// failure, a timeout or a corrupt entry (each reported). The error is the
// store's failure, if any (a corrupt entry is a miss, not an error).
func readL2[T any](ctx context.Context, s *l2side, key string, eo *EntryOptions, haveStale bool) (*entry, error) {
	readAt := s.preciseNow()
	b, found, err := s.get(ctx, s.key(key), key, l2Timeout(eo, haveStale))
	if err != nil || !found {
		return nil, err
	}
	return decodeL2Entry[T](ctx, s, key, b, readAt, eo), nil
}

// decodeL2Entry turns L2 bytes, read by a call that began at readAt, into an
// entry of type T, or nil (reported) when they are corrupt. nil bytes are a
// miss. The entry is confirmed as of readAt, not of its arrival: a loss of
// messages noticed while the read was under way expires it.
func decodeL2Entry[T any](ctx context.Context, s *l2side, key string, b []byte, readAt int64, eo *EntryOptions) *entry {
	if b == nil {
		return nil
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		s.corrupt(ctx, key, err)
		return nil
	}
	if s.tooFarAhead(env.Created) {
		s.corrupt(ctx, key, fmt.Errorf("%w: the L2 entry of key %q has version %d", errFuture, key, env.Created))
		return nil
	}
	s.observe(env.Created)
	if env.Flags&l2.FlagTombstone != 0 {
		s.local.floors.raise(key, env.Created, floorExpire) // removed or expired at that version
		return nil
	}
	var v T
	if err := s.ser.Unmarshal(env.Value, &v); err != nil {
		s.corrupt(ctx, key, fmt.Errorf("core: decoding the L2 value of key %q as %T: %w", key, v, err))
		return nil
	}
	e := &entry{
		value: v, created: env.Created, confirmed: readAt, expires: env.Expires, eagerAt: env.EagerRefresh,
		tags: env.Tags, etag: env.ETag, lastModified: env.LastModified,
		failSafe: env.Flags&l2.FlagFailSafe != 0,
	}
	if eo.L1Duration > 0 {
		e.expires = min(e.expires, s.now()+int64(eo.L1Duration))
	}
	e.slideFor(eo, s.now())
	e.physExpires = e.expires
	if e.failSafe {
		e.physExpires = max(e.expires, e.created+int64(eo.FailSafeMaxDuration))
	}
	s.local.capLife(e)
	switch fl := s.local.floors.get(key); {
	case e.created < fl.removed:
		// Older than a Remove this node knows of (its tombstone not in
		// L2 yet, or lost): gone, not even fail-safe may serve it.
		return nil
	case e.created < fl.version:
		// Older than a change this node knows of: stale at best.
		e.expires = min(e.expires, s.now())
	}
	s.local.noteLifetime(e.physExpires - e.created)
	if !s.ensureTags(ctx, e.tags, eo) {
		// Not checked against every tag and Clear time: stale at best.
		e.expires = min(e.expires, s.now())
	}
	if s.gate.since.Load() != 0 {
		// While the node may be missing messages, the tag and Clear times
		// it checked the entry against are as current as their reads
		// from L2: the entry is confirmed no later than those.
		e.confirmed = min(e.confirmed, s.local.tags.knownSince(e.tags))
	}
	return e
}

// writeL2 stores e (value already serialized) for key in L2, queueing it for
// auto-recovery when that fails.
func (s *l2side) write(ctx context.Context, key string, e *entry, value []byte, eo *EntryOptions, now int64) {
	d := eo.Duration
	if eo.L2Duration > 0 {
		d = eo.L2Duration
	}
	env := l2.Envelope{
		Created: e.created, Expires: now + int64(d), Tags: e.tags, ETag: e.etag,
		LastModified: e.lastModified, Value: value,
	}
	ttl := d
	if eo.FailSafe {
		env.Flags |= l2.FlagFailSafe
		ttl = max(d, cmp.Or(eo.L2FailSafeMaxDuration, eo.FailSafeMaxDuration))
	}
	// No entry outlives the markers that may invalidate it (capLife).
	if left := time.Duration(e.created + s.local.lifeCap - now); ttl > left {
		ttl = max(left, time.Millisecond)
		env.Expires = min(env.Expires, e.created+s.local.lifeCap)
	}
	if e.eagerAt != 0 && eo.EagerRefreshThreshold > 0 {
		env.EagerRefresh = now + int64(float64(d)*eo.EagerRefreshThreshold)
	}
	b, err := env.AppendBinary(nil)
	if err == nil && len(b) > s.maxValueSize {
		err = fmt.Errorf("%w: the encoded entry is %d bytes, over the L2 value size limit (%d)", l2.ErrValueTooLarge, len(b), s.maxValueSize)
	}
	if err != nil {
		// The entry itself cannot be stored (an ETag over l2.MaxETagLen,
		// a value over the size limit, ...): like a value the serializer
		// refuses, it stays in L1 only. It is not an L2 failure: the
		// circuit breaker must not stop the writes of every other key for
		// it.
		s.notStorable(ctx, key, err)
		return
	}
	storeKey := s.key(key)
	if !s.breaker.allow(s.now()) {
		s.queueWrite(key, storeKey, env, ttl)
		return
	}
	stored, err := s.putIfNewer(ctx, key, storeKey, b, ttl, e.created, eo.L2HardTimeout)
	switch {
	case retryable(err):
		s.queueWrite(key, storeKey, env, ttl)
	case err == nil && !stored:
		// L2 holds a newer version: another node changed the key at
		// about the same time, and by the versions its change is the
		// later one (with skewed clocks, possibly not by real time).
		// This node expires its copy and reads that one, as every other
		// node will, instead of serving its own until it expires (as for
		// Expire, fail-safe may still fall back on it).
		now := s.now()
		s.local.l1.compute(key, func(old *entry) (*entry, bool) {
			switch {
			case old != e:
				return nil, true
			case !old.failSafe:
				return nil, false
			}
			return old.expiredCopy(now), false
		})
	}
}

// queueL2Write hands a failed L2 write to auto-recovery in its stale form:
// expired as of its own version, so that the replay gives the other nodes a
// fail-safe fallback, never a fresh value. While the write waited, another
// node may have replaced the key without being able to tell anyone (its L2
// write and its message queued too, or the L2 came back empty after a
// restart): replayed fresh, the older value would be served by every node
// that read it until that other node's own replay.
func (s *l2side) queueWrite(key, storeKey string, env l2.Envelope, ttl time.Duration) {
	env.Expires = min(env.Expires, s.now())
	env.EagerRefresh = 0
	b, err := env.AppendBinary(nil)
	if err != nil {
		return // not reached: the fresh form of env encoded
	}
	s.rec.queue(&recoveryItem{kind: recoverL2Set, key: key, at: env.Created, storeKey: storeKey, value: b, ttl: ttl})
}

// deleteL2 removes key from L2 as of version at, queueing the write when it
// fails. With a conditional store it writes a tombstone instead of deleting,
// so that an older value (a slower node's factory result) cannot be written
// back over the removal for Options.TombstoneTTL.
func (s *l2side) delete(ctx context.Context, key string, at int64, eo *EntryOptions) {
	storeKey := s.key(key)
	if s.cond == nil {
		if !s.breaker.allow(s.now()) || s.del(ctx, key, storeKey, eo.L2HardTimeout) != nil {
			s.rec.queue(&recoveryItem{kind: recoverL2Delete, key: key, at: at, storeKey: storeKey})
		}
		return
	}
	env := l2.Envelope{Flags: l2.FlagTombstone, Created: at, Expires: at}
	b, _ := env.AppendBinary(nil)
	if !s.breaker.allow(s.now()) || retryable(s.put(ctx, key, storeKey, b, s.tombstoneTTL, at, eo.L2HardTimeout)) {
		s.rec.queue(&recoveryItem{kind: recoverL2Set, key: key, at: at, storeKey: storeKey, value: b, ttl: s.tombstoneTTL})
	}
}

// writeMarker stores a tag or Clear time under its reserved key.
func (s *l2side) writeMarker(ctx context.Context, storeKey, subject string, at int64, eo *EntryOptions) {
	env := l2.Envelope{Created: at, Expires: at}
	b, _ := env.AppendBinary(nil)
	ttl := s.markerTTL()
	if !s.breaker.allow(s.now()) || retryable(s.put(ctx, subject, storeKey, b, ttl, at, eo.L2HardTimeout)) {
		s.rec.queue(&recoveryItem{kind: recoverL2Set, key: subject, at: at, storeKey: storeKey, value: b, ttl: ttl, marker: true})
	}
}

// tagKnowledgeTTL is how long tag and Clear times read from L2 stay good:
// while the backplane is up its messages keep them current (0: until a
// possible loss resets them); while it is down, the staleness bound; without
// a backplane, a default entry duration.
func (s *l2side) tagKnowledgeTTL() int64 {
	switch {
	case s.gate.bound == 0: // no backplane
		return int64(s.defaultDuration)
	case s.gate.since.Load() != 0:
		return s.gate.bound
	}
	return 0
}

// markerTTL is how long tag and Clear times are kept in L2:
// Options.MarkerTTL, the longest any entry lives (local.capLife).
func (s *l2side) markerTTL() time.Duration {
	return time.Duration(s.local.lifeCap)
}

// ensureTags makes sure the tag store knows the L2 tag times of tags (and the
// L2 Clear times), reading the ones it has not read since its knowledge was
// last reset.
// It reports whether it knows them all: a marker that could not be read
// (L2 failed, its breaker is open, the marker is corrupt) leaves its tag
// unknown, and an entry checked against it cannot be served fresh.
func (s *l2side) ensureTags(ctx context.Context, tags []string, eo *EntryOptions) bool {
	now, ttl := s.preciseNow(), s.tagKnowledgeTTL()
	all := true
	if !s.local.tags.known(clearTag, now, ttl) {
		if s.fetchMarker(ctx, s.clearKey(true), clearTag, true, eo) && s.fetchMarker(ctx, s.clearKey(false), clearTag, false, eo) {
			s.local.tags.markKnown(clearTag, now) // as of the reads' start
		} else {
			all = false
		}
	}
	for _, t := range tags {
		if s.local.tags.known(t, now, ttl) {
			continue
		}
		if s.fetchMarker(ctx, s.tagKey(t, true), t, true, eo) && s.fetchMarker(ctx, s.tagKey(t, false), t, false, eo) {
			s.local.tags.markKnown(t, now)
		} else {
			all = false
		}
	}
	return all
}

// fetchMarker reads a tag or Clear marker into the tag store, and reports
// whether it could (found or not).
func (s *l2side) fetchMarker(ctx context.Context, storeKey, tag string, remove bool, eo *EntryOptions) bool {
	if !s.breaker.allow(s.now()) {
		return false // l2Get would call it a miss
	}
	b, found, err := s.get(ctx, storeKey, tag, eo.L2HardTimeout)
	if err != nil || !found {
		return err == nil
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		s.corrupt(ctx, storeKey, err)
		return false
	}
	if s.tooFarAhead(env.Created) {
		s.corrupt(ctx, storeKey, fmt.Errorf("%w: marker %q", errFuture, storeKey))
		return false
	}
	s.observe(env.Created)
	if tag == clearTag {
		s.local.tags.clear(env.Created, remove)
		return true
	}
	s.local.tags.invalidate(tag, env.Created, remove, s.now()-s.local.maxLife.Load())
	return true
}
