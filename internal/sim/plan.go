package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A Plan is everything a run does that is decided before it starts: the
// cluster's configuration, the operations (what, on which node, when) and the
// fault windows. It is drawn from the seed (NewPlan); shrinking drops parts of
// it (Drop) and runs it again. Decisions taken while the run goes on come from
// the seed too (rand.go).
type Plan struct {
	Seed uint64
	Cfg  Config
	Ops  []OpSpec
	// Faults are the fault windows, in start order.
	Faults []FaultSpec
	// Dropped is what shrinking removed (empty for the full plan).
	Dropped Drop
}

// Config is the cluster of a run.
type Config struct {
	// Nodes is how many nodes the cluster has (2 to 7).
	Nodes int
	// Keys are the keys the workload uses; KeyTags the tags each key's
	// entries may carry; OtherKey, when not empty, is a key cached with
	// another type (string), read by GetOrSetMany and Get as a Val.
	Keys     []string
	KeyTags  map[string][]string
	Tags     []string
	OtherKey string

	Bound, RecoveryDelay, PublishTimeout, ProbeInterval time.Duration
	L2Breaker, BPBreaker                                time.Duration
	CloseTimeout                                        time.Duration
	Signing, StampedeLock                               bool
	// Values: set messages carry their entries
	// (EntryOptions.ValueOnBackplane), on every node.
	Values bool
	// Duration is the entries' default duration (L2 and L1).
	Duration time.Duration

	// Skew is each node's clock offset for the whole run.
	Skew []time.Duration

	// Baseline latencies, faults or not.
	MsgDelay, L2Latency, FactoryTime time.Duration
	// SubscribeDelay bounds how long a Subscribe takes (a node's startup
	// window).
	SubscribeDelay time.Duration
	// Factory faults during the chaos phase: the probabilities of an error,
	// a panic, and a run slower than any timeout.
	FactoryErr, FactoryPanic, FactorySlow float64

	// ChaosEnd is when the faults and the operations end; the quiet phase
	// follows.
	ChaosEnd time.Duration
}

// OpKind names a workload operation.
type OpKind uint8

// The operations.
const (
	OpGetOrSet OpKind = iota
	OpGet
	OpGetOrSetMany
	OpSet
	OpRemove
	OpExpire
	OpRemoveByTag
	OpExpireByTag
	OpClearRemove
	OpClearExpire
	// OpGetOrSetOther is a GetOrSet of the other-type key (a string).
	OpGetOrSetOther
	// OpConverge is a read of the convergence round (GetOrSet, plain).
	OpConverge
	opKinds
)

var opKindNames = [...]string{"GetOrSet", "Get", "GetOrSetMany", "Set", "Remove", "Expire", "RemoveByTag",
	"ExpireByTag", "Clear(remove)", "Clear(expire)", "GetOrSet[string]", "converge:GetOrSet"}

func (k OpKind) String() string { return opKindNames[k] }

func (k OpKind) isWrite() bool { return k >= OpSet && k <= OpClearExpire }

// OpSpec is one operation of the workload.
type OpSpec struct {
	ID   int
	At   time.Duration
	Node int
	Kind OpKind
	Keys []string // the key(s); empty for tags and clears
	Tag  string   // for RemoveByTag and ExpireByTag

	// Entry options (zero: not given).
	FailSafe        bool
	Throttle        time.Duration
	Soft, Hard      time.Duration
	L2Soft, L2Hard  time.Duration
	Eager           float64
	WithTags        bool
	L1Duration      time.Duration
	NoBgCompletion  bool
	BgL2, BgBP      bool
	LockTimeout     time.Duration
	AllowStale      bool
	CtxTimeout      time.Duration // 0: context.Background
	WantHitOp       bool          // the observer asks for OpStart/OpEnd on hits
	FactoryPlan     uint64        // drawn for every operation, unused: kept so that seeds keep their meaning
	OtherKeyInBatch bool          // GetOrSetMany: the other-type key last
}

