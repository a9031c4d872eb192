package coherence

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stratacache/strata/core"
)

// Config says what the checker does to the nodes and what it holds them
// to.
type Config struct {
	// Nodes are the caches under test, one per node, sharing L2 and a
	// backplane. Their index is the node number used by Fault.
	Nodes []*core.Cache
	// Keys is the number of keys (default 64), in Groups tag groups
	// (default 8): key i carries the tag "group:<i mod Groups>".
	Keys, Groups int
	// Workers is the number of goroutines issuing operations (default 4);
	// each pauses Pause (default 1ms) between two operations, and picks
	// each operation by Mix (default DefaultMix) on a random node and key.
	Workers int
	Pause   time.Duration
	Mix     Mix
	// FactoryDelay makes the factories slow: each reads the source's
	// current value when it starts, then sleeps a random time in
	// [0, FactoryDelay] before returning what it read (0: no sleep). A
	// slow factory returns a value that a write made meanwhile replaced:
	// the nodes must neither serve it beyond the bound nor cache it over
	// the newer change.
	FactoryDelay time.Duration
	// Bound is the nodes' Options.BackplaneStalenessBound, and Slack what
	// is allowed on top of it for delivery, scheduling and polling
	// (default 1s; negative: nothing): a read returning a value replaced
	// more than Bound+Slack before the read started is a violation.
	Bound, Slack time.Duration
	// RecoveryDelay is the nodes' Options.AutoRecoveryDelay: a change made
	// by a node cut off from the backplane reaches the nodes that were
	// still connected only once it is back, by the replay of its queue, so
	// the value it replaced may be served by them until RecoveryDelay +
	// Slack after the cut ends. It is also the convergence deadline after a
	// fault (with Slack).
	RecoveryDelay time.Duration
	// EntryOptions apply to every operation (the default: a 1 minute
	// duration, fail-safe on with a 10 minute maximum).
	EntryOptions []core.EntryOption
	// RecoveryTimeout bounds the wait for convergence after a fault
	// (default 30s).
	RecoveryTimeout time.Duration
	// Propagation is how long a change may take to reach a healthy node
	// (default 250ms): after a fault, a read returning a value replaced
	// less than that ago still counts as converged, since writes go on
	// while convergence is measured; with Healthy, it is how late another
	// node may still serve the value a change replaced.
	Propagation time.Duration
	// Healthy says that no fault is injected: every node's subscription
	// stays up, so the transport's delivery time, not the staleness bound,
	// is what a node may lag by (docs/consistency.md, "The guarantee").
	// Then a read that returns a version older than a change that returned
	// before the read started is also counted as Outdated (see
	// Checker.checkHealthy) when it is on the node that made the change,
	// or when it started more than Propagation after the change returned.
	Healthy bool
	// Seed seeds the operation mix (0: random).
	Seed uint64
}

