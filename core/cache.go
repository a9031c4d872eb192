package core

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
)

// Cache is a multi-level cache. Make one with New; use it through GetOrSet,
// Get and Set and its methods. All methods are safe for concurrent use.
//
// A Cache orchestrates components, each owning its state and its errors
// (docs/architecture.md): the environment (clock, versions, logger,
// observers, counters: env.go), what the node knows by itself (L1, tags,
// runs of factories, the unsure gate: local.go), the L2 side (l2side.go),
// the coherence side (the backplane: publish.go, receive.go, liveness.go)
// and auto-recovery (recovery.go). A missing L2 or backplane is a nil side.
type Cache struct {
	*env
	*local
	cfg     config
	l2      *l2side    // nil: no L2
	co      *coherence // nil: no backplane
	rec     *recovery
	life    *lifecycle
	plugins pluginSet
	// plainOptions are the options of a call that passes none, resolved
	// once and shared, read-only (nil with Options.DefaultEntryOptionsFor:
	// then they depend on the key).
	plainOptions *EntryOptions
	// runs holds the *pooledRun of ended GetOrSet runs for reuse
	// (getorset.go says which runs take one and when it comes back).
	runs sync.Pool
}

// New makes a cache. Invalid options give an *OptionError naming the field.
func New(o Options) (*Cache, error) {
	cfg, err := newConfig(&o)
	if err != nil {
		return nil, err
	}
	v := newEnv(&cfg, &o)
	// A plugin that observes is told nothing until its Start has succeeded
	// (plugin.go): gates hold it among the observers.
	gates := pluginObservers(o.Plugins, v.name)
	for _, g := range gates {
		if g != nil {
			v.obs = append(append(observers(nil), v.obs...), g)
		}
	}
	if len(v.obs) == 0 {
		v.obs = nil
	}
	v.hitRec = bindHits(v.obs, v.name)
	c := &Cache{env: v, cfg: cfg, life: newLifecycle(cfg.closeTimeout)}
	if cfg.defaultsFor == nil {
		c.plainOptions, _ = c.cfg.resolve(nil) // invalid: each call resolves them, and fails
	}
	var evicted chan string
	if c.obs != nil {
		evicted = make(chan string, evictionEventBuffer)
	}
	l1, err := newOtterL1(&o, onEvict(&v.stats, evicted))
	if err != nil {
		return nil, &OptionError{Field: "Options.L1MaxEntries", Value: o.L1MaxEntries, Why: "is not accepted by the L1 engine: " + err.Error()}
	}
	c.local = &local{l1: l1, tags: newTagStore(), flights: newFlights()}
	c.floors.max = floorsFor(cfg.l1MaxEntries)
	if o.L2 != nil {
		c.lifeCap = int64(cfg.markerTTL) // markers live in L2: without one, nothing to outlive
	}
	if o.Backplane != nil {
		c.gate.bound = int64(cfg.staleBound)
	}
	c.rec = newRecovery(&cfg, v)
	c.l2 = newL2Side(&cfg, &o, v, c.local, &c.gate, c.rec)
	c.co = newCoherence(&cfg, v, o.Backplane, o.BackplaneSigningKeys, &c.gate, c.rec, c.life.base)
	c.rec.l2, c.rec.co = c.l2, c.co
	if c.co != nil {
		c.co.apply = c.apply
		c.co.expireAll = func() { c.expireAll(c.preciseNow()) }
	}
	if evicted != nil {
		c.life.goBackground(func() { c.reportEvictions(evicted) })
	}
	c.rec.start(c.life.base, c.life.goBackground)
	if c.co != nil {
		c.co.start(c.life.goBackground)
	}
	c.plugins.start(c, o.Plugins, gates)
	if c.co != nil && cfg.waitForSubscribe > 0 {
		if err := c.co.waitReady(cfg.waitForSubscribe); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// newEnv returns the environment of a cache: its identity, clock and logger.
func newEnv(cfg *config, o *Options) *env {
	v := &env{name: cfg.name, instanceID: cfg.instanceID, logger: o.Logger, clock: o.Clock, obs: observers(o.Observers)}
	if v.instanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		v.instanceID = hex.EncodeToString(b[:])
	}
	var run [runIDLen / 2]byte
	_, _ = rand.Read(run[:])
	v.source = v.instanceID + "/" + hex.EncodeToString(run[:])
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	v.logger = v.logger.With("cache", v.name)
	if v.clock == nil {
		v.coarse = acquireCoarseClock()
	}
	return v
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
	if c.life.closed.Load() {
		return ErrClosed
	}
	select {
	case <-c.co.readyC():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.life.base.Done():
		return ErrClosed
	}
}

// Name returns the cache's name.
func (c *Cache) Name() string { return c.name }

// InstanceID returns this node's id.
func (c *Cache) InstanceID() string { return c.instanceID }

// DefaultEntryOptions returns a copy of the options every call starts from.
func (c *Cache) DefaultEntryOptions() EntryOptions {
	o := c.cfg.defaults
	o.Tags = append([]string(nil), o.Tags...)
	return o
}

// Len returns about how many entries L1 holds.
func (c *Cache) Len() int { return c.l1.len() }

// Close stops background work, waiting up to Options.CloseTimeout for it
// (running factories see their context cancelled; a factory running on its
// caller's goroutine is the caller's, not waited for), and releases the cache.
// Before that it tries once, for up to half the timeout, to write and publish
// what auto-recovery still holds: after Close it is lost.
// It is idempotent; every later call returns ErrClosed. It returns an error
// only when background work did not stop in time.
func (c *Cache) Close() error {
	var err error
	c.life.closeOnce.Do(func() {
		c.plugins.stop(c.logger)
		c.rec.flush(c.cfg.closeTimeout / 2)
		err = c.life.stop(c.co.close)
		c.l1.close()
		if c.coarse != nil {
			releaseCoarseClock()
		}
	})
	return err
}

// checkOp is the common entry check of every operation on a key.
func (c *Cache) checkOp(key string) error {
	if c.life.closed.Load() {
		return ErrClosed
	}
	return c.cfg.checkKey(key)
}

// evictionEventBuffer bounds the evictions waiting to be told to observers;
// past it they are counted in Stats.EvictionEventsDropped instead.
const evictionEventBuffer = 1024

// onEvict returns L1's eviction callback: nil without observers, else one
// that hands the key to reportEvictions through evicted. Observers hear of
// evictions from a goroutine of the cache's: otter reports them under its
// eviction lock, where an observer calling the cache could deadlock it.
func onEvict(stats *counters, evicted chan string) func(string) {
	if evicted == nil {
		return nil
	}
	return func(key string) {
		select {
		case evicted <- key:
		default:
			stats.evictionEventsDropped.Add(1)
		}
	}
}

// reportEvictions tells observers about the keys L1 evicted, until Close.
func (c *Cache) reportEvictions(evicted <-chan string) {
	for {
		select {
		case key := <-evicted:
			c.obs.event(context.Background(), EventEviction, c.name, key, nil)
		case <-c.life.base.Done():
			return
		}
	}
}
