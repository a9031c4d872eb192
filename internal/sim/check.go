package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
)

// The checker works on what the run recorded, once it is over. Its rules are
// those of docs/consistency.md (and of issue 14 where that makes them
// precise); each is explained where it is applied.
//
// Staleness. For every value a read returned, and every change the value
// is older than (the change set a higher source version of its key and, for
// a tag, the value carries the tag), the checker computes the instant from
// which the reading node must not serve the value: its deadline, the
// earliest of what the node is promised to have learnt by then:
//
//   - own: the change was made on this node: when its call returned;
//   - message: a message applied on the node whose version is at least the
//     change's and which covers the value (a set, expire or remove of its
//     key, a tag it carries, a clear; for a value served stale by fail-safe,
//     only a removal);
//   - revelation: the node expired its whole L1 (a sequence gap it could
//     see, Lost, Reconnected, or its first subscription going live) after
//     L2 held the change: entries read later come from L2;
//   - disconnected: while the node counts as disconnected (reported, or
//     not yet subscribed), the bound after the later of the disconnection
//     and the change reaching L2;
//   - lagging: the change's message reached the node more than half the
//     bound after it was sent, in order: the bound after it was sent (the
//     delivery watermark), when the node's own messages flowed meanwhile;
//   - new: the node started after L2 held the change.
//
// A read that started after the deadline (and after the change's call
// returned) and returned the older value is a violation. Faults void parts
// of this exactly as the documentation says: a message lost with nothing to
// reveal it gives no deadline (silent loss with nothing after it); versions
// within a clock skew of each other are not ordered (a change is checked
// only against values whose version is certainly below its own); an L2 that
// lost a write after acknowledging it, or that took an older write once a
// newer entry had expired, gives no L2-based deadline; a node's own timing
// rules run on its own clock (a step back lengthens them by the step).

// Violation is one broken promise.
type Violation struct {
	// Kind is what broke: "stale read", "hung call", ...
	Kind string
	// Defect names the known defect it looks like (issue 14's numbering),
	// "" for none.
	Defect string
	At     time.Duration
	// Until is where the trace printed with it ends (0: At).
	Until time.Duration
	Node  string
	Keys  []string
	Text  string
	nodes []string
}

func (v Violation) String() string {
	d := ""
	if v.Defect != "" {
		d = " [looks like defect " + v.Defect + "]"
	}
	return fmt.Sprintf("%s at %s on %s%s: %s", v.Kind, fmtDur(v.At), v.Node, d, v.Text)
}

const forever = time.Duration(math.MaxInt64)

type gapEv struct {
	at     time.Duration
	src    string
	lo, hi uint64
}

type checker struct {
	w      *world
	r      *recorder
	b      time.Duration
	strict bool

	changes []*changeRec
	tL2     map[*changeRec]time.Duration
	l2Until map[*changeRec]time.Duration
	lostAck map[*changeRec]bool
	orig    map[*changeRec]*pubRec

	deliv      map[*incarnation][]*delivRec
	effective  map[*delivRec]bool
	seenBefore map[*delivRec]bool
	subs       map[*incarnation][]subEv
	gaps       map[*incarnation][]gapEv
	drops      map[*incarnation][]*dropRec
	// firstContact: messages a node lost that no later gap could reveal,
	// because it had heard nothing from the sender since it (re)subscribed.
	firstContact map[*incarnation][]*dropRec

	out []Violation
}

func (w *world) check(strict bool, left []string) []Violation {
	c := &checker{w: w, r: &w.rec, b: w.cfg.Bound, strict: strict,
		tL2: map[*changeRec]time.Duration{}, l2Until: map[*changeRec]time.Duration{}, lostAck: map[*changeRec]bool{},
		orig: map[*changeRec]*pubRec{}, deliv: map[*incarnation][]*delivRec{}, effective: map[*delivRec]bool{},
		seenBefore: map[*delivRec]bool{},
		subs:       map[*incarnation][]subEv{}, gaps: map[*incarnation][]gapEv{}, drops: map[*incarnation][]*dropRec{},
		firstContact: map[*incarnation][]*dropRec{}}
	c.index()
	c.pin()
	c.checkReads()
	c.checkCalls()
	c.checkEager()
	c.checkReplays()
	c.checkQuiet()
	c.checkL2()
	if len(left) > 0 {
		txt := fmt.Sprintf("%d goroutines left after every cache was closed:\n%s", len(left), strings.Join(left, "\n\n"))
		c.add(Violation{Kind: "goroutine leak", At: w.endAt, Node: "--", Text: txt})
	}
	slices.SortStableFunc(c.out, func(a, b Violation) int { return cmp.Compare(a.At, b.At) })
	return c.out
}

func (c *checker) add(v Violation) { c.out = append(c.out, v) }

// index sorts what each node received, and replays core's sequence
// tracking per node to find the gaps it could see.
func (c *checker) index() {
	r := c.r
	for _, d := range r.deliveries {
		c.deliv[d.to] = append(c.deliv[d.to], d)
	}
	for _, s := range r.subs {
		c.subs[s.inc] = append(c.subs[s.inc], s)
	}
	for _, d := range r.drops {
		c.drops[d.to] = append(c.drops[d.to], d)
	}
	for inc, ds := range c.deliv {
		slices.SortStableFunc(ds, func(a, b *delivRec) int { return cmp.Compare(a.at, b.at) })
		c.trackSources(inc, ds)
	}
	// Lost messages no gap can reveal: the node had no number from the
	// sender when a later message of it arrived.
	for inc, drops := range c.drops {
		for _, dr := range drops {
			if !c.revealedByGap(inc, dr.pub) && dr.why != "disconnected" {
				c.firstContact[inc] = append(c.firstContact[inc], dr)
			}
		}
	}
}

