// Command multinode shows strata keeping the nodes of a service in sync: three
// caches in one process play three nodes, A, B and C, each with its own
// connection to a shared L2 and to a backplane, opened by URL as a service
// opens them from its configuration. It prints, step by step, what happens and
// why: a value loaded once and shared through L2, an update seen by every
// node, a tag removal on every node, an L2 outage (fail-safe, circuit breaker,
// auto-recovery), and a node cut off from the backplane (bounded staleness,
// then recovery).
//
//	go run ./examples/multinode                 # in-process L2 and backplane (mem://)
//	go run ./examples/multinode -l2 ""          # no L2: the nodes share only the backplane
//	go run ./examples/multinode -l2 redis://127.0.0.1:6379 -backplane redis://127.0.0.1:6379
//	go run ./examples/multinode -l2 nats://127.0.0.1:4222 -backplane nats://127.0.0.1:4222
//	go run ./examples/multinode -l2 redis://127.0.0.1:6379 -backplane amqp://guest:guest@127.0.0.1:5672
//
// Any URL whose adapter is compiled in works (see the schemes it prints): the
// in-process mem:// adapters, Redis, NATS and RabbitMQ are. The fault steps inject
// failures through the in-process adapters, so they are skipped, with a note,
// for other URLs.
//
// It checks every claim it prints: if something does not behave as described,
// it says what and exits with status 1. Its test runs it on the defaults,
// without L2, and on Redis and NATS. It finishes in a few seconds.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"

	// Imported for their URL schemes only: redis://, rediss://, nats://,
	// and amqp://, amqps:// (a backplane only).
	_ "github.com/stratacache/strata/backplane/natsbackplane"
	_ "github.com/stratacache/strata/backplane/rabbitbackplane"
	_ "github.com/stratacache/strata/backplane/redisbackplane"
	_ "github.com/stratacache/strata/l2/natskvl2"
	_ "github.com/stratacache/strata/l2/redisl2"
)

const (
	// The defaults of -l2 and -backplane: the in-process adapters, through
	// which the fault steps inject their failures.
	defaultL2        = "mem://multinode"
	defaultBackplane = "mem://multinode"

	profileKey = "user:42"
	tenantTag  = "tenant:7"
	// stalenessBound is Options.BackplaneStalenessBound: how long a node cut
	// off from the backplane trusts its L1 entries.
	stalenessBound = 300 * time.Millisecond
)

// profileOpts are the entry options of every read and write of the profile:
// fresh for a minute, kept an hour for fail-safe (a stale value served by
// fail-safe is reused for 1s before the database is tried again), tagged with
// the user's tenant.
var profileOpts = []core.EntryOption{
	core.WithDuration(time.Minute),
	core.WithFailSafe(time.Hour, time.Second),
	core.WithTags(tenantTag),
}

func main() {
	l2URL := flag.String("l2", defaultL2, `URL of the shared L2 store; "" for none`)
	bpURL := flag.String("backplane", defaultBackplane, "URL of the backplane")
	flag.Parse()
	if *bpURL == "" {
		fmt.Fprintln(os.Stderr, "multinode: -backplane must name a backplane: keeping nodes in sync is what this example shows")
		os.Exit(2)
	}

	// Fail clearly instead of hanging if something blocks for good.
	time.AfterFunc(30*time.Second, func() {
		fmt.Fprintln(os.Stderr, "multinode: FAILED: still running after 30s")
		os.Exit(1)
	})

	if err := run(context.Background(), *l2URL, *bpURL, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "multinode: %v\n", err)
		os.Exit(1)
	}
}

