package core

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/serializer"
	"github.com/stratacache/strata/serializer/jsonserializer"
)

// Cache is a multi-level cache. Make one with New; use it through GetOrSet,
// Get and Set and its methods. All methods are safe for concurrent use.
type Cache struct {
	name       string
	instanceID string
	// source names this run of this node on the backplane: the instance
	// id and a random run id, so that a restarted node that keeps its
	// InstanceID is a new sender whose numbers start afresh, and a replay
	// of an earlier run's messages is told from its own.
	source   string
	defaults EntryOptions
	logger   *slog.Logger
	clock    Clock
	coarse   *coarseClock
	obs      observers
	// hitRec is set when every observer is a HitObserver: hits then take
	// the fast path.
	hitRec HitRecorder

	l1      *otterL1 // behind l1Store's methods; concrete so hits are not an interface call
	tags    *tagStore
	flights *flights

	// L2 (nil: none).
	l2        l2.Store
	l2cond    l2.ConditionalStore
	locker    l2.Locker // set with Options.DistributedStampedeLock
	ser       serializer.Serializer
	keyPrefix string
	l2breaker breaker
	// maxL2ValueSize is Options.MaxL2ValueSize or its default.
	maxL2ValueSize int

	// Backplane (nil: none).
	bp             backplane.Backplane
	keyring        *backplane.Keyring // nil: messages are not signed
	bpBreaker      breaker
	channel        string
	publishTimeout time.Duration
	outbox         chan outMsg
	pubMu          sync.Mutex // orders sendNow calls; guards seq and pubBuf
	seq            uint64
	pubBuf         []byte
	subMu          sync.Mutex
	sub            backplane.Subscription
	sources        sources
	// disconnectedAt is when the backplane went down (0: up).
	disconnectedAt atomic.Int64
	// behindAt is the watermark while this node's subscription lags
	// (0: it does not; watermark.go).
	behindAt atomic.Int64
	// unsure is the earlier of disconnectedAt and behindAt (0: neither):
	// since when this node may not have heard of changes.
	unsure     atomic.Int64
	wm         watermark
	staleBound int64
	// probeEvery is Options.BackplaneProbeInterval or its default
	// (negative: no probes).
	probeEvery int64

	maxKeyLen, maxTags int

	floors floors
	// tombstoneTTL is how long a Remove or Expire is remembered in a
	// conditional L2 store.
	tombstoneTTL time.Duration

	recovery *recoveryQueue // nil: auto-recovery off
	stats    counters

	plugins    []Plugin // started ones
	pluginErrs []error

	// lastStamp makes stamp strictly increasing; lastClock makes the
	// clock readings non-decreasing (monotonic).
	lastStamp, lastClock atomic.Int64
	// maxLife is the longest physical lifetime any entry got: tag times
	// older than that can be forgotten.
	maxLife atomic.Int64

	// ready is closed once the backplane's first subscription is live (at
	// New without a backplane); subErr holds Subscribe's last error.
	ready     chan struct{}
	readyOnce sync.Once
	subErr    atomic.Pointer[error]

	closed       atomic.Bool
	closeOnce    sync.Once
	closeTimeout time.Duration
	// base is the parent of every background context; Close cancels it.
	base       context.Context
	cancelBase context.CancelFunc
	// bg counts background goroutines (factory flights); bgMu orders their
	// start with Close, which sets closing.
	bg      sync.WaitGroup
	bgMu    sync.Mutex
	closing bool
}