// srcState is what a node knows of a sender's sequence numbers, as
// docs/consistency.md ("Replays, duplicates and clock steps") describes it:
// the highest number seen, which of the 64 below it were seen, and whether
// the next number above is a baseline (after a reconnection).
type srcState struct {
	top    uint64
	seen   map[uint64]bool
	resync bool
}

const replayWindow = 64

// trackSources replays the sequence tracking of node inc over what it
// received: which messages it applied, which it dropped as already seen,
// and which gaps it could see.
func (c *checker) trackSources(inc *incarnation, ds []*delivRec) {
	subs := c.subs[inc]
	state := map[string]*srcState{}
	si := 0
	for _, d := range ds {
		for si < len(subs) && subs[si].at <= d.at {
			if subs[si].kind == subReconnected {
				for _, st := range state {
					st.resync = true
				}
			}
			si++
		}
		if d.pub.inc == inc {
			continue // its own: only the delivery watermark looks at them
		}
		src, seq := d.pub.inc.id, d.pub.msg.Seq
		st, ok := state[src]
		applied := true
		switch {
		case !ok:
			state[src] = &srcState{top: seq, seen: map[uint64]bool{seq: true}}
		case seq <= st.top:
			if st.top-seq < replayWindow && !st.seen[seq] {
				st.seen[seq] = true // a late one of the window
			} else {
				applied = false
				c.seenBefore[d] = true
			}
		default:
			if seq > st.top+1 && !st.resync {
				c.gaps[inc] = append(c.gaps[inc], gapEv{at: d.at, src: src, lo: st.top + 1, hi: seq - 1})
			}
			st.top, st.resync = seq, false
			st.seen[seq] = true
		}
		// An attacker's replay is never counted as telling the node
		// anything, whatever core makes of it.
		if applied && d.kind != deliverReplay {
			c.effective[d] = true
		}
	}
}

func (c *checker) revealedByGap(inc *incarnation, p *pubRec) bool {
	for _, g := range c.gaps[inc] {
		if g.src == p.inc.id && g.lo <= p.msg.Seq && p.msg.Seq <= g.hi {
			return true
		}
	}
	return false
}

// pin finds each change's cache version: the timestamp of a message its
// call sent (its traceparent names the operation), else of its own L2 write,
// else of a replayed message of its node (the queue keeps no traceparent).
func (c *checker) pin() {
	taken := map[string]map[int64]bool{}
	for _, ch := range c.r.changes {
		if ch.failed || !ch.done {
			continue
		}
		c.changes = append(c.changes, ch)
		slot := fmt.Sprintf("%s|%v|%s", ch.inc.label, ch.action(), ch.subject)
		if taken[slot] == nil {
			taken[slot] = map[int64]bool{}
		}
		tp := opTrace(ch.op.spec.ID)
		for _, p := range c.r.attempts {
			if p.inc == ch.inc && p.msg.TraceParent == tp && p.msg.Action == ch.action() && p.msg.Key == ch.subject {
				ch.version = p.msg.Timestamp
				break
			}
		}
		if ch.version == 0 {
			best := int64(math.MaxInt64)
			sk := ch.storeKey()
			for _, wr := range c.r.l2writes {
				if wr.inc == ch.inc && wr.storeKey == sk && wr.at >= ch.call && wr.version >= ch.lb && !taken[slot][wr.version] {
					best = min(best, wr.version)
				}
			}
			for _, p := range c.r.attempts {
				if p.inc == ch.inc && p.msg.TraceParent == "" && p.msg.Action == ch.action() && p.msg.Key == ch.subject &&
					p.at >= ch.call && p.msg.Timestamp >= ch.lb && !taken[slot][p.msg.Timestamp] {
					best = min(best, p.msg.Timestamp)
				}
			}
			if best != math.MaxInt64 {
				ch.version = best
			}
		}
		if ch.version != 0 {
			taken[slot][ch.version] = true
		}
	}
	for _, ch := range c.changes {
		c.tL2[ch], c.l2Until[ch] = forever, forever
		if ch.version == 0 {
			continue
		}
		sk := ch.storeKey()
		for _, wr := range c.r.l2writes {
			if wr.storeKey != sk {
				continue
			}
			if wr.lostAck && wr.inc == ch.inc && wr.version == ch.version {
				c.lostAck[ch] = true
			}
			if !wr.stored {
				continue
			}
			if wr.version >= ch.version && c.tL2[ch] == forever {
				c.tL2[ch] = wr.at
			}
			if wr.version < ch.version && c.tL2[ch] != forever && wr.at > c.tL2[ch] && c.l2Until[ch] == forever {
				c.l2Until[ch] = wr.at
			}
		}
		for _, p := range c.r.pubs {
			if p.inc == ch.inc && p.msg.Action == ch.action() && p.msg.Key == ch.subject && p.msg.Timestamp == ch.version {
				c.orig[ch] = p
				break
			}
		}
	}
}

// vx is the version messages must reach to cover the change: its own, or
// for a change never seen outside its node, its upper bound.
func vx(ch *changeRec) int64 {
	if ch.version != 0 {
		return ch.version
	}
	return ch.ub
}