// run plays every step on three nodes opened on l2URL ("" for none) and
// bpURL, printing to out, and returns the first claim that did not hold (or
// a URL that could not be opened). Every node it opened is closed when it
// returns.
func run(ctx context.Context, l2URL, bpURL string, out io.Writer) (err error) {
	var id [3]byte
	_, _ = rand.Read(id[:])
	cfg := &config{
		l2URL:          l2URL,
		backplaneURL:   bpURL,
		cacheName:      "multinode-" + hex.EncodeToString(id[:]),
		stalenessBound: stalenessBound,
		db:             &database{profile: Profile{ID: 42, Name: "Ada Lovelace", Email: "ada@example.com", Version: 1}},
		out:            out,
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = f
			cfg.closeAll()
		}
	}()
	l2Desc := redact(cfg.l2URL)
	if l2Desc == "" {
		l2Desc = "none"
	}
	fmt.Fprintf(out, "Three nodes (A, B, C) of cache %q in one process.\n", cfg.cacheName)
	fmt.Fprintf(out, "   L2:        %s (schemes compiled in: %s)\n", l2Desc, strings.Join(l2.Schemes(), ", "))
	fmt.Fprintf(out, "   backplane: %s (schemes compiled in: %s)\n", redact(cfg.backplaneURL), strings.Join(backplane.Schemes(), ", "))
	fmt.Fprintf(out, "   each node opens its own L2 handle and backplane connection by URL\n")

	a, b, c := openNode(ctx, "A", cfg), openNode(ctx, "B", cfg), openNode(ctx, "C", cfg)
	waitConnected(a, b, c)

	firstLoad(ctx, cfg, a, b, c)
	update(ctx, cfg, a, b, c)
	removeByTag(ctx, cfg, a, b, c)
	c = l2Outage(ctx, cfg, a, b, c)
	disconnection(ctx, cfg, a, b, c)

	cfg.step("Stats() of each node")
	for _, n := range []*node{a, b, c} {
		s := n.cache.Stats()
		cfg.say("%s: L2Errors=%d BackplaneSent=%d BackplaneReceived=%d LossEvents=%d RecoveryQueued=%d RecoveryDropped=%d",
			n.name, s.L2Errors, s.BackplaneSent, s.BackplaneReceived, s.LossEvents, s.RecoveryQueued, s.RecoveryDropped)
		check(s.RecoveryQueued == 0 && s.RecoveryDropped == 0 && s.BackplaneCorrupt == 0 && s.L2Corrupt == 0,
			"node %s ends with %+v: want nothing queued, dropped or corrupt", n.name, s)
	}

	// Caches first, then the stores and backplanes they used: core never
	// closes what it was given.
	for _, n := range []*node{a, b, c} {
		n.close()
	}
	fmt.Fprintln(out, "\nCaches closed, then their L2 stores and backplanes. Every step behaved as described.")
	return nil
}

// 1. A value loaded once is shared through L2.
func firstLoad(ctx context.Context, cfg *config, a, b, c *node) {
	before := snapshot(a, b, c)
	if cfg.l2URL != "" {
		cfg.step("1. A loads " + profileKey + " from the database; B and C find it in L2")
	} else {
		cfg.step("1. A loads " + profileKey + " from the database; so do B and C (no L2)")
	}
	p, out := a.read(ctx, profileOpts...)
	check(p.Version == 1 && out.source == core.SourceFactory && a.dbCalls.Load() == 1,
		"A's first read = %v %s after %d database calls, want v1 from the database", p, out.from(), a.dbCalls.Load())
	if cfg.l2URL != "" {
		cfg.say("A: miss: its factory queried the database and got %v; A stored it in its L1, then in L2, then told the other nodes", p)
	} else {
		cfg.say("A: miss: its factory queried the database and got %v and A stored it in its L1", p)
		cfg.say("without L2, reads pass core.WithSkipBackplane(): announcing a value loaded from the database would make")
		cfg.say("the other nodes drop their copy and load it again, and announce it in turn; only writes (Set, Remove, ...) are announced")
	}

	// B and C read once they have applied A's message (it would make them
	// drop a copy read before it arrived).
	settle(before)
	for _, n := range []*node{b, c} {
		p, out := n.read(ctx, profileOpts...)
		if cfg.l2URL == "" {
			check(p.Version == 1 && out.source == core.SourceFactory, "%s's first read = %v %s, want v1 from the database", n.name, p, out.from())
			cfg.say("%s: %v %s: without L2 every node loads the value itself", n.name, p, out.from())
			continue
		}
		check(p.Version == 1 && out.source == core.SourceL2 && n.dbCalls.Load() == 0,
			"%s's first read = %v %s after %d database calls, want v1 from L2 and no call", n.name, p, out.from(), n.dbCalls.Load())
		cfg.say("%s: miss in its L1, then %v %s: A's value, now in %s's L1 too", n.name, p, out.from(), n.name)
	}
}

