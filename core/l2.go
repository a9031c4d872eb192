package core

import (
	"context"
	"fmt"
	"time"

	"github.com/stratacache/strata/l2"
)

// The distributed cache side of a Cache. Entries are stored in the l2
// envelope (version 1), under KeyPrefix + key; tag invalidation times and
// Clear times are entries too, under reserved keys, so a node that did not
// hear about an invalidation (it started later, or lost messages) finds it
// there.

// reservedPrefix starts every key strata itself writes to L2. User keys may
// not start with it.
const reservedPrefix = "__strata:"

func (c *Cache) l2key(key string) string { return c.keyPrefix + key }

func (c *Cache) tagKey(tag string, remove bool) string {
	if remove {
		return c.keyPrefix + reservedPrefix + "tag-remove:" + tag
	}
	return c.keyPrefix + reservedPrefix + "tag-expire:" + tag
}

func (c *Cache) clearKey(remove bool) string {
	if remove {
		return c.keyPrefix + reservedPrefix + "clear-remove"
	}
	return c.keyPrefix + reservedPrefix + "clear-expire"
}

// l2Timeout returns the timeout of an L2 call: the soft one when a stale value
// can be served instead, else the hard one (0: none).
func l2Timeout(eo *EntryOptions, haveStale bool) time.Duration {
	t := eo.L2HardTimeout
	if haveStale && eo.FailSafe && eo.L2SoftTimeout > 0 && (t == 0 || eo.L2SoftTimeout < t) {
		t = eo.L2SoftTimeout
	}
	return t
}

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// l2Get reads a store key within timeout. A store failure is reported (log,
// event, breaker) and returned; an open breaker is a miss.
func (c *Cache) l2Get(ctx context.Context, storeKey, key string, timeout time.Duration) ([]byte, bool, error) {
	if !c.l2breaker.allow(c.now()) {
		return nil, false, nil
	}
	caller := ctx
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpL2Get, Cache: c.name, Key: key, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
	}
	b, found, err := c.l2.Get(ctx, storeKey)
	if info != nil {
		info.Err, info.Hit = err, found
		c.obs.end(ctx, info)
	}
	if err != nil {
		c.l2Failed(caller, key, "get", err)
		return nil, false, err
	}
	c.l2Succeeded(ctx)
	return b, found, nil
}

// l2Put writes a store key (conditionally on the version when the store can)
// within timeout.
func (c *Cache) l2Put(ctx context.Context, key, storeKey string, value []byte, ttl time.Duration, version int64, timeout time.Duration) error {
	_, err := c.l2PutIfNewer(ctx, key, storeKey, value, ttl, version, timeout)
	return err
}

// l2PutIfNewer is l2Put, also reporting whether the store took the write
// (false: a conditional store holds a newer version).
func (c *Cache) l2PutIfNewer(ctx context.Context, key, storeKey string, value []byte, ttl time.Duration, version int64, timeout time.Duration) (bool, error) {
	caller := ctx
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpL2Set, Cache: c.name, Key: key, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
	}
	var err error
	stored := true
	if c.l2cond != nil {
		stored, err = c.l2cond.SetIfNewer(ctx, storeKey, value, ttl, version)
		if err == nil && !stored && c.clearFarFuture(ctx, storeKey) {
			stored, err = c.l2cond.SetIfNewer(ctx, storeKey, value, ttl, version)
		}
	} else {
		err = c.l2.Set(ctx, storeKey, value, ttl)
	}
	if info != nil {
		info.Err = err
		c.obs.end(ctx, info)
	}
	if err != nil {
		c.l2Failed(caller, key, "set", err)
		return false, err
	}
	c.l2Succeeded(ctx)
	return stored, nil
}

// clearFarFuture deletes what storeKey holds if its version is more than
// maxClockLead ahead of this node's clock (a broken clock wrote it): every
// node reads it as corrupt, and no conditional write could ever replace it.
// It reports whether it deleted it.
func (c *Cache) clearFarFuture(ctx context.Context, storeKey string) bool {
	b, found, err := c.l2.Get(ctx, storeKey)
	if err != nil || !found {
		return false
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil || env.Created-c.preciseNow() <= maxClockLead {
		return false
	}
	c.logger.WarnContext(ctx, "strata: deleting an L2 entry more than 24h ahead of this node's clock, which no write could replace", "store_key", storeKey, "ahead", time.Duration(env.Created-c.preciseNow()).Round(time.Second))
	return c.l2.Delete(ctx, storeKey) == nil
}

func (c *Cache) l2Del(ctx context.Context, key, storeKey string, timeout time.Duration) error {
	caller := ctx
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpL2Delete, Cache: c.name, Key: key, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
	}
	err := c.l2.Delete(ctx, storeKey)
	if info != nil {
		info.Err = err
		c.obs.end(ctx, info)
	}
	if err != nil {
		c.l2Failed(caller, key, "delete", err)
		return err
	}
	c.l2Succeeded(ctx)
	return nil
}