// checkable reports whether v's version is certainly below the change's
// (clock skew and stepped clocks order nothing within their window).
func checkable(ch *changeRec, v Val) bool {
	if ch.version != 0 {
		return v.UB < ch.version
	}
	return v.UB < ch.lb
}

// deadline is when a node must stop serving a value, and why.
type deadline struct {
	at  time.Duration
	why string
	// clockRule: the node times this rule on its own clock (a step back
	// lengthens it).
	clockRule bool
	from      time.Duration
	// via names the protection for the defect classification.
	via string
	// msg is the message that set it, for via "message".
	msg *delivRec
}

// deadline computes when r must stop serving v, older than ch, for a read
// starting at s. stale: the read served v as a stale value (fail-safe).
func (c *checker) deadline(ch *changeRec, r *incarnation, v Val, stale bool, s time.Duration) deadline {
	best := deadline{at: forever}
	consider := func(d deadline) {
		if d.at < best.at {
			best = d
		}
	}
	if r == ch.inc {
		consider(deadline{at: ch.ret, why: "the change was made on this node", via: "own"})
	}
	v0 := vx(ch)
	for _, d := range c.deliv[r] {
		if d.at >= best.at {
			break
		}
		if !c.effective[d] || d.pub.msg.Timestamp < v0 || !protects(d.pub.msg, v, stale) {
			continue
		}
		consider(deadline{at: d.at, via: "message", msg: d,
			why: fmt.Sprintf("%s, version %s, reached it at %s", d.pub, c.w.fmtVersion(d.pub.msg.Timestamp), fmtDur(d.at))})
		break
	}
	tl2, until := c.tL2[ch], c.l2Until[ch]
	l2ok := tl2 != forever && s < until
	if l2ok && r.newAt >= tl2 {
		consider(deadline{at: r.newAt, via: "new", why: fmt.Sprintf("it started at %s, after L2 held the change (%s)", fmtDur(r.newAt), fmtDur(tl2))})
	}
	if stale || !l2ok {
		return best
	}
	// Revelations after L2 held the change.
	for _, g := range c.gaps[r] {
		if g.at >= tl2 {
			consider(deadline{at: g.at, via: "gap", why: fmt.Sprintf("it saw a gap in %s's sequence numbers at %s (L2 held the change from %s)", g.src, fmtDur(g.at), fmtDur(tl2))})
			break
		}
	}
	for _, e := range c.subs[r] {
		if e.at < tl2 {
			continue
		}
		switch e.kind {
		case subLost, subReconnected:
			consider(deadline{at: e.at, via: "report", why: fmt.Sprintf("%s at %s (L2 held the change from %s)", subNames[e.kind], fmtDur(e.at), fmtDur(tl2))})
		case subLive:
			if e.at == r.liveAt {
				consider(deadline{at: e.at, via: "live", why: fmt.Sprintf("its first subscription went live at %s, after L2 held the change (%s): entries loaded before it count as unconfirmed (issue 14, defect 3)", fmtDur(e.at), fmtDur(tl2))})
			}
		}
	}
	// While disconnected: the bound after the later of the disconnection
	// and L2 holding the change.
	for _, win := range c.disconnections(r) {
		at := max(win[0], tl2) + c.b
		if at < win[1] {
			consider(deadline{at: at, via: "disconnected", clockRule: true, from: max(win[0], tl2),
				why: fmt.Sprintf("it counted as disconnected from %s: the bound after %s", fmtDur(win[0]), fmtDur(max(win[0], tl2)))})
			break
		}
	}
	if d, ok := c.lagging(ch, r, tl2); ok {
		consider(d)
	}
	return best
}

// protects reports whether applying m makes a node drop (or, for a
// stale-served value, remove) v, given that m's version is above v's.
func protects(m backplane.Message, v Val, stale bool) bool {
	switch m.Action {
	case backplane.ActionSet, backplane.ActionExpire:
		return !stale && m.Key == v.K
	case backplane.ActionRemove:
		return m.Key == v.K
	case backplane.ActionRemoveTag:
		return slices.Contains(v.Tags, m.Key)
	case backplane.ActionExpireTag:
		return !stale && slices.Contains(v.Tags, m.Key)
	case backplane.ActionClearRemove:
		return true
	case backplane.ActionClearExpire:
		return !stale
	}
	return false
}

// disconnections are the windows during which r counted as disconnected:
// from its start until its first subscription went live, and from each
// Disconnected report to the next Reconnected.
func (c *checker) disconnections(r *incarnation) [][2]time.Duration {
	end := forever
	if r.closeAt >= 0 {
		end = r.closeAt
	}
	live := end
	if r.liveAt >= 0 {
		live = r.liveAt
	}
	wins := [][2]time.Duration{{r.newAt, live}}
	var from time.Duration = -1
	for _, e := range c.subs[r] {
		switch e.kind {
		case subDisconnected:
			if from < 0 {
				from = e.at
			}
		case subReconnected:
			if from >= 0 {
				wins = append(wins, [2]time.Duration{from, e.at})
				from = -1
			}
		}
	}
	if from >= 0 {
		wins = append(wins, [2]time.Duration{from, end})
	}
	return wins
}

