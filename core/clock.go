package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is a time source. Seams for tests: pass a fake clock in
// Options.Clock to drive expiry by hand.
type Clock interface {
	Now() time.Time
}

// SystemClock reads the precise system time on every call. Use it inside
// testing/synctest bubbles, where the default shared coarse clock would read
// time outside the bubble.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// coarseResolution is how often the shared coarse clock reads the time.
const coarseResolution = time.Millisecond

// coarseClock caches the system time, read once per resolution by one
// goroutine, so an L1 hit reads an atomic instead of the system clock (which
// costs more than the lookup itself). It lags by up to the resolution.
type coarseClock struct {
	now  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// shared is the one coarse clock of the process, reference counted by the
// caches that use it: the first New starts it, the last Close stops it, so no
// goroutine outlives the caches.
var shared struct {
	mu    sync.Mutex
	refs  int
	clock *coarseClock
}

func acquireCoarseClock() *coarseClock {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.refs == 0 {
		c := &coarseClock{stop: make(chan struct{}), done: make(chan struct{})}
		c.now.Store(time.Now().UnixNano())
		go c.run()
		shared.clock = c
	}
	shared.refs++
	return shared.clock
}

func releaseCoarseClock() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.refs--
	if shared.refs == 0 {
		close(shared.clock.stop)
		<-shared.clock.done
		shared.clock = nil
	}
}

func (c *coarseClock) run() {
	defer close(c.done)
	t := time.NewTicker(coarseResolution)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// Never back: a clock step back holds the time until the
			// clock catches up (Cache.monotonic).
			c.now.Store(max(c.now.Load(), time.Now().UnixNano()))
		}
	}
}