// FaultKind names a fault.
type FaultKind uint8

// The faults. Each applies to one node during [Start, End).
const (
	// FLag delays every message delivered to the node by D (FIFO kept).
	FLag FaultKind = iota
	// FReorder adds up to D of independent delay to each delivery (FIFO
	// not kept: messages overtake each other).
	FReorder
	// FLoss drops incoming messages with probability P, silently.
	FLoss
	// FLostReport drops them with probability P and reports Lost.
	FLostReport
	// FDup delivers incoming messages twice with probability P.
	FDup
	// FReplay has an attacker deliver old messages (copied off the wire)
	// to the node, P per bound on average.
	FReplay
	// FCut disconnects the node: nothing is delivered to it, its
	// publishes and subscribes fail; Disconnected is reported D after the
	// start (unless NoReport), Reconnected at the end.
	FCut
	// FPublishErr makes its publishes fail with probability P.
	FPublishErr
	// FPublishTimeout makes its publishes time out with probability P;
	// one that times out reaches the others anyway with probability
	// D/Bound (the server took it, the reply came too late).
	FPublishTimeout
	// FSubscribe makes its Subscribe calls fail (P) or take up to D.
	FSubscribe
	// FL2Slow adds up to D to its L2 calls (beyond the timeouts).
	FL2Slow
	// FL2Err makes its L2 calls fail with probability P.
	FL2Err
	// FL2LostAck makes its L2 writes report success without storing
	// anything, with probability P.
	FL2LostAck
	// FL2Ambiguous makes its L2 writes store, then fail (a lost reply),
	// with probability P.
	FL2Ambiguous
	// FClockStep moves its clock by D (either way) until End, or for good
	// with Stay.
	FClockStep
	// FRestart closes the node at Start and makes it again (same name, new
	// instance id, empty L1) at End.
	FRestart
	faultKinds
)

var faultNames = [...]string{"lag", "reorder", "loss", "lost-report", "dup", "replay", "cut", "publish-err",
	"publish-timeout", "subscribe", "l2-slow", "l2-err", "l2-lost-ack", "l2-ambiguous", "clock-step", "restart"}

func (k FaultKind) String() string { return faultNames[k] }

// FaultSpec is one fault window.
type FaultSpec struct {
	ID         int
	Kind       FaultKind
	Node       int
	Start, End time.Duration
	P          float64
	D          time.Duration
	NoReport   bool // FCut: no Disconnected report
	Stay       bool // FClockStep: the step stays
}

func (f FaultSpec) active(at time.Duration) bool { return at >= f.Start && at < f.End }

