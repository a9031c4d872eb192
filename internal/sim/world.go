package sim

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing/synctest"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/backplane/membackplane"
	"github.com/stratacache/strata/core"
	"github.com/stratacache/strata/l2"
	"github.com/stratacache/strata/l2/meml2"
)

// keyPrefix is the nodes' Options.KeyPrefix.
const keyPrefix = ""

// bootKey is expired by every node as it starts, so that it has published
// once (see world.startNode).
const bootKey = "sim-boot"

// convergeID numbers the operations of the convergence round (not part of
// the plan: shrinking never drops them).
const convergeID = 1_000_000

// world is one run: the cluster, the source of truth, the fault layer and
// what is recorded. It lives in one synctest bubble.
type world struct {
	plan *Plan
	cfg  *Config
	seed uint64
	t0   time.Time

	mu       sync.Mutex
	rec      recorder
	db       map[string]int
	cur      []*incarnation // each node's current incarnation (nil: down)
	starting []bool
	clocks   []*clockSched
	incCount []int
	pubs     map[uint64]*pubRec
	nextPub  uint64
	faults   [][]FaultSpec // by node

	bus      *membackplane.Bus
	store    *meml2.Store
	keyLocks map[string]chan struct{}
	signing  [][]byte

	opsWG sync.WaitGroup
	bgWG  sync.WaitGroup

	// Times of the phases.
	convergeAt, quiet1, quiet2, endAt time.Duration
}

func newWorld(p *Plan) *world {
	w := &world{
		plan: p, cfg: &p.Cfg, seed: p.Seed, t0: time.Now(),
		db: map[string]int{}, pubs: map[uint64]*pubRec{}, keyLocks: map[string]chan struct{}{},
		bus: membackplane.NewBus(),
	}
	w.store = meml2.New(&meml2.Options{Now: time.Now})
	n := w.cfg.Nodes
	w.cur = make([]*incarnation, n)
	w.starting = make([]bool, n)
	w.incCount = make([]int, n)
	w.faults = make([][]FaultSpec, n)
	w.clocks = make([]*clockSched, n)
	for i := range n {
		w.clocks[i] = &clockSched{t0: w.t0, skew: w.cfg.Skew[i]}
	}
	for _, f := range p.Faults {
		w.faults[f.Node] = append(w.faults[f.Node], f)
		if f.Kind == FClockStep {
			w.clocks[f.Node].steps = append(w.clocks[f.Node].steps, f)
		}
	}
	for _, k := range w.cfg.Keys {
		w.db[k] = 1
		w.keyLocks[k] = make(chan struct{}, 1)
	}
	if w.cfg.Signing {
		w.signing = [][]byte{[]byte("sim-signing-key-0123456789abcdef")}
	}
	b := w.cfg.Bound
	w.convergeAt = w.cfg.ChaosEnd + b + w.cfg.RecoveryDelay + w.convergeSlack()
	w.quiet1 = w.cfg.ChaosEnd + 3*b + w.cfg.RecoveryDelay
	w.quiet2 = w.quiet1 + 2*b
	w.endAt = w.quiet2 + time.Millisecond
	return w
}

// convergeSlack is what convergence may take beyond the bound and the
// recovery delay: the quiet phase's own latencies (a replay's L2 write and
// publish, the message's delivery, the read's L2 calls).
func (w *world) convergeSlack() time.Duration {
	return 10*time.Millisecond + 8*w.cfg.L2Latency + 2*w.cfg.MsgDelay
}

// now is the virtual time since the start of the run.
func (w *world) now() time.Duration { return time.Since(w.t0) }

// fault returns the first window of kind active on node at at.
func (w *world) fault(kind FaultKind, node int, at time.Duration) *FaultSpec {
	for i := range w.faults[node] {
		f := &w.faults[node][i]
		if f.Kind == kind && f.active(at) {
			return f
		}
	}
	return nil
}

func (w *world) tracef(inc *incarnation, key, format string, args ...any) {
	e := traceEv{T: w.now(), Key: key, Text: fmt.Sprintf(format, args...)}
	if inc != nil {
		e.Node = inc.label
	}
	w.mu.Lock()
	w.rec.add(e)
	w.mu.Unlock()
}

// action is one step of the driver's timeline.
type action struct {
	at  time.Duration
	ord int
	fn  func()
}