// New makes a cache. Invalid options give an *OptionError naming the field.
func New(o Options) (*Cache, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	o.clamp()
	c := &Cache{
		ready:        make(chan struct{}),
		name:         o.Name,
		instanceID:   o.InstanceID,
		logger:       o.Logger,
		clock:        o.Clock,
		obs:          observers(o.Observers),
		tags:         newTagStore(),
		flights:      newFlights(),
		closeTimeout: o.CloseTimeout,
		maxKeyLen:    cmp.Or(o.MaxKeyLength, DefaultMaxKeyLength),
		maxTags:      cmp.Or(o.MaxTags, DefaultMaxTags),
	}
	if c.name == "" {
		c.name = "default"
	}
	if c.instanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.instanceID = hex.EncodeToString(b[:])
	}
	var run [runIDLen / 2]byte
	_, _ = rand.Read(run[:])
	c.source = c.instanceID + "/" + hex.EncodeToString(run[:])
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("cache", c.name)
	// A plugin that observes is told nothing until its Start has succeeded
	// (plugin.go): gates hold it among the observers.
	gates := pluginObservers(o.Plugins, c.name)
	for _, g := range gates {
		if g != nil {
			c.obs = append(append(observers(nil), c.obs...), g)
		}
	}
	if len(c.obs) == 0 {
		c.obs = nil
	}
	c.hitRec = bindHits(c.obs, c.name)
	if c.closeTimeout == 0 {
		c.closeTimeout = DefaultCloseTimeout
	}
	if o.DefaultEntryOptions != nil {
		c.defaults = *o.DefaultEntryOptions
		c.defaults.Tags = append([]string(nil), c.defaults.Tags...)
	} else {
		c.defaults = DefaultEntryOptions()
	}
	if o.L1MaxEntries == 0 && o.L1MaxWeight == 0 {
		o.L1MaxEntries = DefaultL1MaxEntries
	}
	var onEvict func(string)
	var evicted chan string
	if c.obs != nil {
		// Observers hear of evictions from a goroutine of the cache's:
		// otter reports them under its eviction lock, where an observer
		// calling the cache could deadlock it.
		evicted = make(chan string, evictionEventBuffer)
		onEvict = func(key string) {
			select {
			case evicted <- key:
			default:
				c.stats.evictionEventsDropped.Add(1)
			}
		}
	}
	c.floors.max = floorsFor(o.L1MaxEntries)
	if o.L2 == nil {
		c.floors.max = -1 // floors only guard reads from L2
	}
	l1, err := newOtterL1(&o, onEvict)
	if err != nil {
		return nil, &OptionError{Field: "Options.L1MaxEntries", Value: o.L1MaxEntries, Why: "is not accepted by the L1 engine: " + err.Error()}
	}
	c.l1 = l1
	c.base, c.cancelBase = context.WithCancel(context.Background())
	if evicted != nil {
		c.goBackground(func() { c.reportEvictions(evicted) })
	}
	if c.clock == nil {
		c.coarse = acquireCoarseClock()
	}
	c.startDistributed(&o)
	c.startPlugins(o.Plugins, gates)
	if c.bp != nil && o.WaitForInitialSubscribe > 0 {
		if err := c.waitReady(o.WaitForInitialSubscribe); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// clamp caps the durations of o at MaxDuration.
func (o *Options) clamp() {
	for _, d := range []*time.Duration{
		&o.CloseTimeout, &o.L2CircuitBreakerDuration, &o.BackplaneCircuitBreakerDuration, &o.BackplanePublishTimeout,
		&o.BackplaneStalenessBound, &o.BackplaneProbeInterval, &o.WaitForInitialSubscribe, &o.TombstoneTTL, &o.AutoRecoveryDelay,
	} {
		*d = min(*d, MaxDuration)
	}
	if o.DefaultEntryOptions != nil {
		eo := *o.DefaultEntryOptions
		eo.clamp()
		o.DefaultEntryOptions = &eo
	}
}

// waitReady waits up to d for the first subscription.
func (c *Cache) waitReady(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ready:
		return nil
	case <-t.C:
	}
	e := &SubscribeError{Backplane: fmt.Sprintf("%T", c.bp), Channel: c.channel, Timeout: d}
	if p := c.subErr.Load(); p != nil {
		e.Err = *p
	}
	return e
}