// lagging is the delivery-watermark rule: ch's message reached r late but
// in order, while r's own messages flowed, so r counted as behind and
// stopped serving entries older than the bound from its watermark on.
func (c *checker) lagging(ch *changeRec, r *incarnation, tl2 time.Duration) (deadline, bool) {
	p := c.orig[ch]
	if p == nil {
		return deadline{}, false
	}
	var arrival time.Duration = -1
	for _, d := range c.deliv[r] {
		if d.pub == p && d.kind == deliverOriginal {
			arrival = d.at
			break
		}
	}
	b := c.b
	if arrival < 0 || arrival-p.at <= b/2 || r.liveAt < 0 || r.liveAt >= p.at || r.newAt >= p.at {
		return deadline{}, false
	}
	probe := c.w.cfg.ProbeInterval
	if probe <= 0 {
		probe = b / 4
	}
	at := max(p.at, tl2) + max(b, probe+b/8+b/2+b/8) + b/50 + time.Millisecond
	if r.closeAt >= 0 && r.closeAt < at {
		return deadline{}, false
	}
	for _, win := range c.disconnections(r) {
		if win[0] < at && win[1] > p.at-b {
			return deadline{}, false
		}
	}
	for _, f := range c.w.faults[r.node] {
		switch f.Kind {
		case FReorder:
			if f.Start < arrival && f.End > p.at-b {
				return deadline{}, false
			}
		case FPublishErr, FPublishTimeout, FCut:
			if f.Start < at && f.End > p.at-b-c.w.cfg.BPBreaker {
				return deadline{}, false
			}
		}
	}
	return deadline{at: at, via: "lagging", clockRule: true, from: p.at,
		why: fmt.Sprintf("its message, sent at %s, arrived %s later in order: the node was behind, and the bound runs from its watermark", fmtDur(p.at), arrival-p.at)}, true
}

// isStale reports whether op may have served key's value as a stale
// (fail-safe) one.
func (c *checker) isStale(op *opRec, key string) bool {
	s := op.spec
	switch s.Kind {
	case OpGetOrSet, OpGet, OpConverge:
		if op.fastHit {
			return op.info.Stale
		}
		if !op.observed {
			return true
		}
		return op.info.Stale || op.info.FailSafe
	case OpGetOrSetMany:
		if !s.FailSafe {
			return false
		}
		d := op.end - op.start
		if (s.Soft > 0 && d >= s.Soft) || (s.Hard > 0 && d >= s.Hard) || (s.CtxTimeout > 0 && d >= s.CtxTimeout) {
			return true
		}
		for _, f := range c.r.factories {
			if f.inc == op.inc && f.key == key && f.start <= op.end && (f.end == 0 || f.end >= op.start) &&
				(f.outcome == "error" || f.outcome == "panic" || f.outcome == "cancelled") {
				return true
			}
		}
		return false
	}
	return true
}

func (c *checker) checkReads() {
	for _, op := range c.r.ops {
		if op.panicked != nil {
			c.add(Violation{Kind: "panic", At: op.end, Node: op.inc.label, Keys: op.spec.Keys,
				Text: fmt.Sprintf("op#%d %s panicked in the caller: %v", op.spec.ID, op.spec.Kind, op.panicked)})
			continue
		}
		if op.skipped || op.spec.Kind.isWrite() {
			continue
		}
		c.checkError(op)
		if (op.spec.Kind == OpGetOrSet || op.spec.Kind == OpConverge) && !op.spec.FailSafe && op.observed &&
			(op.info.FailSafe || op.info.Stale) && len(op.vals) > 0 {
			c.add(Violation{Kind: "fail-safe not asked for", At: op.start, Until: op.end, Node: op.inc.label, Keys: op.spec.Keys, Defect: "D",
				Text: fmt.Sprintf("op#%d %s of %s, without fail-safe, returned the stale value %s (a call without fail-safe gets the factory's error, not a stale value)",
					op.spec.ID, op.spec.Kind, op.spec.Keys[0], op.vals[op.spec.Keys[0]])})
		}
		for _, k := range sortedKeys(op.vals) {
			v := op.vals[k]
			if v.K != k {
				c.add(Violation{Kind: "wrong key", At: op.end, Node: op.inc.label, Keys: []string{k},
					Text: fmt.Sprintf("op#%d %s of %s returned %s", op.spec.ID, op.spec.Kind, k, v)})
				continue
			}
			c.checkValue(op, k, v)
		}
	}
}