// drive runs the plan: starts the nodes, plays the operations and the
// faults, ends the chaos, runs the convergence round and the quiet phase.
func (w *world) drive() {
	var acts []action
	add := func(at time.Duration, fn func()) { acts = append(acts, action{at: at, ord: len(acts), fn: fn}) }
	for n := range w.cfg.Nodes {
		if !w.plan.nodeDropped(n) {
			add(time.Duration(n)*time.Microsecond, func() { w.startNode(n, nil) })
		}
	}
	for i := range w.plan.Ops {
		o := &w.plan.Ops[i]
		add(o.At, func() {
			w.opsWG.Add(1)
			go w.runOp(o)
		})
	}
	for _, f := range w.plan.Faults {
		switch f.Kind {
		case FCut:
			at := f.Start + f.D
			if f.NoReport || at >= f.End {
				at = f.End - time.Microsecond
			}
			add(at, func() { w.report(f.Node, backplane.Disconnected, errSimDisconnected) })
			add(f.End, func() { w.report(f.Node, backplane.Reconnected, nil) })
		case FRestart:
			var old *incarnation
			add(f.Start, func() { old = w.stopNode(f.Node) })
			add(f.End, func() {
				w.bgWG.Add(1)
				go func() {
					defer w.bgWG.Done()
					if old != nil {
						<-old.closed
					}
					w.startNode(f.Node, old)
				}()
			})
		case FReplay:
			h := newHasher(w.seed, "replay-times")
			h.u64(uint64(f.ID))
			d := h.draw()
			mean := float64(w.cfg.Bound) / f.P
			for at := f.Start; ; {
				at += time.Duration(d.r.ExpFloat64()*mean) + time.Duration(d.intn(1000))
				if at >= f.End {
					break
				}
				add(at, func() { w.replay(f.Node) })
			}
		}
	}
	add(w.cfg.ChaosEnd, func() { w.tracef(nil, "", "chaos ends: faults off, no more operations") })
	add(w.convergeAt, func() { w.convergeRound() })
	add(w.quiet1, func() { w.snapshotQuiet(0) })
	add(w.quiet2, func() { w.snapshotQuiet(1) })
	slices.SortStableFunc(acts, func(a, b action) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.ord, b.ord)
	})
	for _, a := range acts {
		if d := a.at - w.now(); d > 0 {
			time.Sleep(d)
		}
		a.fn()
	}
	if d := w.endAt - w.now(); d > 0 {
		time.Sleep(d)
	}
}

// startNode makes node n's next incarnation (after prev, if any).
func (w *world) startNode(n int, prev *incarnation) {
	w.mu.Lock()
	if w.cur[n] != nil || w.starting[n] {
		w.mu.Unlock()
		return // overlapping restarts: it is up already
	}
	w.starting[n] = true
	w.incCount[n]++
	count := w.incCount[n]
	w.mu.Unlock()
	label := "n" + strconv.Itoa(n)
	if count > 1 {
		label += "#" + strconv.Itoa(count)
	}
	inc := &incarnation{node: n, n: count, label: label, id: "sim-" + label, newAt: w.now(),
		closeAt: -1, liveAt: -1, closed: make(chan struct{})}
	inc.bp = &simBP{w: w, inc: inc, mb: w.bus.Connect(nil)}
	st := &simStore{w: w, inc: inc, st: w.store}
	deo := core.DefaultEntryOptions()
	deo.Duration = w.cfg.Duration
	deo.ValueOnBackplane = w.cfg.Values
	c, err := core.New(core.Options{
		Name:                            "sim",
		KeyPrefix:                       keyPrefix,
		InstanceID:                      inc.id,
		DefaultEntryOptions:             &deo,
		L2:                              st,
		Backplane:                       inc.bp,
		Clock:                           simClock{w.clocks[n]},
		Logger:                          slog.New(&traceHandler{w: w, inc: inc}),
		Observers:                       []core.Observer{&observer{w: w, inc: inc}},
		CloseTimeout:                    w.cfg.CloseTimeout,
		L2CircuitBreakerDuration:        w.cfg.L2Breaker,
		BackplaneCircuitBreakerDuration: w.cfg.BPBreaker,
		BackplaneSigningKeys:            w.signing,
		BackplanePublishTimeout:         w.cfg.PublishTimeout,
		BackplaneStalenessBound:         w.cfg.Bound,
		BackplaneProbeInterval:          w.cfg.ProbeInterval,
		AutoRecoveryDelay:               w.cfg.RecoveryDelay,
		DistributedStampedeLock:         w.cfg.StampedeLock,
	})
	if err != nil {
		panic(fmt.Sprintf("sim: core.New: %v", err))
	}
	w.mu.Lock()
	inc.cache = c
	w.cur[n] = inc
	w.starting[n] = false
	w.rec.incs = append(w.rec.incs, inc)
	w.mu.Unlock()
	w.tracef(inc, "", "New (InstanceID %s)", inc.id)
	// A node's delivery watermark runs on the monotonic clock of core's
	// package start, taken outside the bubble: inside it, a node that has
	// sent nothing counts as idle for a negative time and never probes.
	// Its first publish fixes that, as a process's uptime does outside a
	// bubble, so every node expires a key no one reads as it starts.
	w.bgWG.Add(1)
	go func() {
		defer w.bgWG.Done()
		_ = c.Expire(context.Background(), bootKey)
	}()
}