// NewPlan draws the plan of seed.
func NewPlan(seed uint64) *Plan {
	r := rand.New(rand.NewPCG(mix(seed), mix(seed^0xa0761d6478bd642f)))
	p := &Plan{Seed: seed}
	c := &p.Cfg
	c.Nodes = []int{2, 2, 2, 3, 3, 3, 4, 4, 5, 6, 7}[r.IntN(11)]
	nk := 1 + r.IntN(4)
	c.KeyTags = map[string][]string{}
	c.Tags = []string{"ta", "tb"}
	for i := 0; i < nk; i++ {
		k := "k" + strconv.Itoa(i)
		c.Keys = append(c.Keys, k)
		var tags []string
		for _, t := range c.Tags {
			if r.IntN(2) == 0 {
				tags = append(tags, t)
			}
		}
		c.KeyTags[k] = tags
	}
	if r.IntN(6) == 0 {
		c.OtherKey = "kx"
	}
	b := []time.Duration{200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}[r.IntN(4)]
	c.Bound = b
	// Periods a few microseconds off the bound's: core's prober ticks
	// every eighth of the bound from a node's start, its recovery loop
	// every RecoveryDelay from the same instant; commensurate periods
	// would make both act at one virtual instant, in either order.
	c.RecoveryDelay = []time.Duration{b / 2, b, 2 * b}[r.IntN(3)] + 7919*time.Nanosecond
	c.PublishTimeout = []time.Duration{b / 4, b / 2, b}[r.IntN(3)]
	if r.IntN(5) == 0 {
		c.ProbeInterval = b / 8
	}
	if r.IntN(4) == 0 {
		c.L2Breaker = b/4 + time.Duration(r.Int64N(int64(b)))
	}
	if r.IntN(4) == 0 {
		c.BPBreaker = b/4 + time.Duration(r.Int64N(int64(b)))
	}
	c.CloseTimeout = b
	c.Signing = r.IntN(10) < 3
	c.StampedeLock = r.IntN(7) == 0
	// Drawn from the seed apart from r, so that the seeds kept before
	// values existed draw everything else as they did.
	c.Values = mix(seed^0x76616c756573)%4 == 0
	c.Duration = []time.Duration{2 * b, 8 * b, time.Hour}[r.IntN(3)]
	c.Skew = make([]time.Duration, c.Nodes)
	switch r.IntN(5) {
	case 0:
		for i := range c.Skew {
			c.Skew[i] = time.Duration(r.Int64N(int64(b/2))) - b/4
		}
	case 1:
		for i := range c.Skew {
			c.Skew[i] = time.Duration(r.Int64N(int64(4*b))) - 2*b
		}
	}
	c.MsgDelay = []time.Duration{100 * time.Microsecond, 2 * time.Millisecond, 20 * time.Millisecond}[r.IntN(3)]
	c.L2Latency = []time.Duration{50 * time.Microsecond, time.Millisecond, 5 * time.Millisecond}[r.IntN(3)]
	c.FactoryTime = []time.Duration{time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond, b}[r.IntN(4)]
	c.SubscribeDelay = []time.Duration{time.Microsecond, c.MsgDelay, b / 4, b}[r.IntN(4)]

	// Which faults this seed injects: none (a fifth of the seeds: the
	// schedules alone), one class, or several.
	var kinds []FaultKind
	switch x := r.IntN(10); {
	case x < 2:
	case x < 5:
		kinds = []FaultKind{FaultKind(r.IntN(int(faultKinds)))}
	default:
		for k := FaultKind(0); k < faultKinds; k++ {
			if r.IntN(3) == 0 {
				kinds = append(kinds, k)
			}
		}
	}
	factoryFaults := r.IntN(3) == 0
	if factoryFaults {
		c.FactoryErr = []float64{0.05, 0.2, 0.5}[r.IntN(3)]
		c.FactoryPanic = []float64{0, 0.05}[r.IntN(2)]
		c.FactorySlow = []float64{0, 0.1, 0.3}[r.IntN(3)]
	}

	// Operations: in bursts on one key (the interleavings that matter are
	// a few operations of one key on a few nodes within one factory run),
	// some of them right after the nodes start (before their subscriptions
	// are live).
	nops := 8 + r.IntN(60)
	gap := b/16 + time.Duration(r.Int64N(int64(b/3)))
	at := time.Duration(r.Int64N(int64(b/10))) + time.Microsecond
	focus := c.Keys[r.IntN(len(c.Keys))]
	for i := 0; i < nops; i++ {
		if r.IntN(3) == 0 {
			at += time.Duration(r.ExpFloat64() * float64(gap))
			focus = c.Keys[r.IntN(len(c.Keys))]
		} else {
			at += time.Duration(r.ExpFloat64() * float64(c.FactoryTime/4+b/100))
		}
		at += time.Duration(r.Int64N(1000)) + time.Microsecond
		o := genOp(r, c, i, at)
		if len(o.Keys) == 1 && o.Keys[0] != c.OtherKey && r.IntN(3) != 0 {
			o.Keys[0] = focus
		}
		p.Ops = append(p.Ops, o)
	}
	c.ChaosEnd = at + b/4

	// Fault windows.
	if len(kinds) > 0 {
		nf := 1 + r.IntN(6)
		for i := 0; i < nf; i++ {
			if f, ok := genFault(r, c, kinds[r.IntN(len(kinds))]); ok {
				p.Faults = append(p.Faults, f)
			}
		}
	}
	sort.SliceStable(p.Faults, func(i, j int) bool { return p.Faults[i].Start < p.Faults[j].Start })
	for i := range p.Faults {
		p.Faults[i].ID = i
	}
	p.Ops = append(p.Ops, focusOps(r, c, p.Faults, len(p.Ops))...)
	sort.SliceStable(p.Ops, func(i, j int) bool { return p.Ops[i].At < p.Ops[j].At })
	return p
}