// checkValue checks one value a read returned against every newer change.
func (c *checker) checkValue(op *opRec, k string, v Val) {
	stale := c.isStale(op, k)
	s := op.start
	r := op.inc
	var worst *Violation
	for _, ch := range c.changes {
		if ch.vers[k] <= v.V || !ch.covers(v) || ch.ret >= s || (stale && !ch.removes()) || !checkable(ch, v) {
			continue
		}
		d := c.deadline(ch, r, v, stale, s)
		if d.at == forever {
			if op.spec.Kind == OpConverge {
				c.checkConvergence(op, k, v, ch)
			}
			continue
		}
		limit := max(d.at, ch.ret)
		// The node decides by its own clock: what it marked stale as of
		// its clock's reading then is fresh again if its clock goes back
		// (the documentation promises nothing about a stepped clock).
		// So the read must also come after the limit on that clock.
		// A rule the node times itself (the bound since a confirmation)
		// starts from its clock's reading at the entry's confirmation,
		// which may come before a step back: the highest reading until
		// then.
		clk := c.w.clocks[r.node]
		base := clk.read(limit)
		if d.clockRule && d.from < limit {
			base = clk.maxRead(d.from) + int64(limit-d.from)
		}
		if clk.read(s) <= base {
			continue
		}
		if s <= limit {
			continue
		}
		how := "fresh"
		if stale {
			how = "stale (fail-safe)"
		}
		txt := fmt.Sprintf("op#%d %s of %s started at %s and returned %s, served %s%s; but %s returned at %s "+
			"(source %s@v%d, cache version %s), and %s must not serve older values of %s from %s: %s",
			op.spec.ID, op.spec.Kind, k, fmtDur(s), v, how, c.sourceOf(op), ch, fmtDur(ch.ret), k, ch.vers[k],
			c.w.fmtVersion(ch.version), r.label, k, fmtDur(limit), d.why)
		keys := []string{k}
		if ch.kind == OpRemoveByTag || ch.kind == OpExpireByTag {
			keys = append(keys, ch.subject)
		}
		viol := Violation{Kind: "stale read", At: s, Until: op.end, Node: r.label, Keys: keys, Text: txt,
			nodes: []string{r.label, ch.inc.label}, Defect: c.classify(op, k, v, ch, d)}
		if worst == nil {
			worst = &viol
		}
	}
	if worst != nil {
		c.add(*worst)
	}
}

func (c *checker) sourceOf(op *opRec) string {
	switch {
	case op.fastHit:
		return " (an L1 hit)"
	case op.observed:
		s := " (source " + op.info.Source.String()
		if op.info.Hit {
			s += ", hit"
		}
		return s + ")"
	}
	return ""
}

// classify names the known defect a stale read looks like.
func (c *checker) classify(op *opRec, k string, v Val, ch *changeRec, d deadline) string {
	r := op.inc
	if c.isStale(op, k) {
		for _, rd := range c.r.l2reads {
			if rd.inc == r && rd.val != nil && rd.val.same(v) && rd.at >= d.at {
				return "C" // read back from L2 after the removal, served stale
			}
		}
		// Served stale after the removal was applied here: the value
		// fail-safe kept from before it (a run whose result was being
		// written when the removal came no longer heard of it).
		return "K"
	}
	if clk := c.w.clocks[r.node]; d.via != "own" && clk.maxRead(d.at)-clk.read(d.at) > int64(time.Millisecond) {
		// The node learnt of the change (or of a possible loss) while its
		// clock was behind what it had read before: what it expired "as
		// of now" missed what it had confirmed since.
		return "E"
	}
	if !op.spec.FailSafe {
		for _, f := range c.r.failsafes {
			if f.inc == r && f.key == k && f.at >= op.start && f.at <= op.end {
				return "D" // it got the stale value fail-safe served the run it joined
			}
		}
	}
	hit := op.fastHit || (op.observed && op.info.Hit)
	if p := c.orig[ch]; p != nil {
		for _, dl := range c.deliv[r] {
			if dl.pub.inc == p.inc && dl.pub.msg.Timestamp == p.msg.Timestamp && c.seenBefore[dl] {
				return "B" // its message came with a number already used, and was dropped
			}
		}
	}
	if ch.kind >= OpRemoveByTag && ch.kind <= OpClearExpire {
		for _, rd := range c.r.l2reads {
			if rd.inc == r && rd.failed && rd.storeKey == ch.storeKey() && rd.at <= op.end {
				// Its marker could not be read, and the tag counted as
				// read all the same.
				return "H"
			}
		}
		if d.via == "lagging" || d.via == "disconnected" {
			// Confirmed as of its L2 read, checked against markers
			// read up to a bound earlier.
			return "G"
		}
	}
	if d.via == "live" {
		return "3"
	}
	if !hit && op.spec.Kind != OpGet {
		// Not a hit: the value came from a flight. If this operation
		// did not read it from L2 itself, it joined a run that started
		// before the change.
		for _, rd := range c.r.l2reads {
			if rd.op == op && rd.inc == r && rd.val != nil && rd.val.same(v) {
				return ""
			}
		}
		if d.via == "lagging" || d.via == "disconnected" {
			// It joined a run older than the bound while the node was
			// behind or disconnected: the bound, not a message, says no.
			return "J"
		}
		return "1"
	}
	// A hit on a value a Get read from L2 while the change's message
	// arrived.
	for _, o := range c.r.ops {
		if o.inc != r || o.spec.Kind != OpGet || o.start > op.start || !o.done {
			continue
		}
		got := false
		for _, rd := range c.r.l2reads {
			if rd.op == o && rd.val != nil && rd.val.same(v) {
				got = true
			}
		}
		if !got {
			continue
		}
		for _, dl := range c.deliv[r] {
			if dl.at >= o.start && dl.at <= o.end && dl.pub.msg.Key == k && dl.pub.msg.Timestamp >= vx(ch) {
				return "2"
			}
		}
		if ch.inc == r && ch.call >= o.start && ch.call <= o.end {
			return "2" // a change made on the node while the Get ran
		}
	}
	if c.startedBeforeLive(r, ch) {
		return "3"
	}
	return ""
}

// startedBeforeLive reports whether ch's message went out while r was not
// subscribed yet.
func (c *checker) startedBeforeLive(r *incarnation, ch *changeRec) bool {
	p := c.orig[ch]
	return p != nil && p.at >= r.newAt && (r.liveAt < 0 || p.at < r.liveAt)
}