// stopNode closes node n's current incarnation, in the background; it
// returns it (nil if it is down).
func (w *world) stopNode(n int) *incarnation {
	w.mu.Lock()
	inc := w.cur[n]
	w.cur[n] = nil
	if inc != nil {
		inc.closeAt = w.now()
	}
	w.mu.Unlock()
	if inc == nil {
		return nil
	}
	w.tracef(inc, "", "Close")
	w.bgWG.Add(1)
	go func() {
		defer w.bgWG.Done()
		defer close(inc.closed)
		if err := inc.cache.Close(); err != nil {
			w.tracef(inc, "", "Close: %v", err)
		}
		_ = inc.bp.Close()
		w.tracef(inc, "", "closed")
	}()
	return inc
}

// current returns node n's live incarnation, or nil.
func (w *world) current(n int) *incarnation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur[n]
}

// report has the transport report state to node n's subscription, after
// the messages queued for it.
func (w *world) report(n int, state backplane.State, err error) {
	inc := w.current(n)
	if inc == nil {
		return
	}
	s := inc.bp.liveSub()
	if s == nil {
		w.tracef(inc, "", "%v not reported: no live subscription", state)
		return
	}
	s.push(qEv{at: w.now() + time.Microsecond, state: state, err: err}, true)
}

// replay has an attacker deliver to node n a copy of a message seen on the
// wire earlier.
func (w *world) replay(n int) {
	inc := w.current(n)
	if inc == nil {
		return
	}
	s := inc.bp.liveSub()
	if s == nil {
		return
	}
	now := w.now()
	w.mu.Lock()
	cands := slices.Clone(w.rec.pubs)
	w.mu.Unlock()
	slices.SortFunc(cands, func(a, b *pubRec) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.inc.label, b.inc.label); c != 0 {
			return c
		}
		return cmp.Compare(a.msg.Seq, b.msg.Seq)
	})
	cands = slices.DeleteFunc(cands, func(p *pubRec) bool { return p.at >= now })
	if len(cands) == 0 {
		return
	}
	h := newHasher(w.seed, "replay")
	h.u64(uint64(n))
	h.i64(int64(now))
	p := cands[h.draw().intn(len(cands))]
	s.push(qEv{at: now + time.Microsecond, pub: p, payload: p.payload, kind: deliverReplay}, true)
}

// convergeRound reads every key on every node once the faults have been
// over for the bound plus the recovery delay.
func (w *world) convergeRound() {
	w.tracef(nil, "", "convergence round")
	id := convergeID
	for n := range w.cfg.Nodes {
		for _, k := range w.cfg.Keys {
			o := &OpSpec{ID: id, At: w.now(), Node: n, Kind: OpConverge, Keys: []string{k}}
			id++
			w.opsWG.Add(1)
			go w.runOp(o)
			time.Sleep(time.Microsecond)
		}
	}
}

// snapshotQuiet records every live node's counters.
func (w *world) snapshotQuiet(i int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, inc := range w.cur {
		if inc != nil {
			w.rec.quiet[i] = append(w.rec.quiet[i], statsRec{inc: inc, at: w.now(), stats: inc.cache.Stats()})
		}
	}
}

// shutdown closes every node and waits for every goroutine of the run, and
// reports those left behind.
func (w *world) shutdown() []string {
	for n := range w.cfg.Nodes {
		w.stopNode(n)
	}
	// A call that never returns, even once its cache is closed, must not
	// stop the run: after a while it is reported, and left behind.
	done := make(chan struct{})
	go func() {
		w.bgWG.Wait()
		w.opsWG.Wait()
		close(done)
	}()
	t := time.NewTimer(10*w.cfg.Bound + 2*w.cfg.CloseTimeout)
	select {
	case <-done:
		t.Stop()
		return leftGoroutines()
	case <-t.C:
	}
	w.mu.Lock()
	for _, op := range w.rec.ops {
		if !op.done && !op.skipped {
			op.neverReturned = true
		}
	}
	w.mu.Unlock()
	return leftGoroutines()
}