// focusOps aims operations at the windows where the bound is all that
// protects a node: a disconnection or a lag longer than the bound. The node
// reads a key before the window, another node changes it early in the
// window, and the node reads it again past the bound, while the window
// lasts.
func focusOps(r *rand.Rand, c *Config, faults []FaultSpec, id int) []OpSpec {
	b := c.Bound
	var ops []OpSpec
	add := func(o OpSpec) {
		o.ID, o.FactoryPlan = id, r.Uint64()
		id++
		ops = append(ops, o)
	}
	for _, f := range faults {
		if f.Kind == FL2Slow && c.Nodes > 1 && r.IntN(2) == 0 {
			// A read from L2 that takes long, and a change of its key
			// arriving while it runs (its entry, then its markers).
			k := c.Keys[r.IntN(len(c.Keys))]
			other := (f.Node + 1 + r.IntN(c.Nodes-1)) % c.Nodes
			if r.IntN(2) == 0 {
				other = f.Node // a change made on the node itself
			}
			at := f.Start + time.Duration(r.Int64N(int64(b/20)))
			add(OpSpec{At: at, Node: f.Node, Kind: OpGet, Keys: []string{k}, WithTags: r.IntN(2) == 0})
			add(OpSpec{At: at + time.Duration(r.Float64()*1.5*float64(f.D)), Node: other,
				Kind: []OpKind{OpSet, OpRemove, OpExpire}[r.IntN(3)], Keys: []string{k}})
			for i := 0; i < 3; i++ {
				add(OpSpec{At: at + time.Duration(float64(i+1)*float64(2*f.D)), Node: f.Node, Kind: OpGetOrSet, Keys: []string{k}})
			}
			continue
		}
		until := f.End
		switch {
		case f.Kind == FCut && f.End-f.Start > b:
		case f.Kind == FLag && f.D > b/2:
			until = min(f.End+f.D, c.ChaosEnd)
		default:
			continue
		}
		if c.Nodes < 2 || r.IntN(4) == 0 {
			continue
		}
		k := c.Keys[r.IntN(len(c.Keys))]
		other := (f.Node + 1 + r.IntN(c.Nodes-1)) % c.Nodes
		jit := func() time.Duration { return time.Duration(r.Int64N(int64(b / 20))) }
		if f.Start > b/20 {
			add(OpSpec{At: f.Start - jit(), Node: f.Node, Kind: OpGetOrSet, Keys: []string{k}})
		}
		w := OpSpec{At: f.Start + b/20 + jit(), Node: other, Kind: []OpKind{OpSet, OpRemove, OpExpire}[r.IntN(3)], Keys: []string{k}}
		add(w)
		for at := w.At + b + b/10 + jit(); at < until; at += b/4 + jit() {
			add(OpSpec{At: at, Node: f.Node, Kind: []OpKind{OpGetOrSet, OpGet}[r.IntN(2)], Keys: []string{k}})
		}
	}
	return ops
}

