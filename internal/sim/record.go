package sim

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/stratacache/strata/backplane"
	"github.com/stratacache/strata/core"
)

// What a run records: a readable trace, and the facts the checker works
// from (operations, changes, messages and their deliveries, subscription
// events, L2 writes and reads, factory runs). Everything is recorded with
// its virtual instant, as a duration since the start of the run, under the
// world's lock.

// traceEv is one line of the trace.
type traceEv struct {
	T    time.Duration
	Node string // "n1", "n1#2" for its second incarnation, "" for the world
	Key  string // the key or tag it is about, for filtering ("" for none)
	Text string
	ord  int // insertion order, to keep a goroutine's events in order
}

func (e traceEv) String() string {
	node := e.Node
	if node == "" {
		node = "--"
	}
	return fmt.Sprintf("%s %-5s %s", fmtDur(e.T), node, e.Text)
}

// incarnation is one life of a node: New to Close.
type incarnation struct {
	node, n int
	label   string // "n1", or "n1#2" after a restart
	id      string // its InstanceID
	cache   *core.Cache
	newAt   time.Duration
	closeAt time.Duration // when Close was called (never: -1)
	liveAt  time.Duration // when its first subscription went live (never: -1)
	closed  chan struct{} // closed once Close returned
	bp      *simBP
}

func (inc *incarnation) alive(at time.Duration) bool {
	return at >= inc.newAt && (inc.closeAt < 0 || at < inc.closeAt)
}

// opRec is one operation as it ran.
type opRec struct {
	spec  *OpSpec
	inc   *incarnation
	start time.Duration
	end   time.Duration
	done  bool
	// vals holds the values returned, by key (several for GetOrSetMany).
	vals map[string]Val
	// other is the string returned by a GetOrSet of the other-type key.
	other    string
	found    bool // Get
	err      error
	panicked any
	// From the observer: OpEnd of the operation, or a fast-path hit.
	observed bool
	info     core.OpInfo
	fastHit  bool
	// atClose: it returned once its cache was closing.
	atClose bool
	// skipped: the node was down.
	skipped bool
	// neverReturned: the call had not returned well after its cache was
	// closed.
	neverReturned bool
}

// changeRec is one change the workload made: the source's versions of the
// keys it changed, and the cache call that announced it.
type changeRec struct {
	id   int
	op   *opRec
	kind OpKind
	inc  *incarnation
	// subject is the key, the tag, or "" for a Clear.
	subject string
	// vers are the source versions the change set, by key.
	vers map[string]int
	call time.Duration
	ret  time.Duration
	// lb and ub bound the cache version core gave the change (its
	// stamp): the node's clock at the call, and the highest any node's
	// clock had read by then (versions are a hybrid logical clock).
	lb, ub int64
	// version is the cache version, pinned from the change's own message
	// or L2 write (0: never seen outside the node).
	version int64
	failed  bool // the call returned an error: nothing was changed
	done    bool
}

// action is the backplane action of the change.
func (ch *changeRec) action() backplane.Action {
	switch ch.kind {
	case OpSet:
		return backplane.ActionSet
	case OpRemove:
		return backplane.ActionRemove
	case OpExpire:
		return backplane.ActionExpire
	case OpRemoveByTag:
		return backplane.ActionRemoveTag
	case OpExpireByTag:
		return backplane.ActionExpireTag
	case OpClearRemove:
		return backplane.ActionClearRemove
	}
	return backplane.ActionClearExpire
}

// removes reports whether the change removes values (not even fail-safe
// may serve them after it).
func (ch *changeRec) removes() bool {
	return ch.kind == OpRemove || ch.kind == OpRemoveByTag || ch.kind == OpClearRemove
}

// covers reports whether the change makes v outdated (it changed v's key
// and, for a tag, v carries the tag).
func (ch *changeRec) covers(v Val) bool {
	if _, ok := ch.vers[v.K]; !ok {
		return false
	}
	switch ch.kind {
	case OpRemoveByTag, OpExpireByTag:
		return slices.Contains(v.Tags, ch.subject)
	}
	return true
}

// storeKey is the L2 key the change writes (entry, tombstone or marker).
func (ch *changeRec) storeKey() string {
	switch ch.kind {
	case OpSet, OpRemove, OpExpire:
		return keyPrefix + ch.subject
	case OpRemoveByTag:
		return keyPrefix + "__strata:tag-remove:" + ch.subject
	case OpExpireByTag:
		return keyPrefix + "__strata:tag-expire:" + ch.subject
	case OpClearRemove:
		return keyPrefix + "__strata:clear-remove"
	}
	return keyPrefix + "__strata:clear-expire"
}