// checkError flags errors a call should not return.
func (c *checker) checkError(op *opRec) {
	err := op.err
	if err == nil {
		return
	}
	var fe *core.FactoryError
	var pe *core.PanicError
	var te *core.TypeError
	switch {
	case op.spec.Kind == OpConverge && c.w.cfg.StampedeLock && op.end >= c.w.endAt:
		// Still waiting at the end for a distributed lock its holder
		// could not release (it waits up to the lock's TTL, as
		// documented); the hung-call check covers it.
	case op.spec.Kind == OpConverge && !errors.Is(err, core.ErrClosed):
		defect := ""
		if errors.As(err, &fe) && errors.Is(err, context.Canceled) {
			defect = "I" // it joined a run whose leader timed out and cancelled it
		}
		c.add(Violation{Kind: "convergence", At: op.start, Node: op.inc.label, Keys: op.spec.Keys, Defect: defect,
			Text: fmt.Sprintf("op#%d, a plain GetOrSet of the convergence round, failed: %v", op.spec.ID, err)})
	case errors.Is(err, core.ErrClosed), errors.Is(err, core.ErrFactoryTimeout), errors.As(err, &fe), errors.As(err, &pe):
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
	case errors.As(err, &te) && slices.Contains(op.spec.Keys, c.w.cfg.OtherKey):
	case strings.Contains(err.Error(), "GetOrSetMany factory returned no value"):
		// It joined a GetOrSetMany whose factory left the key out (the
		// other-type key): core ends such a flight with that error.
	default:
		c.add(Violation{Kind: "unexpected error", At: op.end, Node: op.inc.label, Keys: op.spec.Keys,
			Text: fmt.Sprintf("op#%d %s returned %v", op.spec.ID, op.spec.Kind, err)})
	}
}

// checkConvergence: a read of the convergence round returned a value older
// than ch, and nothing gives the node a deadline for ch. That is allowed
// only for the documented reasons.
func (c *checker) checkConvergence(op *opRec, k string, v Val, ch *changeRec) {
	r := op.inc
	switch {
	case ch.version == 0 && ch.inc.closeAt >= 0:
		return // its node closed before telling anyone: the queue is lost
	case c.lostAck[ch]:
		return // L2 acknowledged the change's write and lost it
	case c.l2Until[ch] != forever:
		return // L2 took an older write once the change's entry expired
	case ch.inc.closeAt >= 0 && c.orig[ch] == nil:
		return
	}
	if st := ch.inc.cache.Stats(); st.RecoveryDropped > 0 {
		return // its auto-recovery queue dropped items
	}
	why := "nothing told it"
	defect := ""
	if p := c.orig[ch]; p != nil {
		for _, d := range c.deliv[r] {
			if d.pub.msg.Timestamp == p.msg.Timestamp && d.pub.inc == p.inc && c.seenBefore[d] {
				defect = "B"
				why = fmt.Sprintf("its message reached it at %s with a sequence number (%d) already used by an earlier message of %s (a publish that timed out after the transport took it), and was dropped as a duplicate",
					fmtDur(d.at), d.pub.msg.Seq, p.inc.label)
			}
		}
		for _, dr := range c.drops[r] {
			if dr.pub == p {
				why = fmt.Sprintf("its message was %s at %s and no later message revealed the loss", dr.why, fmtDur(dr.at))
				if slices.Contains(c.firstContact[r], dr) {
					if !c.strict {
						return // a first contact: see Options.Strict
					}
					why += fmt.Sprintf(" (%s had heard nothing from %s since it subscribed, so the next message showed no gap)", r.label, p.inc.label)
				}
			}
		}
	} else if ch.version == 0 {
		why = fmt.Sprintf("%s never published it nor wrote it to L2", ch.inc.label)
	} else {
		why = fmt.Sprintf("%s never published it", ch.inc.label)
	}
	if c.tL2[ch] == forever {
		why += "; L2 never held it"
	}
	c.add(Violation{Kind: "convergence", At: op.start, Node: r.label, Keys: []string{k}, nodes: []string{r.label, ch.inc.label}, Defect: defect,
		Text: fmt.Sprintf("op#%d at %s (faults over since %s) returned %s, older than %s (returned at %s): %s",
			op.spec.ID, fmtDur(op.start), fmtDur(c.w.cfg.ChaosEnd), v, ch, fmtDur(ch.ret), why)})
}

// legitMax bounds how long op may take with no timeout of its own: its L2
// calls, its factory, its write and publish, the distributed lock.
func (c *checker) legitMax(_ *opRec) time.Duration {
	cfg := c.w.cfg
	l2call := cfg.L2Latency + time.Microsecond
	var slow, reply time.Duration
	for _, f := range c.w.plan.Faults {
		switch f.Kind {
		case FL2Slow:
			slow = max(slow, f.D)
		case FL2Ambiguous:
			reply = cfg.Bound / 4
		}
	}
	l2call += slow + reply
	// A caller may wait for another caller's run, made with that caller's
	// options: the bound takes the widest options of the plan.
	factory := cfg.FactoryTime
	if cfg.FactorySlow > 0 {
		factory = 4 * cfg.Bound
	}
	publish := cfg.PublishTimeout + time.Millisecond
	n := 1
	for _, o := range c.w.plan.Ops {
		if o.Kind == OpGetOrSetMany {
			n = max(n, len(o.Keys))
		}
	}
	// A caller whose joined run was invalidated goes round once more:
	// two runs.
	d := 2*(12*l2call+factory) + time.Duration(n)*(l2call+publish)
	var lock, hard time.Duration
	for _, o := range c.w.plan.Ops {
		lock, hard = max(lock, o.LockTimeout), max(hard, o.Hard)
	}
	if lock > 0 {
		d += lock + factory + 12*l2call
	}
	if cfg.StampedeLock {
		ttl := max(core.DefaultDistributedLockTTL, hard+time.Second)
		d += ttl + 100*time.Millisecond + 2*l2call
	}
	return d + time.Millisecond
}