func genOp(r *rand.Rand, c *Config, id int, at time.Duration) OpSpec {
	b := c.Bound
	o := OpSpec{ID: id, At: at, Node: r.IntN(c.Nodes), FactoryPlan: r.Uint64(), WantHitOp: r.IntN(2) == 0}
	w := []float64{40, 12, 8, 12, 6, 6, 3, 3, 1, 1, 0}
	if c.OtherKey != "" {
		w[OpGetOrSetOther] = 4
	}
	o.Kind = OpKind(pickW(r, w))
	key := c.Keys[r.IntN(len(c.Keys))]
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	switch o.Kind {
	case OpGetOrSet, OpGet:
		o.Keys = []string{key}
		if o.Kind == OpGet && c.OtherKey != "" && r.IntN(8) == 0 {
			o.Keys = []string{c.OtherKey}
		}
	case OpGetOrSetOther:
		o.Keys = []string{c.OtherKey}
	case OpGetOrSetMany:
		for _, k := range c.Keys {
			if r.IntN(3) != 0 {
				o.Keys = append(o.Keys, k)
			}
		}
		if len(o.Keys) == 0 {
			o.Keys = []string{key}
		}
		r.Shuffle(len(o.Keys), func(i, j int) { o.Keys[i], o.Keys[j] = o.Keys[j], o.Keys[i] })
		if c.OtherKey != "" && r.IntN(2) == 0 {
			o.Keys = append(o.Keys, c.OtherKey)
			o.OtherKeyInBatch = true
		}
	case OpSet, OpRemove, OpExpire:
		o.Keys = []string{key}
	case OpRemoveByTag, OpExpireByTag:
		o.Tag = c.Tags[r.IntN(len(c.Tags))]
	}
	switch o.Kind {
	case OpGetOrSet, OpGetOrSetMany, OpGetOrSetOther:
		if r.IntN(2) == 0 {
			o.FailSafe = true
			o.Throttle = dur(b/20, b)
			if r.IntN(3) == 0 {
				o.Soft = dur(b/50, b/2)
			}
		}
		if r.IntN(3) == 0 {
			o.Hard = dur(b/20, 2*b)
		}
		if r.IntN(5) == 0 {
			o.L2Soft, o.L2Hard = dur(0, b/20), dur(b/100, b/4)
		}
		if o.Kind == OpGetOrSet && r.IntN(4) == 0 {
			o.Eager = 0.2 + 0.7*r.Float64()
		}
		if r.IntN(2) == 0 {
			o.L1Duration = dur(b/4, 4*b)
		}
		o.NoBgCompletion = r.IntN(10) == 0
		if o.Kind == OpGetOrSet && r.IntN(10) == 0 {
			o.LockTimeout = dur(b/50, b/2)
		}
		if r.IntN(4) == 0 {
			o.CtxTimeout = dur(b/4, 4*b)
		}
	case OpGet:
		o.AllowStale = r.IntN(3) == 0
		if r.IntN(5) == 0 {
			o.L2Soft, o.L2Hard = 0, dur(b/100, b/4)
		}
	case OpSet, OpRemove, OpExpire, OpRemoveByTag, OpExpireByTag, OpClearRemove, OpClearExpire:
		o.BgL2 = r.IntN(7) == 0
		o.BgBP = r.IntN(7) == 0
		if r.IntN(8) == 0 {
			o.L2Soft, o.L2Hard = dur(b/100, b/10), dur(b/10, b/2)
		}
		if o.Kind == OpSet {
			o.FailSafe = r.IntN(2) == 0
			if r.IntN(2) == 0 {
				o.L1Duration = dur(b/4, 4*b)
			}
		}
	}
	o.WithTags = r.IntN(5) < 3
	return o
}