// 2. An update made on one node is served by every node.
func update(ctx context.Context, cfg *config, a, b, c *node) {
	cfg.step("2. A updates the profile; B and C serve the new value")
	p2 := cfg.db.update("ada@analytical-engine.org")
	received := map[*node]uint64{b: b.cache.Stats().BackplaneReceived, c: c.cache.Stats().BackplaneReceived}
	calls := map[*node]int32{b: b.dbCalls.Load(), c: c.dbCalls.Load()}
	must(core.Set(ctx, a.cache, profileKey, p2, profileOpts...), "Set on A")
	cfg.say("A: saved %v in the database, then core.Set: its L1, %sthen a %q message on the backplane", p2, ifL2(cfg, "then L2, "), "set "+profileKey)

	for _, n := range []*node{b, c} {
		var p Profile
		var out outcome
		waitFor(n.name+" to serve "+p2.String(), func() bool {
			p, out = n.read(ctx, profileOpts...)
			return p.Version == p2.Version
		})
		check(n.cache.Stats().BackplaneReceived > received[n], "%s serves %v without having received a message", n.name, p)
		if cfg.l2URL == "" {
			check(out.source == core.SourceFactory, "%s got %v %s, want it from the database", n.name, p, out.from())
			cfg.say("%s: %v %s: the message made %s drop its old copy", n.name, p, out.from(), n.name)
			continue
		}
		check(out.source == core.SourceL2 && n.dbCalls.Load() == calls[n],
			"%s got %v %s with %d new database calls, want it from L2 and none", n.name, p, out.from(), n.dbCalls.Load()-calls[n])
		cfg.say("%s: %v %s: the message made %s drop its old copy, and A had written L2 before publishing", n.name, p, out.from(), n.name)
	}
}

// 3. A tag removal made on one node removes the entry on every node.
func removeByTag(ctx context.Context, cfg *config, a, b, c *node) {
	cfg.step("3. B removes everything tagged " + tenantTag + ", on every node")
	must(b.cache.RemoveByTag(ctx, tenantTag), "RemoveByTag on B")
	if cfg.l2URL != "" {
		cfg.say("B: RemoveByTag(%q) records the removal time in its L1 and in L2, then sends a %q message", tenantTag, "remove_tag")
	} else {
		cfg.say("B: RemoveByTag(%q) records the removal time in its L1, then sends a %q message", tenantTag, "remove_tag")
	}
	for _, n := range []*node{b, a, c} {
		waitFor(profileKey+" gone on "+n.name, func() bool {
			_, found := n.cached(ctx)
			return !found
		})
	}
	cfg.say("A, B, C: core.Get(%q) misses everywhere", profileKey)
	if cfg.l2URL != "" {
		cfg.say("L2 still holds the entry's bytes, but they were written before the removal time that is in L2 too:")
		cfg.say("a node that missed the message (or starts later) reads both and treats the entry as removed")
	}
}