// l2Failed handles err, returned by an L2 call (op) about key that was made
// with the caller's context ctx, by the rule of l2.Classify: a call the
// caller gave up on is no failure of the store; bytes that are not a strata
// entry, or a key that holds a value of another type, are a miss counted as
// corrupt on a read; a write refused for good keeps the entry in L1 only;
// only the rest counts against the store (L2Errors, the circuit breaker) and
// is worth retrying (see retryable).
func (c *Cache) l2Failed(ctx context.Context, key, op string, err error) {
	switch l2.Classify(ctx, err) {
	case l2.ClassNone:
		return
	case l2.ClassCanceled:
		c.logger.DebugContext(ctx, "strata: L2 "+op+" ended by the caller's context", "key", key, "err", err)
		return
	case l2.ClassCorrupt:
		c.l2Corrupt(ctx, key, err)
		return
	case l2.ClassPermanent:
		if op == "get" || op == "get many" {
			c.l2Corrupt(ctx, key, err)
		} else {
			c.notStorable(ctx, key, err)
		}
		return
	}
	c.stats.l2Errors.Add(1)
	c.event(ctx, EventL2Error, key, err)
	c.logger.WarnContext(ctx, "strata: L2 "+op+" failed", "key", key, "err", err)
	if c.l2breaker.fail(c.now()) {
		c.event(ctx, EventCircuitBreakerChange, "l2:open", nil)
		c.logger.WarnContext(ctx, "strata: L2 circuit breaker open", "for", time.Duration(c.l2breaker.duration))
	}
}

func (c *Cache) l2Succeeded(ctx context.Context) {
	if c.l2breaker.succeed() {
		c.event(ctx, EventCircuitBreakerChange, "l2:closed", nil)
		c.logger.InfoContext(ctx, "strata: L2 circuit breaker closed")
		c.recovery.wake()
	}
}

// l2Corrupt reports an undecodable L2 entry: a miss, logged and counted.
func (c *Cache) l2Corrupt(ctx context.Context, key string, err error) {
	c.stats.l2Corrupt.Add(1)
	c.event(ctx, EventL2Error, key, err)
	c.logger.WarnContext(ctx, "strata: corrupt L2 entry treated as a miss", "key", key, "err", err)
}

// readL2 reads key's entry from L2 into an entry of type T: nil on a miss, a
// failure, a timeout or a corrupt entry (each reported). The error is the
// store's failure, if any (a corrupt entry is a miss, not an error).
func readL2[T any](ctx context.Context, c *Cache, key string, eo *EntryOptions, haveStale bool) (*entry, error) {
	readAt := c.preciseNow()
	b, found, err := c.l2Get(ctx, c.l2key(key), key, l2Timeout(eo, haveStale))
	if err != nil || !found {
		return nil, err
	}
	return decodeL2Entry[T](ctx, c, key, b, readAt, eo), nil
}

