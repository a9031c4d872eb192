package sim

import (
	"context"

	"github.com/stratacache/strata/core"
)

// observer is every incarnation's core.Observer: it tells each workload
// operation where its value came from (OpEnd's outcome, or a fast-path hit),
// records eager refreshes, and puts core's notable events in the trace. It
// is a HitObserver so that GetOrSet keeps its fast path for the operations
// whose plan says so.
type observer struct {
	w   *world
	inc *incarnation
}

var _ core.HitObserver = (*observer)(nil)

func (o *observer) OpStart(ctx context.Context, info *core.OpInfo) context.Context {
	if info.Op == core.OpFactory && info.Background {
		o.w.tracef(o.inc, info.Key, "eager refresh of %s runs its factory", info.Key)
	}
	return ctx
}

func (o *observer) OpEnd(ctx context.Context, info *core.OpInfo) {
	switch info.Op {
	case core.OpGetOrSet, core.OpGet:
	default:
		return
	}
	op := opOf(ctx)
	if op == nil || op.inc != o.inc {
		return
	}
	o.w.mu.Lock()
	op.observed = true
	op.info = *info
	o.w.mu.Unlock()
}

func (o *observer) Event(ctx context.Context, ev core.Event) {
	w := o.w
	switch ev.Kind {
	case core.EventEagerRefresh:
		op := opOf(ctx)
		w.mu.Lock()
		w.rec.eagers = append(w.rec.eagers, &eagerRec{inc: o.inc, op: op, key: ev.Key, at: w.now()})
		w.mu.Unlock()
		w.tracef(o.inc, ev.Key, "eager refresh of %s starts", ev.Key)
	case core.EventBackplaneLoss:
		w.tracef(o.inc, "", "L1 expired: possible loss of messages (%s)", ev.Key)
	case core.EventBackplaneBehind:
		w.tracef(o.inc, "", "delivery watermark: %s", ev.Key)
	case core.EventNotCachedSuperseded:
		w.tracef(o.inc, ev.Key, "flight of %s superseded: its result is not cached", ev.Key)
	case core.EventFailSafeActivated:
		w.mu.Lock()
		w.rec.failsafes = append(w.rec.failsafes, &eagerRec{inc: o.inc, op: opOf(ctx), key: ev.Key, at: w.now()})
		w.mu.Unlock()
		w.tracef(o.inc, ev.Key, "fail-safe serves a stale value of %s", ev.Key)
	case core.EventFactorySoftTimeout, core.EventFactoryHardTimeout, core.EventLockTimeout:
		w.tracef(o.inc, ev.Key, "%s: %s", ev.Kind, ev.Key)
	case core.EventCircuitBreakerChange, core.EventBackplaneRejected:
		w.tracef(o.inc, "", "%s %s", ev.Kind, ev.Key)
	}
}

// HitRecorder binds the hit recorder: the observer itself.
func (o *observer) HitRecorder(string) core.HitRecorder { return hitRecorder{o} }

type hitRecorder struct{ o *observer }

// WantsHitOp follows the operation's plan: a hit goes the fast path, or
// gets OpStart/OpEnd.
func (h hitRecorder) WantsHitOp(ctx context.Context) bool {
	op := opOf(ctx)
	return op != nil && op.spec.WantHitOp
}

func (h hitRecorder) Hit(ctx context.Context, stale bool) {
	op := opOf(ctx)
	if op == nil {
		return
	}
	h.o.w.mu.Lock()
	op.fastHit = true
	op.info.Stale = stale
	op.info.Source = core.SourceL1
	h.o.w.mu.Unlock()
}
