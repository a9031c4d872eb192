package core

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/stratacache/strata/backplane"
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
	e := s.entryOf(&env, v, readAt, eo)
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

// entryOf makes the L1 entry of env, an entry of L2 (read from it, or
// carried by a message) holding value, confirmed as of confirmed, with the
// L1 options of eo: L1Duration, sliding expiration, the fail-safe lifetime,
// and no longer than the markers live.
func (s *l2side) entryOf(env *l2.Envelope, value any, confirmed int64, eo *EntryOptions) *entry {
	now := s.now()
	e := &entry{
		value: value, created: env.Created, confirmed: confirmed, expires: env.Expires, eagerAt: env.EagerRefresh,
		tags: env.Tags, failSafe: env.Flags&l2.FlagFailSafe != 0,
	}
	e.setValidator(env.ETag, env.LastModified)
	if eo.L1Duration > 0 {
		e.expires = min(e.expires, now+int64(eo.L1Duration))
	}
	e.slideFor(eo, now)
	e.physExpires = e.expires
	if e.failSafe {
		e.physExpires = max(e.expires, e.created+int64(eo.FailSafeMaxDuration))
	}
	s.local.capLife(e)
	return e
}

// fromMessage turns the entry a set message carried (ch.carried, decoded
// and checked by the receiver) into an L1 entry, its value still serialized
// (decoded by its first read, with the type that read asks for), or returns
// nil when this node must not install it and the message only invalidates:
// this node may be missing messages, a tag or Clear time the entry must be
// checked against is not known here without reading L2, L1 is weighed (a
// weigher expects decoded values), or the entry is older than a change this
// node knows of (or no newer than one whose floor it forgot). Past those,
// it is what an L2 read of the entry at the message's arrival would give,
// confirmed as of the message's version.
func (s *l2side) fromMessage(ch *change, eo *EntryOptions) *entry {
	env := ch.carried
	now := s.preciseNow()
	if s.gate.since.Load() != 0 || s.weighed || !s.tagsKnown(env.Tags, now) {
		return nil
	}
	// Not older than a change this node knows of, nor (its floors are
	// bounded) no newer than one it may have forgotten: an L2 read would
	// meet that change's tombstone or entry in L2, an entry from a message
	// meets nothing.
	if fl := s.local.floors.get(ch.key); env.Created < fl.version || env.Created < fl.removed || env.Created <= s.local.floors.forgotten() {
		return nil
	}
	e := s.entryOf(env, &encoded{b: env.Value, ser: s.ser}, min(env.Created, now), eo)
	e.wire = true
	s.local.noteLifetime(e.physExpires - e.created)
	return e
}

// tagsKnown reports whether the tag store knows the L2 times of tags and of
// Clear without reading L2 (ensureTags without the reads).
func (s *l2side) tagsKnown(tags []string, now int64) bool {
	ttl := s.tagKnowledgeTTL()
	if !s.local.tags.known(clearTag, now, ttl) {
		return false
	}
	for _, t := range tags {
		if !s.local.tags.known(t, now, ttl) {
			return false
		}
	}
	return true
}

// l2Write is one write of a local change to L2, encoded and ready for the
// store (or for the store and the backplane at once, see Cache.announce): a
// new entry, a tombstone (a Remove or Expire, with a conditional store) or a
// tag or Clear marker.
type l2Write struct {
	key, storeKey string
	b             []byte
	ttl           time.Duration
	version       int64
	// For a new entry: its envelope (queued in its stale form when the
	// write fails) and the L1 entry (expired when L2 holds a newer one).
	env l2.Envelope
	e   *entry
	// marker: a tag or Clear marker.
	marker bool
}

