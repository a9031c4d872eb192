package core

import (
	"context"
	"sync"
	"time"
)

// runCtx is the context of a factory run: it has the values of the call
// that started the run, no deadline, and is cancelled by the run's own
// cancel (the run's end, a caller's timeout without background completion)
// or by Close. It lives in its flight, and makes the channel Done returns
// (and its link to the cache's context) only when something asks for it: a
// factory that never looks at its context costs no allocation and no
// registration with the cache's context for it. Safe for concurrent use.
type runCtx struct {
	// values has no cancellation: the caller's context (when it has none)
	// or context.WithoutCancel of it.
	values context.Context
	// life is the cache's lifecycle: its base context is done at Close.
	life *lifecycle

	mu sync.Mutex
	// link is nil until the first Done or AfterFunc, or a cancel, and
	// then cancelledEarly (a cancel came first) or what they answer from.
	// Kept apart and made on demand, it leaves a run that never looks at
	// its context (and its flight) smaller.
	link *runLink
}

// runLink is a materialized runCtx: inner, cancelled by cancelInner, and
// stopBase, which unlinks it from the cache's base context.
type runLink struct {
	inner       context.Context
	cancelInner context.CancelFunc
	stopBase    func() bool
}

// cancelledEarly is the link of a runCtx cancelled before anything asked
// for its Done channel.
var cancelledEarly = &runLink{}

// init makes r a context with ctx's values, cancelled at the latest when
// life's base context is.
func (r *runCtx) init(ctx context.Context, life *lifecycle) {
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	r.values, r.life = ctx, life
}

// materialize returns the context Done and AfterFunc answer from, made on
// the first call: cancelled at once if r is already, else when base is.
func (r *runCtx) materialize() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.link == nil || r.link == cancelledEarly {
		l := &runLink{}
		l.inner, l.cancelInner = context.WithCancel(r.values)
		if r.link == cancelledEarly || r.life.base.Err() != nil {
			l.cancelInner()
		} else {
			l.stopBase = context.AfterFunc(r.life.base, l.cancelInner)
		}
		r.link = l
	}
	return r.link.inner
}

// cancel cancels r; it may be called more than once.
func (r *runCtx) cancel() {
	r.mu.Lock()
	l := r.link
	if l == nil || l == cancelledEarly {
		r.link = cancelledEarly
		r.mu.Unlock()
		return
	}
	cancel, stop := l.cancelInner, l.stopBase
	l.stopBase = nil
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	if cancel != nil {
		cancel()
	}
}

func (r *runCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (r *runCtx) Done() <-chan struct{} { return r.materialize().Done() }

func (r *runCtx) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.link == cancelledEarly:
		return context.Canceled
	case r.link != nil:
		return r.link.inner.Err()
	case r.life.base.Err() != nil:
		return context.Canceled
	}
	return nil
}

func (r *runCtx) Value(key any) any { return r.values.Value(key) }

// AfterFunc lets a context derived from r (context.WithCancel and the like)
// follow r's cancellation without a goroutine of its own.
func (r *runCtx) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(r.materialize(), f)
}

func (r *runCtx) String() string { return "strata factory context" }