// checkCalls flags calls that did not return within their timeouts, or at
// all before the end of the run.
func (c *checker) checkCalls() {
	for _, op := range c.r.ops {
		if op.neverReturned {
			c.add(Violation{Kind: "hung call", At: op.start, Until: c.w.endAt, Node: op.inc.label, Keys: op.spec.Keys, Defect: c.classifyHang(op),
				Text: fmt.Sprintf("op#%d %s of %s started at %s and never returned, not even once its cache was closed",
					op.spec.ID, op.spec.Kind, strings.Join(op.spec.Keys, ","), fmtDur(op.start))})
			continue
		}
		if op.skipped || !op.done {
			continue
		}
		s := op.spec
		took := op.end - op.start
		limit := forever
		why := ""
		if s.Hard > 0 && !s.Kind.isWrite() && s.Kind != OpGet {
			limit, why = s.Hard+time.Microsecond, "its hard timeout"
		}
		if s.CtxTimeout > 0 && s.CtxTimeout+time.Microsecond < limit {
			limit, why = s.CtxTimeout+time.Microsecond, "its context's deadline"
		}
		if s.Kind.isWrite() && s.L2Soft > 0 && !s.BgL2 {
			if l := s.L2Soft + c.w.cfg.PublishTimeout + time.Millisecond; l < limit {
				limit, why = l, "its L2 soft timeout plus the publish timeout"
			}
		}
		lm := c.legitMax(op)
		if lm < limit {
			limit, why = lm, "the longest its L2 calls, factory, write and publish can take"
		}
		if took <= limit {
			// A context deadline hit although the call had no reason to
			// last that long: it waited for something that never ended.
			if op.err != nil && errors.Is(op.err, context.DeadlineExceeded) && s.CtxTimeout > lm {
				c.add(Violation{Kind: "hung call", At: op.start, Node: op.inc.label, Keys: s.Keys,
					Defect: c.classifyHang(op),
					Text: fmt.Sprintf("op#%d %s of %v waited until its context's deadline (%v), though nothing it waits for takes over %v",
						s.ID, s.Kind, strings.Join(s.Keys, ","), s.CtxTimeout, lm)})
			}
			continue
		}
		kind := "slow call"
		if op.end >= c.w.endAt {
			kind = "hung call"
		}
		defect := c.classifyHang(op)
		if s.Hard > 0 && took <= s.LockTimeout+2*s.Hard+time.Millisecond {
			// The hard timeout starts again: after the lock timeout, or
			// when the run it joined was invalidated and it goes round
			// once more.
			defect = "A"
		}
		c.add(Violation{Kind: kind, At: op.start, Until: op.end, Node: op.inc.label, Keys: s.Keys, Defect: defect,
			Text: fmt.Sprintf("op#%d %s of %s started at %s and returned after %v (%v), beyond %s (%v)",
				s.ID, s.Kind, strings.Join(s.Keys, ","), fmtDur(op.start), took, errString(op.err), why, limit)})
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// classifyHang: a call on a key that an earlier GetOrSetMany on the node
// registered and then failed with a *TypeError.
func (c *checker) classifyHang(op *opRec) string {
	for _, o := range c.r.ops {
		var te *core.TypeError
		if o.inc == op.inc && o.spec.Kind == OpGetOrSetMany && o.done && o.end <= op.start && errors.As(o.err, &te) {
			for _, k := range op.spec.Keys {
				if slices.Contains(o.spec.Keys, k) && k != c.w.cfg.OtherKey {
					return "4"
				}
			}
		}
	}
	return ""
}

// checkEager: an eager refresh must produce a newer value: from L2 when
// another node already refreshed it, else from the factory (issue 14,
// defect 6).
func (c *checker) checkEager() {
	for _, e := range c.r.eagers {
		if e.op == nil {
			continue
		}
		refreshed, ok := e.op.vals[e.key]
		if !ok {
			continue
		}
		good := false
		for _, f := range c.r.factories {
			if f.inc == e.inc && f.op == e.op && f.key == e.key && f.start >= e.at {
				good = true
			}
		}
		for _, rd := range c.r.l2reads {
			if rd.inc == e.inc && rd.op == e.op && rd.storeKey == keyPrefix+e.key && rd.at >= e.at &&
				(rd.val == nil || !rd.val.same(refreshed)) {
				good = true
			}
		}
		if good || (e.inc.closeAt >= 0 && e.inc.closeAt < e.at+c.legitMax(e.op)) {
			continue
		}
		c.add(Violation{Kind: "eager refresh", At: e.at, Node: e.inc.label, Keys: []string{e.key}, Defect: "6",
			Text: fmt.Sprintf("op#%d hit %s at %s and started an eager refresh, which produced nothing newer: no factory run, and L2 gave back the same entry",
				e.op.spec.ID, refreshed, fmtDur(e.at))})
	}
}

// checkReplays: a message a node has already had (an attacker's replay, a
// transport's duplicate) is dropped: it must change nothing, in particular
// not expire L1 (docs/consistency.md, "Replays, duplicates and clock steps";
// issue 14, defect 9).
func (c *checker) checkReplays() {
	for _, d := range c.r.deliveries {
		if !d.measured || d.lossDelta == 0 || !c.seenBefore[d] {
			continue
		}
		defect := "9"
		for _, p := range c.r.pubs {
			if p.inc == d.pub.inc && p.late && p.at < d.at {
				defect = "B" // the sender reused a number after a publish that timed out but went out
			}
		}
		c.add(Violation{Kind: "replay", At: d.at, Node: d.to.label, Defect: defect,
			Text: fmt.Sprintf("%s%s, sent at %s and already received, made %s expire its whole L1 (a replay can neither change nor expire anything)",
				d.pub, deliveryNames[d.kind], fmtDur(d.pub.at), d.to.label)})
	}
}

// checkQuiet: once the faults are long over, a healthy cluster does not
// expire its L1 or fall behind (issue 14, defect 10: a clock step once over
// must not keep nodes expiring L1). A message whose version is older than its
// send by more than half the bound (a factory that ran that long, a replayed
// queue item) is taken for a late one: that is counted apart (a finding, not
// a broken promise), unless Strict.
func (c *checker) checkQuiet() {
	for _, a := range c.r.quiet[0] {
		for _, b := range c.r.quiet[1] {
			if a.inc != b.inc {
				continue
			}
			dl, db := b.stats.LossEvents-a.stats.LossEvents, b.stats.BehindEvents-a.stats.BehindEvents
			if dl == 0 && db == 0 {
				continue
			}
			var causes []string
			oldStamp := uint64(0)
			for _, d := range c.deliv[a.inc] {
				if d.at < a.at || d.at > b.at || d.lossDelta == 0 {
					continue
				}
				sent := c.w.clocks[d.pub.inc.node].read(d.pub.at)
				if d.pub.msg.Action != backplane.ActionProbe && sent-d.pub.msg.Timestamp > int64(c.b/2) {
					oldStamp += d.lossDelta
					causes = append(causes, fmt.Sprintf("%s (version %s, sent %s: an old version, taken for a late message)",
						d.pub, c.w.fmtVersion(d.pub.msg.Timestamp), fmtDur(d.pub.at)))
					continue
				}
				causes = append(causes, fmt.Sprintf("%s at %s", d.pub, fmtDur(d.at)))
			}
			if oldStamp == dl && db == 0 && !c.strict {
				continue
			}
			defect := c.quietDefect()
			c.add(Violation{Kind: "quiescence", At: a.at, Until: b.at, Node: a.inc.label, Defect: defect,
				Text: fmt.Sprintf("between %s and %s, %v after the faults ended, %s expired its L1 %d times and fell behind %d times; messages that made it expire L1: %s",
					fmtDur(a.at), fmtDur(b.at), a.at-c.w.cfg.ChaosEnd, a.inc.label, dl, db, strings.Join(causes, "; "))})
		}
	}
}

// quietDefect names what a loss in the quiet phase looks like: clocks left
// more than half the bound apart (by skew or a step that stayed) make the
// lateness of probes swing with the hybrid logical clock ("F"); else a clock
// step that is over ("10").
func (c *checker) quietDefect() string {
	end := c.w.cfg.ChaosEnd
	lo, hi := time.Duration(math.MaxInt64), time.Duration(math.MinInt64)
	for n, clk := range c.w.clocks {
		if c.w.plan.nodeDropped(n) {
			continue
		}
		o := clk.offset(end)
		lo, hi = min(lo, o), max(hi, o)
	}
	if hi-lo > c.b/2 {
		return "F"
	}
	for _, f := range c.w.plan.Faults {
		if f.Kind == FClockStep {
			return "10"
		}
	}
	return ""
}

// checkL2: at the end, L2's entry of each key is no older than the last
// change of the key (no lost update in L2).
func (c *checker) checkL2() {
	for _, k := range c.w.cfg.Keys {
		var last *changeRec
		for _, ch := range c.changes {
			if (ch.kind == OpSet || ch.kind == OpRemove || ch.kind == OpExpire) && ch.subject == k && ch.version != 0 {
				if last == nil || ch.vers[k] > last.vers[k] {
					last = ch
				}
			}
		}
		if last == nil || c.lostAck[last] || c.l2Until[last] != forever || c.tL2[last] == forever {
			continue
		}
		b, found, _ := c.w.store.Get(context.Background(), keyPrefix+k)
		if !found {
			continue
		}
		env, val, ok := decodeEntry(b)
		if !ok {
			continue
		}
		switch {
		case env.Created < last.version:
			c.add(Violation{Kind: "L2 lost update", At: c.w.endAt, Node: "--", Keys: []string{k},
				Text: fmt.Sprintf("at the end L2 holds %s version %s, older than %s (version %s)", k, c.w.fmtVersion(env.Created), last, c.w.fmtVersion(last.version))})
		case val != nil && val.V < last.vers[k] && checkable(last, *val):
			c.add(Violation{Kind: "L2 lost update", At: c.w.endAt, Node: "--", Keys: []string{k},
				Text: fmt.Sprintf("at the end L2 holds %s under version %s, newer than %s (version %s) though it is older", val, c.w.fmtVersion(env.Created), last, c.w.fmtVersion(last.version))})
		}
	}
}
