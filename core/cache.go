package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is a multi-level cache. Make one with New; use it through GetOrSet,
// Get and Set and its methods. All methods are safe for concurrent use.
type Cache struct {
	name       string
	instanceID string
	defaults   EntryOptions
	logger     *slog.Logger
	clock      Clock
	coarse     *coarseClock
	obs        observers

	l1      *otterL1 // behind l1Store's methods; concrete so hits are not an interface call
	tags    *tagStore
	flights *flights

	// lastStamp makes stamp strictly increasing.
	lastStamp atomic.Int64
	// maxLife is the longest physical lifetime any entry got: tag times
	// older than that can be forgotten.
	maxLife atomic.Int64
	// invalidations counts Set/Remove/Expire/tag/clear calls, for factories
	// that run outside a registered flight (after a lock timeout).
	invalidations atomic.Uint64

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
	c := &Cache{
		name:         o.Name,
		instanceID:   o.InstanceID,
		logger:       o.Logger,
		clock:        o.Clock,
		obs:          observers(o.Observers),
		tags:         newTagStore(),
		flights:      newFlights(),
		closeTimeout: o.CloseTimeout,
	}
	if c.name == "" {
		c.name = "default"
	}
	if c.instanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.instanceID = hex.EncodeToString(b[:])
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.logger = c.logger.With("cache", c.name)
	if len(c.obs) == 0 {
		c.obs = nil
	}
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
	if c.obs != nil {
		onEvict = func(key string) { c.obs.event(context.Background(), EventEviction, c.name, key, nil) }
	}
	l1, err := newOtterL1(&o, onEvict)
	if err != nil {
		return nil, &OptionError{Field: "Options.L1MaxEntries", Value: o.L1MaxEntries, Why: "is not accepted by the L1 engine: " + err.Error()}
	}
	c.l1 = l1
	c.base, c.cancelBase = context.WithCancel(context.Background())
	if c.clock == nil {
		c.coarse = acquireCoarseClock()
	}
	return c, nil
}