// 4. L2 goes down: fail-safe serves the stale value, the circuit breaker
// stops calls to L2, a write is queued and replayed when L2 is back, stored
// expired (a fail-safe fallback: the key may have changed elsewhere
// meanwhile), so a node that starts afterwards loads the value from the
// database once, and the others then find it in L2. It returns node C, which
// it restarts.
func l2Outage(ctx context.Context, cfg *config, a, b, c *node) *node {
	cfg.step("4. L2 goes down: fail-safe, circuit breaker, auto-recovery")
	if cfg.l2URL == "" {
		cfg.say("skipped: no L2 (-l2 \"\")")
		return c
	}
	var stores []*meml2.Store
	for _, n := range []*node{a, b, c} {
		s, ok := n.store.(*meml2.Store)
		if !ok {
			cfg.say("skipped: the fault is injected through the in-process store (-l2 mem://NAME), not %s", redact(cfg.l2URL))
			return c
		}
		stores = append(stores, s)
	}
	aStore := stores[0]
	before := snapshot(a, b, c)

	short := append(slices.Clone(profileOpts), core.WithDuration(400*time.Millisecond))
	p, out := a.read(ctx, short...)
	check(p.Version == 2 && out.source == core.SourceFactory, "A's reload = %v %s, want v2 from the database", p, out.from())
	cfg.say("A: reloads %v from the database, fresh for only 400ms in this step (kept an hour for fail-safe)", p)

	for _, s := range stores {
		s.SetFault(meml2.Fault{Err: errors.New("connection refused")})
	}
	cfg.db.setDown(true)
	cfg.say("L2 goes down for every node (meml2.Store.SetFault), and the database goes down too")

	waitFor("A's entry to expire", func() bool {
		_, found := a.cached(ctx)
		return !found
	})
	errs := a.cache.Stats().L2Errors
	check(errs >= 1, "A's read of a failing L2 was not counted: Stats().L2Errors = %d", errs)
	cfg.say("A: 400ms later its entry has expired; reading L2 failed (Stats().L2Errors = %d), which opened A's L2 circuit breaker", errs)

	gets := aStore.Stats().Gets
	p, out = a.read(ctx, profileOpts...)
	check(p.Version == 2 && out.failSafe, "A's read with L2 and the database down = %v %s, want the stale v2 by fail-safe", p, out.from())
	check(aStore.Stats().Gets == gets, "A called L2 %d times with its circuit breaker open", aStore.Stats().Gets-gets)
	cfg.say("A: reads again: the open breaker skipped L2, the database failed, and fail-safe served the stale %v: no error", p)

	cfg.db.setDown(false)
	p3 := cfg.db.update("ada@lovelace.dev")
	must(core.Set(ctx, a.cache, profileKey, p3, profileOpts...), "Set on A with L2 down")
	var queued uint64
	waitFor("A to queue its L2 write", func() bool {
		queued = a.cache.Stats().RecoveryQueued
		return queued >= 1
	})
	p, out = a.read(ctx, profileOpts...)
	check(p.Version == 3 && out.source == core.SourceL1, "A's read after its Set = %v %s, want v3 from its L1", p, out.from())
	settle(before)
	cfg.say("the database is back; A saves %v and core.Set returns nil: A's L1 has it and B and C were told,", p3)
	cfg.say("but the L2 write waits in A's auto-recovery queue (Stats().RecoveryQueued = %d)", queued)

	for _, s := range stores {
		s.ClearFault()
	}
	fresh := true
	waitFor("A's queued write to reach L2", func() bool {
		var v int
		v, fresh = stored(ctx, aStore, cfg)
		return a.cache.Stats().RecoveryQueued == 0 && v == p3.Version
	})
	check(!fresh, "L2 holds %v fresh after A's replay, want it stored expired (a fail-safe fallback only)", p3)
	cfg.say("L2 is back: A replayed its queue (Stats().RecoveryQueued = 0), and the success closed A's breaker;")
	cfg.say("L2 holds %v, but stored already expired: while the write waited, another node may have changed", p3)
	cfg.say("the profile without being able to tell anyone, so a replayed write is a fail-safe fallback, never fresh")

	c.close()
	c = openNode(ctx, "C", cfg)
	waitConnected(c)
	calls := c.dbCalls.Load()
	p, out = c.read(ctx, profileOpts...)
	check(p.Version == 3 && out.source == core.SourceFactory && c.dbCalls.Load() == calls+1,
		"C's first read after recovery = %v %s, want v3 from the database: the replayed entry in L2 is not fresh", p, out.from())
	cfg.say("C restarts (a deploy: empty L1); its first read finds the replayed entry expired and loads %v %s,", p, out.from())
	cfg.say("which C writes to L2, fresh this time, and announces")
	calls = b.dbCalls.Load()
	p, out = b.read(ctx, profileOpts...)
	check(p.Version == 3 && out.source == core.SourceL2 && b.dbCalls.Load() == calls,
		"B's read after C's = %v %s, want v3 from L2 without a database call", p, out.from())
	cfg.say("B: %v %s: C's copy", p, out.from())
	return c
}

// stored reads the profile straight from the L2 store, as core wrote it (the
// l2 envelope around the serializer's JSON), and returns its version (0 when
// it is not there) and whether it is fresh.
func stored(ctx context.Context, s l2.Store, cfg *config) (version int, fresh bool) {
	b, found, err := s.Get(ctx, cfg.cacheName+":"+profileKey)
	if err != nil || !found {
		return 0, false
	}
	env, err := l2.DecodeEnvelope(b)
	must(err, "decoding the L2 envelope")
	var p Profile
	must(json.Unmarshal(env.Value, &p), "decoding the L2 value")
	return p.Version, env.Expires > time.Now().UnixNano()
}