func genFault(r *rand.Rand, c *Config, k FaultKind) (FaultSpec, bool) {
	b := c.Bound
	f := FaultSpec{Kind: k, Node: r.IntN(c.Nodes)}
	length := time.Duration(float64(b/10) * float64(1+r.IntN(30)))
	f.Start = time.Duration(r.Int64N(int64(c.ChaosEnd))) + time.Duration(r.Int64N(1000))
	// Windows cut short by the end of the chaos end at instants of their
	// own: two nodes reconnecting at one instant would publish in either
	// order.
	end := c.ChaosEnd - time.Duration(r.Int64N(int64(b/20)))
	f.End = min(f.Start+length, end)
	if f.End <= f.Start {
		return f, false
	}
	ps := []float64{0.2, 0.5, 1}
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo)+1)) }
	switch k {
	case FLag:
		f.D = dur(b/4, 2*b)
	case FReorder:
		f.D = dur(b/100, b/4)
	case FLoss, FLostReport, FPublishErr, FL2Err, FL2LostAck, FL2Ambiguous:
		f.P = ps[r.IntN(3)]
	case FDup:
		f.P = ps[r.IntN(3)]
		f.D = dur(0, b)
	case FReplay:
		f.P = float64(1 + r.IntN(6))
	case FCut:
		f.D = dur(0, f.End-f.Start)
		f.NoReport = r.IntN(5) == 0
	case FPublishTimeout:
		f.D = dur(0, b)
		f.P = ps[r.IntN(3)]
	case FSubscribe:
		f.P = ps[r.IntN(3)]
		f.D = dur(0, 2*b)
	case FL2Slow:
		f.D = dur(b/20, 2*b)
	case FClockStep:
		f.D = dur(b/4, 3*b)
		if r.IntN(2) == 0 {
			f.D = -f.D
		}
		f.Stay = r.IntN(4) == 0
	case FRestart:
		f.End = min(f.Start+dur(b/50, 2*b), end)
	}
	return f, true
}

func pickW(r *rand.Rand, w []float64) int {
	total := 0.0
	for _, x := range w {
		total += x
	}
	x := r.Float64() * total
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

// Drop is what shrinking removed from a plan: operations and faults by id,
// and whole nodes (with their operations and faults).
type Drop struct {
	Ops, Faults, Nodes []int
}

func (d Drop) empty() bool { return len(d.Ops)+len(d.Faults)+len(d.Nodes) == 0 }

// String encodes d for the -drop flag: "ops=1,4-9;faults=2;nodes=3".
func (d Drop) String() string {
	var parts []string
	for _, x := range []struct {
		name string
		ids  []int
	}{{"ops", d.Ops}, {"faults", d.Faults}, {"nodes", d.Nodes}} {
		if len(x.ids) > 0 {
			parts = append(parts, x.name+"="+ranges(x.ids))
		}
	}
	return strings.Join(parts, ";")
}

func ranges(ids []int) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	var b strings.Builder
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ids[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(ids[j]))
		}
		i = j + 1
	}
	return b.String()
}

// ParseDrop decodes what Drop.String writes.
func ParseDrop(s string) (Drop, error) {
	var d Drop
	if s == "" {
		return d, nil
	}
	for _, part := range strings.Split(s, ";") {
		name, list, ok := strings.Cut(part, "=")
		if !ok {
			return d, fmt.Errorf("sim: drop %q: want name=ids", part)
		}
		var ids []int
		for _, r := range strings.Split(list, ",") {
			lo, hi, isRange := strings.Cut(r, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return d, fmt.Errorf("sim: drop %q: %v", part, err)
			}
			z := a
			if isRange {
				if z, err = strconv.Atoi(hi); err != nil {
					return d, fmt.Errorf("sim: drop %q: %v", part, err)
				}
			}
			for i := a; i <= z; i++ {
				ids = append(ids, i)
			}
		}
		switch name {
		case "ops":
			d.Ops = ids
		case "faults":
			d.Faults = ids
		case "nodes":
			d.Nodes = ids
		default:
			return d, fmt.Errorf("sim: drop %q: unknown part %q", s, name)
		}
	}
	return d, nil
}