// Ready waits until the backplane's first subscription is live, and returns
// nil then (at once without a backplane). Before that the node is unsure of
// what other nodes changed, as while disconnected (see
// Options.WaitForInitialSubscribe). It returns ctx's error if ctx ends first,
// ErrClosed if the cache is closed.
func (c *Cache) Ready(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	if c.closed.Load() {
		return ErrClosed
	}
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.base.Done():
		return ErrClosed
	}
}

// startDistributed wires L2, the backplane and auto-recovery, and starts
// their goroutines (stopped by Close).
func (c *Cache) startDistributed(o *Options) {
	c.keyPrefix = o.KeyPrefix
	c.tombstoneTTL = cmp.Or(o.TombstoneTTL, DefaultTombstoneTTL)
	c.maxL2ValueSize = cmp.Or(o.MaxL2ValueSize, DefaultMaxL2ValueSize)
	c.l2breaker.duration = int64(o.L2CircuitBreakerDuration)
	c.bpBreaker.duration = int64(o.BackplaneCircuitBreakerDuration)
	if o.L2 != nil {
		c.l2 = o.L2
		c.l2cond, _ = o.L2.(l2.ConditionalStore)
		if o.DistributedStampedeLock {
			c.locker = o.L2.(l2.Locker) // validated
		}
		c.ser = o.Serializer
		if c.ser == nil {
			c.ser = jsonserializer.New()
		}
	}
	if !o.AutoRecoveryDisabled && (o.L2 != nil || o.Backplane != nil) {
		c.recovery = newRecoveryQueue(cmp.Or(o.AutoRecoveryMaxItems, DefaultAutoRecoveryMaxItems))
		c.recovery.maxBytes = recoveryMaxBytes(c.maxL2ValueSize)
		delay := cmp.Or(o.AutoRecoveryDelay, DefaultAutoRecoveryDelay)
		c.goBackground(func() { c.recoveryLoop(c.base, delay) })
	}
	if o.Backplane == nil {
		close(c.ready)
		return
	}
	c.bp = o.Backplane
	if len(o.BackplaneSigningKeys) > 0 {
		c.keyring, _ = backplane.NewKeyring(o.BackplaneSigningKeys...) // validated
	}
	c.channel = backplane.ChannelName(c.name)
	c.publishTimeout = cmp.Or(o.BackplanePublishTimeout, DefaultBackplanePublishTimeout)
	c.staleBound = int64(cmp.Or(o.BackplaneStalenessBound, DefaultBackplaneStalenessBound))
	c.probeEvery = int64(o.BackplaneProbeInterval)
	if c.probeEvery == 0 {
		c.probeEvery = c.staleBound / 4
	}
	c.outbox = make(chan outMsg, 1024)
	c.sources.last = make(map[string]sourceSeq)
	// Disconnected until the subscription is live.
	c.disconnectedAt.Store(max(c.now(), 1))
	c.refreshUnsure()
	c.goBackground(func() { c.publisher(c.base) })
	c.goBackground(func() { c.subscriber(c.base) })
	c.goBackground(func() { c.prober(c.base) })
}