// 5. A node cut off from the backplane serves its L1 entries for at most the
// staleness bound, and after reconnecting expires its whole L1.
func disconnection(ctx context.Context, cfg *config, a, b, c *node) {
	cfg.step("5. B loses the backplane: bounded staleness, then recovery")
	bbp, ok := b.bp.(*membackplane.Backplane)
	if !ok {
		cfg.say("skipped: the disconnection is injected through the in-process backplane (-backplane mem://NAME), not %s", redact(cfg.backplaneURL))
		return
	}
	// C reads first, then B once it has applied whatever C's read
	// published: a value loaded from the database is announced, and makes
	// the other nodes drop their copy.
	old, _ := cfg.db.load()
	before := snapshot(a, b, c)
	p, _ := c.read(ctx, profileOpts...)
	check(p.Version == old.Version, "C serves %v, want the current %v", p, old)
	settle(before)
	p, _ = b.read(ctx, profileOpts...)
	check(p.Version == old.Version, "B serves %v, want the current %v", p, old)
	cfg.say("B and C hold %v in their L1", old)

	start := time.Now()
	bbp.Disconnect()
	waitFor("B to see the disconnection", func() bool { return b.cache.Stats().Disconnected })
	seen := time.Since(start)
	cfg.say("B's backplane connection drops (membackplane.Backplane.Disconnect): Stats().Disconnected = true")

	pNew := cfg.db.update("ada@difference-engine.org")
	must(core.Set(ctx, a.cache, profileKey, pNew, profileOpts...), "Set on A")
	serves(ctx, c, pNew)
	cfg.say("A saves %v; C is told and serves it; B cannot be told", pNew)

	// B serves its L1 copy until the bound, then re-reads it. Each read is
	// timed from before it starts: a read that returned the old value
	// decided so no earlier than that.
	var out outcome
	var lastOld, newAt time.Duration
	sawOld := false
	waitFor("B to stop serving "+old.String(), func() bool {
		at := time.Since(start)
		p, out = b.read(ctx, profileOpts...)
		if p.Version == old.Version {
			check(out.source == core.SourceL1, "B served the old %v %s, want it only from its L1", p, out.from())
			lastOld, sawOld = at, true
			return false
		}
		newAt = time.Since(start)
		return true
	})
	check(p.Version == pNew.Version, "B serves %v, want %v", p, pNew)
	check(newAt >= stalenessBound-50*time.Millisecond, "B served %v (%s) %v after its disconnection, before the %v bound: it could not have known", p, out.from(), newAt, stalenessBound)
	check(lastOld <= seen+stalenessBound+200*time.Millisecond, "B still served %v from L1 %v after its disconnection (bound %v)", old, lastOld, stalenessBound)
	if cfg.l2URL != "" {
		check(out.source == core.SourceL2, "B got %v %s, want it from L2", p, out.from())
	}
	if sawOld {
		cfg.say("B: kept serving %v from its L1 (last time %v after the disconnection): it cannot know better yet", old, lastOld.Round(10*time.Millisecond))
	}
	cfg.say("B: %v after the disconnection, past BackplaneStalenessBound (%v), it stopped trusting its copy: %v %s",
		newAt.Round(10*time.Millisecond), stalenessBound, p, out.from())

	pNext := cfg.db.update("ada@ada-lang.org")
	must(core.Set(ctx, a.cache, profileKey, pNext, profileOpts...), "Set on A")
	serves(ctx, c, pNext)
	cfg.say("A saves %v while B is still cut off; C serves it", pNext)

	losses := b.cache.Stats().LossEvents
	bbp.Reconnect()
	waitFor("B to reconnect", func() bool {
		s := b.cache.Stats()
		return !s.Disconnected && s.LossEvents > losses
	})
	p, out = b.read(ctx, profileOpts...)
	check(p.Version == pNext.Version, "B after reconnecting serves %v %s, want %v", p, out.from(), pNext)
	cfg.say("B reconnects: it may have missed messages, so it expired its whole L1 (Stats().LossEvents = %d);", b.cache.Stats().LossEvents)
	cfg.say("its next read: %v %s", p, out.from())

	received := b.cache.Stats().BackplaneReceived
	pLast := cfg.db.update("ada@countess-of-lovelace.org")
	must(core.Set(ctx, a.cache, profileKey, pLast, profileOpts...), "Set on A")
	serves(ctx, b, pLast)
	serves(ctx, c, pLast)
	check(b.cache.Stats().BackplaneReceived > received, "B serves %v without having received a message", pLast)
	cfg.say("A saves %v: B is told over the backplane again, and B and C serve it", pLast)

	// A message lost without any report: only the next message from the
	// same sender (a change, or a probe, which an idle node sends every
	// quarter of the bound) shows the gap in its sequence numbers.
	gaps, dropped := b.gaps.Load(), bbp.Stats().Dropped
	bbp.SetFault(membackplane.Fault{DropIncoming: true})
	pLost := cfg.db.update("ada@bernoulli.org")
	must(core.Set(ctx, a.cache, profileKey, pLost, profileOpts...), "Set on A")
	waitFor("B's backplane to drop A's message", func() bool { return bbp.Stats().Dropped > dropped })
	bbp.ClearFault()
	cfg.say("A saves %v, and B's backplane silently drops the message (membackplane Fault.DropIncoming): no state is reported", pLost)
	waitFor("B to see a gap in A's sequence numbers", func() bool { return b.gaps.Load() > gaps })
	p, out = b.read(ctx, profileOpts...)
	check(p.Version == pLost.Version, "B after the gap serves %v %s, want %v", p, out.from(), pLost)
	cfg.say("A's next message to reach B skipped a sequence number: B expired its whole L1 (Stats().LossEvents = %d)", b.cache.Stats().LossEvents)
	cfg.say("and its next read: %v %s", p, out.from())
}