// leftGoroutines lists the goroutines of the calling goroutine's bubble,
// other than itself, once everything in it is blocked.
func leftGoroutines() []string {
	synctest.Wait()
	buf := make([]byte, 1<<16)
	n := runtime.Stack(buf, false)
	self := string(buf[:n])
	tag := bubbleTag(self)
	if tag == "" {
		return nil
	}
	for {
		n = runtime.Stack(buf, true)
		if n < len(buf) {
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	selfID, _, _ := strings.Cut(self, " [")
	var left []string
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		id, _, _ := strings.Cut(header, " [")
		if strings.Contains(header, tag+"]") && id != selfID && !strings.Contains(g, "internal/synctest.Run(") && !strings.Contains(g, "testing/synctest.testingSynctestTest(") {
			left = append(left, g)
		}
	}
	return left
}

// bubbleTag returns the "synctest bubble N" of a goroutine's stack header.
func bubbleTag(stack string) string {
	header, _, _ := strings.Cut(stack, "\n")
	i := strings.Index(header, "synctest bubble ")
	if i < 0 {
		return ""
	}
	j := i + len("synctest bubble ")
	for j < len(header) && header[j] >= '0' && header[j] <= '9' {
		j++
	}
	return header[i:j]
}

// Recording, under the lock.

// decodePayload decodes what a node publishes (signed or not).
func (w *world) decodePayload(inc *incarnation, payload []byte) backplane.Message {
	body := payload
	if w.cfg.Signing && len(body) > 2+backplane.SignatureLen {
		body = append([]byte(nil), body[:len(body)-backplane.SignatureLen]...)
		body[1] &^= backplane.FlagSigned
	}
	m, err := backplane.DecodeMessage(body)
	if err != nil {
		panic(fmt.Sprintf("sim: undecodable message from %s: %v", inc.label, err))
	}
	return m
}

// recordAttempt records a Publish call, before the faults decide its fate.
func (w *world) recordAttempt(inc *incarnation, payload []byte) {
	m := w.decodePayload(inc, payload)
	w.mu.Lock()
	w.rec.attempts = append(w.rec.attempts, &pubRec{inc: inc, msg: m, at: w.now()})
	w.mu.Unlock()
}

func (w *world) recordPublish(inc *incarnation, payload []byte, late bool) *pubRec {
	m := w.decodePayload(inc, payload)
	w.mu.Lock()
	w.nextPub++
	p := &pubRec{id: w.nextPub, inc: inc, msg: m, at: w.now(), payload: append([]byte(nil), payload...), late: late}
	w.pubs[p.id] = p
	w.rec.pubs = append(w.rec.pubs, p)
	if m.Action != backplane.ActionProbe {
		txt := "publish " + p.String() + " v=" + w.fmtVersion(m.Timestamp)
		if late {
			txt += " (after its Publish gave up)"
		}
		w.rec.add(traceEv{T: p.at, Node: inc.label, Key: m.Key, Text: txt})
	}
	w.mu.Unlock()
	return p
}

func (w *world) pubByID(id uint64) *pubRec {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pubs[id]
}

func (w *world) recordDrop(inc *incarnation, p *pubRec, why string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec.drops = append(w.rec.drops, &dropRec{to: inc, at: w.now(), pub: p, why: why})
	if p.msg.Action != backplane.ActionProbe {
		w.rec.add(traceEv{T: w.now(), Node: inc.label, Key: p.msg.Key, Text: fmt.Sprintf("x %s: %s", p, why)})
	}
}

func (w *world) recordDelivery(d *delivRec) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec.deliveries = append(w.rec.deliveries, d)
	if d.pub.msg.Action != backplane.ActionProbe || d.kind != deliverOriginal || d.lossDelta > 0 {
		txt := fmt.Sprintf("<- %s%s (sent %s)", d.pub, deliveryNames[d.kind], fmtDur(d.pub.at))
		if d.lossDelta > 0 {
			txt += ": receiver expired its L1"
		}
		w.rec.add(traceEv{T: d.at, Node: d.to.label, Key: d.pub.msg.Key, Text: txt})
	}
}

