package scale

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratacache/strata/core"
)

// recorder timestamps, on every node, the end of the receipt of each
// backplane message about a tracked key: core tells an Observer's OpEnd of
// OpBackplaneReceive after the node has applied the message (its L1 copy
// dropped or expired). Times are monotonic, from the recorder's creation.
type recorder struct {
	nodes   int
	base    time.Time
	changes sync.Map // key -> *change

	untracked atomic.Uint64 // receipts of keys no change tracks
	repeats   atomic.Uint64 // second receipts of a change by one node
	own       atomic.Uint64 // receipts of a change by its own sender
	losses    atomic.Uint64 // EventBackplaneLoss on any node
}

// change is one tracked change and when each node applied it.
type change struct {
	key    string
	sender int
	start  int64 // when the sender's call began
	// applied[i] is when node i applied the change (0: not yet; the
	// sender's stays 0).
	applied []atomic.Int64
	left    atomic.Int32 // nodes that have not applied it yet
	done    chan struct{}
}

func newRecorder(nodes int) *recorder { return &recorder{nodes: nodes, base: time.Now()} }

// now returns the nanoseconds since the recorder was made (monotonic).
func (r *recorder) now() int64 { return int64(time.Since(r.base)) }

// track starts tracking a change of key from node sender, starting now.
// Each change must have a key of its own.
func (r *recorder) track(key string, sender int) *change {
	ch := &change{key: key, sender: sender, applied: make([]atomic.Int64, r.nodes), done: make(chan struct{})}
	ch.left.Store(int32(r.nodes - 1))
	r.changes.Store(key, ch)
	ch.start = r.now()
	return ch
}

// forget stops tracking a finished change: a later receipt of its key
// counts as untracked.
func (r *recorder) forget(ch *change) { r.changes.Delete(ch.key) }

func (r *recorder) applied(node int, key string) {
	at := r.now()
	v, ok := r.changes.Load(key)
	if !ok {
		r.untracked.Add(1)
		return
	}
	ch := v.(*change)
	if node == ch.sender {
		r.own.Add(1) // core must ignore its own messages
		return
	}
	if !ch.applied[node].CompareAndSwap(0, at) {
		r.repeats.Add(1)
		return
	}
	if ch.left.Add(-1) == 0 {
		close(ch.done)
	}
}

// observer returns node i's Observer.
func (r *recorder) observer(i int) core.Observer { return &nodeObserver{r: r, node: i} }

type nodeObserver struct {
	r    *recorder
	node int
}

func (o *nodeObserver) OpStart(ctx context.Context, _ *core.OpInfo) context.Context { return ctx }

func (o *nodeObserver) OpEnd(_ context.Context, op *core.OpInfo) {
	if op.Op == core.OpBackplaneReceive {
		o.r.applied(o.node, op.Key)
	}
}

func (o *nodeObserver) Event(_ context.Context, ev core.Event) {
	if ev.Kind == core.EventBackplaneLoss {
		o.r.losses.Add(1)
	}
}

// wait waits until every node but the sender has applied ch, failing tb
// after d with the nodes still missing and their counters.
func (cl *cluster) wait(tb testing.TB, ch *change, d time.Duration) {
	tb.Helper()
	select {
	case <-ch.done:
		return
	case <-time.After(d):
	}
	var missing []string
	for i := range ch.applied {
		if i != ch.sender && ch.applied[i].Load() == 0 {
			st := cl.nodes[i].Stats()
			missing = append(missing, fmt.Sprintf("%s (received %d, losses %d, disconnected %v)",
				cl.nodes[i].InstanceID(), st.BackplaneReceived, st.LossEvents, st.Disconnected))
		}
	}
	tb.Fatalf("change of %q from n%d: %d of %d nodes had not applied it after %v: %s",
		ch.key, ch.sender, len(missing), len(ch.applied)-1, d, strings.Join(missing, ", "))
}

// latencies holds fan-out latencies of finished changes: per change, the
// slowest node's; per delivery, each node's.
type latencies struct {
	slowest []time.Duration
	each    []time.Duration
}

// add records a change every node has applied.
func (l *latencies) add(ch *change) {
	var slowest time.Duration
	for i := range ch.applied {
		if i == ch.sender {
			continue
		}
		d := time.Duration(ch.applied[i].Load() - ch.start)
		l.each = append(l.each, d)
		slowest = max(slowest, d)
	}
	l.slowest = append(l.slowest, slowest)
}

// quantile returns the q-quantile (nearest rank) of ds, which it sorts.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// summary is the p50, p99 and max of the slowest node per change, and the
// p50 and p99 of every delivery.
type summary struct {
	p50, p99, max    time.Duration
	nodeP50, nodeP99 time.Duration
}

func (l *latencies) summary() summary {
	return summary{
		p50: quantile(l.slowest, 0.50), p99: quantile(l.slowest, 0.99), max: quantile(l.slowest, 1),
		nodeP50: quantile(l.each, 0.50), nodeP99: quantile(l.each, 0.99),
	}
}

func (s summary) String() string {
	return fmt.Sprintf("slowest node per change p50 %v p99 %v max %v; each delivery p50 %v p99 %v",
		s.p50, s.p99, s.max, s.nodeP50, s.nodeP99)
}

// seed puts value under key in every node's L1 only (no L2 write, nothing
// published), so that each node holds a copy a change must drop.
func (cl *cluster) seed(tb testing.TB, key, value string) {
	tb.Helper()
	ctx := context.Background()
	for _, c := range cl.nodes {
		err := core.Set(ctx, c, key, value, core.WithDuration(time.Hour), core.WithSkipL2Write(), core.WithSkipBackplane())
		if err != nil {
			tb.Fatalf("seed %q on %s: %v", key, c.InstanceID(), err)
		}
	}
}

// change makes node sender set key to value (remove it when remove is
// true) and returns the tracked change. core publishes before Set and Remove
// return (no background backplane here).
func (cl *cluster) change(tb testing.TB, sender int, key, value string, remove bool) *change {
	tb.Helper()
	ch, err := cl.try(sender, key, value, remove)
	if err != nil {
		tb.Fatal(err)
	}
	return ch
}

// try is change returning its error, for goroutines other than the test's.
func (cl *cluster) try(sender int, key, value string, remove bool) (*change, error) {
	ctx := context.Background()
	ch := cl.rec.track(key, sender)
	var err error
	if remove {
		err = cl.nodes[sender].Remove(ctx, key)
	} else {
		err = core.Set(ctx, cl.nodes[sender], key, value, core.WithDuration(time.Hour))
	}
	if err != nil {
		return nil, fmt.Errorf("change %q on node %d: %w", key, sender, err)
	}
	return ch, nil
}

// burst has senders nodes (0, 1, ...) each make perSender changes at once,
// as fast as each can, on keys of their own named after round, and waits
// until every change has reached every other node. It returns the changes
// and the wall time from the first call to the last receipt.
func (cl *cluster) burst(tb testing.TB, round, senders, perSender int) ([]*change, time.Duration) {
	tb.Helper()
	all := make([]*change, senders*perSender)
	errs := make([]error, senders)
	start := cl.rec.now()
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for j := range perSender {
				key := fmt.Sprintf("burst:%d:%d:%d", round, s, j)
				if all[s*perSender+j], errs[s] = cl.try(s, key, "v", false); errs[s] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	var last int64
	for _, ch := range all {
		cl.wait(tb, ch, time.Minute)
		for i := range ch.applied {
			last = max(last, ch.applied[i].Load())
		}
	}
	return all, time.Duration(last - start)
}
