package core

import (
	"context"
	"sync/atomic"
	"time"
)

// breaker is a circuit breaker for one distributed component (L2 or the
// backplane): after a failure it stays open for its duration, during which
// core does not call the component (reads miss, writes go to the recovery
// queue). A zero duration never opens.
type breaker struct {
	// name is the component in events ("l2:open"), what in logs.
	name, what string
	duration   int64 // nanoseconds
	openUntil  atomic.Int64
}

// allow reports whether the component may be called at now.
func (b *breaker) allow(now int64) bool {
	return b.duration == 0 || now >= b.openUntil.Load()
}

// fail records a failure at now; it reports whether the breaker opened.
func (b *breaker) fail(now int64) bool {
	if b.duration == 0 {
		return false
	}
	was := b.openUntil.Swap(now + b.duration)
	return was == 0
}

// succeed records a success; it reports whether the breaker closed.
func (b *breaker) succeed() bool {
	if b.duration == 0 || b.openUntil.Load() == 0 {
		return false
	}
	return b.openUntil.Swap(0) != 0
}

// failed records a failure of the component and reports the breaker's
// opening, if it opened.
func (b *breaker) failed(ctx context.Context, v *env) {
	if b.fail(v.now()) {
		v.event(ctx, EventCircuitBreakerChange, b.name+":open", nil)
		v.logger.WarnContext(ctx, "strata: "+b.what+" circuit breaker open", "for", time.Duration(b.duration))
	}
}

// succeeded records a success of the component and, if that closed the
// breaker, reports it and wakes auto-recovery to replay what waited.
func (b *breaker) succeeded(ctx context.Context, v *env, rec *recovery) {
	if b.succeed() {
		v.event(ctx, EventCircuitBreakerChange, b.name+":closed", nil)
		v.logger.InfoContext(ctx, "strata: "+b.what+" circuit breaker closed")
		rec.wake()
	}
}