// decodeL2Entry turns L2 bytes, read by a call that began at readAt, into an
// entry of type T, or nil (reported) when they are corrupt. nil bytes are a
// miss. The entry is confirmed as of readAt, not of its arrival: a loss of
// messages noticed while the read was under way expires it.
func decodeL2Entry[T any](ctx context.Context, c *Cache, key string, b []byte, readAt int64, eo *EntryOptions) *entry {
	if b == nil {
		return nil
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		c.l2Corrupt(ctx, key, err)
		return nil
	}
	if env.Created-c.preciseNow() > maxClockLead {
		c.l2Corrupt(ctx, key, fmt.Errorf("%w: the L2 entry of key %q has version %d", errFuture, key, env.Created))
		return nil
	}
	c.observe(env.Created)
	if env.Flags&l2.FlagTombstone != 0 {
		c.floors.raise(key, env.Created, false) // removed or expired at that version
		return nil
	}
	var v T
	if err := c.ser.Unmarshal(env.Value, &v); err != nil {
		c.l2Corrupt(ctx, key, fmt.Errorf("core: decoding the L2 value of key %q as %T: %w", key, v, err))
		return nil
	}
	e := &entry{
		value: v, created: env.Created, confirmed: readAt, expires: env.Expires, eagerAt: env.EagerRefresh,
		tags: env.Tags, etag: env.ETag, lastModified: env.LastModified,
		failSafe: env.Flags&l2.FlagFailSafe != 0,
	}
	if eo.L1Duration > 0 {
		e.expires = min(e.expires, c.now()+int64(eo.L1Duration))
	}
	e.physExpires = e.expires
	if e.failSafe {
		e.physExpires = max(e.expires, e.created+int64(eo.FailSafeMaxDuration))
	}
	switch fl := c.floors.get(key); {
	case e.created < fl.removed:
		// Older than a Remove this node knows of (its tombstone not in
		// L2 yet, or lost): gone, not even fail-safe may serve it.
		return nil
	case e.created < fl.version:
		// Older than a change this node knows of: stale at best.
		e.expires = min(e.expires, c.now())
	}
	c.noteLifetime(e.physExpires - e.created)
	if !c.ensureTags(ctx, e.tags, eo) {
		// Not checked against every tag and Clear time: stale at best.
		e.expires = min(e.expires, c.now())
	}
	if c.unsure.Load() != 0 {
		// While the node may be missing messages, the tag and Clear times
		// it checked the entry against are as current as their reads
		// from L2: the entry is confirmed no later than those.
		e.confirmed = min(e.confirmed, c.tags.knownSince(e.tags))
	}
	return e
}