// prepare encodes the L2 write of local change ch, or returns nil when
// there is none to make this way: an entry that cannot be stored (reported,
// it stays in L1), a Remove or Expire on a store that is not conditional
// (delete deletes instead), an action that writes nothing.
func (s *l2side) prepare(ctx context.Context, ch *change, eo *EntryOptions) *l2Write {
	switch {
	case ch.action == backplane.ActionSet && ch.value != nil:
		return s.prepareEntry(ctx, ch.key, ch.e, ch.value, eo, ch.now)
	case (ch.action == backplane.ActionRemove || ch.action == backplane.ActionExpire) && s.cond != nil:
		// A tombstone instead of a delete, so that an older value (a
		// slower node's factory result) cannot be written back over the
		// removal for Options.TombstoneTTL.
		env := l2.Envelope{Flags: l2.FlagTombstone, Created: ch.at, Expires: ch.at}
		b, _ := env.AppendBinary(nil)
		return &l2Write{key: ch.key, storeKey: s.key(ch.key), b: b, ttl: s.tombstoneTTL, version: ch.at}
	case ch.markerKey != "":
		env := l2.Envelope{Created: ch.at, Expires: ch.at}
		b, _ := env.AppendBinary(nil)
		return &l2Write{key: ch.key, storeKey: ch.markerKey, b: b, ttl: s.markerTTL(), version: ch.at, marker: true}
	}
	return nil
}

// prepareEntry encodes e (value already serialized) for key, or reports it
// as not storable and returns nil.
func (s *l2side) prepareEntry(ctx context.Context, key string, e *entry, value []byte, eo *EntryOptions, now int64) *l2Write {
	d := eo.Duration
	if eo.L2Duration > 0 {
		d = eo.L2Duration
	}
	env := l2.Envelope{
		Created: e.created, Expires: now + int64(d), Tags: e.tags, ETag: e.etag(),
		LastModified: e.lastModified(), Value: value,
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
		return nil
	}
	return &l2Write{key: key, storeKey: s.key(key), b: b, ttl: ttl, version: e.created, env: env, e: e}
}

// write makes w, queueing it for auto-recovery when that fails.
func (s *l2side) write(ctx context.Context, w *l2Write, eo *EntryOptions) {
	if !s.breaker.allow(s.now()) {
		s.queue(w)
		return
	}
	stored, err := s.putIfNewer(ctx, w.key, w.storeKey, w.b, w.ttl, w.version, eo.L2HardTimeout)
	s.wrote(w, stored, err)
}

// wrote handles the outcome of w: a failure that may pass is queued for
// auto-recovery; a new entry the store refused because it holds a newer
// version is expired in L1.
func (s *l2side) wrote(w *l2Write, stored bool, err error) {
	switch {
	case retryable(err):
		s.queue(w)
	case err == nil && !stored && w.e != nil:
		// L2 holds a newer version: another node changed the key at
		// about the same time, and by the versions its change is the
		// later one (with skewed clocks, possibly not by real time).
		// This node expires its copy and reads that one, as every other
		// node will, instead of serving its own until it expires (as for
		// Expire, fail-safe may still fall back on it).
		now := s.now()
		s.local.l1.compute(w.key, func(old *entry) (*entry, bool) {
			switch {
			case old != w.e:
				return nil, true
			case !old.failSafe:
				return nil, false
			}
			return old.expiredCopy(now), false
		})
	}
}

// queue hands w to auto-recovery. A new entry goes in its stale form:
// expired as of its own version, so that the replay gives the other nodes
// a fail-safe fallback, never a fresh value. While the write waited,
// another node may have replaced the key without being able to tell anyone
// (its L2 write and its message queued too, or the L2 came back empty
// after a restart): replayed fresh, the older value would be served by
// every node that read it until that other node's own replay.
func (s *l2side) queue(w *l2Write) {
	b := w.b
	if w.e != nil {
		env := w.env
		env.Expires = min(env.Expires, s.now())
		env.EagerRefresh = 0
		var err error
		if b, err = env.AppendBinary(nil); err != nil {
			return // not reached: the fresh form of env encoded
		}
	}
	s.rec.queue(&recoveryItem{kind: recoverL2Set, key: w.key, at: w.version, storeKey: w.storeKey, value: b, ttl: w.ttl, marker: w.marker})
}

// delete removes key from a store that is not conditional, as of version
// at, queueing the delete when it fails. (A conditional store gets a
// tombstone instead: prepare.)
func (s *l2side) delete(ctx context.Context, key string, at int64, eo *EntryOptions) {
	storeKey := s.key(key)
	if !s.breaker.allow(s.now()) || s.del(ctx, key, storeKey, eo.L2HardTimeout) != nil {
		s.rec.queue(&recoveryItem{kind: recoverL2Delete, key: key, at: at, storeKey: storeKey})
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