func (w *world) recordSub(inc *incarnation, kind subKind) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	if kind == subLive && inc.liveAt < 0 {
		inc.liveAt = now
	}
	w.rec.subs = append(w.rec.subs, subEv{inc: inc, at: now, kind: kind})
	w.rec.add(traceEv{T: now, Node: inc.label, Text: subNames[kind]})
}

func (w *world) recordL2Write(inc *incarnation, key string, value []byte, ttl time.Duration, version int64, stored, lostAck, ambiguous bool) {
	env, val, _ := decodeEntry(value)
	wr := &l2Write{inc: inc, at: w.now(), storeKey: key, version: version, stored: stored, lostAck: lostAck,
		ambiguous: ambiguous, tomb: env.Flags&l2.FlagTombstone != 0, val: val, expires: env.Expires, ttl: ttl}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec.l2writes = append(w.rec.l2writes, wr)
	what := "marker"
	switch {
	case wr.tomb:
		what = "tombstone"
	case val != nil:
		what = val.String()
		if env.Expires <= env.Created {
			what += " (expired)"
		}
	}
	outcome := "stored"
	switch {
	case lostAck:
		outcome = "LOST after its ack"
	case !stored:
		outcome = "refused (newer there)"
	case ambiguous:
		outcome = "stored, reply lost"
	}
	w.rec.add(traceEv{T: wr.at, Node: inc.label, Key: l2Subject(key),
		Text: fmt.Sprintf("l2 write %s %s v=%s: %s", key, what, w.fmtVersion(version), outcome)})
}

func (w *world) recordL2Read(ctx context.Context, inc *incarnation, key string, b []byte, found bool) {
	r := &l2Read{inc: inc, at: w.now(), storeKey: key, op: opOf(ctx), found: found}
	what := "miss"
	if found {
		env, val, ok := decodeEntry(b)
		r.version, r.tomb, r.val = env.Created, env.Flags&l2.FlagTombstone != 0, val
		switch {
		case !ok:
			what = "corrupt"
		case r.tomb:
			what = "tombstone v=" + w.fmtVersion(env.Created)
		case val != nil:
			what = val.String() + " v=" + w.fmtVersion(env.Created)
		default:
			what = "v=" + w.fmtVersion(env.Created)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec.l2reads = append(w.rec.l2reads, r)
	if !strings.HasPrefix(key, keyPrefix+"__strata:lock:") {
		w.rec.add(traceEv{T: r.at, Node: inc.label, Key: l2Subject(key), Text: fmt.Sprintf("l2 read %s: %s", key, what)})
	}
}

// recordL2ReadFailed records an L2 read that failed (or timed out).
func (w *world) recordL2ReadFailed(ctx context.Context, inc *incarnation, key string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rec.l2reads = append(w.rec.l2reads, &l2Read{inc: inc, at: w.now(), storeKey: key, op: opOf(ctx), failed: true})
	if !strings.HasPrefix(key, keyPrefix+"__strata:lock:") {
		w.rec.add(traceEv{T: w.now(), Node: inc.label, Key: l2Subject(key), Text: fmt.Sprintf("l2 read %s failed: %v", key, err)})
	}
}

// l2Subject is the key or tag an L2 key is about, for the trace's filter.
func l2Subject(storeKey string) string {
	k := strings.TrimPrefix(storeKey, keyPrefix)
	for _, p := range []string{"__strata:tag-remove:", "__strata:tag-expire:", "__strata:lock:"} {
		if t, ok := strings.CutPrefix(k, p); ok {
			return t
		}
	}
	if strings.HasPrefix(k, "__strata:clear") {
		return ""
	}
	return k
}

// fmtVersion prints a cache version (Unix ns) as an instant of the run
// (the writer's clock).
func (w *world) fmtVersion(v int64) string {
	if v == 0 {
		return "0"
	}
	return fmtDur(time.Duration(v - w.t0.UnixNano()))
}

// traceHandler puts core's logs in the trace.
type traceHandler struct {
	w   *world
	inc *incarnation
}

func (h *traceHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *traceHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("log ")
	b.WriteString(r.Level.String())
	b.WriteString(" ")
	b.WriteString(r.Message)
	key := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "key" {
			key = a.Value.String()
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.w.tracef(h.inc, key, "%s", runID.ReplaceAllString(b.String(), ""))
	return nil
}

// runID matches the random run id core appends to an InstanceID in what it
// logs: the trace leaves it out, so that it stays the same run after run.
var runID = regexp.MustCompile(`/[0-9a-f]{16}\b`)

func (h *traceHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *traceHandler) WithGroup(string) slog.Handler      { return h }