func (o *Options) validate() error {
	switch {
	case o.L1MaxEntries < 0:
		return &OptionError{Field: "Options.L1MaxEntries", Value: o.L1MaxEntries, Why: "must not be negative"}
	case o.L1MaxWeight > 0 && o.L1Weigher == nil:
		return &OptionError{Field: "Options.L1Weigher", Value: nil, Why: "is required with L1MaxWeight"}
	case o.L1MaxWeight == 0 && o.L1Weigher != nil:
		return &OptionError{Field: "Options.L1MaxWeight", Value: 0, Why: "must be > 0 with L1Weigher"}
	case o.CloseTimeout < 0:
		return &OptionError{Field: "Options.CloseTimeout", Value: o.CloseTimeout, Why: "must not be negative"}
	case o.L2 != nil:
		return &OptionError{Field: "Options.L2", Value: o.L2, Why: "is not supported yet by this version of core"}
	case o.Backplane != nil:
		return &OptionError{Field: "Options.Backplane", Value: o.Backplane, Why: "is not supported yet by this version of core"}
	}
	for i, ob := range o.Observers {
		if ob == nil {
			return &OptionError{Field: "Options.Observers", Value: i, Why: "must not hold nil; nil at index"}
		}
	}
	if o.DefaultEntryOptions != nil {
		return o.DefaultEntryOptions.validate("Options.DefaultEntryOptions.")
	}
	return nil
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
		c.closed.Store(true)
		c.bgMu.Lock()
		c.closing = true
		c.bgMu.Unlock()
		c.cancelBase()
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

// CloseTimeoutError is returned by Close when background work (factories
// ignoring their cancelled context) did not stop within the timeout.
type CloseTimeoutError struct{ Timeout time.Duration }

func (e *CloseTimeoutError) Error() string {
	return "core: close: background factories still running after " + e.Timeout.String()
}

// now returns the current time in Unix nanoseconds.
func (c *Cache) now() int64 {
	if c.coarse != nil {
		return c.coarse.now.Load()
	}
	return c.clock.Now().UnixNano()
}

// stamp returns the current time, strictly after every earlier stamp of this
// cache, so writes and invalidations on one node are totally ordered even
// with a coarse or frozen clock.
func (c *Cache) stamp() int64 {
	now := c.now()
	for {
		last := c.lastStamp.Load()
		s := max(now, last+1)
		if c.lastStamp.CompareAndSwap(last, s) {
			return s
		}
	}
}

// lookup returns key's entry and its state at now.
func (c *Cache) lookup(key string, now int64) (*entry, entryState) {
	e, ok := c.l1.get(key)
	if !ok || now >= e.physExpires {
		return nil, stateAbsent
	}
	stale := now >= e.expires
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

// newEntry builds the entry for a value read from its source at created
// (its version) and stored at now (where its durations start) under eo.
func (c *Cache) newEntry(value any, created, now int64, eo *EntryOptions) *entry {
	d := eo.l1Duration()
	if eo.Jitter > 0 {
		d += jitter(eo.Jitter)
	}
	now = max(now, created)
	e := &entry{value: value, created: created, expires: now + int64(d), failSafe: eo.FailSafe}
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
	c.noteLifetime(e.physExpires - created)
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
	return nil
}

// Remove deletes key from the cache: the next read misses, and fail-safe
// cannot serve its old value. A factory running for key when Remove is
// called does not cache its result.
func (c *Cache) Remove(ctx context.Context, key string) error {
	return c.invalidateKey(ctx, OpRemove, key)
}

// Expire marks key stale: the next GetOrSet calls the factory, but fail-safe
// may still serve the old value if the factory fails. Without fail-safe on
// the entry, Expire is Remove. A factory running for key when Expire is
// called does not cache its result as fresh.
func (c *Cache) Expire(ctx context.Context, key string) error {
	return c.invalidateKey(ctx, OpExpire, key)
}

func (c *Cache) invalidateKey(ctx context.Context, op Operation, key string) error {
	if err := c.checkOp(key); err != nil {
		return err
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: op, Cache: c.name, Key: key, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	c.invalidations.Add(1)
	c.flights.supersede(key)
	if op == OpRemove {
		c.l1.delete(key)
		return nil
	}
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
	return nil
}

// RemoveByTag removes every entry tagged tag, as Remove does, including
// entries whose factory is running now.
func (c *Cache) RemoveByTag(ctx context.Context, tag string) error {
	return c.invalidateTag(ctx, OpRemoveByTag, tag, true)
}

// ExpireByTag expires every entry tagged tag, as Expire does: fail-safe may
// still serve them.
func (c *Cache) ExpireByTag(ctx context.Context, tag string) error {
	return c.invalidateTag(ctx, OpExpireByTag, tag, false)
}

func (c *Cache) invalidateTag(ctx context.Context, op Operation, tag string, remove bool) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if tag == "" {
		return &OptionError{Field: "tag", Value: `""`, Why: "must not be empty"}
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: op, Cache: c.name, Key: tag, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	c.invalidations.Add(1)
	at := c.stamp()
	c.tags.invalidate(tag, at, remove, at-c.maxLife.Load())
	return nil
}

// Clear invalidates every entry. With allowFailSafe true it expires them
// (fail-safe may still serve them); with false it removes them.
func (c *Cache) Clear(ctx context.Context, allowFailSafe bool) error {
	if c.closed.Load() {
		return ErrClosed
	}
	var info *OpInfo
	if c.obs != nil {
		info = &OpInfo{Op: OpClear, Cache: c.name, Start: time.Now()}
		ctx = c.obs.start(ctx, info)
		defer c.obs.end(ctx, info)
	}
	c.invalidations.Add(1)
	c.tags.clear(c.stamp(), !allowFailSafe)
	if !allowFailSafe {
		c.l1.clear()
	}
	return nil
}