// writeL2 stores e (value already serialized) for key in L2, queueing it for
// auto-recovery when that fails.
func (c *Cache) writeL2(ctx context.Context, key string, e *entry, value []byte, eo *EntryOptions, now int64) {
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
		ttl = max(d, eo.FailSafeMaxDuration)
	}
	if e.eagerAt != 0 && eo.EagerRefreshThreshold > 0 {
		env.EagerRefresh = now + int64(float64(d)*eo.EagerRefreshThreshold)
	}
	b, err := env.AppendBinary(nil)
	if err == nil && len(b) > c.maxL2Value() {
		err = fmt.Errorf("%w: the encoded entry is %d bytes, over the L2 value size limit (%d)", l2.ErrValueTooLarge, len(b), c.maxL2Value())
	}
	if err != nil {
		// The entry itself cannot be stored (an ETag over l2.MaxETagLen,
		// a value over the size limit, ...): like a value the serializer
		// refuses, it stays in L1 only. It is not an L2 failure: the
		// circuit breaker must not stop the writes of every other key for
		// it.
		c.notStorable(ctx, key, err)
		return
	}
	storeKey := c.l2key(key)
	if !c.l2breaker.allow(c.now()) {
		c.queueL2Write(key, storeKey, env, ttl)
		return
	}
	stored, err := c.l2PutIfNewer(ctx, key, storeKey, b, ttl, e.created, eo.L2HardTimeout)
	switch {
	case retryable(err):
		c.queueL2Write(key, storeKey, env, ttl)
	case err == nil && !stored:
		// L2 holds a newer version: another node changed the key at
		// about the same time, and by the versions its change is the
		// later one (with skewed clocks, possibly not by real time).
		// This node expires its copy and reads that one, as every other
		// node will, instead of serving its own until it expires (as for
		// Expire, fail-safe may still fall back on it).
		now := c.now()
		c.l1.compute(key, func(old *entry) (*entry, bool) {
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
func (c *Cache) queueL2Write(key, storeKey string, env l2.Envelope, ttl time.Duration) {
	env.Expires = min(env.Expires, c.now())
	env.EagerRefresh = 0
	b, err := env.AppendBinary(nil)
	if err != nil {
		return // not reached: the fresh form of env encoded
	}
	c.queue(&recoveryItem{kind: recoverL2Set, key: key, at: env.Created, storeKey: storeKey, value: b, ttl: ttl})
}

// deleteL2 removes key from L2 as of version at, queueing the write when it
// fails. With a conditional store it writes a tombstone instead of deleting,
// so that an older value (a slower node's factory result) cannot be written
// back over the removal for Options.TombstoneTTL.
func (c *Cache) deleteL2(ctx context.Context, key string, at int64, eo *EntryOptions) {
	storeKey := c.l2key(key)
	if c.l2cond == nil {
		if !c.l2breaker.allow(c.now()) || c.l2Del(ctx, key, storeKey, eo.L2HardTimeout) != nil {
			c.queue(&recoveryItem{kind: recoverL2Delete, key: key, at: at, storeKey: storeKey})
		}
		return
	}
	env := l2.Envelope{Flags: l2.FlagTombstone, Created: at, Expires: at}
	b, _ := env.AppendBinary(nil)
	if !c.l2breaker.allow(c.now()) || retryable(c.l2Put(ctx, key, storeKey, b, c.tombstoneTTL, at, eo.L2HardTimeout)) {
		c.queue(&recoveryItem{kind: recoverL2Set, key: key, at: at, storeKey: storeKey, value: b, ttl: c.tombstoneTTL})
	}
}

// writeMarker stores a tag or Clear time under its reserved key.
func (c *Cache) writeMarker(ctx context.Context, storeKey, subject string, at int64, eo *EntryOptions) {
	env := l2.Envelope{Created: at, Expires: at}
	b, _ := env.AppendBinary(nil)
	ttl := c.markerTTL()
	if !c.l2breaker.allow(c.now()) || retryable(c.l2Put(ctx, subject, storeKey, b, ttl, at, eo.L2HardTimeout)) {
		c.queue(&recoveryItem{kind: recoverL2Set, key: subject, at: at, storeKey: storeKey, value: b, ttl: ttl, marker: true})
	}
}

// tagKnowledgeTTL is how long tag and Clear times read from L2 stay good:
// while the backplane is up its messages keep them current (0: until a
// possible loss resets them); while it is down, the staleness bound; without
// a backplane, a default entry duration.
func (c *Cache) tagKnowledgeTTL() int64 {
	switch {
	case c.bp == nil:
		return int64(c.defaults.Duration)
	case c.unsure.Load() != 0:
		return c.staleBound
	}
	return 0
}

// markerTTL is how long tag and Clear times are kept in L2: the longest
// entry lifetime this node has used, and at least a day.
func (c *Cache) markerTTL() time.Duration {
	return max(time.Duration(c.maxLife.Load()), DefaultFailSafeMaxDuration)
}

// ensureTags makes sure the tag store knows the L2 tag times of tags (and the
// L2 Clear times), reading the ones it has not read since its knowledge was
// last reset.
// It reports whether it knows them all: a marker that could not be read
// (L2 failed, its breaker is open, the marker is corrupt) leaves its tag
// unknown, and an entry checked against it cannot be served fresh.
func (c *Cache) ensureTags(ctx context.Context, tags []string, eo *EntryOptions) bool {
	now, ttl := c.preciseNow(), c.tagKnowledgeTTL()
	all := true
	if !c.tags.known(clearTag, now, ttl) {
		if c.fetchMarker(ctx, c.clearKey(true), clearTag, true, eo) && c.fetchMarker(ctx, c.clearKey(false), clearTag, false, eo) {
			c.tags.markKnown(clearTag, now) // as of the reads' start
		} else {
			all = false
		}
	}
	for _, t := range tags {
		if c.tags.known(t, now, ttl) {
			continue
		}
		if c.fetchMarker(ctx, c.tagKey(t, true), t, true, eo) && c.fetchMarker(ctx, c.tagKey(t, false), t, false, eo) {
			c.tags.markKnown(t, now)
		} else {
			all = false
		}
	}
	return all
}

// fetchMarker reads a tag or Clear marker into the tag store, and reports
// whether it could (found or not).
func (c *Cache) fetchMarker(ctx context.Context, storeKey, tag string, remove bool, eo *EntryOptions) bool {
	if !c.l2breaker.allow(c.now()) {
		return false // l2Get would call it a miss
	}
	b, found, err := c.l2Get(ctx, storeKey, tag, eo.L2HardTimeout)
	if err != nil || !found {
		return err == nil
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil {
		c.l2Corrupt(ctx, storeKey, err)
		return false
	}
	if env.Created-c.preciseNow() > maxClockLead {
		c.l2Corrupt(ctx, storeKey, fmt.Errorf("%w: marker %q", errFuture, storeKey))
		return false
	}
	c.observe(env.Created)
	if tag == clearTag {
		c.tags.clear(env.Created, remove)
		return true
	}
	c.tags.invalidate(tag, env.Created, remove, c.now()-c.maxLife.Load())
	return true
}
