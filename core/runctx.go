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
	// base is the cache's context, done at Close.
	base context.Context

	mu        sync.Mutex
	cancelled bool
	// inner, made by the first Done or AfterFunc, is what they answer
	// from; stopBase unlinks it from base.
	inner       context.Context
	cancelInner context.CancelFunc
	stopBase    func() bool
}

// init makes r a context with ctx's values, cancelled at the latest when
// base is.
func (r *runCtx) init(ctx, base context.Context) {
	if ctx.Done() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	r.values, r.base = ctx, base
}

// materialize returns the context Done and AfterFunc answer from, made on
// the first call: cancelled at once if r is already, else when base is.
func (r *runCtx) materialize() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inner == nil {
		r.inner, r.cancelInner = context.WithCancel(r.values)
		if r.cancelled || r.base.Err() != nil {
			r.cancelInner()
		} else {
			r.stopBase = context.AfterFunc(r.base, r.cancelInner)
		}
	}
	return r.inner
}

// cancel cancels r; it may be called more than once.
func (r *runCtx) cancel() {
	r.mu.Lock()
	r.cancelled = true
	cancel, stop := r.cancelInner, r.stopBase
	r.stopBase = nil
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
	case r.inner != nil:
		return r.inner.Err()
	case r.cancelled || r.base.Err() != nil:
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
