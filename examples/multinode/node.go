package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
)

// Profile is the cached value: a user profile, as a service would load it
// from its database. It travels through L2 as JSON (the default serializer).
type Profile struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Version int    `json:"version"`
}

func (p Profile) String() string { return fmt.Sprintf("v%d <%s>", p.Version, p.Email) }

// errDatabaseDown is what the database returns while it is down.
var errDatabaseDown = errors.New("database unavailable")

// database is the source of truth the nodes' factories read: one profile,
// which can be updated and can go down.
type database struct {
	mu      sync.Mutex
	profile Profile
	down    bool
}

func (db *database) load() (Profile, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.down {
		return Profile{}, errDatabaseDown
	}
	return db.profile, nil
}

// update changes the email and bumps the version, as a user editing their
// profile would, and returns the new profile.
func (db *database) update(email string) Profile {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.profile.Email = email
	db.profile.Version++
	return db.profile
}

func (db *database) setDown(down bool) {
	db.mu.Lock()
	db.down = down
	db.mu.Unlock()
}

// config is what every node is opened with, and where the run prints.
type config struct {
	l2URL, backplaneURL string
	cacheName           string
	stalenessBound      time.Duration
	db                  *database
	out                 io.Writer
	// opened is every node opened so far, for closeAll.
	opened []*node
}

// closeAll closes the nodes still open after a failed step, ignoring
// errors: the failure is what the run reports.
func (cfg *config) closeAll() {
	for _, n := range cfg.opened {
		if n.closed {
			continue
		}
		n.closed = true
		if n.cache != nil {
			_ = n.cache.Close()
		}
		if n.store != nil {
			_ = n.store.Close()
		}
		if n.bp != nil {
			_ = n.bp.Close()
		}
	}
}

// node is one cache of the cluster, as one process of a service would hold
// it, with the L2 store and backplane it opened itself (and must close).
type node struct {
	name    string
	cache   *core.Cache
	store   l2.Store // nil without L2
	bp      backplane.Backplane
	db      *database
	dbCalls atomic.Int32
	// readOpts are added to every read: WithSkipBackplane without L2.
	readOpts []core.EntryOption
	// gaps counts the times a gap in another node's sequence numbers made
	// this node expire its L1.
	gaps   atomic.Int32
	closed bool
}

// openNode opens the node's own L2 handle and backplane connection by URL, as
// a service does from its configuration, and makes its cache.
func openNode(ctx context.Context, name string, cfg *config) *node {
	n := &node{name: name, db: cfg.db}
	cfg.opened = append(cfg.opened, n)
	if cfg.l2URL == "" {
		// Without L2 a value loaded from the database is not announced:
		// the others would drop their copy and load it again, in turn.
		n.readOpts = []core.EntryOption{core.WithSkipBackplane()}
	}
	if cfg.l2URL != "" {
		store, err := l2.Open(ctx, cfg.l2URL)
		if err != nil {
			panic(failure{fmt.Sprintf("-l2: %v", err)})
		}
		n.store = store
	}
	bp, err := backplane.Open(ctx, cfg.backplaneURL)
	if err != nil {
		panic(failure{fmt.Sprintf("-backplane: %v", err)})
	}
	n.bp = bp

	o := core.Options{
		Name: cfg.cacheName,
		L2:   n.store, // nil: no L2
		// A prefix of our own, so runs sharing a real L2 server never see
		// each other's keys.
		KeyPrefix: cfg.cacheName + ":",
		Backplane: bp,
		// While this node cannot hear the others, it trusts an L1 entry
		// for at most this long before re-reading it.
		BackplaneStalenessBound: cfg.stalenessBound,
		// After an L2 failure, skip L2 for up to 5s instead of waiting on a
		// dead server; a successful replay closes the breaker at once.
		L2CircuitBreakerDuration: 5 * time.Second,
		// Retry queued L2 writes and publishes every 100ms (default 2s).
		AutoRecoveryDelay: 100 * time.Millisecond,
		Observers:         []core.Observer{nodeObserver{n}},
	}
	c, err := core.New(o)
	must(err, "core.New for node "+name)
	n.cache = c
	return n
}

// close closes the cache first, then the store and the backplane it used:
// core never closes what the user passed in.
func (n *node) close() {
	n.closed = true
	must(n.cache.Close(), "Close of node "+n.name)
	if n.store != nil {
		must(n.store.Close(), "closing the L2 store of node "+n.name)
	}
	must(n.bp.Close(), "closing the backplane of node "+n.name)
}

// loadProfile is the node's factory: a database query, counted.
func (n *node) loadProfile(ctx context.Context, fc *core.FactoryContext[Profile]) (Profile, error) {
	n.dbCalls.Add(1)
	return n.db.load()
}

// read is what the service does on every request: GetOrSet, calling the
// database on a miss. It reports where the value came from.
func (n *node) read(ctx context.Context, opts ...core.EntryOption) (Profile, outcome) {
	var out outcome
	ctx = context.WithValue(ctx, outcomeKey{}, &out)
	p, err := core.GetOrSet(ctx, n.cache, profileKey, n.loadProfile, slices.Concat(opts, n.readOpts)...)
	must(err, "GetOrSet on node "+n.name)
	return p, out
}

// cached reports whether the node holds a fresh value of the profile, in L1
// or in L2, without calling the database.
func (n *node) cached(ctx context.Context) (Profile, bool) {
	p, found, err := core.Get[Profile](ctx, n.cache, profileKey)
	must(err, "Get on node "+n.name)
	return p, found
}

// outcome is what an observer saw of one GetOrSet.
type outcome struct {
	source   core.Source
	failSafe bool
}

// from says where a value came from, in words.
func (o outcome) from() string {
	switch {
	case o.failSafe:
		return "stale, served by fail-safe"
	case o.source == core.SourceL1:
		return "from its L1"
	case o.source == core.SourceL2:
		return "from L2, no database call"
	case o.source == core.SourceFactory:
		return "from the database"
	}
	return "from " + o.source.String()
}

type outcomeKey struct{}

// nodeObserver is an observer that writes the outcome of a GetOrSet into
// the *outcome the caller put in its context, and counts the node's gaps.
type nodeObserver struct{ n *node }

func (nodeObserver) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }

func (nodeObserver) OpEnd(ctx context.Context, op *core.OpInfo) {
	if out, ok := ctx.Value(outcomeKey{}).(*outcome); ok && op.Op == core.OpGetOrSet {
		out.source, out.failSafe = op.Source, op.FailSafe
	}
}

func (o nodeObserver) Event(_ context.Context, ev core.Event) {
	if ev.Kind == core.EventBackplaneLoss && ev.Key == "gap" {
		o.n.gaps.Add(1)
	}
}