func (c *Config) defaults() error {
	if len(c.Nodes) == 0 {
		return errors.New("coherence: Config.Nodes is empty")
	}
	if c.Bound <= 0 {
		return errors.New("coherence: Config.Bound must be > 0 (the nodes' BackplaneStalenessBound)")
	}
	if c.RecoveryDelay <= 0 {
		return errors.New("coherence: Config.RecoveryDelay must be > 0 (the nodes' AutoRecoveryDelay)")
	}
	if c.Keys <= 0 {
		c.Keys = 64
	}
	if c.Groups <= 0 {
		c.Groups = 8
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Pause <= 0 {
		c.Pause = time.Millisecond
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	if err := c.Mix.validate(); err != nil {
		return err
	}
	if c.FactoryDelay < 0 {
		return fmt.Errorf("coherence: Config.FactoryDelay is %v, want >= 0", c.FactoryDelay)
	}
	switch {
	case c.Slack == 0:
		c.Slack = time.Second
	case c.Slack < 0:
		c.Slack = 0
	}
	if c.Propagation <= 0 {
		c.Propagation = 250 * time.Millisecond
	}
	if c.RecoveryTimeout <= 0 {
		c.RecoveryTimeout = 30 * time.Second
	}
	if c.EntryOptions == nil {
		c.EntryOptions = []core.EntryOption{core.WithDuration(time.Minute), core.WithFailSafe(10*time.Minute, 30*time.Second)}
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	return nil
}

// Mix weighs the operations a worker picks from: each is chosen with
// probability its weight over the sum of the weights.
type Mix struct {
	// GetOrSet reads with a factory reading the source; Get reads
	// without one (a miss is never stale).
	GetOrSet, Get int
	// Set updates the source and then sets the key on a node; Remove marks
	// the key removed in the source and then removes it; RemoveByTag
	// updates every key of a tag group and then removes the group's tag.
	Set, Remove, RemoveByTag int
}

// DefaultMix is the workload of the failure scenarios: 85% GetOrSet, 10%
// Set, 4% Remove, 1% RemoveByTag.
var DefaultMix = Mix{GetOrSet: 85, Set: 10, Remove: 4, RemoveByTag: 1}

func (m Mix) validate() error {
	for _, w := range []int{m.GetOrSet, m.Get, m.Set, m.Remove, m.RemoveByTag} {
		if w < 0 {
			return fmt.Errorf("coherence: Config.Mix %+v has a negative weight", m)
		}
	}
	return nil
}

// op is an operation a worker can pick.
type op int

const (
	opGetOrSet op = iota
	opGet
	opSet
	opRemove
	opRemoveByTag
)

// pick returns the operation n (in [0, total)) falls on.
func (m Mix) pick(n int) op {
	for i, w := range []int{m.GetOrSet, m.Get, m.Set, m.Remove, m.RemoveByTag} {
		if n < w {
			return op(i)
		}
		n -= w
	}
	return opRemoveByTag
}

func (m Mix) total() int { return m.GetOrSet + m.Get + m.Set + m.Remove + m.RemoveByTag }

// Checker runs a workload on the nodes and checks every read against the
// source's history. Start it, mark faults with BeginFault and Fault.End,
// then Stop it for the Report. Its methods are safe for concurrent use.
type Checker struct {
	cfg    Config
	src    *Source
	keys   []string
	locks  []sync.Mutex // per key: a write updates the source and the cache as one step
	groups [][]int      // key indexes per group

	mu     sync.Mutex
	cuts   [][]interval // per node: when its backplane was cut
	faults []*Fault
	rep    Report

	cancel context.CancelFunc
	wg     sync.WaitGroup
	begun  time.Time
	stats  []*workerStats
	panics atomic.Int64
	// factoryCalls counts the workload's factory calls (recovery probes
	// included: they are calls the source served).
	factoryCalls atomic.Int64
}

type interval struct{ start, end time.Time } // end zero: still cut

type workerStats struct {
	reads, writes         []time.Duration
	gets, getMisses       int64
	sets, removes, tagOps int64
}

// New returns a checker for cfg; Start starts it.
func New(cfg Config) (*Checker, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Checker{cfg: cfg, keys: make([]string, cfg.Keys), locks: make([]sync.Mutex, cfg.Keys),
		groups: make([][]int, cfg.Groups), cuts: make([][]interval, len(cfg.Nodes))}
	for i := range c.keys {
		c.keys[i] = fmt.Sprintf("item:%d", i)
		c.groups[i%cfg.Groups] = append(c.groups[i%cfg.Groups], i)
	}
	c.src = NewSource(c.keys)
	return c, nil
}

// Source returns the checker's source of truth.
func (c *Checker) Source() *Source { return c.src }

func groupTag(g int) string { return fmt.Sprintf("group:%d", g) }

// Start starts the workers; they run until Stop or until ctx ends.
func (c *Checker) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.begun = time.Now()
	for w := range c.cfg.Workers {
		st := &workerStats{}
		c.stats = append(c.stats, st)
		rng := rand.New(rand.NewPCG(c.cfg.Seed, uint64(w)))
		c.wg.Go(func() { c.work(ctx, rng, st) })
	}
}

// work issues operations until ctx ends, each picked by Config.Mix on a
// random node and key.
func (c *Checker) work(ctx context.Context, rng *rand.Rand, st *workerStats) {
	defer func() {
		if r := recover(); r != nil {
			c.panics.Add(1)
			c.fail(fmt.Sprintf("panic: %v", r))
		}
	}()
	t := time.NewTimer(c.cfg.Pause)
	defer t.Stop()
	total := c.cfg.Mix.total()
	for ctx.Err() == nil {
		node, k := rng.IntN(len(c.cfg.Nodes)), rng.IntN(len(c.keys))
		start := time.Now()
		switch c.cfg.Mix.pick(rng.IntN(total)) {
		case opGetOrSet:
			c.read(ctx, node, k, false)
			st.reads = append(st.reads, time.Since(start))
		case opGet:
			if !c.get(ctx, node, k) {
				st.getMisses++
			}
			st.reads = append(st.reads, time.Since(start))
			st.gets++
		case opSet:
			c.write(ctx, node, []int{k}, false)
			st.writes = append(st.writes, time.Since(start))
			st.sets++
		case opRemove:
			c.write(ctx, node, []int{k}, true)
			st.writes = append(st.writes, time.Since(start))
			st.removes++
		case opRemoveByTag:
			c.write(ctx, node, c.groups[k%len(c.groups)], false)
			st.writes = append(st.writes, time.Since(start))
			st.tagOps++
		}
		t.Reset(c.cfg.Pause)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// opts returns the entry options of key k.
func (c *Checker) opts(k int) []core.EntryOption {
	return append(slices.Clip(c.cfg.EntryOptions), core.WithTags(groupTag(k%c.cfg.Groups)))
}

// read does a GetOrSet of key k on node whose factory reads the source
// (see Config.FactoryDelay) and checks the value. It returns "" when the
// value is current — the source's latest, or a version replaced less than
// Config.Propagation before the read started (a change still on its way)
// — and else says what lags.
func (c *Checker) read(ctx context.Context, node, k int, probe bool) string {
	key := c.keys[k]
	start := time.Now()
	v, err := core.GetOrSet(ctx, c.cfg.Nodes[node], key, c.factory(key), c.opts(k)...)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(fmt.Sprintf("GetOrSet(%s) on node %d: %v", key, node, err))
		}
		return fmt.Sprintf("node %d: GetOrSet(%s): %v", node, key, err)
	}
	return c.checkRead(node, key, v, start, probe)
}

// get does a Get of key k on node, checks the value if there is one, and
// reports whether there was.
func (c *Checker) get(ctx context.Context, node, k int) bool {
	key := c.keys[k]
	start := time.Now()
	v, ok, err := core.Get[string](ctx, c.cfg.Nodes[node], key, c.opts(k)...)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(fmt.Sprintf("Get(%s) on node %d: %v", key, node, err))
		}
		return false
	}
	if ok {
		c.checkRead(node, key, v, start, false)
	}
	return ok
}

