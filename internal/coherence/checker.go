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
	// each pauses Pause (default 1ms) between two operations.
	Workers int
	Pause   time.Duration
	// Bound is the nodes' Options.BackplaneStalenessBound, and Slack what
	// is allowed on top of it for delivery, scheduling and polling
	// (default 1s): a read returning a value replaced more than
	// Bound+Slack before the read started is a violation.
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
	// while convergence is measured.
	Propagation time.Duration
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
	if c.Slack <= 0 {
		c.Slack = time.Second
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
}

type interval struct{ start, end time.Time } // end zero: still cut

type workerStats struct {
	reads, writes         []time.Duration
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

// work issues operations until ctx ends: 85% reads, 10% sets, 4% removes,
// 1% tag removals, each on a random node.
func (c *Checker) work(ctx context.Context, rng *rand.Rand, st *workerStats) {
	defer func() {
		if r := recover(); r != nil {
			c.panics.Add(1)
			c.fail(fmt.Sprintf("panic: %v", r))
		}
	}()
	t := time.NewTimer(c.cfg.Pause)
	defer t.Stop()
	for ctx.Err() == nil {
		node, k := rng.IntN(len(c.cfg.Nodes)), rng.IntN(len(c.keys))
		start := time.Now()
		switch p := rng.IntN(100); {
		case p < 85:
			c.read(ctx, node, k, false)
			st.reads = append(st.reads, time.Since(start))
		case p < 95:
			c.write(ctx, node, []int{k}, false)
			st.writes = append(st.writes, time.Since(start))
			st.sets++
		case p < 99:
			c.write(ctx, node, []int{k}, true)
			st.writes = append(st.writes, time.Since(start))
			st.removes++
		default:
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
// and checks the value. It returns "" when the value is current — the
// source's latest, or a version replaced less than Config.Propagation
// before the read started (a change still on its way) — and else says
// what lags.
func (c *Checker) read(ctx context.Context, node, k int, probe bool) string {
	key := c.keys[k]
	start := time.Now()
	v, err := core.GetOrSet(ctx, c.cfg.Nodes[node], key, func(context.Context, *core.FactoryContext[string]) (string, error) {
		return c.src.Read(key), nil
	}, c.opts(k)...)
	if err != nil {
		if ctx.Err() == nil {
			c.fail(fmt.Sprintf("GetOrSet(%s) on node %d: %v", key, node, err))
		}
		return fmt.Sprintf("node %d: GetOrSet(%s): %v", node, key, err)
	}
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