// Apply returns the plan without what d drops.
func (p *Plan) Apply(d Drop) *Plan {
	q := *p
	q.Dropped = d
	dropNode := func(n int) bool { return slices.Contains(d.Nodes, n) }
	q.Ops = nil
	for _, o := range p.Ops {
		if !slices.Contains(d.Ops, o.ID) && !dropNode(o.Node) {
			q.Ops = append(q.Ops, o)
		}
	}
	q.Faults = nil
	for _, f := range p.Faults {
		if !slices.Contains(d.Faults, f.ID) && !dropNode(f.Node) {
			q.Faults = append(q.Faults, f)
		}
	}
	return &q
}

// nodeDropped reports whether node n is left out of the run.
func (p *Plan) nodeDropped(n int) bool { return slices.Contains(p.Dropped.Nodes, n) }

// Summary describes the plan in a few lines.
func (p *Plan) Summary() string {
	c := &p.Cfg
	var b strings.Builder
	live := c.Nodes - len(p.Dropped.Nodes)
	fmt.Fprintf(&b, "%d nodes, keys %v", live, c.Keys)
	for _, k := range c.Keys {
		if len(c.KeyTags[k]) > 0 {
			fmt.Fprintf(&b, " %s%v", k, c.KeyTags[k])
		}
	}
	if c.OtherKey != "" {
		fmt.Fprintf(&b, ", %s holds a string", c.OtherKey)
	}
	fmt.Fprintf(&b, "; bound %v, recovery %v, publish timeout %v", c.Bound, c.RecoveryDelay, c.PublishTimeout)
	if c.ProbeInterval > 0 {
		fmt.Fprintf(&b, ", probe every %v", c.ProbeInterval)
	}
	if c.L2Breaker > 0 {
		fmt.Fprintf(&b, ", L2 breaker %v", c.L2Breaker)
	}
	if c.BPBreaker > 0 {
		fmt.Fprintf(&b, ", backplane breaker %v", c.BPBreaker)
	}
	if c.Signing {
		b.WriteString(", signed")
	}
	if c.StampedeLock {
		b.WriteString(", distributed lock")
	}
	if c.Values {
		b.WriteString(", values on the backplane")
	}
	fmt.Fprintf(&b, ", duration %v\n", c.Duration)
	skewed := false
	for _, s := range c.Skew {
		skewed = skewed || s != 0
	}
	if skewed {
		fmt.Fprintf(&b, "clock skew per node %v\n", c.Skew)
	}
	fmt.Fprintf(&b, "baseline: message delay <= %v, L2 latency <= %v, factory <= %v, subscribe <= %v", c.MsgDelay, c.L2Latency, c.FactoryTime, c.SubscribeDelay)
	if c.FactoryErr+c.FactoryPanic+c.FactorySlow > 0 {
		fmt.Fprintf(&b, "; factory faults: error %.2f, panic %.2f, slow %.2f", c.FactoryErr, c.FactoryPanic, c.FactorySlow)
	}
	fmt.Fprintf(&b, "\n%d operations until %v; %d fault windows", len(p.Ops), c.ChaosEnd, len(p.Faults))
	for _, f := range p.Faults {
		fmt.Fprintf(&b, "\n  fault %d: %s", f.ID, f.describe())
	}
	return b.String()
}

func (f FaultSpec) describe() string {
	s := fmt.Sprintf("%s on n%d [%s, %s)", f.Kind, f.Node, fmtDur(f.Start), fmtDur(f.End))
	switch f.Kind {
	case FLag, FReorder, FL2Slow, FSubscribe:
		s += fmt.Sprintf(" up to %v", f.D)
	case FCut:
		if f.NoReport {
			s += " (no Disconnected report)"
		} else {
			s += fmt.Sprintf(" reported after %v", f.D)
		}
	case FClockStep:
		s += fmt.Sprintf(" by %v", f.D)
		if f.Stay {
			s += " (stays)"
		}
	}
	if f.P > 0 {
		s += fmt.Sprintf(" p=%.2f", f.P)
	}
	return s
}

// fmtDur prints a virtual instant (since the start of the run) in seconds.
func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 6, 64) + "s"
}
