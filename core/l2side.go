package core

import (
	"context"
	"errors"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/serializer"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

// The distributed cache side of a Cache. Entries are stored in the l2
// envelope (version 1), under KeyPrefix + key; tag invalidation times and
// Clear times are entries too, under reserved keys, so a node that did not
// hear about an invalidation (it started later, or lost messages) finds it
// there.

// l2side owns the distributed cache: the store with its optional interfaces
// (asserted once, at New), the serializer, the circuit breaker and the
// reporting of L2 errors, the reads checked against the floors (local.go)
// to be newer than), tombstones and tag and Clear markers. I/O and
// reporting are in this file, entries and markers in l2entries.go. A cache
// without L2 has none (nil).
type l2side struct {
	*env
	local *local
	gate  *unsureGate
	rec   *recovery

	store  l2.Store
	cond   l2.ConditionalStore // nil: writes are not conditional
	locker l2.Locker           // set with Options.DistributedStampedeLock
	// ann, when not nil, writes and publishes in one round trip (the store
	// can publish on the cache's backplane: announce.go).
	ann l2.Announcer
	// weighed: L1 has an Options.L1Weigher, which must see decoded values
	// (entries received on the backplane are not installed).
	weighed      bool
	ser          serializer.Serializer
	keyPrefix    string
	breaker      breaker
	maxValueSize int
	// tombstoneTTL is how long a Remove or Expire is remembered in a
	// conditional store.
	tombstoneTTL time.Duration
	// defaultDuration is how long tag times read from L2 stay good
	// without a backplane (tagKnowledgeTTL).
	defaultDuration time.Duration
}

// newL2Side returns the L2 side of a cache with options o (nil: no L2).
func newL2Side(cfg *config, o *Options, v *env, loc *local, gate *unsureGate, rec *recovery) *l2side {
	if o.L2 == nil {
		return nil
	}
	s := &l2side{
		env: v, local: loc, gate: gate, rec: rec, store: o.L2, ser: o.Serializer,
		keyPrefix: cfg.keyPrefix, maxValueSize: cfg.maxL2ValueSize, tombstoneTTL: cfg.tombstoneTTL,
		defaultDuration: cfg.defaults.Duration,
	}
	s.breaker = breaker{name: "l2", what: "L2", duration: int64(cfg.l2BreakerDuration)}
	s.cond, _ = o.L2.(l2.ConditionalStore)
	s.ann = announcer(o.L2, o.Backplane)
	s.weighed = o.L1Weigher != nil
	if o.DistributedStampedeLock {
		s.locker = o.L2.(l2.Locker) // validated
	}
	if s.ser == nil {
		s.ser = jsonserializer.New()
	}
	return s
}

// writes reports whether a call with options eo writes to L2.
func (s *l2side) writes(eo *EntryOptions) bool { return s != nil && !eo.SkipL2Write }

// reads reports whether a call with options eo reads from L2.
func (s *l2side) reads(eo *EntryOptions) bool { return s != nil && !eo.SkipL2Read }

// reservedPrefix starts every key strata itself writes to L2. User keys may
// not start with it.
const reservedPrefix = "__strata:"

func (s *l2side) key(key string) string { return s.keyPrefix + key }

func (s *l2side) tagKey(tag string, remove bool) string {
	if remove {
		return s.keyPrefix + reservedPrefix + "tag-remove:" + tag
	}
	return s.keyPrefix + reservedPrefix + "tag-expire:" + tag
}

// markerKey returns the L2 key of the marker of a tag invalidation or a
// Clear ("" for other changes).
func (s *l2side) markerKey(ch *change) string {
	switch ch.action {
	case backplane.ActionRemoveTag, backplane.ActionExpireTag:
		return s.tagKey(ch.key, ch.action == backplane.ActionRemoveTag)
	case backplane.ActionClearRemove, backplane.ActionClearExpire:
		return s.clearKey(ch.action == backplane.ActionClearRemove)
	}
	return ""
}

func (s *l2side) clearKey(remove bool) string {
	if remove {
		return s.keyPrefix + reservedPrefix + "clear-remove"
	}
	return s.keyPrefix + reservedPrefix + "clear-expire"
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

// call makes one store call, fn, about key within timeout: observed as op,
// and reported (log, event, breaker) by the rule of failed when it fails.
// fn may set the info's Hit (info is nil without observers).
func (s *l2side) call(ctx context.Context, op Operation, name, key string, timeout time.Duration, fn func(context.Context, *OpInfo) error) error {
	caller := ctx
	ctx, cancel := withTimeout(ctx, timeout)
	defer cancel()
	ctx, info := s.begin(ctx, op, key)
	err := fn(ctx, info)
	s.end(ctx, info, err)
	if err != nil {
		s.failed(caller, key, name, err)
		return err
	}
	s.succeeded(ctx)
	return nil
}

// get reads a store key within timeout. A store failure is reported and
// returned; an open breaker is a miss.
func (s *l2side) get(ctx context.Context, storeKey, key string, timeout time.Duration) (b []byte, found bool, err error) {
	if !s.breaker.allow(s.now()) {
		return nil, false, nil
	}
	err = s.call(ctx, OpL2Get, "get", key, timeout, func(ctx context.Context, info *OpInfo) error {
		var err error
		b, found, err = s.store.Get(ctx, storeKey)
		if info != nil {
			info.Hit = found
		}
		return err
	})
	return b, found, err
}

// put writes a store key (conditionally on the version when the store can)
// within timeout.
func (s *l2side) put(ctx context.Context, key, storeKey string, value []byte, ttl time.Duration, version int64, timeout time.Duration) error {
	_, err := s.putIfNewer(ctx, key, storeKey, value, ttl, version, timeout)
	return err
}

// putIfNewer is put, also reporting whether the store took the write
// (false: a conditional store holds a newer version).
func (s *l2side) putIfNewer(ctx context.Context, key, storeKey string, value []byte, ttl time.Duration, version int64, timeout time.Duration) (stored bool, err error) {
	err = s.call(ctx, OpL2Set, "set", key, timeout, func(ctx context.Context, _ *OpInfo) error {
		if s.cond == nil {
			stored = true
			return s.store.Set(ctx, storeKey, value, ttl)
		}
		var err error
		stored, err = s.cond.SetIfNewer(ctx, storeKey, value, ttl, version)
		if err == nil && !stored && s.clearFarFuture(ctx, storeKey) {
			stored, err = s.cond.SetIfNewer(ctx, storeKey, value, ttl, version)
		}
		return err
	})
	return stored && err == nil, err
}

// del deletes a store key within timeout.
func (s *l2side) del(ctx context.Context, key, storeKey string, timeout time.Duration) error {
	return s.call(ctx, OpL2Delete, "delete", key, timeout, func(ctx context.Context, _ *OpInfo) error {
		return s.store.Delete(ctx, storeKey)
	})
}

// clearFarFuture deletes what storeKey holds if its version is more than
// maxClockLead ahead of this node's clock (a broken clock wrote it): every
// node reads it as corrupt, and no conditional write could ever replace it.
// It reports whether it deleted it.
func (s *l2side) clearFarFuture(ctx context.Context, storeKey string) bool {
	b, found, err := s.store.Get(ctx, storeKey)
	if err != nil || !found {
		return false
	}
	env, err := l2.DecodeEnvelope(b)
	if err != nil || !s.tooFarAhead(env.Created) {
		return false
	}
	s.logger.WarnContext(ctx, "strata: deleting an L2 entry more than 24h ahead of this node's clock, which no write could replace", "store_key", storeKey, "ahead", time.Duration(env.Created-s.preciseNow()).Round(time.Second))
	return s.store.Delete(ctx, storeKey) == nil
}

// failed handles err, returned by an L2 call (op) about key that was made
// with the caller's context ctx, by the rule of l2.Classify: a call the
// caller gave up on is no failure of the store; bytes that are not a strata
// entry, or a key that holds a value of another type, are a miss counted as
// corrupt on a read; a write refused for good keeps the entry in L1 only;
// only the rest counts against the store (L2Errors, the circuit breaker) and
// is worth retrying (see retryable).
func (s *l2side) failed(ctx context.Context, key, op string, err error) {
	switch l2.Classify(ctx, err) {
	case l2.ClassNone:
		return
	case l2.ClassCanceled:
		s.logger.DebugContext(ctx, "strata: L2 "+op+" ended by the caller's context", "key", key, "err", err)
		return
	case l2.ClassCorrupt:
		s.corrupt(ctx, key, err)
		return
	case l2.ClassPermanent:
		if op == "get" || op == "get many" {
			s.corrupt(ctx, key, err)
		} else {
			s.notStorable(ctx, key, err)
		}
		return
	}
	s.stats.l2Errors.Add(1)
	s.event(ctx, EventL2Error, key, err)
	s.logger.WarnContext(ctx, "strata: L2 "+op+" failed", "key", key, "err", err)
	s.breaker.failed(ctx, s.env)
}

func (s *l2side) succeeded(ctx context.Context) { s.breaker.succeeded(ctx, s.env, s.rec) }

// corrupt reports an undecodable L2 entry: a miss, logged and counted.
func (s *l2side) corrupt(ctx context.Context, key string, err error) {
	s.stats.l2Corrupt.Add(1)
	s.event(ctx, EventL2Error, key, err)
	s.logger.WarnContext(ctx, "strata: corrupt L2 entry treated as a miss", "key", key, "err", err)
}

// notStorable reports an entry that cannot go to L2 (it cannot be encoded,
// or it is too large for core's limit or the store's): it stays in L1 only,
// counted in Stats.SerializationErrors. It is no L2 failure and opens no
// circuit breaker.
func (s *l2side) notStorable(ctx context.Context, key string, err error) {
	s.stats.serializeErrors.Add(1)
	s.event(ctx, EventSerializationError, key, err)
	s.logger.WarnContext(ctx, "strata: entry not storable in L2; cached in L1 only", "key", key, "err", err)
}

// retryable reports whether a failed L2 write may succeed later: not when
// the store refused it for good (l2.ClassPermanent) or the bytes are not an
// entry (l2.ClassCorrupt). A write its caller gave up on is retried.
func retryable(err error) bool {
	return err != nil && !errors.Is(err, l2.ErrPermanent) && !errors.Is(err, l2.ErrCorrupt)
}