// redact hides the password of a URL, for printing.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// ifL2 returns text when the nodes have an L2, else "".
func ifL2(cfg *config, text string) string {
	if cfg.l2URL == "" {
		return ""
	}
	return text
}

// snapshot returns the nodes' stats, for settle.
func snapshot(nodes ...*node) map[*node]core.Stats {
	s := make(map[*node]core.Stats, len(nodes))
	for _, n := range nodes {
		s[n] = n.cache.Stats()
	}
	return s
}

// settle waits until each node of before has applied every message the
// others sent since before was taken (when none was on its way).
func settle(before map[*node]core.Stats) {
	waitFor("the nodes to apply each other's messages", func() bool {
		for n, b := range before {
			var sent uint64
			for m, bm := range before {
				if m != n {
					sent += m.cache.Stats().BackplaneSent - bm.BackplaneSent
				}
			}
			if n.cache.Stats().BackplaneReceived-b.BackplaneReceived < sent {
				return false
			}
		}
		return true
	})
}

// serves waits until n serves want.
func serves(ctx context.Context, n *node, want Profile) {
	waitFor(n.name+" to serve "+want.String(), func() bool {
		p, _ := n.read(ctx, profileOpts...)
		return p.Version == want.Version
	})
}

// waitConnected waits until every node's backplane subscription is live.
func waitConnected(nodes ...*node) {
	for _, n := range nodes {
		waitFor("node "+n.name+" to subscribe to the backplane", func() bool { return !n.cache.Stats().Disconnected })
	}
}

// step prints a section title.
func (cfg *config) step(title string) { fmt.Fprintf(cfg.out, "\n%s\n", title) }

// say prints one line of a section.
func (cfg *config) say(format string, args ...any) {
	fmt.Fprintf(cfg.out, "   - "+format+"\n", args...)
}

// failure is what check panics with, and run returns: the run stops at the
// first claim that does not hold.
type failure struct{ msg string }

func (f failure) Error() string { return f.msg }

// check stops the run with a clear message when something did not behave
// as described.
func check(ok bool, format string, args ...any) {
	if !ok {
		panic(failure{"FAILED: " + fmt.Sprintf(format, args...)})
	}
}

// must stops the program on an unexpected error.
func must(err error, what string) { check(err == nil, "%s: unexpected error: %v", what, err) }

// waitFor polls cond until it holds, for at most 5s: what other nodes do is
// observed by polling, never by a fixed sleep.
func waitFor(what string, cond func() bool) {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		check(time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(5 * time.Millisecond)
	}
}
