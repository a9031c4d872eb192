package core_test

import (
	"context"
	"sync"

	"github.com/stratacache/strata/core"
)

// recorder is an Observer that keeps everything it is told.
type recorder struct {
	mu     sync.Mutex
	events []core.Event
	ops    []core.OpInfo
	starts int
}

func (r *recorder) OpStart(ctx context.Context, op *core.OpInfo) context.Context {
	r.mu.Lock()
	r.starts++
	r.mu.Unlock()
	return ctx
}

func (r *recorder) OpEnd(_ context.Context, op *core.OpInfo) {
	r.mu.Lock()
	r.ops = append(r.ops, *op)
	r.mu.Unlock()
}

func (r *recorder) Event(_ context.Context, ev core.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *recorder) has(k core.EventKind) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == k {
			return true
		}
	}
	return false
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []string
	for _, e := range r.events {
		ks = append(ks, e.Kind.String())
	}
	return ks
}

func (r *recorder) lastOp(op core.Operation) core.OpInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ops) - 1; i >= 0; i-- {
		if r.ops[i].Op == op {
			return r.ops[i]
		}
	}
	return core.OpInfo{}
}

func (r *recorder) count(op core.Operation) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.ops {
		if o.Op == op {
			n++
		}
	}
	return n
}

// hitCounter is a HitObserver that wants no op for hits.
type hitCounter struct {
	recorder
	hits  int64
	wants bool
}

func (h *hitCounter) HitRecorder(string) core.HitRecorder { return h }

func (h *hitCounter) WantsHitOp(context.Context) bool { return h.wants }

func (h *hitCounter) Hit(context.Context, bool) {
	h.mu.Lock()
	h.hits++
	h.mu.Unlock()
}