func (o *Options) validate() error {
	switch {
	case o.L1MaxEntries < 0:
		return &OptionError{Field: "Options.L1MaxEntries", Value: o.L1MaxEntries, Why: "must not be negative"}
	case o.L1MaxWeight > 0 && o.L1Weigher == nil:
		return &OptionError{Field: "Options.L1Weigher", Value: nil, Why: "is required with L1MaxWeight"}
	case o.L1MaxWeight == 0 && o.L1Weigher != nil:
		return &OptionError{Field: "Options.L1MaxWeight", Value: 0, Why: "must be > 0 with L1Weigher"}
	case o.MaxKeyLength < 0 || o.MaxKeyLength > backplane.MaxKeyLen:
		return &OptionError{Field: "Options.MaxKeyLength", Value: o.MaxKeyLength, Why: fmt.Sprintf("must be in [0, %d]", backplane.MaxKeyLen)}
	case o.MaxTags < 0 || o.MaxTags > l2.MaxTags:
		return &OptionError{Field: "Options.MaxTags", Value: o.MaxTags, Why: fmt.Sprintf("must be in [0, %d]", l2.MaxTags)}
	case o.CloseTimeout < 0:
		return &OptionError{Field: "Options.CloseTimeout", Value: o.CloseTimeout, Why: "must not be negative"}
	case o.Backplane != nil && len(o.Name) > backplane.MaxCacheNameLen:
		return &OptionError{Field: "Options.Name", Value: o.Name, Why: fmt.Sprintf("must be at most %d bytes with a backplane", backplane.MaxCacheNameLen)}
	case o.Backplane != nil && len(o.InstanceID) > maxInstanceIDLen:
		return &OptionError{Field: "Options.InstanceID", Value: o.InstanceID, Why: fmt.Sprintf("must be at most %d bytes with a backplane", maxInstanceIDLen)}
	case len(o.BackplaneSigningKeys) > 0 && o.Backplane == nil:
		return &OptionError{Field: "Options.BackplaneSigningKeys", Value: len(o.BackplaneSigningKeys), Why: "need Options.Backplane; keys"}
	case strings.HasPrefix(o.KeyPrefix, reservedPrefix):
		return &OptionError{Field: "Options.KeyPrefix", Value: o.KeyPrefix, Why: "must not start with " + reservedPrefix}
	case o.DistributedStampedeLock && !isLocker(o.L2):
		return &OptionError{Field: "Options.DistributedStampedeLock", Value: true, Why: "needs an Options.L2 that implements l2.Locker (redisl2 and meml2 do);"}
	case o.Serializer != nil && o.L2 == nil:
		return &OptionError{Field: "Options.Serializer", Value: o.Serializer, Why: "is only used with Options.L2, which is nil"}
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"L2CircuitBreakerDuration", o.L2CircuitBreakerDuration}, {"BackplaneCircuitBreakerDuration", o.BackplaneCircuitBreakerDuration},
		{"AutoRecoveryDelay", o.AutoRecoveryDelay}, {"BackplanePublishTimeout", o.BackplanePublishTimeout},
		{"BackplaneStalenessBound", o.BackplaneStalenessBound}, {"TombstoneTTL", o.TombstoneTTL},
		{"WaitForInitialSubscribe", o.WaitForInitialSubscribe},
	}
	for _, d := range durations {
		if d.d < 0 {
			return &OptionError{Field: "Options." + d.name, Value: d.d, Why: "must not be negative"}
		}
	}
	if len(o.BackplaneSigningKeys) > 0 {
		if _, err := backplane.NewKeyring(o.BackplaneSigningKeys...); err != nil {
			return &OptionError{Field: "Options.BackplaneSigningKeys", Value: len(o.BackplaneSigningKeys), Why: "are invalid (" + err.Error() + "); keys"}
		}
	}
	if o.MaxL2ValueSize < 0 {
		return &OptionError{Field: "Options.MaxL2ValueSize", Value: o.MaxL2ValueSize, Why: "must not be negative (0: DefaultMaxL2ValueSize)"}
	}
	if o.AutoRecoveryMaxItems < 0 {
		return &OptionError{Field: "Options.AutoRecoveryMaxItems", Value: o.AutoRecoveryMaxItems, Why: "must not be negative"}
	}
	for i, ob := range o.Observers {
		if ob == nil {
			return &OptionError{Field: "Options.Observers", Value: i, Why: "must not hold nil; nil at index"}
		}
	}
	for i, p := range o.Plugins {
		if p == nil {
			return &OptionError{Field: "Options.Plugins", Value: i, Why: "must not hold nil; nil at index"}
		}
	}
	if o.DefaultEntryOptions != nil {
		return o.DefaultEntryOptions.validate("Options.DefaultEntryOptions.")
	}
	return nil
}

func isLocker(s l2.Store) bool {
	_, ok := s.(l2.Locker)
	return ok
}

// Name returns the cache's name.
func (c *Cache) Name() string { return c.name }

// InstanceID returns this node's id.
func (c *Cache) InstanceID() string { return c.instanceID }