// factory returns the factory of key: it reads the source, then takes a
// random time up to Config.FactoryDelay before returning what it read.
func (c *Checker) factory(key string) core.Factory[string] {
	return func(ctx context.Context, _ *core.FactoryContext[string]) (string, error) {
		c.factoryCalls.Add(1)
		v := c.src.Read(key)
		if c.cfg.FactoryDelay > 0 {
			t := time.NewTimer(rand.N(c.cfg.FactoryDelay + 1))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		return v, nil
	}
}

// checkRead checks value v of key, returned by a read on node that started
// at start; it returns what read says.
func (c *Checker) checkRead(node int, key, v string, start time.Time, probe bool) string {
	got, ver, perr := parse(v)
	if perr != nil || got != key || ver > c.src.Latest(key) {
		c.violate(Violation{Node: node, Key: key, Value: v, ReadAt: start, Why: "not a value the source ever held for this key"})
		return fmt.Sprintf("node %d: %s = %q, never held", node, key, v)
	}
	newer := c.src.after(key, ver)
	c.check(node, key, v, ver, start, newer, probe)
	if len(newer) > 0 && !newer[0].done.IsZero() && start.Sub(newer[0].done) >= c.cfg.Propagation {
		return fmt.Sprintf("node %d: %s = %q, replaced %v before the read", node, key, v, start.Sub(newer[0].done).Round(time.Millisecond))
	}
	return ""
}

// write updates the source for keys (a removal when remove is set), then
// the cache on node: Set or Remove for one key, RemoveByTag of their group
// for several, as a service updating its database and then its cache
// would. The keys' write locks are held meanwhile, so the source's order
// of versions is the order of the cache calls.
func (c *Checker) write(ctx context.Context, node int, ks []int, remove bool) {
	for _, k := range ks {
		c.locks[k].Lock()
		defer c.locks[k].Unlock()
	}
	vers := make([]int, len(ks))
	var value string
	for i, k := range ks {
		vers[i], value = c.src.begin(c.keys[k], node, remove)
	}
	cache := c.cfg.Nodes[node]
	var err error
	switch {
	case len(ks) > 1:
		err = cache.RemoveByTag(ctx, groupTag(ks[0]%c.cfg.Groups))
	case remove:
		err = cache.Remove(ctx, c.keys[ks[0]])
	default:
		err = core.Set(ctx, cache, c.keys[ks[0]], value, c.opts(ks[0])...)
	}
	done := time.Now()
	for i, k := range ks {
		c.src.finish(c.keys[k], vers[i], done)
	}
	if err != nil && ctx.Err() == nil {
		c.fail(fmt.Sprintf("write of %d key(s) on node %d: %v", len(ks), node, err))
	}
}

// fail records a caller-visible error.
func (c *Checker) fail(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Errors++
	if len(c.rep.FirstErrors) < 5 {
		c.rep.FirstErrors = append(c.rep.FirstErrors, time.Now().Format("15:04:05.000")+" "+msg)
	}
}