func (ch *changeRec) String() string {
	var vs []string
	for _, k := range sortedKeys(ch.vers) {
		vs = append(vs, fmt.Sprintf("%s@v%d", k, ch.vers[k]))
	}
	what := ch.kind.String()
	if ch.subject != "" {
		what += " " + ch.subject
	}
	return fmt.Sprintf("change #%d %s on %s (source now %s)", ch.id, what, ch.inc.label, strings.Join(vs, " "))
}

// pubRec is one message that reached the transport.
type pubRec struct {
	id      uint64
	inc     *incarnation
	msg     backplane.Message
	at      time.Duration
	payload []byte // as published (signed if signing is on)
	late    bool   // its Publish had already returned an error
}

func (p *pubRec) String() string {
	s := fmt.Sprintf("%s seq=%d %s", p.inc.label, p.msg.Seq, p.msg.Action)
	if p.msg.Key != "" {
		s += " " + p.msg.Key
	}
	return s
}

type deliveryKind uint8

const (
	deliverOriginal deliveryKind = iota
	deliverDup
	deliverReplay
)

var deliveryNames = [...]string{"", " (duplicate)", " (replayed by an attacker)"}

// delivRec is one message handed to a node's subscription.
type delivRec struct {
	to   *incarnation
	at   time.Duration
	pub  *pubRec
	kind deliveryKind
	// lossDelta is how much the receiver's LossEvents grew while it
	// handled the message (measured for duplicates and replays).
	lossDelta uint64
	measured  bool
}

// dropRec is a message the transport did not deliver to a node.
type dropRec struct {
	to  *incarnation
	at  time.Duration
	pub *pubRec
	why string
}

type subKind uint8

const (
	subLive subKind = iota
	subDisconnected
	subReconnected
	subLost
)

var subNames = [...]string{"subscription live", "Disconnected reported", "Reconnected reported", "Lost reported"}

// subEv is a subscription event of a node, at the moment its callback ran.
type subEv struct {
	inc  *incarnation
	at   time.Duration
	kind subKind
}

// l2Write is one write that reached L2 (stored or not).
type l2Write struct {
	inc       *incarnation
	at        time.Duration
	storeKey  string
	version   int64
	stored    bool
	lostAck   bool // reported stored, not stored
	ambiguous bool // stored, reported failed
	tomb      bool
	val       *Val
	expires   int64 // the envelope's logical expiry (Unix ns)
	ttl       time.Duration
}

// l2Read is one read of a key from L2.
type l2Read struct {
	inc      *incarnation
	at       time.Duration
	storeKey string
	op       *opRec
	found    bool
	failed   bool
	tomb     bool
	version  int64
	val      *Val
}

// factoryRec is one run of a factory.
type factoryRec struct {
	inc        *incarnation
	op         *opRec // the call whose context the run has
	key        string
	start, end time.Duration
	read       int // the source version read (-1: none)
	outcome    string
	background bool
}

// eagerRec is an eager refresh a hit started.
type eagerRec struct {
	inc *incarnation
	op  *opRec
	key string
	at  time.Duration
}

// statsRec is a snapshot of a node's counters.
type statsRec struct {
	inc   *incarnation
	at    time.Duration
	stats core.Stats
}

// recorder holds what a run records. The world's lock guards it.
type recorder struct {
	trace      []traceEv
	attempts   []*pubRec // every Publish call, sent or not
	ops        []*opRec
	changes    []*changeRec
	pubs       []*pubRec
	deliveries []*delivRec
	drops      []*dropRec
	subs       []subEv
	l2writes   []*l2Write
	l2reads    []*l2Read
	factories  []*factoryRec
	eagers     []*eagerRec
	failsafes  []*eagerRec // fail-safe activations (op: the caller's)
	incs       []*incarnation
	quiet      [2][]statsRec
}

func (r *recorder) add(e traceEv) {
	e.ord = len(r.trace)
	r.trace = append(r.trace, e)
}

// sortedTrace returns the trace ordered by instant, then node, keeping
// each node's events at one instant in the order they were recorded.
func (r *recorder) sortedTrace() []traceEv {
	t := slices.Clone(r.trace)
	slices.SortStableFunc(t, func(a, b traceEv) int {
		if c := cmp.Compare(a.T, b.T); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return cmp.Compare(a.ord, b.ord)
	})
	return t
}

// fingerprint hashes the trace's content independently of the order in
// which goroutines recorded events at one instant: two runs of a seed that
// did the same things have the same fingerprint.
func (r *recorder) fingerprint() uint64 {
	lines := make([]string, len(r.trace))
	for i, e := range r.trace {
		lines[i] = fmt.Sprintf("%d|%s|%s", e.T, e.Node, e.Text)
	}
	slices.Sort(lines)
	h := fnv.New64a()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return h.Sum64()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
