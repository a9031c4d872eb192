package core

import "sync/atomic"

// breaker is a circuit breaker for one distributed component (L2 or the
// backplane): after a failure it stays open for its duration, during which
// core does not call the component (reads miss, writes go to the recovery
// queue). A zero duration never opens.
type breaker struct {
	duration  int64 // nanoseconds
	openUntil atomic.Int64
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