// DefaultEntryOptions returns a copy of the options every call starts from.
func (c *Cache) DefaultEntryOptions() EntryOptions {
	o := c.defaults
	o.Tags = append([]string(nil), o.Tags...)
	return o
}

// Len returns about how many entries L1 holds.
func (c *Cache) Len() int { return c.l1.len() }

// Close stops background work, waiting up to Options.CloseTimeout for it
// (running factories see their context cancelled; a factory running on its
// caller's goroutine is the caller's, not waited for), and releases the cache.
// It is idempotent; every later call returns ErrClosed. It returns an error
// only when background work did not stop in time.
func (c *Cache) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.stopPlugins()
		c.closed.Store(true)
		c.bgMu.Lock()
		c.closing = true
		c.bgMu.Unlock()
		c.cancelBase()
		c.subMu.Lock()
		if c.sub != nil {
			if err := c.sub.Close(); err != nil {
				c.logger.Warn("strata: backplane unsubscribe failed", "err", err)
			}
		}
		c.subMu.Unlock()
		done := make(chan struct{})
		go func() { c.bg.Wait(); close(done) }()
		t := time.NewTimer(c.closeTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			err = &CloseTimeoutError{Timeout: c.closeTimeout}
		}
		c.l1.close()
		if c.coarse != nil {
			releaseCoarseClock()
		}
	})
	return err
}

// evictionEventBuffer bounds the evictions waiting to be told to observers;
// past it they are counted in Stats.EvictionEventsDropped instead.
const evictionEventBuffer = 1024

// reportEvictions tells observers about the keys L1 evicted, until Close.
func (c *Cache) reportEvictions(evicted <-chan string) {
	for {
		select {
		case key := <-evicted:
			c.obs.event(context.Background(), EventEviction, c.name, key, nil)
		case <-c.base.Done():
			return
		}
	}
}

// CloseTimeoutError is returned by Close when background work (factories
// ignoring their cancelled context) did not stop within the timeout.
type CloseTimeoutError struct{ Timeout time.Duration }

func (e *CloseTimeoutError) Error() string {
	return "core: close: background factories still running after " + e.Timeout.String()
}

// now returns the current time in Unix nanoseconds. It never goes back
// (see monotonic).
func (c *Cache) now() int64 {
	if c.coarse != nil {
		return c.coarse.now.Load() // monotonic itself
	}
	return c.monotonic(c.clock.Now().UnixNano())
}

// preciseNow returns the current time from the system clock itself (or
// Options.Clock), not the coarse one: versions compared across nodes must not
// tie at the coarse clock's resolution. It is read on writes and misses only.
// It never goes back (see monotonic).
func (c *Cache) preciseNow() int64 {
	return c.monotonic(c.rawNow())
}

// rawNow reads the clock as it is, steps back included: for what compares
// two nodes' clocks (lateness), where holding a reading would look like a
// delay.
func (c *Cache) rawNow() int64 {
	if c.clock == nil {
		return time.Now().UnixNano()
	}
	return c.clock.Now().UnixNano()
}

// monotonic returns t, or the latest time this cache read if t is before
// it: when the clock steps back, the node's time stands still until the
// clock catches up. Confirmations, loss times and expiry are compared on
// it: read on a clock that went back, a value read before a loss of
// messages could seem confirmed after it.
func (c *Cache) monotonic(t int64) int64 {
	for {
		last := c.lastClock.Load()
		if t <= last {
			return last
		}
		if c.lastClock.CompareAndSwap(last, t) {
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
func (c *Cache) stamp() int64 {
	now := c.preciseNow()
	for {
		last := c.lastStamp.Load()
		s := max(now, last+1)
		if c.lastStamp.CompareAndSwap(last, s) {
			return s
		}
	}
}

// stampChange returns the version of a change made with eo: a new stamp,
// after eo's WithChangedAt time if it has one.
func (c *Cache) stampChange(eo *EntryOptions) int64 {
	if eo.changedAt > 0 {
		c.observe(eo.changedAt)
	}
	return c.stamp()
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
func (c *Cache) observe(v int64) {
	for {
		last := c.lastStamp.Load()
		if v <= last || v-c.preciseNow() > maxClockLead {
			return
		}
		if c.lastStamp.CompareAndSwap(last, v) {
			return
		}
	}
}

// lookup returns key's L1 entry and its state at now.
func (c *Cache) lookup(key string, now int64) (*entry, entryState) {
	e, ok := c.l1.get(key)
	if !ok {
		return nil, stateAbsent
	}
	return c.entryState(e, now)
}

// entryState returns e's state at now (e itself, or nil when absent).
func (c *Cache) entryState(e *entry, now int64) (*entry, entryState) {
	if now >= e.physExpires {
		return nil, stateAbsent
	}
	stale := now >= e.expires || c.unconfirmed(e, now)
	switch c.tags.check(e) {
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
func (c *Cache) unconfirmed(e *entry, now int64) bool {
	d := c.unsure.Load()
	return d != 0 && now-max(e.confirmed, d) > c.staleBound
}

// newEntry builds the entry for a value of version created, read from its
// source at confirmed and stored at now (where its durations start; both
// times on the clock) under eo.
func (c *Cache) newEntry(value any, created, confirmed, now int64, eo *EntryOptions) *entry {
	d := eo.l1Duration()
	if eo.Jitter > 0 {
		d += jitter(eo.Jitter)
	}
	e := &entry{value: value, created: created, confirmed: confirmed, expires: now + int64(d), failSafe: eo.FailSafe}
	e.physExpires = e.expires
	if eo.FailSafe {
		e.physExpires = max(e.expires, now+int64(eo.FailSafeMaxDuration))
	}
	if eo.EagerRefreshThreshold > 0 {
		e.eagerAt = now + int64(float64(d)*eo.EagerRefreshThreshold)
	}
	if len(eo.Tags) > 0 {
		e.tags = eo.Tags
	}
	c.noteLifetime(e.physExpires - min(confirmed, created))
	return e
}

// noteLifetime records the longest time from an entry's version to its
// physical expiry, so tag times are kept at least that long.
func (c *Cache) noteLifetime(life int64) {
	for {
		m := c.maxLife.Load()
		if life <= m || c.maxLife.CompareAndSwap(m, life) {
			return
		}
	}
}

// storeIfNewer writes e for key unless L1 holds an entry created after it.
func (c *Cache) storeIfNewer(key string, e *entry) {
	c.l1.compute(key, func(old *entry) (*entry, bool) {
		if old != nil && old.created > e.created {
			return nil, true
		}
		return e, false
	})
}

// checkOp is the common entry check of every operation.
func (c *Cache) checkOp(key string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if key == "" {
		return errEmptyKey
	}
	if len(key) > c.maxKeyLen {
		return &OptionError{Field: "key", Value: fmt.Sprintf("%.32q... (%d bytes)", key, len(key)), Why: fmt.Sprintf("must be at most %d bytes (Options.MaxKeyLength)", c.maxKeyLen)}
	}
	if strings.HasPrefix(key, reservedPrefix) {
		return &OptionError{Field: "key", Value: key, Why: "must not start with " + reservedPrefix + " (reserved)"}
	}
	return nil
}

// checkTags checks the tags of an entry against the cache's limits.
func (c *Cache) checkTags(field string, tags []string) error {
	if len(tags) > c.maxTags {
		return &OptionError{Field: field, Value: len(tags), Why: fmt.Sprintf("must hold at most %d tags (Options.MaxTags); count", c.maxTags)}
	}
	for _, t := range tags {
		if len(t) > c.maxKeyLen {
			return &OptionError{Field: field, Value: fmt.Sprintf("%.32q... (%d bytes)", t, len(t)), Why: fmt.Sprintf("must hold tags of at most %d bytes (Options.MaxKeyLength)", c.maxKeyLen)}
		}
	}
	return nil
}

// Remove deletes key from the cache: the next read misses, and fail-safe
// cannot serve its old value. A factory running for key when Remove is
// called does not cache its result.
func (c *Cache) Remove(ctx context.Context, key string, opts ...EntryOption) error {
	return c.invalidateKey(ctx, OpRemove, key, opts)
}

// Expire marks key stale: the next GetOrSet calls the factory, but fail-safe
// may still serve the old value if the factory fails. Without fail-safe on
// the entry, Expire is Remove. A factory running for key when Expire is
// called does not cache its result as fresh.
func (c *Cache) Expire(ctx context.Context, key string, opts ...EntryOption) error {
	return c.invalidateKey(ctx, OpExpire, key, opts)
}

func (c *Cache) invalidateKey(ctx context.Context, op Operation, key string, opts []EntryOption) error {
	if ctx == nil {
		return errNilContext
	}
	if err := c.checkOp(key); err != nil {
		return err
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: op, Cache: c.name, Key: key, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	eo, err := c.resolve(opts)
	if err != nil {
		return err
	}
	at := c.stampChange(eo)
	c.flights.supersede(key, op == OpRemove, at)
	c.floors.raise(key, at, op == OpRemove)
	action := backplane.ActionRemove
	if op == OpRemove {
		c.l1.delete(key)
	} else {
		action = backplane.ActionExpire
		now := c.now()
		c.l1.compute(key, func(old *entry) (*entry, bool) {
			switch {
			case old == nil:
				return nil, true
			case !old.failSafe:
				return nil, false
			}
			return old.expiredCopy(now), false
		})
	}
	c.distribute(ctx, change{action: action, key: key, at: at}, eo)
	return nil
}

// RemoveByTag removes every entry tagged tag, as Remove does, including
// entries whose factory is running now.
func (c *Cache) RemoveByTag(ctx context.Context, tag string, opts ...EntryOption) error {
	return c.invalidateTag(ctx, OpRemoveByTag, tag, true, opts)
}

// ExpireByTag expires every entry tagged tag, as Expire does: fail-safe may
// still serve them.
func (c *Cache) ExpireByTag(ctx context.Context, tag string, opts ...EntryOption) error {
	return c.invalidateTag(ctx, OpExpireByTag, tag, false, opts)
}

func (c *Cache) invalidateTag(ctx context.Context, op Operation, tag string, remove bool, opts []EntryOption) error {
	if ctx == nil {
		return errNilContext
	}
	if c.closed.Load() {
		return ErrClosed
	}
	if tag == "" {
		return &OptionError{Field: "tag", Value: `""`, Why: "must not be empty"}
	}
	if err := c.checkTags("tag", []string{tag}); err != nil {
		return err
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: op, Cache: c.name, Key: tag, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	eo, err := c.resolve(opts)
	if err != nil {
		return err
	}
	at := c.stampChange(eo)
	c.tags.invalidate(tag, at, remove, c.now()-c.maxLife.Load())
	action := backplane.ActionExpireTag
	if remove {
		action = backplane.ActionRemoveTag
	}
	c.distribute(ctx, change{action: action, key: tag, at: at, markerKey: c.tagKey(tag, remove)}, eo)
	return nil
}

// Clear invalidates every entry. With allowFailSafe true it expires them
// (fail-safe may still serve them); with false it removes them.
func (c *Cache) Clear(ctx context.Context, allowFailSafe bool, opts ...EntryOption) error {
	if ctx == nil {
		return errNilContext
	}
	if c.closed.Load() {
		return ErrClosed
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpClear, Cache: c.name, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	eo, err := c.resolve(opts)
	if err != nil {
		return err
	}
	at := c.stampChange(eo)
	c.tags.clear(at, !allowFailSafe)
	if !allowFailSafe {
		c.l1.clear()
	}
	action := backplane.ActionClearExpire
	if !allowFailSafe {
		action = backplane.ActionClearRemove
	}
	c.distribute(ctx, change{action: action, at: at, markerKey: c.clearKey(!allowFailSafe)}, eo)
	return nil
}
